"""Stack settings about the releases: Slack notices, the canary analysis against
Prometheus, the release workflow's behaviour (timeouts, cascade delete, newest-wins,
replicas), and the metrics of the controllers and releases (with the Grafana
dashboard).

Owns: those models and what each refuses on its own (a success-rate query uses only the
AnalysisTemplate's args; release metrics need the controllers' metrics; the dashboard
needs the release metrics). Does not own: what is built from them
(`components.workflows`, `components.delivery`, `components.dashboards`,
`components.slack_relay`).
"""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from components.config.fields import DnsLabel, Duration, LabelKey, LabelValue, Model, NoTemplate, _not_empty


class SlackSettings(Model):
    """Where release notifications go; the bot token is the config secret `slackToken`."""

    channel: Annotated[NoTemplate, Field(max_length=80), AfterValidator(_not_empty)] = Field(
        description="Slack channel release notices go to.",
        examples=["#releases-dev"],
    )
    # One Slack thread per release (scripts/slack_thread.py, components.slack_relay) for
    # every service that does not set its own `slackThreads`. Off by default. No channel
    # id setting: chat.postMessage answers with the id, and that is what gets stored.
    threads: bool = Field(
        default=False,
        description="One Slack thread per release, for every service that does not set its own slackThreads.",
    )


# The args of the canary's AnalysisTemplate (components.delivery), which Argo Rollouts
# fills in; the query may use these and no other.
ANALYSIS_ARGS: tuple[str, ...] = ("service", "namespace")


def _analysis_args_only(query: str) -> str:
    unknown = sorted(set(re.findall(r"\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}", query)) - set(ANALYSIS_ARGS))
    if unknown:
        raise ValueError(
            f"uses {', '.join('{{args.' + a + '}}' for a in unknown)}; the AnalysisTemplate declares only "
            f"{' and '.join('{{args.' + a + '}}' for a in ANALYSIS_ARGS)}"
        )
    return query


class AnalysisSettings(Model):
    """Canary analysis against Prometheus, for services with `rollout.analysis: true`."""

    prometheus_address: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="Address of the Prometheus the canary analysis queries.",
    )
    # PromQL returning the success ratio (0..1) of the canary; `{{args.service}}` and
    # `{{args.namespace}}` are filled in by Argo Rollouts.
    success_rate_query: Annotated[str, AfterValidator(_analysis_args_only)] = Field(
        default=(
            'sum(rate(http_requests_total{namespace="{{args.namespace}}",service="{{args.service}}",'
            'code!~"5.."}[2m])) / sum(rate(http_requests_total{namespace="{{args.namespace}}",'
            'service="{{args.service}}"}[2m]))'
        ),
        description=(
            "PromQL giving the canary's success ratio (0 to 1); may use {{args.service}} and {{args.namespace}}."
        ),
    )
    success_threshold: float = Field(
        default=0.99,
        gt=0,
        le=1,
        description="Lowest success ratio a measurement passes with.",
    )
    interval: Duration = Field(default="1m", description="Time between two measurements.")
    failure_limit: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Failed measurements tolerated before the rollout is aborted.",
    )


class ReleaseSettings(Model):
    """Behaviour of the release workflow and the Argo CD Application in this environment."""

    # Minutes the verify step waits for Argo CD to sync and the Rollout to settle.
    verify_timeout_minutes: int = Field(
        default=30,
        ge=1,
        le=240,
        description="Minutes the verify step waits for Argo CD to sync and the Rollout to settle.",
    )
    # Minutes any one workflow pod may run (activeDeadlineSeconds).
    step_timeout_minutes: int = Field(default=45, ge=1, le=480, description="Minutes any one workflow pod may run.")
    # Whether deleting an Application deletes what it deployed (Argo CD's cascading
    # finalizer). Off in live: dropping a service never deletes the running service.
    cascade_delete: bool = Field(
        default=True,
        description="Deleting an Application deletes what it deployed (off in live).",
    )
    # Newest-wins releases for every service of this stack that does not set its own
    # `newestWins` (components.workflows). Off by default.
    newest_wins: bool = Field(
        default=False,
        description="Newest-wins releases for every service that does not set its own newestWins.",
    )
    # Pods of every service's Rollout that sets neither `rollout.replicas` nor its
    # `rollout.replicasByEnvironment` entry. Unset: per service, the fewest that
    # honour its canary steps (components.canary).
    replicas: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "Pods of every Rollout whose service sets no replica count; left out, the fewest its canary steps "
            "need."
        ),
        examples=[3],
    )


