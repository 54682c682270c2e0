"""Access, the component: the rendered stacks register exactly the built objects.

Component tests use the `render_stack` fixture (the real program, rendered offline) and
a tiny local harness for what the real stacks do not pass yet (`argo_depends_on`).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from components import names
from components.access import (
    TYPE,
    Access,
    AccessArgs,
    access_manifests,
)
from components.config import load_stack_settings, parse_services
from tests.access_support import (
    PROJECT_DIR,
    _by_name,
    _manifests,
    _services,
    _settings,
)
from tests.conftest import SERVICES_FILE

# ------------------------------------------------------------ component: rendered stacks


ACCESS_TYPES = {
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:core/v1:Secret",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "kubernetes:argoproj.io/v1alpha1:AppProject",
}


def _strip(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "status"}


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_rendered_stack_registers_exactly_the_built_objects(render_stack: Any, stack: str) -> None:
    resources, manifests = render_stack(stack)
    component = [r for r in resources if r["type"] == TYPE]
    assert [r["name"] for r in component] == ["access"]
    children = [r for r in resources if r["parent"] == "access"]
    assert {r["type"] for r in children} <= ACCESS_TYPES
    settings = load_stack_settings(PROJECT_DIR, stack)
    services = parse_services(SERVICES_FILE.read_text(), "services.yaml").for_environment(stack)
    built = access_manifests(settings, services)
    assert sorted(r["name"] for r in children) == sorted(f"access-{key}" for key in built)

    def key(m: dict[str, Any]) -> tuple[str, str, str]:
        return m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]

    rendered = {key(m): m for m in manifests}
    for manifest in built.values():
        got = rendered[key(manifest)]
        for field in ("rules", "roleRef", "subjects", "spec", "type", "automountServiceAccountToken"):
            assert got.get(field) == manifest.get(field), (key(manifest), field)
        assert got["metadata"].get("annotations") == manifest["metadata"].get("annotations")
        assert got["metadata"]["labels"] == manifest["metadata"]["labels"]


def test_rendered_token_secrets_wait_for_their_accounts_and_objects_for_their_namespaces(render_stack: Any) -> None:
    resources, _ = render_stack("dev")
    by_name = {r["name"]: r for r in resources if r["parent"] == "access"}
    for name, resource in by_name.items():
        if name.endswith("-token"):
            assert f"{name.removesuffix('-token')}-serviceaccount" in resource["options"]["depends_on"], name
        if resource["type"] != "kubernetes:argoproj.io/v1alpha1:AppProject":
            # The namespace is the Namespace resource's Output: a dependency.
            assert any(d.startswith("namespaces-") for d in resource["options"]["depends_on"]), name
        assert resource["options"]["protect"] is False


def test_rendered_access_objects_validate(render_stack: Any, upstream_judge: Any) -> None:
    _, manifests = render_stack("dev")
    ours = [m for m in manifests if m["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by")
            == "release-pipeline" and m["kind"] in {"AppProject", "Role", "RoleBinding", "ServiceAccount"}]
    assert ours
    assert upstream_judge.errors(ours) == []


# ---------------------------------------------------- component: local harness (depends_on)


class _Harness(MockMonitor):
    """Records (type, name, depends_on) of every registration."""

    def __init__(self) -> None:
        class _Mocks(Mocks):
            def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
                return f"{args.name}-id", dict(args.inputs)

            def call(self, args: MockCallArgs) -> tuple[dict[str, Any], None]:
                return {}, None

        super().__init__(_Mocks())
        self.records: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.records.append({
            "type": request.type,
            "name": request.name,
            "inputs": json_format.MessageToDict(request.object),
            "depends_on": sorted(d.rsplit("::", 1)[-1] for d in request.dependencies),
        })
        return response


def test_app_projects_wait_for_the_argo_cd_crd_and_release() -> None:
    monitor = _Harness()
    pulumi.runtime.set_mocks(monitor.mocks, project="release-pipeline", stack="dev", preview=False, monitor=monitor)
    settings = _settings()
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> None:
        crd = pulumi.CustomResource("test:index:Crd", "appproject-crd", {})
        release = pulumi.CustomResource("test:index:Release", "argocd-release", {})
        access = Access(
            "access",
            AccessArgs(
                settings=settings,
                services=tuple(_services()),
                platform_namespaces={"events": "argo-events", "workflows": "argo", "argocd": "argocd",
                                     "build": "argo-build"},
                service_namespaces={},
                argo_depends_on={"AppProject": [crd, release], "Sensor": []},
            ),
        )
        outputs.update(sensor=access.sensor_service_account, accounts=access.workflow_service_accounts,
                       projects=access.app_projects, executor=access.executor_service_account)

    program()
    projects = [r for r in monitor.records if r["type"] == "kubernetes:argoproj.io/v1alpha1:AppProject"]
    assert {r["name"] for r in projects} == {"access-project-datacollect", "access-project-payments"}
    for record in projects:
        assert record["depends_on"] == ["appproject-crd", "argocd-release"]
    others = [r for r in monitor.records if r["type"] in ACCESS_TYPES - {"kubernetes:argoproj.io/v1alpha1:AppProject"}]
    assert others and all(r["depends_on"] in ([], [r["name"].removesuffix("-token") + "-serviceaccount"])
                          for r in others)
    assert outputs == {
        "sensor": names.SENSOR_SERVICE_ACCOUNT,
        "executor": names.EXECUTOR_SERVICE_ACCOUNT,
        "accounts": {s.name: names.release_service_account_name(s.name) for s in _services()},
        "projects": {"datacollect": "datacollect", "payments": "payments"},
    }


def test_with_slack_threads_the_release_account_may_patch_its_rollout_only() -> None:
    settings = _settings()
    on = settings.model_copy(update={"slack": settings.slack.model_copy(update={"threads": True})})
    sa = names.release_service_account_name("vbsiv")
    rollout_rule = {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "resourceNames": ["vbsiv"]}
    off_rules = _by_name(_manifests(settings), "Role", sa, "datacollect")["rules"]
    on_rules = _by_name(_manifests(on), "Role", sa, "datacollect")["rules"]
    assert rollout_rule | {"verbs": ["get", "list", "watch"]} in off_rules
    assert rollout_rule | {"verbs": ["get", "list", "patch", "watch"]} in on_rules
    # Everything else is unchanged (the Application's patch is already there).
    assert [r for r in on_rules if "rollouts" not in r["resources"]] == [
        r for r in off_rules if "rollouts" not in r["resources"]]
    assert {k: v for k, v in _manifests(on).items() if "-service-role" not in k} == {
        k: v for k, v in _manifests(settings).items() if "-service-role" not in k}
