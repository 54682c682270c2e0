"""Helm values: Argo CD and Argo Rollouts notifications to Slack.

Owns: the notification templates, triggers and the default-channel subscription of
Argo CD and of Argo Rollouts; the labels and annotations that move one service to its
own Slack channel (`service_notifications`); with Slack threads, the relay's `webhook`
service and the thread triggers (names only in the body, never text).

Does not own: the Slack token (a Secret the values name), the relay
(`components.slack_relay`), the Applications and Rollouts that carry the labels
(`components.delivery`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from components.config import Settings
from components.helm_values.common import (
    SLACK_TOKEN_KEY,
    Values,
    argocd_app_url,
    block_yaml,
    slack_channel,
)

# --- notifications --------------------------------------------------------------------

ARGOCD_TRIGGERS: tuple[str, ...] = ("on-sync-succeeded", "on-sync-failed", "on-health-degraded")
ROLLOUTS_TRIGGERS: tuple[str, ...] = ("on-rollout-paused", "on-rollout-aborted", "on-rollout-completed")
# An Application or Rollout with this label is left out of the default-channel
# subscription; it subscribes to its service's own channel with annotations
# (`service_notifications`).
OWN_CHANNEL_LABEL = "release-pipeline/own-slack-channel"
SUBSCRIBE_ANNOTATION = "notifications.argoproj.io/subscribe.{trigger}.slack"
# One Slack thread per release (`slack.threads`, `slackThreads`; components.slack_relay):
# the controllers call the relay through this `webhook` service with names only, and the
# opted-in services subscribe to it instead of Slack (`service_notifications`).
THREAD_SERVICE = "slack-thread"
THREAD_SUBSCRIBE_ANNOTATION = "notifications.argoproj.io/subscribe.{trigger}." + THREAD_SERVICE
ROLLOUT_STEP_TRIGGER = "on-rollout-step-completed"
ARGOCD_THREAD_TRIGGERS: tuple[str, ...] = ARGOCD_TRIGGERS
ROLLOUTS_THREAD_TRIGGERS: tuple[str, ...] = (*ROLLOUTS_TRIGGERS, ROLLOUT_STEP_TRIGGER)


def _slack_token_notifier() -> dict[str, str]:
    return {"service.slack": f"token: ${SLACK_TOKEN_KEY}\n"}


def _template(message_lines: Sequence[str], thread_body: Mapping[str, str] | None = None) -> str:
    """A template: its Slack message and, with Slack threads, the relay webhook's JSON body."""
    template: Values = {"message": "\n".join(message_lines) + "\n"}
    if thread_body is not None:
        # Names and a fixed event only (DNS names need no JSON escaping): never text.
        body = json.dumps(dict(thread_body), separators=(",", ":"))
        template["webhook"] = {THREAD_SERVICE: {"method": "POST", "body": body}}
    return block_yaml(template)


def _thread_notifier(relay_url: str) -> dict[str, str]:
    """The `webhook` service the relay is called through (no secret: cluster-internal, NetworkPolicy)."""
    return {f"service.webhook.{THREAD_SERVICE}": block_yaml(
        {"url": relay_url, "headers": [{"name": "Content-Type", "value": "application/json"}]})}


# Text the cluster wrote (conditions, health and sync messages) goes to Slack escaped as
# Slack asks (&, <, > as entities): a message holding `<!channel>` or `<https://x|y>` shows
# as written instead of pinging everyone or hiding a link. sprig's `replace old new src`
# is in both notification controllers' function maps.
SLACK_ESCAPE = ' | replace "&" "&amp;" | replace "<" "&lt;" | replace ">" "&gt;"'


def _cluster_text(expression: str) -> str:
    """`expression` printed escaped for Slack, and nothing when it is empty or absent."""
    return "{{with " + expression + "}}{{." + SLACK_ESCAPE + "}}{{end}}"


