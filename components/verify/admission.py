"""The pods the WorkflowTemplates describe, dry-run created where they run and where they must not.

Owns: turning each container/script/containerSet template of a WorkflowTemplate into
the Pod the Argo Workflows controller would create for it, as far as the template
decides it (the `main` container, init containers and sidecars, pod security context,
service account and token automount, volumes, node selection, `podSpecPatch`, with
`templateDefaults` merged in); then the admission checks:
- every such pod, the pod each Sensor and EventSource runs and the pod template of each
  Deployment (StatefulSet, DaemonSet, Job) of the render is admitted in the namespace
  it runs in;
- every build-namespace pod that needs a relaxation of `restricted` (seccomp or
  AppArmor Unconfined, privilege escalation; rootless BuildKit) is refused by Pod
  Security in the workflows namespace;
- probes built from a build pod, each with one forbidden change (privileged, hostPath,
  host network, host port, added capability, uid 0), are refused in the build namespace
  (its ValidatingAdmissionPolicy), and a privileged probe in every other namespace.

NOT modelled (the controller adds them from its own configuration): the `init` and
`wait` executor containers, their volumes and the executor's token, and the pods of
`resource`, `suspend`, `steps`, `dag`, `http` and `plugin` templates. `{{...}}`
placeholders are replaced by an inert word, since the controller substitutes them
before creating a pod.

Does not own: the HTTP call, the namespaces' labels or the policy (components.namespaces).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from components.verify.apply import Manifest
from components.verify.client import Answer, ApiClient, ApiError, Resource
from components.verify.report import StackReport

POD_TEMPLATE_KINDS = ("container", "script", "containerSet")
PLACEHOLDER = re.compile(r"\{\{.*?\}\}")
SETTLE_TIMEOUT = 20.0
# A refusal counts only when one of these said no (not, say, a missing ServiceAccount).
REFUSED_BY = ("violates PodSecurity", "ValidatingAdmissionPolicy")
# Pod fields a template (or the workflow spec, as the default) sets directly.
POD_FIELDS = ("nodeSelector", "tolerations", "affinity", "priorityClassName", "schedulerName", "hostAliases",
              "dnsPolicy", "dnsConfig", "imagePullSecrets", "hostNetwork", "runtimeClassName")


@dataclass(frozen=True)
class TemplatePod:
    subject: str  # "WorkflowTemplate ns/name template T"
    namespace: str
    pod: Manifest


def _inert(value: Any) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub("placeholder", value)
    if isinstance(value, list):
        return [_inert(v) for v in value]
    if isinstance(value, dict):
        return {k: _inert(v) for k, v in value.items()}
    return value


def _merge(base: Any, patch: Any) -> Any:
    """A strategic merge as far as pod specs need: maps merge, lists of named items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (isinstance(base, list) and isinstance(patch, list)
            and all(isinstance(i, dict) and "name" in i for i in base + patch)):
        by_name = {item["name"]: item for item in base}
        result = [_merge(by_name[i["name"]], i) if i["name"] in by_name else copy.deepcopy(i) for i in patch]
        patched = {i["name"] for i in patch}
        return [copy.deepcopy(i) for i in base if i["name"] not in patched] + result
    return copy.deepcopy(patch)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:50] or "pod"


def _patch_of(text: Any) -> dict[str, Any]:
    import yaml

    if not isinstance(text, str) or not text.strip():
        return {}
    loaded = yaml.safe_load(text)
    return loaded if isinstance(loaded, dict) else {}


def template_pods(workflow_template: Manifest) -> Iterator[TemplatePod]:
    metadata = workflow_template["metadata"]
    namespace = metadata.get("namespace", "default")
    spec = workflow_template.get("spec") or {}
    defaults = spec.get("templateDefaults") or {}
    for raw in spec.get("templates") or []:
        template = _merge(defaults, raw) if defaults else raw
        kind = next((k for k in POD_TEMPLATE_KINDS if k in template), None)
        if kind is None:
            continue
        name = template.get("name", "?")
        pod = _pod(spec, template, kind, f"{metadata['name']}-{name}", namespace)
        yield TemplatePod(f"WorkflowTemplate {namespace}/{metadata['name']} template {name}", namespace, _inert(pod))


