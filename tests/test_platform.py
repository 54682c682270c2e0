"""ArgoPlatform: CRDs retained, releases pinned and ordered, secrets only as secrets.

Two kinds of tests:
- the real program through the `render_stack` fixture (tests/conftest.py): what each
  stack registers, in the `resources.json` shape (camelCase inputs, secrets "[secret]");
- `depends_for` and the size check on the component itself, under stock Pulumi mocks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import helm_values as hv
from components.config import STACKS, Settings, load_services, load_stack_settings
from components.crds import crd_files, kind_index
from components.platform import ArgoPlatform, ArgoPlatformArgs
from components.versions import ARGO_HELM_REPO, CHARTS
from tests.conftest import SERVICES_FILE
from tests.harness import EchoMocks, password_result, run_under_mocks

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "offline-placeholder"  # what the render substitutes for `secure:` config
PINS = {pin.chart: pin for pin in CHARTS}
RELEASE_NAMESPACES = {"argo-cd": "argocd", "argo-workflows": "argo", "argo-events": "argo-events",
                      "argo-rollouts": "argo-rollouts"}


@pytest.fixture
def render(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("render_stack")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no render_stack fixture (render engine not available)")


def _platform(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    mine = {r["name"]: r for r in resources if r["parent"] == "platform"}
    assert mine, "the program registers no ArgoPlatform children"
    return mine


def _by_type(resources: dict[str, dict[str, Any]], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["type"] == type_}


# --- the real program, per stack ------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_crds_are_config_files_at_pinned_urls_retained_not_protected(render: Any, stack: str) -> None:
    resources, _ = render(stack)
    files = _by_type(_platform(resources), "kubernetes:yaml/v2:ConfigFile")
    assert set(files) == {f.logical_name for f in crd_files()}
    for f in crd_files():
        r = files[f.logical_name]
        assert r["inputs"]["file"] == f.url
        assert f"/{f.chart.app_version}/" in f.url
        assert r["options"]["retain_on_delete"] is True, f.logical_name
        assert r["options"]["protect"] is False, f.logical_name


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_releases_are_pinned_from_argo_helm_skip_crds_and_wait_for_their_crds(render: Any, stack: str) -> None:
    resources, _ = render(stack)
    mine = _platform(resources)
    releases = _by_type(mine, "kubernetes:helm.sh/v3:Release")
    assert {r["inputs"]["chart"] for r in releases.values()} == set(RELEASE_NAMESPACES)
    for r in releases.values():
        inputs, options = r["inputs"], r["options"]
        chart = inputs["chart"]
        assert inputs["version"] == PINS[chart].version
        assert inputs["repositoryOpts"] == {"repo": ARGO_HELM_REPO}
        assert inputs["name"] == hv.RELEASE_NAMES[chart]
        assert inputs["namespace"] == RELEASE_NAMESPACES[chart]
        assert inputs["skipCrds"] is True
        assert inputs["atomic"] is True
        assert inputs["cleanupOnFail"] is True
        assert inputs["timeout"] > 0
        assert inputs.get("createNamespace") is False
        crds = {f.logical_name for f in crd_files([chart])}
        assert crds <= set(options["depends_on"]), chart
        role = hv.RELEASE_NAMESPACE_ROLES[chart]
        assert f"namespaces-{role}" in options["depends_on"], chart
        assert options["protect"] is False
    # Argo Workflows signs people in through Argo CD's Dex.
    assert "platform-argo-cd" in releases["platform-argo-workflows"]["options"]["depends_on"]


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_values_are_the_builders_values(render: Any, stack: str) -> None:
    resources, _ = render(stack)
    settings = load_stack_settings(ROOT, stack)
    projects = {s.project for s in load_services(SERVICES_FILE).for_environment(stack)}
    releases = _by_type(_platform(resources), "kubernetes:helm.sh/v3:Release")
    for r in releases.values():
        values = r["inputs"]["values"]
        assert "[secret]" not in json.dumps(values), r["name"]
        built = hv.chart_values(settings, projects)[r["inputs"]["chart"]]
        assert values == json.loads(json.dumps(built)), r["name"]


def test_rendered_release_values_have_no_unknown_keys(render: Any) -> None:
    from tests.checks.check_helm_values import CHARTS, problems

    for stack in STACKS:
        resources, _ = render(stack)
        for r in _by_type(_platform(resources), "kubernetes:helm.sh/v3:Release").values():
            chart = r["inputs"]["chart"]
            assert problems(CHARTS / chart, r["inputs"]["values"]) == [], (stack, chart)


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_slack_token_and_sso_secrets_show_only_as_secret(render: Any, stack: str) -> None:
    resources, manifests = render(stack)
    mine = _platform(resources)
    secrets = _by_type(mine, "kubernetes:core/v1:Secret")
    expected = {
        "platform-dex-github": ("argocd", hv.DEX_GITHUB_SECRET, {hv.DEX_GITHUB_SECRET_KEY}),
        "platform-workflows-sso-dex": ("argocd", hv.WORKFLOWS_SSO_SECRET, {"client-id", "client-secret"}),
        "platform-workflows-sso-server": ("argo", hv.WORKFLOWS_SSO_SECRET, {"client-id", "client-secret"}),
        "platform-argocd-notifications": ("argocd", hv.ARGOCD_NOTIFICATIONS_SECRET, {hv.SLACK_TOKEN_KEY}),
        "platform-rollouts-notifications": ("argo-rollouts", hv.ROLLOUTS_NOTIFICATIONS_SECRET, {hv.SLACK_TOKEN_KEY}),
    }
    assert set(secrets) == set(expected)
    for name, (namespace, secret_name, keys) in expected.items():
        inputs = secrets[name]["inputs"]
        assert inputs["metadata"]["name"] == secret_name
        assert inputs["metadata"]["namespace"] == namespace
        assert "data" not in inputs  # stringData only: nothing encoded by hand
        assert set(inputs["stringData"]) == keys
        assert inputs["stringData"][next(k for k in keys if k != "client-id")] == "[secret]"
    # The placeholder the render reads for `secure:` values never shows in clear.
    assert PLACEHOLDER not in json.dumps(list(mine.values()))
    for manifest in manifests:
        if manifest.get("kind") == "Secret" and manifest["metadata"]["name"] in {e[1] for e in expected.values()}:
            assert PLACEHOLDER not in json.dumps(manifest)
            assert "data" not in manifest
    # The generated Dex client secret is itself secret in state.
    (password,) = _by_type(mine, "random:index/randomPassword:RandomPassword").values()
    assert password["name"] == "platform-workflows-sso-client-secret"


# --- the component under stock mocks ----------------------------------------------------------


def _args(settings: Settings) -> ArgoPlatformArgs:
    return ArgoPlatformArgs(
        settings=settings,
        projects=("datacollect",),
        namespaces={"argocd": "argocd", "workflows": "argo", "events": "argo-events", "rollouts": "argo-rollouts"},
        slack_token=pulumi.Output.secret("xoxb-test"),
        sso_client_secret=pulumi.Output.secret("sso-test"),
    )


def test_depends_for_names_the_crd_and_the_controller_release() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        platform = ArgoPlatform("platform", _args(load_stack_settings(ROOT, "dev")))
        index = kind_index()
        for kind, file in index.items():
            deps = platform.depends_for(kind)
            assert deps == [platform.crds[file.logical_name], platform.releases[file.chart.chart]], kind
        assert platform.depends_for("Sensor")[1] is platform.releases["argo-events"]
        assert platform.depends_for("AppProject")[1] is platform.releases["argo-cd"]
        assert platform.depends_for("WorkflowTemplate")[1] is platform.releases["argo-workflows"]
        assert platform.depends_for("Rollout")[1] is platform.releases["argo-rollouts"]
        with pytest.raises(KeyError, match="known kinds"):
            platform.depends_for("Deployment")
        seen["releases"] = sorted(platform.releases)

    run_under_mocks(program, EchoMocks(password_result))
    assert seen["releases"] == ["argo-cd", "argo-events", "argo-rollouts", "argo-workflows"]

