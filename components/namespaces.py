"""Namespaces of one stack, each with the Pod Security level it needs.

Owns: the platform namespaces (events, workflows, Argo CD, Rollouts, build) and every
service namespace named in services.yaml for this environment. Everything runs at the
`restricted` Pod Security Standard except the build namespace. Rootless BuildKit
needs three relaxations of `restricted`: seccomp `Unconfined`, AppArmor `Unconfined`,
and privilege escalation (its `newuidmap` is setuid). `baseline` forbids the first
two, so Pod Security admission can only be told `privileged` there; a
ValidatingAdmissionPolicy then narrows the build namespace back to exactly those
three relaxations: no privileged container, no host namespaces, ports or paths, no
added capabilities, no root, only the volume types `restricted` allows.
# Ref: https://github.com/moby/buildkit/blob/master/docs/rootless.md
# Ref: https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/

Service namespaces are retained on delete: removing the last service of a namespace
from services.yaml must not delete the running workload (docs/security-model.md, "Invariants").
Also: `object_meta`, the ObjectMeta with which an object waits for its Namespace.
Does not own: what goes into the namespaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import Namespaces as NamespaceNames

TYPE = "release-pipeline:components:Namespaces"
RESTRICTED = "restricted"
PRIVILEGED = "privileged"


def object_meta(manifest: Mapping[str, Any], namespaces: Mapping[str, pulumi.Input[str]]) -> k8s.meta.v1.ObjectMetaArgs:
    """The manifest's ObjectMeta with its namespace as the Namespace resource's Output (when
    `namespaces` has it), so the object waits for its Namespace."""
    metadata = manifest["metadata"]
    namespace = metadata["namespace"]
    return k8s.meta.v1.ObjectMetaArgs(
        name=metadata["name"],
        namespace=namespaces.get(namespace, namespace),
        labels=metadata["labels"],
        annotations=metadata.get("annotations"),
        finalizers=metadata.get("finalizers"),
    )


def pod_security_labels(level: str) -> dict[str, str]:
    """Enforce, audit and warn at one Pod Security Standard level."""
    return {
        f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")
    } | {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")}


def namespace_manifest(name: str, level: str, role: str) -> dict[str, object]:
    """Pure builder: the Namespace object for one namespace."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": pod_security_labels(level)
            | {"app.kubernetes.io/managed-by": "release-pipeline", "release-pipeline/role": role},
        },
    }


def platform_levels(ns: NamespaceNames) -> dict[str, tuple[str, str]]:
    """Role -> (namespace name, Pod Security level) for the platform namespaces."""
    return {
        "events": (ns.events, RESTRICTED),
        "workflows": (ns.workflows, RESTRICTED),
        "argocd": (ns.argocd, RESTRICTED),
        "rollouts": (ns.rollouts, RESTRICTED),
        "build": (ns.build, PRIVILEGED),
    }


BUILD_POLICY_NAME = "release-pipeline-build-pods"

