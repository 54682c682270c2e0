"""Pods (`policy/release_policies/pods.py`): `restricted-pods` and `no-runtime-package-installs`.

Each reports the violations it exists for; the BuildKit exception is exactly the build
namespace's WorkflowTemplate with the pinned `buildkit-ecr` image, nothing wider, on the
cases built here and on every rendered build template; commands that install nothing
pass; CRD schemas are not mistaken for pods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from components.config import STACKS
from tests.policy_support import (
    BK,
    BUILD_NS,
    BUILDKIT_RELAXED,
    CRD,
    CTX,
    DEPLOYMENT,
    EVENT_SOURCE,
    REGISTRY,
    SENSOR,
    TOOL,
    WORKFLOW,
    WORKFLOW_TEMPLATE,
    BadCase,
    _with,
    assert_reports,
    bad_cases,
    build_template,
    deployment,
    event_source,
    pod_spec,
    policy_messages,
    pulumi_config,
    release_template,
    rp,
)

BAD: list[BadCase] = [
    # restricted-pods: the BuildKit exception, precisely
    ("buildkit-privileged", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{BK}.securityContext.privileged", True), "privileged", {}, CTX),
    ("buildkit-outside-build-namespace", "restricted-pods", WORKFLOW_TEMPLATE,
     build_template(namespace="argo"), "seccompProfile Unconfined", {}, CTX),
    ("buildkit-other-tag", "restricted-pods", WORKFLOW_TEMPLATE,
     build_template(image=f"{REGISTRY}/buildkit-ecr:1.0.1"), "allowPrivilegeEscalation", {}, CTX),
    ("buildkit-other-registry", "restricted-pods", WORKFLOW_TEMPLATE,
     build_template(image="docker.io/moby/buildkit:rootless"), "appArmorProfile Unconfined", {}, CTX),
    ("buildkit-in-a-workflow", "restricted-pods", WORKFLOW, build_template(kind="Workflow"),
     "seccompProfile Unconfined", {}, CTX),
    ("buildkit-without-registry-setting", "restricted-pods", WORKFLOW_TEMPLATE, build_template(),
     "toolImages.registry", {}, rp.Context(buildkit_image=None)),
    ("other-container-relaxed", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.securityContext", BUILDKIT_RELAXED), f"{TOOL.replace('.0.', '[0].')}",
     {}, CTX),
    ("pod-level-unconfined", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.securityContext.seccompProfile.type", "Unconfined"),
     "spec.securityContext.seccompProfile.type", {}, CTX),
    ("apparmor-annotation-other-container", "restricted-pods", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.metadata.annotations",
           {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}), "AppArmor unconfined", {}, CTX),
    # restricted-pods: privileged, docker-in-docker, host access
    ("privileged-deployment", "restricted-pods", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.spec.containers.0.securityContext.privileged", True),
     "spec.template.spec.containers[0].securityContext.privileged", {}, CTX),
    ("dind-sidecar", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.templates.0.sidecars", [{"name": "dind", "image": "docker:27.3-dind"}]),
     "docker-in-docker image", {}, CTX),
    ("docker-socket", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.volumeMounts", [{"name": "sock", "mountPath": "/var/run/docker.sock"}]),
     "Docker socket", {}, CTX),
    ("host-path", "restricted-pods", DEPLOYMENT,
     deployment(pod_spec(volumes=[{"name": "h", "hostPath": {"path": "/var/lib"}}])), "hostPath", {}, CTX),
    ("host-network", "restricted-pods", DEPLOYMENT, deployment(pod_spec(hostNetwork=True)),
     "spec.template.spec.hostNetwork", {}, CTX),
    ("host-pid-in-sensor", "restricted-pods", SENSOR,
     {"spec": {"template": {"hostPID": True, "container": {"resources": {}}}}}, "host namespaces", {}, CTX),
    ("host-port", "restricted-pods", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.spec.containers.0.ports", [{"containerPort": 80, "hostPort": 80.0}]),
     "host ports", {}, CTX),
    ("added-capability", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{BK}.securityContext.capabilities.add", ["SYS_ADMIN"]), "SYS_ADMIN", {}, CTX),
    ("root-user", "restricted-pods", EVENT_SOURCE,
     _with(event_source(), "spec.template.securityContext", {"runAsUser": 0.0}), "uid 0", {}, CTX),
    ("nfs-volume", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.volumes", [{"name": "n", "nfs": {"server": "x", "path": "/"}}]),
     "volume type nfs", {}, CTX),
    ("pod-spec-patch", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.podSpecPatch", '{"containers":[{"name":"main","securityContext":{}}]}'),
     "podSpecPatch", {}, CTX),
    ("privileged-pod-by-manifest", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest", yaml.safe_dump(
         {"kind": "Pod", "spec": {"containers": [{"image": "x", "securityContext": {"privileged": True}}]}})),
     "manifest", {}, CTX),
    ("buildkit-by-manifest-workflow", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest", yaml.safe_dump(build_template(kind="Workflow"))),
     "seccompProfile Unconfined", {}, CTX),
    ("privileged-unparseable-manifest", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest",
           "kind: Pod\nspec: {containers: [{securityContext: {privileged: true}, name: {{x}}}]}"),
     "privileged container", {}, CTX),
    # no-runtime-package-installs
    ("apk-add", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.command", ["sh", "-c", "apk add --no-cache git && python3 x.py"]),
     "apk add", {}, CTX),
    ("apt-get-install", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.args", ["apt-get -y install curl"]), "apt-get install", {}, CTX),
    ("pip-install-in-script", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.source", "pip install requests\npython3 x.py\n"),
     "spec.templates[2].script.source", {}, CTX),
    ("npm-install", "no-runtime-package-installs", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.spec.containers.0.command", ["npm", "install"]),
     "npm install", {}, CTX),
    ("yum-install", "no-runtime-package-installs", SENSOR,
     {"spec": {"template": {"container": {"args": ["yum", "install", "-y", "jq"]}}}}, "yum/dnf install", {}, CTX),
    ("curl-pipe-sh", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.command", ["sh", "-c", "curl -fsSL https://get.example.com | sh"]),
     "curl ... | sh", {}, CTX),
]


@bad_cases(BAD)
def test_each_policy_reports_its_violation(
    policy: str, resource_type: str, inputs: Any, fragment: str, options: dict, context: rp.Context
) -> None:
    assert_reports(policy, resource_type, inputs, fragment, options, context)


def test_buildkit_exception_covers_exactly_its_three_relaxations() -> None:
    # All three relaxations in the good build template are allowed, none reported...
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, build_template()) == []
    # ...and each of them is a violation on any other container of the same template.
    for field, value in (
        ("allowPrivilegeEscalation", True),
        ("seccompProfile", {"type": "Unconfined"}),
        ("appArmorProfile", {"type": "Unconfined"}),
    ):
        bad = _with(build_template(), f"{TOOL}.securityContext.{field}", value)
        assert any(field in m for m in policy_messages("restricted-pods", WORKFLOW_TEMPLATE, bad)), field
    # AppArmor by annotation: allowed for the BuildKit container by name, not for another.
    annotated = _with(build_template(), "spec.templates.1.metadata",
                      {"annotations": {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}})
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, annotated) == []
    other = _with(annotated, "spec.templates.1.container.name", "builder")
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, other)


@pytest.mark.parametrize(
    "text",
    ["pip list", "npm test", "go test ./...", "python3 -m pytest -q", "echo apk", "curl -fsSL https://x -o f",
     "make install-tests"],
)
def test_commands_that_install_nothing_pass(text: str) -> None:
    inputs = _with(build_template(), f"{TOOL}.command", ["sh", "-c", text])
    assert policy_messages("no-runtime-package-installs", WORKFLOW_TEMPLATE, inputs) == []


def test_crd_schemas_are_not_mistaken_for_pods() -> None:
    # A CRD's OpenAPI schema names pod fields as properties (hostPath, podSpecPatch, ...).
    schema = {"properties": {"hostPath": {"type": "object"}, "podSpecPatch": {"type": "string"},
                             "description": {"type": "string", "description": "mount /var/run/docker.sock"}}}
    crd = {"spec": {"versions": [{"name": "v1alpha1", "schema": {"openAPIV3Schema": schema}}]}}
    assert rp.violations(CRD, crd, {"protect": False}, CTX) == {}


def _build_templates(resources: list[dict]) -> Iterator[dict]:
    for r in resources:
        if r["type"] == WORKFLOW_TEMPLATE and r["inputs"].get("metadata", {}).get("namespace") == BUILD_NS:
            yield r


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_build_templates_use_exactly_the_exception(render_stack: Any, stack: str) -> None:
    resources, _ = render_stack(stack)
    builds = list(_build_templates(resources))
    if not builds:
        pytest.skip("no build WorkflowTemplate rendered yet (per-service WorkflowTemplates not in the program)")
    context = rp.context_from_config(pulumi_config(stack))
    for r in builds:
        # The relaxations are really there, and only the exception lets them through:
        assert rp.check_restricted_pods(r["type"], r["inputs"], {}, rp.Context(buildkit_image=None)), r["name"]
        moved = _with(r["inputs"], "metadata.namespace", "argo")
        assert rp.check_restricted_pods(r["type"], moved, {}, context), r["name"]
