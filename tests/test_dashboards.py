"""components.dashboards: the release dashboard as a ConfigMap for Grafana's dashboards sidecar.

Three kinds of tests:
- pure: the settings model (off by default, needs `releaseMetrics`, strict fields), the
  reading of the dashboard file (what the sidecar cannot provision is refused) and the
  ConfigMap builder;
- the shipped dashboard file: provisionable by the sidecar and still importable by hand;
- the real program rendered from a temporary copy of the project whose dev stack file
  turns the setting on: the ConfigMap as built here, deterministic, valid, compliant;
  nothing of it with the shipped stack files; a bad setting or a bad file is exit 2
  with one line and no traceback, through the render and the check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import dashboards as db
from components.config import (
    STACKS,
    ConfigError,
    GrafanaDashboard,
    MetricsSettings,
    load_stack_settings,
    parse_settings,
)
from tests import conftest
from tests.conftest import ROOT, RenderStack, run_render_cli

DASHBOARD = ROOT / db.DASHBOARD_FILE
AFTER = "    valuesFile: values.yaml\n"  # where the dev stack file gets its `metrics:`
ON = ("    metrics:\n"
      "      releaseMetrics: true\n"
      "      grafanaDashboard: {namespace: monitoring, folder: Release pipeline}\n")


def dev_settings_data() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    settings: dict[str, Any] = data["config"]["release-pipeline:settings"]
    return settings


def options(**changes: Any) -> GrafanaDashboard:
    return GrafanaDashboard.model_validate({"namespace": "monitoring", **changes})


# ------------------------------------------------------------------ the setting


@pytest.mark.parametrize("stack", STACKS)
def test_off_in_every_shipped_stack(stack: str) -> None:
    assert load_stack_settings(ROOT, stack).metrics.grafana_dashboard is None


def test_defaults_are_kube_prometheus_stacks_sidecar() -> None:
    o = options()
    assert (o.label, o.label_value, o.folder, o.folder_annotation) == (
        "grafana_dashboard", "1", None, "k8s-sidecar-target-directory")


def test_the_dashboard_needs_release_metrics() -> None:
    data = dev_settings_data()
    data["metrics"] = {"grafanaDashboard": {"namespace": "monitoring"}}
    with pytest.raises(ConfigError) as err:
        parse_settings(data, "Pulumi.dev.yaml")
    [problem] = err.value.problems
    assert problem.field == "metrics"
    assert "'grafanaDashboard' needs 'releaseMetrics'" in problem.message
    data["metrics"]["releaseMetrics"] = True
    assert parse_settings(data, "Pulumi.dev.yaml").metrics.grafana_dashboard == options()


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({}, "namespace"),
        ({"namespace": "Monitoring"}, "namespace"),
        ({"namespace": "monitoring", "folder": "a/b"}, "folder"),
        ({"namespace": "monitoring", "folder": ".."}, "folder"),
        ({"namespace": "monitoring", "folder": ""}, "folder"),
        ({"namespace": "monitoring", "label": "grafana dashboard"}, "label"),
        ({"namespace": "monitoring", "labelValue": "not one"}, "labelValue"),
        ({"namespace": "monitoring", "labelValue": 1}, "labelValue"),
        ({"namespace": "monitoring", "folderAnnotation": "-x"}, "folderAnnotation"),
        ({"namespace": "monitoring", "searchNamespace": "ALL"}, "searchNamespace"),
    ],
)
def test_bad_dashboard_settings_name_the_field(value: dict[str, Any], field: str) -> None:
    data = dev_settings_data()
    data["metrics"] = {"releaseMetrics": True, "grafanaDashboard": value}
    with pytest.raises(ConfigError) as err:
        parse_settings(data, "Pulumi.dev.yaml")
    assert [p.field for p in err.value.problems] == [f"metrics.grafanaDashboard.{field}"]


def test_metrics_without_the_dashboard_are_unchanged() -> None:
    assert MetricsSettings().grafana_dashboard is None
    assert MetricsSettings(release_metrics=True).model_dump(by_alias=True) == {
        "enabled": True, "serviceMonitor": False, "releaseMetrics": True, "grafanaDashboard": None}


# ------------------------------------------------------------ the dashboard file


def test_the_shipped_dashboard_is_read_as_it_is_and_fits_a_config_map() -> None:
    text = db.read_dashboard(DASHBOARD)
    assert text == DASHBOARD.read_text(encoding="utf-8")
    # A twentieth of what a ConfigMap holds: room to grow, and a warning before it matters.
    assert len(text.encode()) < db.CONFIG_MAP_MAX_BYTES // 20


def _datasources(value: Any) -> list[Any]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [item] if key == "datasource" else _datasources(item)
    elif isinstance(value, list):
        for item in value:
            found += _datasources(item)
    return found


def test_the_shipped_dashboard_picks_prometheus_through_a_datasource_variable() -> None:
    """The sidecar does no `__inputs` substitution; a `datasource` variable works there and on import."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert "__inputs" not in dashboard and "${DS_" not in DASHBOARD.read_text(encoding="utf-8")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    references = _datasources({k: v for k, v in dashboard.items() if k != "templating"})
    references += _datasources([v for v in dashboard["templating"]["list"] if v["name"] != "datasource"])
    assert references and all(r == {"type": "prometheus", "uid": "${datasource}"} for r in references)
    # A stable uid keeps links to the dashboard; a provisioned dashboard has no numeric id.
    assert dashboard["uid"] == "release-pipeline-dora" and "id" not in dashboard


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read: No such file or directory"),
        (b'{"title": "x",\n "panels": [}\n', "not valid JSON: Expecting value: line 2 column 13"),
        (b"[]", "must be a JSON object"),
        (b'{"__inputs": [], "title": "x"}', "uses import inputs"),
        (b'{"panels": [{"datasource": "${DS_PROMETHEUS}"}]}', "uses import inputs"),
        (b'{"title": "\xff"}', "cannot read: not UTF-8"),
        (b'{"title": "' + b"x" * db.CONFIG_MAP_MAX_BYTES + b'"}', "more than a ConfigMap holds"),
    ],
)
def test_a_dashboard_the_sidecar_cannot_provision_is_refused(tmp_path: Path, content: bytes | None,
                                                            message: str) -> None:
    path = tmp_path / "dashboard.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(db.DashboardError) as err:
        db.read_dashboard(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------- the builder


def test_the_config_map_carries_the_text_labelled_for_the_sidecar() -> None:
    text = '{"title": "t"}\n'
    manifest = db.dashboard_config_map(options(), text)
    assert manifest == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "release-pipeline-dashboard",
            "namespace": "monitoring",
            "labels": {"app.kubernetes.io/managed-by": "release-pipeline",
                       "app.kubernetes.io/component": "release-dashboard", "grafana_dashboard": "1"},
        },
        "data": {"release-pipeline.json": text},
    }


