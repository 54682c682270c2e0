"""Retries and deadlines (components/workflows/timing.py): which steps retry, and that every
pod's and Workflow's deadline outlasts its steps with their retries.
"""

from __future__ import annotations

import re
from typing import Any

from components import workflows as wf
from tests.workflows_support import (
    _build,
    _env,
    _pod_templates,
    _release,
    _service,
    _settings,
    _tasks,
    _templates,
    _threads,
    _variants,
)


def test_every_pod_and_workflow_has_a_deadline() -> None:
    settings = _settings()
    step = settings.release.step_timeout_minutes * 60
    for service in _variants():
        release, build = _release(service, settings), _build(service, settings)
        for manifest in (release, build):
            assert manifest["spec"]["activeDeadlineSeconds"] > 0
            for template in _pod_templates(manifest):
                assert template["activeDeadlineSeconds"] >= step, template["name"]
        templates = _templates(release)
        assert templates["verify"]["activeDeadlineSeconds"] > settings.release.verify_timeout_minutes * 60
        # The build step outlasts the child Workflow, which outlasts its own steps.
        assert templates["build"]["activeDeadlineSeconds"] > build["spec"]["activeDeadlineSeconds"]
        assert build["spec"]["activeDeadlineSeconds"] >= sum(
            t["activeDeadlineSeconds"] for t in _pod_templates(build)
        )
        # The release outlasts its steps one after the other.
        assert release["spec"]["activeDeadlineSeconds"] >= sum(
            templates[t["name"]]["activeDeadlineSeconds"] for t in _tasks(release, "release")
        )


def _go_seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([sm])", duration)
    assert match, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def _with_retries(template: dict[str, Any]) -> int:
    """A step's worst case as Argo runs it: every attempt's deadline and every backoff wait."""
    retry = template.get("retryStrategy")
    deadline = int(template["activeDeadlineSeconds"])
    if retry is None:
        return deadline
    limit, backoff = int(retry["limit"]), retry["backoff"]
    waits = sum(_go_seconds(backoff["duration"]) * int(backoff["factor"]) ** i for i in range(limit))
    return (1 + limit) * deadline + waits


# Steps that talk to a network and may run again; the unit tests are the team's code.
RETRIED = {"changed", "promote", "verify", "notify", "announce", "slack-stage", "supersede",
           "newest-check", "image-exists", "reuse", "buildkit"}


def test_network_steps_retry_with_backoff_and_the_unit_tests_never() -> None:
    settings = _threads(_settings())
    seen = set()
    for service in _variants():
        service = service.model_copy(update={"newest_wins": True})
        for manifest in (_release(service, settings), _build(service, settings)):
            for template in manifest["spec"]["templates"]:
                retry = template.get("retryStrategy")
                if "dag" in template:
                    assert retry is None, template["name"]
                    continue
                seen.add(template["name"])
                if template["name"] not in RETRIED:
                    assert template["name"] in {"tests", "build"} and retry is None, template["name"]
                    continue
                assert retry is not None, template["name"]
                assert 1 <= int(retry["limit"]) <= 2, template["name"]
                assert _go_seconds(retry["backoff"]["duration"]) >= 10 and int(retry["backoff"]["factor"]) >= 2
                assert retry["retryPolicy"] in {"Always", "OnError"}
    assert seen == (RETRIED | {"tests", "build"}) - {"reuse"}  # reuse needs `promoteFrom`: the same table
    assert wf.retry_strategy("reuse") is not None
    templates = _templates(_release(_service("    path: services/svc\n")))
    # The build step would start the whole child again: the child's own steps retry.
    assert "retryStrategy" not in templates["build"]
    assert _templates(_build())["buildkit"]["retryStrategy"]["limit"] == 1
    # verify.py retries the API itself; its failure is the rollout's verdict: only a lost pod reruns it.
    assert templates["verify"]["retryStrategy"]["retryPolicy"] == "OnError"
    # The checkout runs as an init container: OnFailure would not retry it.
    assert templates["changed"]["retryStrategy"]["retryPolicy"] == "Always"


def test_deadlines_count_every_retry() -> None:
    settings = _threads(_settings())
    for service in _variants():
        service = service.model_copy(update={"newest_wins": True})
        release, build = _release(service, settings), _build(service, settings)
        templates = _templates(release)
        assert build["spec"]["activeDeadlineSeconds"] >= sum(_with_retries(t) for t in _pod_templates(build))
        assert templates["build"]["activeDeadlineSeconds"] > build["spec"]["activeDeadlineSeconds"]
        assert release["spec"]["activeDeadlineSeconds"] >= sum(
            _with_retries(templates[t["template"]]) for t in _tasks(release, "release"))


def test_deadlines_follow_the_settings() -> None:
    settings = _settings()
    slow = settings.model_copy(update={"release": settings.release.model_copy(
        update={"step_timeout_minutes": 10, "verify_timeout_minutes": 120})})
    templates = _templates(_release(settings=slow))
    assert templates["promote"]["activeDeadlineSeconds"] == 600
    assert templates["verify"]["activeDeadlineSeconds"] == 120 * 60 + wf.MARGIN_SECONDS
    assert _env(templates["verify"]["container"])["TIMEOUT_SECONDS"] == str(120 * 60)