def _pod(spec: dict[str, Any], template: dict[str, Any], kind: str, pod_name: str, namespace: str) -> Manifest:
    if kind == "containerSet":
        containers = [dict(c) for c in template["containerSet"].get("containers") or []]
    else:
        main = {k: v for k, v in template[kind].items() if k != "source"}
        main["name"] = "main"
        containers = [main]
    containers += [{k: v for k, v in s.items() if k != "mirrorVolumeMounts"} for s in template.get("sidecars") or []]
    init = [{k: v for k, v in c.items() if k != "mirrorVolumeMounts"} for c in template.get("initContainers") or []]
    mounted = {m.get("name") for c in containers + init for m in c.get("volumeMounts") or []}
    volumes = list(template.get("volumes") or [])
    own = {v.get("name") for v in volumes}
    volumes += [v for v in spec.get("volumes") or [] if v.get("name") in mounted and v.get("name") not in own]
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": containers}
    if init:
        pod_spec["initContainers"] = init
    if volumes:
        pod_spec["volumes"] = volumes
    account = template.get("serviceAccountName") or spec.get("serviceAccountName")
    if account:
        pod_spec["serviceAccountName"] = account
    automount = template.get("automountServiceAccountToken", spec.get("automountServiceAccountToken"))
    if automount is not None:
        pod_spec["automountServiceAccountToken"] = automount
    security = template.get("securityContext") or spec.get("securityContext")
    if security:
        pod_spec["securityContext"] = security
    for field in POD_FIELDS:
        value = template.get(field, spec.get(field))
        if value is not None:
            pod_spec[field] = value
    if "activeDeadlineSeconds" in template and isinstance(template["activeDeadlineSeconds"], int):
        pod_spec["activeDeadlineSeconds"] = template["activeDeadlineSeconds"]
    for patch in (spec.get("podSpecPatch"), template.get("podSpecPatch")):
        pod_spec = _merge(pod_spec, _patch_of(patch))
    labels = {**((spec.get("podMetadata") or {}).get("labels") or {}),
              **((template.get("metadata") or {}).get("labels") or {})}
    metadata: dict[str, Any] = {"name": _slug(pod_name), "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(pod_spec)}


EVENTS_POD_FIELDS = ("serviceAccountName", "securityContext", "volumes", "nodeSelector", "tolerations", "affinity",
                     "priorityClassName", "imagePullSecrets", "hostNetwork", "dnsPolicy", "dnsConfig",
                     "runtimeClassName", "schedulerName")


def events_pod(manifest: Manifest) -> TemplatePod | None:
    """The pod the Argo Events controller runs for a Sensor or EventSource, as far as
    `spec.template` decides it (the controller supplies image, args and env)."""
    if manifest["kind"] not in ("Sensor", "EventSource"):
        return None
    template = (manifest.get("spec") or {}).get("template") or {}
    metadata = manifest["metadata"]
    namespace = metadata.get("namespace", "default")
    container = {"name": "main", "image": "argo-events-controller-supplied", **(template.get("container") or {})}
    spec: dict[str, Any] = {"containers": [container]}
    spec.update({field: template[field] for field in EVENTS_POD_FIELDS if field in template})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": _slug(f"{manifest['kind']}-{metadata['name']}"), "namespace": namespace},
           "spec": copy.deepcopy(spec)}
    return TemplatePod(f"{manifest['kind']} {namespace}/{metadata['name']} (its pod)", namespace, pod)


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")


def workload_pod(manifest: Manifest) -> TemplatePod | None:
    """The pod a Deployment (StatefulSet, DaemonSet, Job) of the render would run: its pod template."""
    if manifest["kind"] not in WORKLOAD_KINDS or not manifest["apiVersion"].startswith(("apps/", "batch/")):
        return None
    template = (manifest.get("spec") or {}).get("template") or {}
    metadata = manifest["metadata"]
    namespace = metadata.get("namespace", "default")
    labels = (template.get("metadata") or {}).get("labels") or {}
    pod_metadata: dict[str, Any] = {"name": _slug(f"{manifest['kind']}-{metadata['name']}"), "namespace": namespace}
    if labels:
        pod_metadata["labels"] = labels
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata, "spec": copy.deepcopy(template.get("spec"))}
    return TemplatePod(f"{manifest['kind']} {namespace}/{metadata['name']} (its pod)", namespace, pod)


def needs_relaxation(pod: Manifest) -> bool:
    """Whether the pod asks for something `restricted` forbids but the build namespace allows."""
    spec = pod["spec"]
    contexts = [spec.get("securityContext") or {}] + [
        c.get("securityContext") or {} for c in spec.get("containers", []) + spec.get("initContainers", [])
    ]
    for context in contexts:
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
            return True
        if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
            return True
        if context.get("allowPrivilegeEscalation") is True:
            return True
    return False


# --- forbidden variants -------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _first_container(spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = spec["containers"][0]
    return container


def _privileged(spec: dict[str, Any]) -> None:
    _first_container(spec).setdefault("securityContext", {})["privileged"] = True


def _host_path(spec: dict[str, Any]) -> None:
    spec.setdefault("volumes", []).append({"name": "verify-host", "hostPath": {"path": "/var/run"}})
    _first_container(spec).setdefault("volumeMounts", []).append({"name": "verify-host", "mountPath": "/host"})


def _host_network(spec: dict[str, Any]) -> None:
    spec["hostNetwork"] = True


def _host_port(spec: dict[str, Any]) -> None:
    _first_container(spec)["ports"] = [{"containerPort": 8080, "hostPort": 8080}]


def _capability(spec: dict[str, Any]) -> None:
    context = _first_container(spec).setdefault("securityContext", {})
    context["capabilities"] = {**(context.get("capabilities") or {}), "add": ["SYS_ADMIN"]}


def _root(spec: dict[str, Any]) -> None:
    context = _first_container(spec).setdefault("securityContext", {})
    context["runAsUser"] = 0
    context.pop("runAsNonRoot", None)