# What the health-degraded message says about the Application (Go text/template, as the
# notifications controller renders it against the Application's JSON). Argo CD 3.x no
# longer sets `status.health.message` (AppHealthStatus: "Deprecated: this field is not
# used"); what it does set: the health status, the Application's conditions
# (`type`, `message`) and, per managed resource in `status.resources`, `kind`, `name`
# and `health` (`status`, `message`; absent for kinds without a health check). The
# Degraded resources are listed with their own message. `with` guards the optional
# fields, so a missing one prints nothing rather than "<no value>".
HEALTH_DEGRADED_DETAIL = (
    "Health: {{.app.status.health.status}}"
    "{{range .app.status.conditions}}\nCondition {{.type}}: " + _cluster_text(".message") + "{{end}}"
    "{{range $r := .app.status.resources}}{{with $r.health}}{{if eq .status \"Degraded\"}}"
    "\nDegraded: {{$r.kind}} {{$r.name}}{{with .message}}: {{." + SLACK_ESCAPE + "}}{{end}}"
    "{{end}}{{end}}{{end}}"
)


def argocd_notifications(settings: Settings, slack_relay_url: str | None = None) -> Values:
    """Argo CD notification templates, triggers and the default-channel subscription.

    Applications are named "<service>-<environment>", so the service is the name with
    the environment suffix trimmed.
    Ref: https://argo-cd.readthedocs.io/en/stable/operator-manual/notifications/
    """
    env = settings.environment
    app = "{{.app.metadata.name}}"
    service = '{{trimSuffix "-' + env + '" .app.metadata.name}}'
    links = [
        f"Argo CD: {argocd_app_url(settings, app)}",
        f"Workflows: https://{settings.hostnames.workflows}/workflows",
    ]
    head = f"Service: {service} | Environment: {env} | Revision: {{{{.app.status.sync.revision}}}}"

    def template(emoji: str, what: str, detail: str | None = None, event: str = "") -> str:
        lines = [f"{emoji} *{app}* {what} in *{env}*", head]
        if detail:
            lines.append(detail)
        body = None if slack_relay_url is None else {
            "kind": "Application", "name": app, "namespace": "{{.app.metadata.namespace}}", "event": event}
        return _template(lines + links, body)

    templates = {
        "template.app-sync-succeeded": template(":white_check_mark:", "synced", event="sync-succeeded"),
        "template.app-sync-failed": template(
            ":x:", "failed to sync", "Error: " + _cluster_text(".app.status.operationState.message"),
            event="sync-failed",
        ),
        "template.app-health-degraded": template(
            ":warning:", "is Degraded", HEALTH_DEGRADED_DETAIL, event="health-degraded"
        ),
    }
    # Conditions as in the upstream catalog (argo-cd notifications_catalog/triggers).
    triggers = {
        "trigger.on-sync-succeeded": [
            {
                "description": "Application syncing has succeeded",
                "send": ["app-sync-succeeded"],
                "when": "app.status.operationState != nil and app.status.operationState.phase in ['Succeeded']",
                "oncePer": "app.status.operationState?.syncResult?.revision",
            }
        ],
        "trigger.on-sync-failed": [
            {
                "description": "Application syncing has failed",
                "send": ["app-sync-failed"],
                "when": "app.status.operationState != nil and app.status.operationState.phase in ['Error', 'Failed']",
                "oncePer": "app.status.operationState?.syncResult?.revision",
            }
        ],
        "trigger.on-health-degraded": [
            {
                "description": "Application has degraded",
                "send": ["app-health-degraded"],
                "when": "app.status.health.status == 'Degraded'",
            }
        ],
    }
    notifiers = _slack_token_notifier() | (_thread_notifier(slack_relay_url) if slack_relay_url else {})
    return {
        "notifiers": notifiers,
        "templates": templates,
        "triggers": {k: block_yaml(v) for k, v in triggers.items()},
        "subscriptions": [default_subscription(settings, ARGOCD_TRIGGERS)],
    }


