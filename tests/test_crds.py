"""CRDs: one file per kind, at the application version of the chart that runs its controller."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from components.crds import CRD_FILES, PLATFORM_CHARTS, crd_files, kind_index
from components.versions import CHARTS

CHARTS_DIR = Path(__file__).resolve().parents[1] / "upstream" / "charts"
TAG = re.compile(r"^https://raw\.githubusercontent\.com/(?P<repo>[^/]+/[^/]+)/(?P<tag>v[0-9][^/]*)/")


def test_every_pinned_crd_path_has_its_kinds_and_nothing_else() -> None:
    for pin in CHARTS:
        files = CRD_FILES[pin.chart]
        assert [f.path for f in files] == list(pin.crd_paths), pin.chart
        assert all(f.kinds for f in files), pin.chart


def test_crd_urls_are_at_the_charts_application_versions() -> None:
    for pin in CHARTS:
        for file in CRD_FILES[pin.chart]:
            match = TAG.match(file.url)
            assert match, file.url
            assert match["repo"] == pin.upstream
            assert match["tag"] == pin.app_version
            assert file.url in pin.crd_urls()


def test_pinned_versions_are_the_vendored_charts() -> None:
    """The chart defaults the values are checked against are those very versions."""
    for pin in CHARTS:
        chart = yaml.safe_load((CHARTS_DIR / pin.chart / "Chart.yaml").read_text())
        assert chart["version"] == pin.version, pin.chart
        assert chart["appVersion"] == pin.app_version, pin.chart


def test_each_platform_kind_is_defined_once() -> None:
    index = kind_index()
    for kind in (
        "Application", "AppProject", "ApplicationSet",
        "EventBus", "EventSource", "Sensor",
        "Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow",
        "Rollout", "AnalysisTemplate", "AnalysisRun", "ClusterAnalysisTemplate", "Experiment",
    ):
        assert kind in index
    assert index["Sensor"].chart.chart == "argo-events"
    assert index["Rollout"].chart.chart == "argo-rollouts"
    assert index["WorkflowTemplate"].chart.chart == "argo-workflows"
    assert index["AppProject"].chart.chart == "argo-cd"
    # The image updater is not part of the platform until a service asks for it.
    assert "ImageUpdater" not in index


def test_logical_names_are_stable_unique_and_keyed_by_file() -> None:
    names = [f.logical_name for f in crd_files()]
    assert len(names) == len(set(names))
    assert "crds-argo-cd-application" in names
    assert "crds-argo-workflows-workflowtemplates" in names
    assert "crds-argo-events-eventbus" in names
    assert "crds-argo-rollouts-rollout" in names
    assert all(re.fullmatch(r"crds-[a-z0-9-]+", n) for n in names)
    assert {f.chart.chart for f in crd_files()} == set(PLATFORM_CHARTS)