def test_label_value_and_folder_annotation_come_from_the_settings() -> None:
    o = options(namespace="grafana", label="example.com/dashboard", labelValue="release",
                folder="Release pipeline", folderAnnotation="grafana_folder")
    metadata = db.dashboard_config_map(o, "{}")["metadata"]
    assert metadata["namespace"] == "grafana"
    assert metadata["labels"]["example.com/dashboard"] == "release"
    assert "grafana_dashboard" not in metadata["labels"]
    assert metadata["annotations"] == {"grafana_folder": "Release pipeline"}


def test_the_config_map_validates_against_the_upstream_schema(upstream_judge: Any) -> None:
    objects = [db.dashboard_config_map(options(folder="Release pipeline"), db.read_dashboard(DASHBOARD)),
               db.dashboard_config_map(options(labelValue=""), "{}")]
    assert upstream_judge.errors(objects) == []


# -------------------------------------------------------------- the real program


def copy_project(root: Path, stack_text: str = ON) -> Path:
    """The project's program, services, stack files and dashboard; dev's stack file gets `stack_text`."""
    (root / "dashboards").mkdir(parents=True)
    conftest.copy_project(root, "Pulumi.yaml", "__main__.py")
    shutil.copy(DASHBOARD, root / db.DASHBOARD_FILE)
    dev = root / "Pulumi.dev.yaml"
    text = dev.read_text(encoding="utf-8")
    assert text.count(AFTER) == 1 and "metrics:" not in text
    dev.write_text(text.replace(AFTER, AFTER + stack_text), encoding="utf-8")
    return root


def render(project: Path, out: Path) -> subprocess.CompletedProcess[str]:
    proc = run_render_cli("--stack", "dev", "--out", str(out), "--project-dir", str(project))
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def dashboard_objects(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m["metadata"].get("labels", {}).get("app.kubernetes.io/component")
            == db.COMPONENT]


