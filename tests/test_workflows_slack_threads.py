"""One Slack thread per release (components/workflows/slack_threads.py): announce, the stage
notices in the chain, the finish step, and that nothing Slack does fails a release.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import workflows as wf
from components.config import STACKS
from tests.upstream_support import beyond_argo_lint, lint_each
from tests.workflows_support import (
    _all_variants,
    _env,
    _release,
    _service,
    _settings,
    _tasks,
    _templates,
    _threads,
    _variants,
    payload_outside_env,
)


def test_slack_threads_are_off_by_default_and_leave_the_template_as_it_was() -> None:
    settings = _settings()
    assert settings.slack.threads is False
    for service in _variants():
        assert service.slack_threads is None and not service.slack_threads_in(settings)
        manifest = _release(service, settings)
        assert manifest == _release(service, _threads(settings, False))
        assert "slack_thread.py" not in str(manifest) and wf.ANNOUNCE not in _templates(manifest)
        assert _templates(manifest)["notify"]["container"]["command"][-1].endswith("/notify.py")


ANY_END = "{0}.Succeeded || {0}.Skipped || {0}.Failed || {0}.Errored"


@pytest.mark.parametrize(
    ("extra", "tests", "chain"),
    [
        ("", True, ["announce", "tests", "tests-notice", "build", "build-notice", "promote", "promote-notice",
                    "verify"]),
        ("", False, ["announce", "build", "build-notice", "promote", "promote-notice", "verify"]),
        ("    path: services/svc\n", True, ["changed", "announce", "tests", "tests-notice", "build", "build-notice",
                                          "promote", "promote-notice", "verify"]),
    ],
)
def test_announce_opens_the_thread_first_and_a_notice_follows_each_stage(
    extra: str, tests: bool, chain: list[str]
) -> None:
    manifest = _release(_service(extra, tests=tests), _threads(_settings()))
    tasks = _tasks(manifest, "release")
    assert [t["name"] for t in tasks] == chain
    by_name = {t["name"]: t for t in tasks}
    changed = "{{tasks.changed.outputs.parameters.changed}} == true"
    assert by_name["announce"].get("when") == (changed if extra else None)
    assert by_name["announce"].get("depends") == ("changed.Succeeded" if extra else None)
    expected = {"tests": ("tests", "passed"), "build": ("image", "pushed"),
                "promote": ("promoted", "pushed {{tasks.promote.outputs.parameters.revision}}")}
    for before, task in zip(chain, tasks[1:], strict=False):
        if before == "announce" or before.endswith("-notice"):
            # Whatever the Slack step's end, the chain goes on (Argo allows no continueOn beside depends).
            assert task["depends"] == ANY_END.format(before), task["name"]
        elif task["name"].endswith("-notice") or task["name"] == "announce":
            assert task["depends"] == f"{before}.Succeeded", task["name"]
        else:
            assert by_name[task["name"]]["depends"] == before
        if task["name"].endswith("-notice"):
            assert task["template"] == wf.SLACK_STAGE and "continueOn" not in task
            assert {p["name"]: p["value"] for p in task["arguments"]["parameters"]} == dict(
                zip(("stage", "state"), expected[task["name"].removesuffix("-notice")], strict=True))
    assert not any("continueOn" in t for t in tasks)


def test_the_thread_steps_run_slack_thread_py_as_the_release_account() -> None:
    settings = _threads(_settings())
    templates = _templates(_release(_service(), settings))
    assert wf.exit_handler().model_dump(by_alias=True, exclude_none=True)["dag"]["tasks"][0]["template"] == "notify"
    for name, mode in ((wf.ANNOUNCE, "announce"), (wf.SLACK_STAGE, "stage"), ("notify", "finish")):
        template = templates[name]
        container = template["container"]
        assert container["command"] == ["python3", f"{wf.SCRIPTS_DIR}/slack_thread.py"]
        env = _env(container)
        assert env["MODE"] == mode
        assert env["SLACK_TOKEN"] == {"secretKeyRef": {"name": wf.SLACK_SECRET_NAME, "key": wf.SLACK_TOKEN_KEY}}
        assert env["APPLICATION"] == "svc-dev" and env["APPLICATION_NAMESPACE"] == settings.namespaces.argocd
        assert env["ROLLOUT"] == "svc" and env["ROLLOUT_NAMESPACE"] == "team"
        assert env["PR_TITLE_B64"] == "{{workflow.parameters.pr-title}}"
        assert list(env)[-1] == "SLACK_TOKEN"  # after everything it could be expanded into
        assert ("THREAD" in env) is (mode != "announce")
        assert template["automountServiceAccountToken"] is True and "executor" not in template
    assert templates[wf.ANNOUNCE]["outputs"]["parameters"] == [
        {"name": "thread", "valueFrom": {"path": f"{wf.OUTPUT_DIR}/thread"}, "globalName": wf.THREAD_OUTPUT}]
    assert _env(templates[wf.SLACK_STAGE]["container"])["THREAD"] == "{{workflow.outputs.parameters.slack-thread}}"
    assert _env(templates["notify"]["container"])["STATUS"] == "{{workflow.status}}"


def test_the_service_setting_overrides_the_stack_slack_threads_setting() -> None:
    off, on = _settings(), _threads(_settings())
    assert wf.ANNOUNCE in _templates(_release(_service("    slackThreads: true\n"), off))
    assert wf.ANNOUNCE not in _templates(_release(_service("    slackThreads: false\n"), on))


def test_announce_and_the_notices_count_in_the_release_deadline() -> None:
    settings = _settings()
    assert wf.release_workflow_seconds(_service(), _threads(settings)) == (
        wf.release_workflow_seconds(_service(), settings) + 4 * wf.attempts_seconds(wf.SLACK_STAGE,
                                                                                   wf.step_seconds(settings)))


def test_templates_with_slack_threads_lint_clean_validate_and_keep_payload_in_env(upstream_judge: Any) -> None:
    objects = []
    for stack in STACKS:
        for service, settings in _all_variants(_threads(_settings(stack))):
            release = _release(service, settings)
            assert payload_outside_env(release) == []
            objects.append(release)
    assert lint_each(objects) == []
    assert [p for t in objects for p in beyond_argo_lint(t)] == []
    assert upstream_judge.errors(objects) == []
