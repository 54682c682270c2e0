"""Release metrics (opt-in, `metrics.releaseMetrics`): Argo Workflows' own custom metrics.

Owns the metrics the release template declares when the stack turns them on, their
names, help texts, buckets and labels: `release_outcomes`, `release_stage_duration_seconds`,
`release_lead_time_seconds`, `release_last_timestamp_seconds` and `release_superseded`
(served by the controller with the prefix `argo_workflows_`). Labels come only from
Pulumi config (service, environment, stage) and Argo's status enums, never from payload
text.

Does not own: attaching them to the templates (`release.release_template`, with `STAGES`
saying which templates are stages), the controller's metrics endpoint
(`components.helm_values`), the dashboard and its queries (`dashboards/`,
`components.dashboards`).

Decisions: docs/decisions/0348-release-metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hera.workflows import models as m

from components.config import Service, Settings
from components.workflows.newest_wins import NEWEST_CHECK, SUPERSEDE

METRIC_OUTCOMES = "release_outcomes"
METRIC_STAGE_SECONDS = "release_stage_duration_seconds"
METRIC_LEAD_TIME = "release_lead_time_seconds"
METRIC_LAST_TIMESTAMP = "release_last_timestamp_seconds"
METRIC_SUPERSEDED = "release_superseded"
# Argo requires one help text per metric name, whichever template emits it.
METRIC_HELP: dict[str, str] = {
    METRIC_OUTCOMES: "Release Workflows finished, by service, environment and status",
    METRIC_STAGE_SECONDS: "Duration of each release step in seconds, by service, environment, stage and status",
    METRIC_LEAD_TIME: "Seconds from the release's start (the merge webhook) to Synced and Healthy",
    METRIC_LAST_TIMESTAMP: "Start time (Unix seconds) of the latest release that ended with this status",
    METRIC_SUPERSEDED: "Releases stopped because a newer release of the service took over",
}
STAGE_BUCKETS: tuple[float, ...] = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
LEAD_TIME_BUCKETS: tuple[float, ...] = (120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400, 43200, 86400)
# Templates whose runs are stages (every pod step of the release).
STAGES: tuple[str, ...] = ("changed", "tests", "build", "promote", "verify", "supersede", "newest-check")


def _label(key: str, value: str) -> m.MetricLabel:
    return m.MetricLabel(key=key, value=value)


def _service_labels(service: Service, settings: Settings) -> list[m.MetricLabel]:
    # From Pulumi config only: never a workflow parameter (payload text).
    return [_label("service", service.name), _label("environment", settings.environment)]


def _prometheus(name: str, labels: list[m.MetricLabel], **fields: Any) -> m.Prometheus:
    return m.Prometheus(name=name, help=METRIC_HELP[name], labels=labels, **fields)


def _histogram(value: str, buckets: Sequence[float]) -> m.Histogram:
    return m.Histogram(value=value, buckets=[m.Amount(b) for b in buckets])


def stage_metrics(stage: str, service: Service, settings: Settings) -> m.Metrics:
    """Template-level metrics of one release step: its duration; verify's lead time; what newest-wins stopped."""
    base = _service_labels(service, settings)
    metrics = [_prometheus(METRIC_STAGE_SECONDS, [*base, _label("stage", stage), _label("status", "{{status}}")],
                           histogram=_histogram("{{duration}}", STAGE_BUCKETS))]
    if stage == "verify":
        metrics.append(_prometheus(METRIC_LEAD_TIME, base, when="{{status}} == Succeeded",
                                   histogram=_histogram("{{workflow.duration}}", LEAD_TIME_BUCKETS)))
    if stage in (SUPERSEDE, NEWEST_CHECK):
        metrics.append(_prometheus(METRIC_SUPERSEDED, base, when="{{status}} == Succeeded",
                                   counter=m.Counter(value="{{outputs.parameters.stopped}}")))
    return m.Metrics(prometheus=metrics)


def release_workflow_metrics(service: Service, settings: Settings) -> m.Metrics:
    """Workflow-level metrics, emitted when the release ends: its outcome and when it started."""
    labels = [*_service_labels(service, settings), _label("status", "{{workflow.status}}")]
    return m.Metrics(prometheus=[
        _prometheus(METRIC_OUTCOMES, labels, counter=m.Counter(value="1")),
        _prometheus(METRIC_LAST_TIMESTAMP, labels, gauge=m.Gauge(value="{{workflow.creationTimestamp.s}}",
                                                                 realtime=False)),
    ])