@pytest.fixture(scope="module")
def on(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    from components.render.output import read_stack

    base = tmp_path_factory.mktemp("dashboard-on")
    project = copy_project(base / "project")
    proc = render(project, base / "out")
    assert proc.returncode == 0, proc.stderr
    resources, manifests = read_stack(base / "out" / "dev")
    return base / "out" / "dev", resources, manifests


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_of_it_with_the_shipped_stack_files(render_stack: RenderStack, stack: str) -> None:
    resources, manifests = render_stack(stack)
    assert dashboard_objects(manifests) == []
    assert not [r for r in resources if r["type"] == db.TYPE or "dashboard" in r["name"]]


def test_with_the_setting_on_the_config_map_carries_the_repositorys_file(on: Any) -> None:
    _, resources, manifests = on
    [manifest] = dashboard_objects(manifests)
    assert manifest["metadata"] == {
        "name": "release-pipeline-dashboard",
        "namespace": "monitoring",
        "labels": {"app.kubernetes.io/managed-by": "release-pipeline",
                   "app.kubernetes.io/component": "release-dashboard", "grafana_dashboard": "1"},
        "annotations": {"k8s-sidecar-target-directory": "Release pipeline"},
    }
    assert manifest["data"] == {"release-pipeline.json": DASHBOARD.read_text(encoding="utf-8")}
    assert json.loads(manifest["data"]["release-pipeline.json"]) == json.loads(DASHBOARD.read_text())
    assert "immutable" not in manifest
    added = {(r["type"], r["name"], r["parent"]) for r in resources if "dashboard" in r["name"]}
    assert added == {(db.TYPE, "release-dashboard", None),
                     ("kubernetes:core/v1:ConfigMap", "release-dashboard-config-map", "release-dashboard")}
    [config_map] = [r for r in resources if r["name"] == "release-dashboard-config-map"]
    assert config_map["options"] == {"protect": False, "retain_on_delete": False, "depends_on": [],
                                     "ignore_changes": []}


def test_the_setting_adds_the_dashboard_and_nothing_else(on: Any, tmp_path: Path) -> None:
    """Against the same stack with release metrics on (which change the WorkflowTemplates) and no dashboard."""
    from components.render.output import read_stack

    _, resources, manifests = on
    proc = render(copy_project(tmp_path / "project", "    metrics:\n      releaseMetrics: true\n"), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    without_resources, without_manifests = read_stack(tmp_path / "out" / "dev")
    assert [r for r in resources if r not in without_resources] == [
        r for r in resources if r["type"] == db.TYPE or r["name"] == "release-dashboard-config-map"]
    assert [r for r in without_resources if r not in resources] == []
    assert [m for m in manifests if m not in without_manifests] == dashboard_objects(manifests)
    assert [m for m in without_manifests if m not in manifests] == []


def test_the_render_with_the_setting_on_is_deterministic(on: Any, tmp_path: Path) -> None:
    first, _, _ = on
    proc = render(copy_project(tmp_path / "project"), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    for name in ("manifests.yaml", "resources.json"):
        assert (tmp_path / "out" / "dev" / name).read_bytes() == (first / name).read_bytes(), name


def test_the_rendered_config_map_validates(on: Any, upstream_judge: Any) -> None:
    _, _, manifests = on
    objects = dashboard_objects(manifests)
    assert len(objects) == 1
    assert upstream_judge.errors(objects) == []


def test_the_rendered_stack_with_the_setting_on_passes_the_policy_pack(on: Any) -> None:
    if str(ROOT / "policy") not in sys.path:
        sys.path.insert(0, str(ROOT / "policy"))
    import release_policies as rp  # type: ignore[import-not-found]  # policy/

    _, resources, _ = on
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))["config"]
    context = rp.context_from_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    found = {r["name"]: v for r in resources if (v := rp.violations(r["type"], r["inputs"], r["options"], context))}
    assert found == {}


def test_in_a_namespace_of_ours_it_waits_for_the_namespace(tmp_path: Path) -> None:
    from components.render.output import read_stack

    stack_text = ON.replace("namespace: monitoring, folder: Release pipeline", "namespace: argo")
    proc = render(copy_project(tmp_path / "project", stack_text), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    resources, manifests = read_stack(tmp_path / "out" / "dev")
    [manifest] = dashboard_objects(manifests)
    assert manifest["metadata"]["namespace"] == "argo" and "annotations" not in manifest["metadata"]
    [config_map] = [r for r in resources if r["name"] == "release-dashboard-config-map"]
    assert config_map["options"]["depends_on"] == ["namespaces-workflows"]


def test_render_refuses_the_dashboard_without_release_metrics(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", ON.replace("      releaseMetrics: true\n", ""))
    proc = render(project, tmp_path / "out")
    assert proc.returncode == 2
    assert "settings: metrics: 'grafanaDashboard' needs 'releaseMetrics'" in proc.stderr
    assert not (tmp_path / "out" / "dev").exists()


def test_check_refuses_the_dashboard_without_release_metrics(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", ON.replace("      releaseMetrics: true\n", ""))
    proc = subprocess.run([sys.executable, "-m", "components", "check", "--project-dir", str(project)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    line = next(i for i, text in enumerate((project / "Pulumi.dev.yaml").read_text().splitlines(), 1)
                if text == "    metrics:")
    assert proc.stdout.splitlines() == [
        f"{project / 'Pulumi.dev.yaml'}:{line}: settings: metrics: 'grafanaDashboard' needs 'releaseMetrics': "
        "the dashboard shows the release metrics"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "release-pipeline.json: cannot read: No such file or directory"),
     ("{\n", "release-pipeline.json: not valid JSON: Expecting property name enclosed in double quotes")],
)
def test_a_missing_or_invalid_dashboard_file_is_one_line_not_a_traceback(tmp_path: Path, content: str | None,
                                                                         message: str) -> None:
    project = copy_project(tmp_path / "project")
    path = project / db.DASHBOARD_FILE
    if content is None:
        path.unlink()
    else:
        path.write_text(content, encoding="utf-8")
    proc = render(project, tmp_path / "out")
    assert proc.returncode == 2
    assert f"dev: invalid project: {path}: " in proc.stderr and message in proc.stderr
    assert not (tmp_path / "out" / "dev").exists()
