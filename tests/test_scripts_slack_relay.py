"""scripts/slack_relay.py, run for real against a fake Slack and a fake Kubernetes API on 127.0.0.1.

The relay answers the notification controllers' webhooks: it replies in the thread
recorded on the object, merges the `synced` / `canary` line into the Application's
state and updates the parent; it answers 200 even when Slack fails, and refuses what
it does not know without touching Slack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_scripts_slack_thread import APP_PATH, CHANNEL_ID, ROLLOUT_PATH, SLACK_TOKEN, TS, Fake

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "slack_relay.py"
THREAD = f"{CHANNEL_ID}/{TS}"
HEADER = ":rocket: Release of *checkout* to *dev*\nCommit: abc"


class Relay:
    def __init__(self, tmp_path: Path, api: Fake, **env: str) -> None:
        base = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "PORT": "0",
            "LISTEN_ADDRESS": "127.0.0.1",
            "SLACK_API": api.url + "/api",
            "SLACK_RETRY_SECONDS": "0.01",
            "K8S_API_URL": api.url,
            "K8S_TOKEN_FILE": str(tmp_path / "no-token"),
            "SLACK_TOKEN": SLACK_TOKEN,
            "ENVIRONMENT": "dev",
            "APPLICATION_NAMESPACE": "argocd",
        }
        self.process = subprocess.Popen([sys.executable, str(SCRIPT)], env={**base, **env}, text=True,
                                        stderr=subprocess.PIPE)
        assert self.process.stderr is not None
        first = self.process.stderr.readline()
        assert "listening on 127.0.0.1:" in first, first
        self.url = "http://127.0.0.1:" + first.strip().rsplit(":", 1)[1]

    def send(self, body: object = None, *, raw: bytes | None = None, path: str = "/event",
             method: str = "POST") -> tuple[int, bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=30)
        return err


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Any]:
    running: list[tuple[Fake, Relay]] = []

    def start(**kwargs: Any) -> tuple[Fake, Relay]:
        env = kwargs.pop("env", {})
        api = Fake(**kwargs)
        relay = Relay(tmp_path, api, **env)
        running.append((api, relay))
        return api, relay

    yield start
    for api, relay in running:
        logs = relay.stop()
        assert SLACK_TOKEN not in logs
        api.close()


def with_thread(api: Fake, state: dict[str, str] | None = None) -> None:
    api.annotations(APP_PATH).update({
        "release-pipeline/slack-thread": THREAD,
        "release-pipeline/slack-thread-state": json.dumps(state or {"result": "running"}),
        "release-pipeline/slack-thread-header": HEADER,
    })
    api.annotations(ROLLOUT_PATH)["release-pipeline/slack-thread"] = THREAD


def state(api: Fake) -> dict[str, str]:
    return json.loads(api.annotations(APP_PATH)["release-pipeline/slack-thread-state"])


def app_event(event: str) -> dict[str, str]:
    return {"kind": "Application", "name": "checkout-dev", "namespace": "argocd", "event": event}


def rollout_event(event: str, step: object = None) -> dict[str, object]:
    body: dict[str, object] = {"kind": "Rollout", "name": "checkout", "namespace": "shop", "event": event}
    if step is not None:
        body["step"] = step
    return body


def test_argo_cds_synced_replies_in_the_thread_and_updates_the_parent(started) -> None:
    api, relay = started()
    with_thread(api, {"tests": "passed", "result": "running"})
    assert relay.send(app_event("sync-succeeded"))[0] == 200
    assert state(api) == {"tests": "passed", "synced": "synced", "result": "running"}
    update, reply = api.slack
    assert update["path"] == "/api/chat.update" and update["auth"] == f"Bearer {SLACK_TOKEN}"
    assert update["body"]["channel"] == CHANNEL_ID and update["body"]["ts"] == TS
    assert update["body"]["text"].startswith(HEADER + "\n")
    assert ":white_check_mark: synced: synced" in update["body"]["text"].splitlines()[-1]
    assert reply["path"] == "/api/chat.postMessage" and reply["body"]["thread_ts"] == TS
    assert reply["body"]["text"] == ":white_check_mark: *synced*: synced"
    assert reply["body"]["reply_broadcast"] is False


def test_rollout_steps_merge_the_canary_line_into_the_applications_state(started) -> None:
    api, relay = started()
    with_thread(api)
    assert relay.send(rollout_event("step-completed", 1))[0] == 200
    assert state(api)["canary"] == "step 1 completed"
    assert relay.send(rollout_event("paused", "2"))[0] == 200
    assert state(api)["canary"] == "paused at step 2"
    assert relay.send(rollout_event("completed", "<no value>"))[0] == 200
    assert state(api) == {"canary": "completed", "result": "running"}
    replies = [r["body"]["text"] for r in api.slack if r["body"].get("thread_ts")]
    assert replies == [":hourglass_flowing_sand: *canary*: step 1 completed",
                       ":double_vertical_bar: *canary*: paused at step 2", ":white_check_mark: *canary*: completed"]
    # The Rollout is only read: the state lives on the Application.
    assert {path for path, _ in api.patches} == {APP_PATH}


def test_an_aborted_canary_is_broadcast(started) -> None:
    api, relay = started()
    with_thread(api)
    assert relay.send(rollout_event("aborted"))[0] == 200
    [reply] = [r["body"] for r in api.slack if r["body"].get("thread_ts")]
    assert reply["text"] == ":x: *canary*: aborted" and reply["reply_broadcast"] is True


def test_a_conflicting_write_is_read_again_and_merged(started) -> None:
    api, relay = started(conflicts=2)
    with_thread(api, {"image": "pushed"})
    assert relay.send(app_event("sync-failed"))[0] == 200
    assert state(api) == {"image": "pushed", "synced": "sync failed"}


def test_a_rollout_whose_application_has_a_newer_thread_replies_without_touching_the_state(started) -> None:
    api, relay = started()
    with_thread(api)
    api.annotations(APP_PATH)["release-pipeline/slack-thread"] = f"{CHANNEL_ID}/1700000999.000100"
    assert relay.send(rollout_event("paused", 0))[0] == 200
    assert state(api) == {"result": "running"}
    assert [r["path"] for r in api.slack] == ["/api/chat.postMessage"] and api.slack[0]["body"]["thread_ts"] == TS


def test_slack_failing_is_still_200_and_a_warning(started) -> None:
    api, relay = started(slack_ok=False)
    with_thread(api)
    assert relay.send(app_event("health-degraded"))[0] == 200
    assert state(api)["synced"] == "degraded"  # the state still moves on
    logs = relay.stop()
    assert "warning: chat.update: Slack refused: channel_not_found" in logs and SLACK_TOKEN not in logs


def test_unreachable_slack_is_still_200(started, tmp_path) -> None:
    api, relay = started(env={"SLACK_API": "http://127.0.0.1:9/api"})
    with_thread(api)
    assert relay.send(app_event("sync-succeeded"))[0] == 200
    assert "cannot reach Slack" in relay.stop()


def test_an_object_without_a_thread_is_204_and_sends_nothing(started) -> None:
    api, relay = started()
    assert relay.send(app_event("sync-succeeded"))[0] == 204
    api.annotations(ROLLOUT_PATH)["release-pipeline/slack-thread"] = "{{not a thread}}"
    assert relay.send(rollout_event("completed"))[0] == 204
    assert relay.send({**app_event("sync-succeeded"), "name": "unknown-dev"})[0] == 204  # not found
    assert api.slack == [] and api.patches == []


def test_the_kubernetes_api_refusing_is_204_and_failing_is_502(started) -> None:
    api, relay = started(kube_status=403)
    assert relay.send(app_event("sync-succeeded"))[0] == 204
    api2, relay2 = started(kube_status=500)
    assert relay2.send(app_event("sync-succeeded"))[0] == 502
    assert api.slack == api2.slack == []


@pytest.mark.parametrize("body", [
    {"kind": "Deployment", "name": "checkout", "namespace": "shop", "event": "completed"},
    {"kind": "Rollout", "name": "checkout", "namespace": "shop", "event": "sync-succeeded"},
    {"kind": "Application", "name": "checkout-dev", "namespace": "argocd", "event": "deleted"},
    {"kind": "Application", "name": "../../secrets", "namespace": "argocd", "event": "sync-succeeded"},
    {"kind": "Application", "name": "checkout-dev", "namespace": "Argo CD", "event": "sync-succeeded"},
    {"kind": "Application", "name": ["x"], "namespace": "argocd", "event": "sync-succeeded"},
    ["Application"],
])
def test_unknown_kinds_events_and_names_are_400(started, body) -> None:
    api, relay = started()
    with_thread(api)
    assert relay.send(body)[0] == 400
    assert api.slack == [] and api.patches == []


def test_bounded_body_post_only_and_a_health_endpoint(started) -> None:
    api, relay = started()
    with_thread(api)
    assert relay.send(raw=b"not json")[0] == 400
    assert relay.send(raw=b"{" + b" " * 5000 + b"}")[0] == 413
    assert relay.send(path="/healthz", method="GET") == (200, b'{"ok": true}')
    assert relay.send(path="/event", method="GET")[0] == 405
    assert relay.send(app_event("sync-succeeded"), method="PUT")[0] == 405
    assert relay.send(app_event("sync-succeeded"), path="/other")[0] == 404
    assert api.slack == [] and api.patches == []
    # Still serving after all that.
    assert relay.send(app_event("sync-succeeded"))[0] == 200


def test_payload_text_in_the_request_is_never_sent(started) -> None:
    api, relay = started()
    with_thread(api)
    body = {**rollout_event("paused", 3), "message": "<!channel> pwned", "text": "<!channel>"}
    assert relay.send(body)[0] == 200
    assert "channel>" not in json.dumps([r["body"] for r in api.slack])


@pytest.mark.parametrize("port", ["http", "-1", "70000", "80.5"])
def test_a_bad_port_is_refused_clearly(tmp_path, port) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PORT": port, "LISTEN_ADDRESS": "127.0.0.1",
           "SLACK_API": "http://127.0.0.1:9/api", "K8S_API_URL": "http://127.0.0.1:9", "ENVIRONMENT": "dev",
           "APPLICATION_NAMESPACE": "argocd"}
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cannot start: PORT must be a whole number from 0 to 65535" in result.stderr
    assert "Traceback" not in result.stderr
