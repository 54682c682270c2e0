"""The `Access` component: the Pulumi resources of the manifests `access.manifests` builds.

Owns: `AccessArgs` and `Access`, which turns each manifest into its Pulumi resource
(ServiceAccount, token Secret, Role, RoleBinding, AppProject), each object waiting for
its namespace (the Namespace resource's Output), token Secrets for their account,
AppProjects for their CRD and controller; and the names other components take from it
(Sensor, executor and release accounts, AppProjects).

Does not own: what the objects are (`access.manifests`, `access.rbac`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import names
from components.access.manifests import access_manifests, teams
from components.access.rbac import ARGO_API_VERSION, TOKEN_SECRET_SA_ANNOTATION, TOKEN_SECRET_TYPE, Manifest
from components.config import Service, Settings
from components.namespaces import object_meta

TYPE = "release-pipeline:components:Access"



@dataclass(frozen=True)
class AccessArgs:
    """What the stack's Argo CD projects and RBAC are made from."""

    settings: Settings
    """The stack's settings: namespaces, environment, GitHub organisation, RBAC teams."""
    services: tuple[Service, ...]
    """This environment's services (`ServicesFile.for_environment`)."""
    platform_namespaces: Mapping[str, pulumi.Input[str]]
    """Platform namespace role (events, workflows, argocd, build, ...) -> its name, as
    `Namespaces.platform` gives it: objects in a namespace wait for the namespace."""
    service_namespaces: Mapping[str, pulumi.Input[str]]
    """Service namespace name -> its name as an Output, as `Namespaces.services` gives it."""
    argo_depends_on: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Argo kind -> what a custom resource of that kind waits for (its CRD and its
    controller's Helm release); `AppProject` is the only kind used here."""


class Access(pulumi.ComponentResource):
    """AppProjects per team, and the ServiceAccounts, Roles and tokens of the pipeline and the UI."""

    sensor_service_account: str
    """ServiceAccount (events namespace) the Sensors run as."""
    executor_service_account: str
    """`executor.serviceAccountName` of every Workflow (workflows and build namespaces)."""
    workflow_service_accounts: dict[str, str]
    """Service -> ServiceAccount (workflows namespace) of its release Workflow's API steps."""
    app_projects: dict[str, str]
    """Team -> its AppProject's name."""
    projects: dict[str, k8s.apiextensions.CustomResource]
    """Team -> its AppProject, for what must be created after it (the team's Applications)."""

    def __init__(self, name: str, args: AccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        settings = args.settings
        services = tuple(sorted(args.services, key=lambda s: s.name))
        platform_names = settings.namespaces.model_dump()
        namespace_outputs: dict[str, pulumi.Input[str]] = {
            platform_names[role_key]: output for role_key, output in args.platform_namespaces.items()
            if role_key in platform_names
        } | dict(args.service_namespaces)

        accounts: dict[tuple[str, str], k8s.core.v1.ServiceAccount] = {}
        self.projects = {}
        for key, manifest in access_manifests(settings, services).items():
            logical = f"{name}-{key}"
            metadata = object_meta(manifest, namespace_outputs)
            kind = manifest["kind"]
            if kind == "ServiceAccount":
                sa = k8s.core.v1.ServiceAccount(
                    logical,
                    metadata=metadata,
                    automount_service_account_token=_automount(manifest),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                accounts[(_str(manifest, "name"), _str(manifest, "namespace"))] = sa
            elif kind == "Secret":
                owner = accounts[(_annotation(manifest, TOKEN_SECRET_SA_ANNOTATION), _str(manifest, "namespace"))]
                k8s.core.v1.Secret(
                    logical,
                    metadata=metadata,
                    type=TOKEN_SECRET_TYPE,
                    # The token controller deletes a token Secret whose account does not
                    # exist; the token it writes in stays secret in Pulumi's state.
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[owner], additional_secret_outputs=["data"]
                    ),
                )
            elif kind == "Role":
                k8s.rbac.v1.Role(
                    logical,
                    metadata=metadata,
                    rules=[_policy_rule(r) for r in manifest["rules"]],  # type: ignore[attr-defined]
                    opts=pulumi.ResourceOptions(parent=self),
                )
            elif kind == "RoleBinding":
                ref = manifest["roleRef"]
                assert isinstance(ref, dict)
                k8s.rbac.v1.RoleBinding(
                    logical,
                    metadata=metadata,
                    role_ref=k8s.rbac.v1.RoleRefArgs(api_group=ref["apiGroup"], kind=ref["kind"], name=ref["name"]),
                    subjects=[
                        k8s.rbac.v1.SubjectArgs(kind=s["kind"], name=s["name"], namespace=s["namespace"])
                        for s in manifest["subjects"]  # type: ignore[attr-defined]
                    ],
                    opts=pulumi.ResourceOptions(parent=self),
                )
            elif kind == "AppProject":
                self.projects[_str(manifest, "name")] = k8s.apiextensions.CustomResource(
                    logical,
                    api_version=ARGO_API_VERSION,
                    kind="AppProject",
                    metadata=metadata,
                    spec=manifest["spec"],
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=list(args.argo_depends_on.get("AppProject", ()))
                    ),
                )
            else:  # pragma: no cover - the builders make only the kinds above
                raise AssertionError(f"unexpected kind {kind!r}")

        self.sensor_service_account = names.SENSOR_SERVICE_ACCOUNT
        self.executor_service_account = names.EXECUTOR_SERVICE_ACCOUNT
        self.workflow_service_accounts = {s.name: names.release_service_account_name(s.name) for s in services}
        self.app_projects = {team: names.app_project_name(team) for team in teams(services)}
        self.register_outputs(
            {
                "sensor_service_account": self.sensor_service_account,
                "executor_service_account": self.executor_service_account,
                "workflow_service_accounts": self.workflow_service_accounts,
                "app_projects": self.app_projects,
            }
        )


def _automount(manifest: Manifest) -> bool | None:
    value = manifest.get("automountServiceAccountToken")
    return value if isinstance(value, bool) else None


def _str(manifest: Manifest, key: str) -> str:
    metadata = manifest["metadata"]
    assert isinstance(metadata, dict)
    value = metadata[key]
    assert isinstance(value, str)
    return value


def _annotation(manifest: Manifest, key: str) -> str:
    metadata = manifest["metadata"]
    assert isinstance(metadata, dict)
    return str(metadata["annotations"][key])


def _policy_rule(data: Mapping[str, list[str]]) -> k8s.rbac.v1.PolicyRuleArgs:
    return k8s.rbac.v1.PolicyRuleArgs(
        api_groups=data["apiGroups"],
        resources=data["resources"],
        verbs=data["verbs"],
        resource_names=data.get("resourceNames"),
    )