# CEL over the pod being admitted; `variables.containers` is every container kind.
BUILD_POD_RULES: tuple[tuple[str, str], ...] = (
    (
        "variables.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged)"
        " || c.securityContext.privileged == false)",
        "privileged containers are not allowed in the build namespace",
    ),
    (
        "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))",
        "hostPath volumes are not allowed in the build namespace",
    ),
    (
        "!has(object.spec.volumes) || object.spec.volumes.all(v, has(v.configMap) || has(v.csi)"
        " || has(v.downwardAPI) || has(v.emptyDir) || has(v.ephemeral) || has(v.persistentVolumeClaim)"
        " || has(v.projected) || has(v.secret))",
        "only the volume types of the restricted Pod Security Standard are allowed",
    ),
    (
        "!(has(object.spec.hostNetwork) && object.spec.hostNetwork)"
        " && !(has(object.spec.hostPID) && object.spec.hostPID)"
        " && !(has(object.spec.hostIPC) && object.spec.hostIPC)",
        "host namespaces are not allowed in the build namespace",
    ),
    (
        "variables.containers.all(c, !has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))",
        "host ports are not allowed in the build namespace",
    ),
    (
        "variables.containers.all(c, !has(c.securityContext) || !has(c.securityContext.capabilities)"
        " || !has(c.securityContext.capabilities.add) || size(c.securityContext.capabilities.add) == 0)",
        "adding capabilities is not allowed in the build namespace",
    ),
    (
        "has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot)"
        " && object.spec.securityContext.runAsNonRoot == true"
        " && !(has(object.spec.securityContext.runAsUser) && object.spec.securityContext.runAsUser == 0)"
        " && variables.containers.all(c, !has(c.securityContext)"
        " || (!(has(c.securityContext.runAsNonRoot) && c.securityContext.runAsNonRoot == false)"
        " && !(has(c.securityContext.runAsUser) && c.securityContext.runAsUser == 0)))",
        "build pods must run as non-root (pod securityContext.runAsNonRoot: true, no uid 0)",
    ),
    (
        "variables.containers.all(c, !has(c.securityContext) || !has(c.securityContext.procMount)"
        " || c.securityContext.procMount == 'Default')",
        "an unmasked /proc is not allowed in the build namespace",
    ),
)
BUILD_POD_CONTAINERS = (
    "object.spec.containers"
    " + (has(object.spec.initContainers) ? object.spec.initContainers : [])"
    " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])"
)


def build_pod_policy(build_namespace: pulumi.Input[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pure builder: the ValidatingAdmissionPolicy for build pods and its binding.

    `build_namespace` may be the Namespace's Output, so the binding follows it.
    """
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": BUILD_POLICY_NAME, "labels": {"app.kubernetes.io/managed-by": "release-pipeline"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                     "resources": ["pods"]}
                ]
            },
            "variables": [{"name": "containers", "expression": BUILD_POD_CONTAINERS}],
            "validations": [{"expression": expr, "message": msg} for expr, msg in BUILD_POD_RULES],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": BUILD_POLICY_NAME, "labels": {"app.kubernetes.io/managed-by": "release-pipeline"}},
        "spec": {
            "policyName": BUILD_POLICY_NAME,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": build_namespace}}
            },
        },
    }
    return policy, binding


@dataclass(frozen=True)
class NamespacesArgs:
    """Names of the namespaces to create."""

    platform: NamespaceNames
    """The platform namespaces, from stack settings."""
    services: tuple[str, ...]
    """Namespaces of this environment's services (deduplicated, sorted)."""


class Namespaces(pulumi.ComponentResource):
    """All namespaces of the stack; `.platform[role]` and `.services[name]` are the names as Outputs."""

    platform: dict[str, pulumi.Output[str]]
    services: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        self.platform = {}
        for role, (ns_name, level) in sorted(platform_levels(args.platform).items()):
            ns = self._namespace(f"{name}-{role}", namespace_manifest(ns_name, level, role))
            self.platform[role] = ns.metadata.name
        policy, binding = build_pod_policy(self.platform["build"])
        vap = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-build-policy",
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-build-policy-binding",
            metadata=binding["metadata"],
            spec=binding["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[vap]),
        )
        self.services = {}
        for ns_name in sorted(set(args.services)):
            manifest = namespace_manifest(ns_name, RESTRICTED, "service")
            ns = self._namespace(f"{name}-service-{ns_name}", manifest, retain=True)
            self.services[ns_name] = ns.metadata.name
        self.register_outputs({"platform": self.platform, "services": self.services})

    def _namespace(self, logical: str, manifest: dict[str, object], retain: bool = False) -> k8s.core.v1.Namespace:
        metadata = manifest["metadata"]
        assert isinstance(metadata, dict)
        return k8s.core.v1.Namespace(
            logical,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=metadata["name"], labels=metadata["labels"]),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=retain),
        )
