"""Helm values of the Argo charts, built from one stack's settings.

Owns: pure builders (settings in, plain dict out; no Pulumi, no secret values) for the
argo-cd, argo-workflows, argo-events, argo-rollouts and argocd-image-updater releases,
and `chart_values`, the values of the four Argo releases together. Modules: `common`
(release names, the Secret names the values point at, sizes, PDBs, Ingress, metrics),
`notifications` (Slack templates, triggers, subscriptions), `argocd`, `controllers`
(workflows, events, rollouts), `image_updater`.

Does not own: the secret values themselves. Values only *name* Secrets (Dex reads
`$<secret>:<key>` and `secretEnv`, the notification services read `$slack-token`,
the workflows server reads `secretKeyRef`s); `components.platform` creates those
Secrets from secret Outputs. The values dicts never hold a token or a password.

Ref: https://github.com/argoproj/argo-helm (charts argo-cd, argo-workflows, argo-events,
argo-rollouts; versions in `components.versions`).
"""

from __future__ import annotations

from collections.abc import Iterable

from components.config import Settings
from components.helm_values.argocd import argocd_policy_csv, argocd_values, dex_config, sso_teams
from components.helm_values.common import (
    ARGOCD_NOTIFICATIONS_SECRET,
    ARGOCD_SECRET_LABELS,
    DEX_GITHUB_SECRET,
    DEX_GITHUB_SECRET_KEY,
    RELEASE_NAMES,
    RELEASE_NAMESPACE_ROLES,
    ROLLOUTS_NOTIFICATIONS_SECRET,
    ROLLOUTS_SECRET_LABELS,
    SLACK_TOKEN_KEY,
    WORKFLOWS_SSO_CLIENT_ID,
    WORKFLOWS_SSO_ENV,
    WORKFLOWS_SSO_ID_KEY,
    WORKFLOWS_SSO_SECRET,
    WORKFLOWS_SSO_SECRET_KEY,
    Values,
    alb_annotations,
    argocd_app_url,
    executor_security_context,
    resources,
    slack_channel,
    walk_strings,
)
from components.helm_values.controllers import events_values, rollouts_values, workflows_values
from components.helm_values.image_updater import (
    ECR_LOGIN_SCRIPT,
    IMAGE_UPDATER_SERVICE_ACCOUNT,
    ecr_registry_host,
    image_updater_values,
)
from components.helm_values.notifications import (
    ARGOCD_THREAD_TRIGGERS,
    ARGOCD_TRIGGERS,
    OWN_CHANNEL_LABEL,
    ROLLOUTS_THREAD_TRIGGERS,
    ROLLOUTS_TRIGGERS,
    SUBSCRIBE_ANNOTATION,
    argocd_notifications,
    service_notifications,
)
from components.versions import ARGO_CD, ARGO_EVENTS, ARGO_ROLLOUTS, ARGO_WORKFLOWS

__all__ = [
    "ARGOCD_NOTIFICATIONS_SECRET",
    "ARGOCD_SECRET_LABELS",
    "ARGOCD_THREAD_TRIGGERS",
    "ARGOCD_TRIGGERS",
    "DEX_GITHUB_SECRET",
    "DEX_GITHUB_SECRET_KEY",
    "ECR_LOGIN_SCRIPT",
    "IMAGE_UPDATER_SERVICE_ACCOUNT",
    "OWN_CHANNEL_LABEL",
    "RELEASE_NAMES",
    "RELEASE_NAMESPACE_ROLES",
    "ROLLOUTS_NOTIFICATIONS_SECRET",
    "ROLLOUTS_SECRET_LABELS",
    "ROLLOUTS_THREAD_TRIGGERS",
    "ROLLOUTS_TRIGGERS",
    "SLACK_TOKEN_KEY",
    "SUBSCRIBE_ANNOTATION",
    "WORKFLOWS_SSO_CLIENT_ID",
    "WORKFLOWS_SSO_ENV",
    "WORKFLOWS_SSO_ID_KEY",
    "WORKFLOWS_SSO_SECRET",
    "WORKFLOWS_SSO_SECRET_KEY",
    "Values",
    "alb_annotations",
    "argocd_app_url",
    "argocd_notifications",
    "argocd_policy_csv",
    "argocd_values",
    "chart_values",
    "dex_config",
    "ecr_registry_host",
    "events_values",
    "executor_security_context",
    "image_updater_values",
    "resources",
    "rollouts_values",
    "service_notifications",
    "slack_channel",
    "sso_teams",
    "walk_strings",
    "workflows_values",
]


def chart_values(settings: Settings, projects: Iterable[str], slack_relay_url: str | None = None) -> dict[str, Values]:
    """Chart name -> values, for the four platform releases.

    `slack_relay_url` (`components.slack_relay.relay_url`, only when some service has
    Slack threads on) adds the relay webhook to Argo CD's and Argo Rollouts' notifications.
    """
    projects = sorted(set(projects))
    return {
        ARGO_CD.chart: argocd_values(settings, projects, slack_relay_url),
        ARGO_EVENTS.chart: events_values(settings),
        ARGO_ROLLOUTS.chart: rollouts_values(settings, slack_relay_url),
        ARGO_WORKFLOWS.chart: workflows_values(settings),
    }
