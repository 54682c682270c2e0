"""The Argo CRDs: which upstream file defines which kind, at the pinned versions.

Owns: the table from each Argo kind (Application, WorkflowTemplate, Sensor, Rollout,
...) to the upstream CRD file that defines it, at the application version of the
chart that runs its controller (URLs from `components.versions`); the logical name
each CRD file is registered under (`crds-<chart>-<file>`). Pure: no Pulumi here.

Does not own: registering them (`components.platform.ArgoPlatform` does, as
`kubernetes:yaml/v2:ConfigFile` resources fetched by URL at deploy time and retained
on delete), nor the versions (`components.versions`).

Why Pulumi and not the charts install the CRDs: custom resources whose CRDs arrive
inside a Helm release fail `pulumi preview` on a fresh cluster ("failed to determine
if the following GVK is namespaced"); and the CRDs must outlive a `pulumi destroy`,
since deleting a CRD deletes every object of its kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from components.versions import (
    ARGO_CD,
    ARGO_EVENTS,
    ARGO_ROLLOUTS,
    ARGO_WORKFLOWS,
    ARGOCD_IMAGE_UPDATER,
    ChartPin,
)

GROUP = "argoproj.io"


@dataclass(frozen=True)
class CrdFile:
    """One upstream CRD file (one CustomResourceDefinition) and the kinds it defines."""

    chart: ChartPin
    path: str  # in the upstream repository, at `chart.app_version`
    kinds: tuple[str, ...]
    group: str = GROUP

    @property
    def url(self) -> str:
        """Where the file is fetched from at deploy time: the upstream tag of the chart's app version."""
        return self.chart.crd_urls()[self.chart.crd_paths.index(self.path)]

    @property
    def slug(self) -> str:
        return file_slug(self.path)

    @property
    def logical_name(self) -> str:
        """The Pulumi name of the ConfigFile that applies this file: never change it once shipped."""
        return f"crds-{self.chart.chart}-{self.slug}"


def file_slug(path: str) -> str:
    """A short stable key from a CRD file name: 'application', 'workflowtemplates', 'analysis-run'."""
    stem = path.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix("-crd")
    return stem.rsplit("_", 1)[-1]


def _files(chart: ChartPin, kinds_by_slug: dict[str, str]) -> tuple[CrdFile, ...]:
    return tuple(CrdFile(chart, path, (kinds_by_slug[file_slug(path)],)) for path in chart.crd_paths)


# Ref: https://github.com/argoproj/argo-cd/tree/master/manifests/crds
# Ref: https://github.com/argoproj/argo-workflows/tree/main/manifests/base/crds/full
# Ref: https://github.com/argoproj/argo-events/tree/master/manifests/base/crds
# Ref: https://github.com/argoproj/argo-rollouts/tree/master/manifests/crds
CRD_FILES: dict[str, tuple[CrdFile, ...]] = {
    ARGO_CD.chart: _files(
        ARGO_CD,
        {"application": "Application", "applicationset": "ApplicationSet", "appproject": "AppProject"},
    ),
    ARGO_WORKFLOWS.chart: _files(
        ARGO_WORKFLOWS,
        {
            "clusterworkflowtemplates": "ClusterWorkflowTemplate",
            "cronworkflows": "CronWorkflow",
            "workflowartifactgctasks": "WorkflowArtifactGCTask",
            "workfloweventbindings": "WorkflowEventBinding",
            "workflows": "Workflow",
            "workflowtaskresults": "WorkflowTaskResult",
            "workflowtasksets": "WorkflowTaskSet",
            "workflowtemplates": "WorkflowTemplate",
        },
    ),
    ARGO_EVENTS.chart: _files(
        ARGO_EVENTS, {"eventbus": "EventBus", "eventsources": "EventSource", "sensors": "Sensor"}
    ),
    ARGO_ROLLOUTS.chart: _files(
        ARGO_ROLLOUTS,
        {
            "analysis-run": "AnalysisRun",
            "analysis-template": "AnalysisTemplate",
            "cluster-analysis-template": "ClusterAnalysisTemplate",
            "experiment": "Experiment",
            "rollout": "Rollout",
        },
    ),
    # Deployed only when a service asks for the image updater (`platform_charts`).
    # Ref: https://github.com/argoproj-labs/argocd-image-updater/tree/master/config/crd/bases
    ARGOCD_IMAGE_UPDATER.chart: tuple(
        CrdFile(ARGOCD_IMAGE_UPDATER, path, ("ImageUpdater",), "argocd-image-updater.argoproj.io")
        for path in ARGOCD_IMAGE_UPDATER.crd_paths
    ),
}

# The charts whose CRDs and controllers every stack gets.
PLATFORM_CHARTS: tuple[str, ...] = (ARGO_CD.chart, ARGO_EVENTS.chart, ARGO_ROLLOUTS.chart, ARGO_WORKFLOWS.chart)


def platform_charts(image_updater: bool = False) -> tuple[str, ...]:
    """The charts whose CRDs and controllers a stack gets: the four Argo charts, and
    argocd-image-updater only when some service of the stack opts in."""
    return PLATFORM_CHARTS + ((ARGOCD_IMAGE_UPDATER.chart,) if image_updater else ())


def crd_files(charts: Iterable[str] = PLATFORM_CHARTS) -> tuple[CrdFile, ...]:
    """The CRD files of `charts`, in a stable order (chart, then file)."""
    return tuple(f for chart in sorted(charts) for f in CRD_FILES[chart])


def kind_index(charts: Iterable[str] = PLATFORM_CHARTS) -> dict[str, CrdFile]:
    """Kind -> the CRD file that defines it (e.g. 'Rollout' -> rollout-crd.yaml)."""
    index: dict[str, CrdFile] = {}
    for file in crd_files(charts):
        for kind in file.kinds:
            if kind in index:
                raise ValueError(f"kind {kind} is defined by two CRD files")
            index[kind] = file
    return index