def rollouts_notifications(settings: Settings, slack_relay_url: str | None = None) -> Values:
    """Argo Rollouts notification templates, triggers and the default-channel subscription.

    A Rollout is named after its service and uses `workloadRef`, so the revision is
    the Rollout's own revision annotation and pod-template hash (it has no template).
    Ref: https://argoproj.github.io/argo-rollouts/features/notifications/
    """
    env = settings.environment
    name = "{{.rollout.metadata.name}}"
    revision = (
        '{{with .rollout.metadata.annotations}}{{index . "rollout.argoproj.io/revision"}}{{end}}'
        " (pod template {{.rollout.status.currentPodHash}})"
    )
    head = f"Service: {name} | Environment: {env} | Revision: {revision}"
    links = [
        f"Argo CD: {argocd_app_url(settings, name + '-' + env)}",
        "Rollout: kubectl argo rollouts get rollout " + name + " -n {{.rollout.metadata.namespace}}",
    ]

    def template(emoji: str, what: str, detail: str | None = None, event: str = "") -> str:
        lines = [f"{emoji} Rollout *{name}* {what} in *{env}*", head]
        if detail:
            lines.append(detail)
        body = None if slack_relay_url is None else {
            "kind": "Rollout", "name": name, "namespace": "{{.rollout.metadata.namespace}}", "event": event,
            "step": "{{.rollout.status.currentStepIndex}}"}
        return _template(lines + links, body)

    templates = {
        "template.rollout-paused": template(
            ":double_vertical_bar:",
            "is paused at step {{.rollout.status.currentStepIndex}}",
            "Promote: kubectl argo rollouts promote " + name + " -n {{.rollout.metadata.namespace}}",
            event="paused",
        ),
        "template.rollout-aborted": template(":x:", "was aborted",
                                             "Reason: " + _cluster_text(".rollout.status.message"),
                                             event="aborted"),
        "template.rollout-completed": template(":white_check_mark:", "completed", event="completed"),
    }
    notifiers = _slack_token_notifier()
    trigger_names = ROLLOUTS_TRIGGERS
    if slack_relay_url:
        # Rollouts' triggers are named after the controller's events; only thread
        # subscribers use this one (the default subscription lists ROLLOUTS_TRIGGERS).
        templates["template.rollout-step-completed"] = template(
            ":hourglass_flowing_sand:", "completed a step", event="step-completed")
        notifiers |= _thread_notifier(slack_relay_url)
        trigger_names = ROLLOUTS_THREAD_TRIGGERS
    triggers = {
        f"trigger.{trigger}": block_yaml([{"send": [trigger.removeprefix("on-")]}]) for trigger in trigger_names
    }
    return {
        "secret": {"create": False},
        "notifiers": notifiers,
        "templates": templates,
        "triggers": triggers,
        "subscriptions": [default_subscription(settings, ROLLOUTS_TRIGGERS)],
    }


def default_subscription(settings: Settings, triggers: Sequence[str]) -> Values:
    """Every Application / Rollout notifies the stack's channel, except those labelled
    with `OWN_CHANNEL_LABEL` (services with their own `slack_channel`)."""
    return {
        "recipients": [f"slack:{slack_channel(settings.slack.channel)}"],
        "selector": f"!{OWN_CHANNEL_LABEL}",
        "triggers": list(triggers),
    }


def service_notifications(channel: str | None, triggers: Sequence[str],
                          slack_thread: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) for one service's Application or Rollout.

    A service without its own channel gets nothing: the default subscription covers
    it. One with `slack_channel` opts out of the default and subscribes its channel.
    Use ARGOCD_TRIGGERS for an Application, ROLLOUTS_TRIGGERS for a Rollout. With Slack
    threads (`slack_thread`), the service opts out of the default and subscribes the
    relay's webhook instead of any Slack channel: the relay replies in the release's
    thread (the channel is the one the thread was opened in). Pass
    ARGOCD_THREAD_TRIGGERS / ROLLOUTS_THREAD_TRIGGERS then.
    """
    if slack_thread:
        return {OWN_CHANNEL_LABEL: "true"}, {THREAD_SUBSCRIBE_ANNOTATION.format(trigger=t): "" for t in triggers}
    if channel is None:
        return {}, {}
    annotations = {SUBSCRIBE_ANNOTATION.format(trigger=t): slack_channel(channel) for t in triggers}
    return {OWN_CHANNEL_LABEL: "true"}, annotations
