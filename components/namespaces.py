"""Namespaces of one stack, each with the Pod Security level it needs.

Owns: the platform namespaces (events, workflows, Argo CD, Rollouts, build) and every
service namespace named in services.yaml for this environment. Everything runs at the
`restricted` Pod Security Standard except the build namespace, which rootless BuildKit
needs at `privileged` enforcement for exactly two relaxations (seccomp and AppArmor
`Unconfined`); what build pods may do is then pinned down by the WorkflowTemplate
and checked by the tests, not by admission. (`baseline` does not allow an
`Unconfined` seccomp profile, so no weaker level fits.)

Service namespaces are retained on delete: removing the last service of a namespace
from services.yaml must not delete the running workload (DESIGN.md section 6).
Does not own: what goes into the namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import Namespaces as NamespaceNames

TYPE = "release-pipeline:components:Namespaces"
RESTRICTED = "restricted"
PRIVILEGED = "privileged"


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