def _grafana_folder(value: str) -> str:
    # One directory level: the sidecar writes the file there and Grafana
    # (`foldersFromFilesStructure`) names the folder after it.
    if value in {".", ".."} or "/" in value or "\\" in value or not value.isprintable():
        raise ValueError("must be one folder name: no '/', '\\', control characters, '.' or '..'")
    return value


class GrafanaDashboard(Model):
    """The release dashboard as a ConfigMap for the Grafana dashboards sidecar (components.dashboards).

    Defaults are those of the kube-prometheus-stack chart (`grafana.sidecar.dashboards`:
    label `grafana_dashboard`, labelValue "1"); the grafana chart's own default
    labelValue "" matches any value, "1" included. The namespace must already exist
    and be one the sidecar searches (`sidecar.dashboards.searchNamespace`): the
    program does not create it.
    """

    namespace: DnsLabel = Field(
        description="Existing namespace the Grafana dashboards sidecar searches.",
        examples=["monitoring"],
    )
    label: LabelKey = Field(default="grafana_dashboard", description="Label the sidecar finds dashboard ConfigMaps by.")
    label_value: LabelValue = Field(default="1", description="Value of that label.")
    # Grafana folder; set only where the sidecar honours a folder annotation and
    # Grafana makes folders from it (`sidecar.dashboards.provider.foldersFromFilesStructure`).
    folder: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_grafana_folder)] | None = Field(
        default=None,
        description="Grafana folder of the dashboard, where the sidecar honours a folder annotation.",
        examples=["Platform"],
    )
    # The chart's `sidecar.dashboards.folderAnnotation`; unset there, k8s-sidecar reads this one.
    folder_annotation: LabelKey = Field(
        default="k8s-sidecar-target-directory",
        description="Annotation the sidecar reads the folder from.",
    )


class MetricsSettings(Model):
    enabled: bool = Field(default=True, description="Serve the controllers' metrics.")
    service_monitor: bool = Field(
        default=False,
        description="Create ServiceMonitors (needs the Prometheus Operator CRDs).",
    )
    # Release metrics (outcomes, stage durations, lead time) emitted by the release
    # WorkflowTemplates through the Argo Workflows controller (components.workflows;
    # dashboards/release-pipeline.json). Needs `enabled`. Off by default.
    release_metrics: bool = Field(
        default=False,
        description="Release metrics (outcomes, stage durations, lead time) from the release workflows; needs enabled.",
    )
    # dashboards/release-pipeline.json provisioned for Grafana's dashboards sidecar.
    # Needs `releaseMetrics`. Off by default.
    grafana_dashboard: GrafanaDashboard | None = Field(
        default=None,
        description="Provision the release dashboard for Grafana's dashboards sidecar; needs releaseMetrics.",
    )

    @model_validator(mode="after")
    def _release_metrics_need_the_controllers(self) -> Self:
        if self.release_metrics and not self.enabled:
            raise ValueError("'releaseMetrics' needs 'enabled': the controller serves them on its metrics port")
        return self

    @model_validator(mode="after")
    def _dashboard_needs_release_metrics(self) -> Self:
        if self.grafana_dashboard is not None and not self.release_metrics:
            raise ValueError("'grafanaDashboard' needs 'releaseMetrics': the dashboard shows the release metrics")
        return self
