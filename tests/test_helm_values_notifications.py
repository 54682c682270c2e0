"""Helm values: Argo CD and Argo Rollouts notifications, and the Slack relay's webhook (pure builders)."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from components import helm_values as hv
from components.config import STACKS
from tests.helm_values_support import CHARTS, PROJECTS, ROOT, settings

# --- notifications ------------------------------------------------------------------------------


def test_argocd_notifications_triggers_templates_and_default_channel() -> None:
    s = settings("sandbox")
    n = hv.argocd_values(s, PROJECTS)["notifications"]
    assert n["enabled"] is True
    assert n["secret"] == {"create": False}
    assert n["argocdUrl"] == f"https://{s.hostnames.argocd}"
    assert n["notifiers"] == {"service.slack": "token: $slack-token\n"}
    for trigger in hv.ARGOCD_TRIGGERS:
        (rule,) = yaml.safe_load(n["triggers"][f"trigger.{trigger}"])
        for template in rule["send"]:
            message = yaml.safe_load(n["templates"][f"template.{template}"])["message"]
            assert s.environment in message
            assert "{{.app.status.sync.revision}}" in message
            assert f"https://{s.hostnames.argocd}/applications/" in message
            assert f"https://{s.hostnames.workflows}" in message
            assert "Service:" in message
    (subscription,) = n["subscriptions"]
    assert subscription["recipients"] == [f"slack:{s.slack.channel.removeprefix('#')}"]
    assert subscription["triggers"] == list(hv.ARGOCD_TRIGGERS)
    assert subscription["selector"] == f"!{hv.OWN_CHANNEL_LABEL}"


def test_rollouts_notifications_triggers_templates_and_default_channel() -> None:
    s = settings("live")
    n = hv.rollouts_values(s)["notifications"]
    assert n["secret"] == {"create": False}
    assert n["notifiers"] == {"service.slack": "token: $slack-token\n"}
    for trigger in hv.ROLLOUTS_TRIGGERS:
        (rule,) = yaml.safe_load(n["triggers"][f"trigger.{trigger}"])
        (template,) = rule["send"]
        message = yaml.safe_load(n["templates"][f"template.{template}"])["message"]
        assert "{{.rollout.metadata.name}}" in message
        assert s.environment in message
        assert "rollout.argoproj.io/revision" in message
        assert f"https://{s.hostnames.argocd}/applications/" in message
    (subscription,) = n["subscriptions"]
    assert subscription["recipients"] == ["slack:releases-live"]
    assert subscription["triggers"] == list(hv.ROLLOUTS_TRIGGERS)


def test_a_service_with_its_own_channel_leaves_the_default_subscription() -> None:
    assert hv.service_notifications(None, hv.ROLLOUTS_TRIGGERS) == ({}, {})
    labels, annotations = hv.service_notifications("#team-search", hv.ROLLOUTS_TRIGGERS)
    assert labels == {hv.OWN_CHANNEL_LABEL: "true"}
    assert annotations == {
        f"notifications.argoproj.io/subscribe.{t}.slack": "team-search" for t in hv.ROLLOUTS_TRIGGERS
    }


# --- one Slack thread per release: the relay webhook ----------------------------------------

RELAY = "http://release-pipeline-slack-relay.argo.svc:8080/event"


def test_without_the_relay_the_values_are_as_they_were() -> None:
    for stack in STACKS:
        assert hv.chart_values(settings(stack), PROJECTS) == hv.chart_values(settings(stack), PROJECTS, None)
        assert "slack-thread" not in str(hv.chart_values(settings(stack), PROJECTS))


def test_the_relay_webhook_is_a_notifier_of_both_controllers() -> None:
    values = hv.chart_values(settings(), PROJECTS, RELAY)
    for chart in ("argo-cd", "argo-rollouts"):
        notifiers = values[chart]["notifications"]["notifiers"]
        assert yaml.safe_load(notifiers["service.webhook.slack-thread"]) == {
            "url": RELAY, "headers": [{"name": "Content-Type", "value": "application/json"}]}
        assert notifiers["service.slack"] == "token: $slack-token\n"
        # The Slack subscription of the stack's channel is unchanged.
        assert values[chart]["notifications"]["subscriptions"] == \
            hv.chart_values(settings(), PROJECTS)[chart]["notifications"]["subscriptions"]


def _bodies(templates: dict[str, str]) -> dict[str, dict[str, str]]:
    result = {}
    for key, text in templates.items():
        template = yaml.safe_load(text)
        webhook = template["webhook"]["slack-thread"]
        assert webhook["method"] == "POST" and "message" in template
        result[key.removeprefix("template.")] = json.loads(webhook["body"])
    return result


def test_the_webhook_bodies_carry_names_and_the_event_only() -> None:
    values = hv.chart_values(settings(), PROJECTS, RELAY)
    app = {"kind": "Application", "name": "{{.app.metadata.name}}", "namespace": "{{.app.metadata.namespace}}"}
    assert _bodies(values["argo-cd"]["notifications"]["templates"]) == {
        "app-sync-succeeded": app | {"event": "sync-succeeded"},
        "app-sync-failed": app | {"event": "sync-failed"},
        "app-health-degraded": app | {"event": "health-degraded"},
    }
    rollout = {"kind": "Rollout", "name": "{{.rollout.metadata.name}}",
               "namespace": "{{.rollout.metadata.namespace}}", "step": "{{.rollout.status.currentStepIndex}}"}
    assert _bodies(values["argo-rollouts"]["notifications"]["templates"]) == {
        "rollout-paused": rollout | {"event": "paused"},
        "rollout-aborted": rollout | {"event": "aborted"},
        "rollout-completed": rollout | {"event": "completed"},
        "rollout-step-completed": rollout | {"event": "step-completed"},
    }
    # The relay's events are exactly what these templates send.
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import slack_relay  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert set(slack_relay.EVENTS["Application"]) == {"sync-succeeded", "sync-failed", "health-degraded"}
    assert set(slack_relay.EVENTS["Rollout"]) == {"paused", "aborted", "completed", "step-completed"}


def test_the_step_completed_trigger_is_added_but_not_to_the_default_channel() -> None:
    rollouts = hv.chart_values(settings(), PROJECTS, RELAY)["argo-rollouts"]["notifications"]
    assert yaml.safe_load(rollouts["triggers"]["trigger.on-rollout-step-completed"]) == [
        {"send": ["rollout-step-completed"]}]
    assert "on-rollout-step-completed" not in rollouts["subscriptions"][0]["triggers"]


def test_service_notifications_with_threads_subscribe_the_webhook_only() -> None:
    labels, annotations = hv.service_notifications("#own", hv.ROLLOUTS_THREAD_TRIGGERS, slack_thread=True)
    assert labels == {hv.OWN_CHANNEL_LABEL: "true"}
    assert annotations == {f"notifications.argoproj.io/subscribe.{t}.slack-thread": ""
                           for t in hv.ROLLOUTS_THREAD_TRIGGERS}


@pytest.mark.parametrize("stack", STACKS)
def test_no_unknown_values_keys_with_the_relay(stack: str) -> None:
    from tests.checks.check_helm_values import problems

    for chart, values in hv.chart_values(settings(stack), PROJECTS, RELAY).items():
        assert problems(CHARTS / chart, values) == [], (stack, chart)