FORBIDDEN: tuple[tuple[str, Mutation], ...] = (
    ("privileged container", _privileged),
    ("hostPath volume", _host_path),
    ("host network", _host_network),
    ("host port", _host_port),
    ("added capability SYS_ADMIN", _capability),
    ("container running as uid 0", _root),
)


def variant(pod: Manifest, label: str, mutation: Mutation, namespace: str, account: str | None) -> Manifest:
    probe = copy.deepcopy(pod)
    probe["metadata"] = {"name": _slug(f"verify-probe-{label}"), "namespace": namespace}
    mutation(probe["spec"])
    if account is None:
        probe["spec"].pop("serviceAccountName", None)
    else:
        probe["spec"]["serviceAccountName"] = account
    probe["spec"]["automountServiceAccountToken"] = False
    return probe


# --- the checks -------------------------------------------------------------------------


def _namespaces(manifests: list[Manifest]) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for m in manifests:
        if m["kind"] == "Namespace":
            role = ((m["metadata"].get("labels") or {}).get("release-pipeline/role")) or "service"
            roles.setdefault(str(role), []).append(m["metadata"]["name"])
    return {k: sorted(v) for k, v in roles.items()}


def _an_account(manifests: list[Manifest], namespace: str) -> str | None:
    names = sorted(m["metadata"]["name"] for m in manifests
                   if m["kind"] == "ServiceAccount" and m["metadata"].get("namespace") == namespace)
    return names[0] if names else None


def _try(client: ApiClient, pods: Resource, pod: Manifest) -> Answer | None:
    try:
        return client.dry_run_create(pods, pod)
    except ApiError:
        return None


def check_admission(client: ApiClient, manifests: list[Manifest], report: StackReport) -> None:
    pods = client.resource("v1", "Pod")
    assert pods is not None
    roles = _namespaces(manifests)
    build = next(iter(roles.get("build") or []), None)
    workflows = next(iter(roles.get("workflows") or []), None)
    template_pods_ = [tp for m in manifests if m["kind"] == "WorkflowTemplate" for tp in template_pods(m)]
    template_pods_ += [tp for tp in map(events_pod, manifests) if tp is not None]
    template_pods_ += [tp for tp in map(workload_pod, manifests) if tp is not None]
    build_pods = [tp for tp in template_pods_ if tp.namespace == build]
    base = next((tp.pod for tp in build_pods if needs_relaxation(tp.pod)), build_pods[0].pod if build_pods else None)

    probes: list[tuple[str, Manifest]] = []  # (subject, pod) that must be refused
    if base is not None:
        for namespace in sorted({n for names in roles.values() for n in names}):
            mutations = FORBIDDEN if namespace == build else FORBIDDEN[:1]
            account = _an_account(manifests, namespace)
            for label, mutation in mutations:
                probes.append((f"Namespace {namespace} (probe: {label})", variant(base, label, mutation, namespace,
                                                                                  account)))
    _settle(client, pods, probes)

    def expect(subject: str, pod: Manifest, admitted: bool, because: str) -> None:
        answer = _try(client, pods, pod)
        if answer is None:
            report.admission.failed += 1
            report.fail("admission", subject, "no answer from the API server")
        elif not admitted and not answer.ok and not any(word in answer.reason for word in REFUSED_BY):
            report.admission.failed += 1
            report.fail("admission", subject, f"refused, but not by Pod Security or an admission policy "
                                              f"(so the check proves nothing): {answer.reason}")
        elif answer.ok == admitted:
            report.admission.passed += 1
        elif admitted:
            report.admission.failed += 1
            report.fail("admission", subject, f"refused in namespace {pod['metadata']['namespace']}: {answer.reason}")
        else:
            report.admission.failed += 1
            report.fail("admission", subject, f"admitted in namespace {pod['metadata']['namespace']}, {because}")

    for tp in template_pods_:
        expect(tp.subject, tp.pod, True, "")
    if workflows and build:
        account = _an_account(manifests, workflows)
        for tp in build_pods:
            if needs_relaxation(tp.pod):
                moved = copy.deepcopy(tp.pod)
                moved["metadata"]["namespace"] = workflows
                moved["spec"]["serviceAccountName"] = account
                expect(f"{tp.subject} (moved to {workflows})", moved, False,
                       "but it needs the build namespace's relaxations and must be refused outside it")
    if base is None:
        report.notes.append("no pod template in the build namespace: its policy was not probed")
    for subject, probe in probes:
        expect(subject, probe, False, "but it must be refused")


def _settle(client: ApiClient, pods: Resource, probes: list[tuple[str, Manifest]]) -> None:
    """Wait until the admission plugins see the namespaces' labels and the policy (their
    caches fill asynchronously after apply): until the first probe of each namespace is refused."""
    first = {probe["metadata"]["namespace"]: probe for _, probe in probes}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    pending = dict(first)
    while pending and time.monotonic() < deadline:
        for namespace, probe in sorted(pending.items()):
            answer = _try(client, pods, probe)
            if answer is not None and not answer.ok and any(word in answer.reason for word in REFUSED_BY):
                pending.pop(namespace)
        if pending:
            time.sleep(0.5)
