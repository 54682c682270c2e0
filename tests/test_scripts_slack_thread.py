"""scripts/slack_thread.py, run for real against a fake Slack and a fake Kubernetes API on 127.0.0.1.

Exit code 0 in every case; the thread is recorded on the Application and the Rollout;
later stages reply in the thread and update the parent's state table, merged on the
Application with a resourceVersion precondition.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeServer, Request, base_env, run_script, servers

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "slack_thread.py"
SHA = "5d41402abc4b2a76b9719d911017c592ae2b1c3f"
SLACK_TOKEN = "xoxb-never-printed-0123456789"
APP_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/checkout-dev"
ROLLOUT_PATH = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout"
CHANNEL_ID = "C0123ABCD"
TS = "1700000000.000100"


def b64(text: str) -> str:
    """Payload text as the Sensor passes it (components/sensors.py)."""
    return "b64:" + base64.b64encode(text.encode()).decode()


class Fake(FakeServer):
    """Slack (/api/...) and the two Kubernetes objects (/apis/...) in one server."""

    methods = ("GET", "PATCH", "POST")

    def __init__(self, *, slack_ok: bool = True, conflicts: int = 0, kube_status: int = 200) -> None:
        self.slack: list[dict[str, Any]] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.objects: dict[str, dict[str, Any]] = {
            APP_PATH: {"metadata": {"name": "checkout-dev", "resourceVersion": "1", "annotations": {}}},
            ROLLOUT_PATH: {"metadata": {"name": "checkout", "resourceVersion": "1", "annotations": {}}},
        }
        self.conflicts = conflicts
        self.slack_ok, self.kube_status = slack_ok, kube_status
        self.slack_busy: list[int] = []  # statuses Slack answers first (429: with Retry-After 0)
        super().__init__()

    def answer(self, request: Request) -> tuple[int, Any]:
        kube_status = self.kube_status
        if request.method == "GET":
            if kube_status != 200 or request.path not in self.objects:
                return kube_status if kube_status != 200 else 404, {"message": "no"}
            return 200, self.objects[request.path]
        body = request.json()
        if request.method == "PATCH":
            self.patches.append((request.path, body))
            if kube_status != 200 or request.path not in self.objects:
                return kube_status if kube_status != 200 else 404, {"message": "no"}
            obj = self.objects[request.path]
            wanted = body["metadata"].get("resourceVersion")
            if wanted is not None and (self.conflicts > 0 or wanted != obj["metadata"]["resourceVersion"]):
                self.conflicts -= 1
                obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
                return 409, {"message": "conflict"}
            for key, value in body["metadata"].get("annotations", {}).items():
                if value is None:
                    obj["metadata"]["annotations"].pop(key, None)
                else:
                    obj["metadata"]["annotations"][key] = value
            obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
            return 200, obj
        self.slack.append({"path": request.path, "body": body, "auth": request.headers["authorization"]})
        if self.slack_busy:
            return self.slack_busy.pop(0), b'{"ok": false}', "application/json", {"Retry-After": "0"}
        if not self.slack_ok:
            return 200, {"ok": False, "error": "channel_not_found"}
        return 200, {"ok": True, "channel": CHANNEL_ID, "ts": TS if "thread_ts" not in body else "1700000001.000200"}

    def annotations(self, path: str = APP_PATH) -> dict[str, str]:
        return self.objects[path]["metadata"]["annotations"]


@pytest.fixture
def fake():
    yield from servers(Fake)


def run(tmp_path: Path, api: Fake, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = base_env(tmp_path) | {
        "OUTPUT_DIR": str(tmp_path / "out"),
        "MODE": mode,
        "SLACK_API": api.url + "/api",
        "SLACK_RETRY_SECONDS": "0.01",
        "K8S_API_URL": api.url,
        "K8S_TOKEN_FILE": str(tmp_path / "no-token"),
        "SLACK_TOKEN": SLACK_TOKEN,
        "CHANNEL": "releases-checkout",
        "SERVICE": "checkout",
        "ENVIRONMENT": "dev",
        "REVISION": SHA,
        "PR_NUMBER": "42",
        "PR_TITLE_B64": b64("Faster checkout"),
        "AUTHOR_B64": b64("octocat"),
        "WORKFLOW_URL": "https://workflows.example.com/workflows/argo/checkout-dev-" + SHA,
        "ARGOCD_URL": "https://argocd.example.com/applications/argocd/checkout-dev",
        "APPLICATION": "checkout-dev",
        "APPLICATION_NAMESPACE": "argocd",
        "ROLLOUT": "checkout",
        "ROLLOUT_NAMESPACE": "shop",
    }
    result = run_script("slack_thread", {**base, **env})
    assert result.returncode == 0, "a notification never fails the release"
    assert SLACK_TOKEN not in result.stdout + result.stderr
    return result


def output(tmp_path: Path, name: str) -> str:
    return (tmp_path / "out" / name).read_text()


def test_announce_opens_the_thread_and_records_it_on_the_application_and_the_rollout(tmp_path, fake):
    api = fake()
    run(tmp_path, api, "announce")
    [post] = api.slack
    assert post["path"] == "/api/chat.postMessage" and post["auth"] == f"Bearer {SLACK_TOKEN}"
    assert post["body"]["channel"] == "releases-checkout" and "thread_ts" not in post["body"]
    assert post["body"]["parse"] == "none" and post["body"]["link_names"] is False
    text = post["body"]["text"]
    assert text.splitlines()[0] == ":rocket: Release of *checkout* to *dev*"
    assert "PR #42: Faster checkout" in text and "Author: octocat" in text
    assert text.splitlines()[-1].startswith(":white_small_square: tests | ")
    assert ":hourglass_flowing_sand: result: running" in text
    assert output(tmp_path, "thread") == f"{CHANNEL_ID}/{TS}"
    app, rollout = api.annotations(APP_PATH), api.annotations(ROLLOUT_PATH)
    for recorded in (app, rollout):
        assert recorded["release-pipeline/slack-thread"] == f"{CHANNEL_ID}/{TS}"
        assert recorded["release-pipeline/slack-thread-revision"] == SHA
    assert json.loads(app["release-pipeline/slack-thread-state"]) == {"result": "running"}
    assert app["release-pipeline/slack-thread-header"] == "\n".join(text.splitlines()[:-1])
    assert "release-pipeline/slack-thread-state" not in rollout


def test_each_stage_replies_in_the_thread_and_updates_the_parents_state(tmp_path, fake):
    api = fake()
    run(tmp_path, api, "announce")
    thread = output(tmp_path, "thread")
    run(tmp_path, api, "stage", THREAD=thread, STAGE="tests", STATE="passed")
    run(tmp_path, api, "stage", THREAD=thread, STAGE="image", STATE="pushed")
    # The relay's line (canary), merged by someone else in between, survives.
    state = json.loads(api.annotations()["release-pipeline/slack-thread-state"])
    api.annotations()["release-pipeline/slack-thread-state"] = json.dumps(state | {"canary": "step 1 paused"})
    run(tmp_path, api, "finish", THREAD=thread, STATUS="Succeeded", VERIFY_STATUS="healthy")
    assert json.loads(api.annotations()["release-pipeline/slack-thread-state"]) == {
        "tests": "passed", "image": "pushed", "canary": "step 1 paused", "synced": "healthy", "result": "succeeded"}
    updates = [r["body"] for r in api.slack if r["path"] == "/api/chat.update"]
    replies = [r["body"] for r in api.slack if r["body"].get("thread_ts")]
    assert [u["channel"] for u in updates] == [CHANNEL_ID] * 3 and {u["ts"] for u in updates} == {TS}
    assert [r["text"] for r in replies] == [":white_check_mark: *tests*: passed", ":white_check_mark: *image*: pushed",
                                            ":white_check_mark: *result*: succeeded"]
    assert all(r["channel"] == CHANNEL_ID and r["thread_ts"] == TS for r in replies)
    last = updates[-1]["text"]
    assert last.startswith(":rocket: Release of *checkout* to *dev*\n")
    assert last.splitlines()[-1] == (
        ":white_check_mark: tests: passed | :white_check_mark: image: pushed | :white_small_square: promoted | "
        ":white_check_mark: synced: healthy | :double_vertical_bar: canary: step 1 paused | "
        ":white_check_mark: result: succeeded")
    assert len([r for r in api.slack if r["path"] == "/api/chat.postMessage" and "thread_ts" not in r["body"]]) == 1


def test_a_conflicting_write_is_read_again_and_merged(tmp_path, fake):
    api = fake(conflicts=2)
    api.annotations().update({"release-pipeline/slack-thread": f"{CHANNEL_ID}/{TS}",
                              "release-pipeline/slack-thread-state": '{"image":"pushed"}'})
    run(tmp_path, api, "stage", THREAD=f"{CHANNEL_ID}/{TS}", STAGE="tests", STATE="passed")
    assert json.loads(api.annotations()["release-pipeline/slack-thread-state"]) == {"image": "pushed",
                                                                                    "tests": "passed"}
    assert len([p for p in api.patches if p[1]["metadata"].get("resourceVersion")]) == 3


def test_a_newer_releases_thread_is_left_alone(tmp_path, fake):
    api = fake()
    api.annotations().update({"release-pipeline/slack-thread": f"{CHANNEL_ID}/1700000999.000100",
                              "release-pipeline/slack-thread-state": '{"result":"running"}'})
    run(tmp_path, api, "stage", THREAD=f"{CHANNEL_ID}/{TS}", STAGE="tests", STATE="failed")
    assert api.annotations()["release-pipeline/slack-thread-state"] == '{"result":"running"}'
    assert [r["path"] for r in api.slack] == ["/api/chat.postMessage"]  # its own thread still hears of it
    assert api.slack[0]["body"]["thread_ts"] == TS


def test_a_failed_release_is_broadcast_to_the_channel(tmp_path, fake):
    api = fake()
    run(tmp_path, api, "announce")
    run(tmp_path, api, "finish", THREAD=output(tmp_path, "thread"), STATUS="Failed")
    [reply] = [r["body"] for r in api.slack if r["body"].get("thread_ts")]
    assert reply["reply_broadcast"] is True and reply["text"] == ":x: *result*: failed"


@pytest.mark.parametrize("thread", ["", "{{workflow.outputs.parameters.slack-thread}}", "C1/../x"])
def test_without_a_thread_finish_posts_the_result_on_its_own(tmp_path, fake, thread):
    api = fake()
    run(tmp_path, api, "finish", THREAD=thread, STATUS="Succeeded", VERIFY_STATUS="paused")
    [post] = api.slack
    assert "thread_ts" not in post["body"] and post["body"]["channel"] == "releases-checkout"
    assert post["body"]["text"].startswith(":hourglass_flowing_sand: Release of *checkout* to *dev* is waiting")
    run(tmp_path, api, "stage", THREAD=thread, STAGE="tests", STATE="passed")
    assert len(api.slack) == 1 and api.patches == []


def test_payload_text_is_escaped_in_the_message_and_the_annotation(tmp_path, fake):
    api = fake()
    run(tmp_path, api, "announce", PR_TITLE_B64=b64("$(SLACK_TOKEN) <!channel> {{.app.spec}}"),
        AUTHOR_B64=b64("<@U1>"))
    text = api.slack[0]["body"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&lt;@U1&gt;" in text
    assert "PR #42: $(SLACK_TOKEN) &lt;!channel&gt; {{.app.spec}}" in text  # byte-exact, but escaped
    assert "<!channel>" not in api.annotations()["release-pipeline/slack-thread-header"]


def test_a_line_break_in_payload_text_forges_no_line_in_the_message_or_the_header(tmp_path, fake):
    api = fake()
    forged = "Fix\n:x: Release of *billing* to *live* failed\r\u2028\u202eevil\x85x"
    run(tmp_path, api, "announce", PR_TITLE_B64=b64(forged), AUTHOR_B64=b64("octo\ncat\t"))
    text = api.slack[0]["body"]["text"]
    header = api.annotations()["release-pipeline/slack-thread-header"]
    # The parent: release line, commit, PR, author, links, state table; the header: all but the table.
    assert len(text.split("\n")) == 6 and len(text.splitlines()) == 6, text
    assert header.split("\n") == text.split("\n")[:-1]
    assert "PR #42: Fix :x: Release of *billing* to *live* failed evil x" in text
    assert "Author: octo cat\n" in text
    for value in (text, header):
        assert not any(c in value for c in "\r\t\u2028\u202e\x85")


def test_an_unknown_stage_or_state_sends_nothing(tmp_path, fake):
    api = fake()
    result = run(tmp_path, api, "stage", THREAD=f"{CHANNEL_ID}/{TS}", STAGE="tests", STATE="<!channel>")
    assert "unknown stage" in result.stderr and api.slack == []
    run(tmp_path, api, "stage", THREAD=f"{CHANNEL_ID}/{TS}", STAGE="rm -rf", STATE="ok")
    assert api.slack == []


def test_slack_refusing_is_a_warning_and_leaves_no_thread(tmp_path, fake):
    api = fake(slack_ok=False)
    result = run(tmp_path, api, "announce")
    assert "warning: chat.postMessage: Slack refused: channel_not_found" in result.stderr
    assert output(tmp_path, "thread") == "" and api.patches == []


def test_kubernetes_refusing_still_opens_the_thread(tmp_path, fake):
    api = fake(kube_status=403)
    result = run(tmp_path, api, "announce")
    assert output(tmp_path, "thread") == f"{CHANNEL_ID}/{TS}"
    assert "cannot record the thread on the Application: PATCH" in result.stderr and "HTTP 403" in result.stderr
    run(tmp_path, api, "stage", THREAD=f"{CHANNEL_ID}/{TS}", STAGE="tests", STATE="passed")
    assert api.slack[-1]["body"]["thread_ts"] == TS  # the reply still goes out, without the update


def test_unreachable_slack_and_a_missing_token_are_warnings(tmp_path, fake):
    api = fake()
    result = run(tmp_path, api, "announce", SLACK_API="http://127.0.0.1:9/api")
    assert "cannot reach Slack" in result.stderr and output(tmp_path, "thread") == ""
    result = run(tmp_path, api, "announce", SLACK_TOKEN="")
    assert "SLACK_TOKEN is empty" in result.stderr and api.slack == []


@pytest.mark.parametrize(
    ("superseded_by", "expected"),
    [("checkout-dev-" + "b" * 40, "superseded"), ("", "failed"), ("{{workflow.annotations.x}}", "failed")],
)
def test_a_superseded_release_says_so_and_is_not_broadcast(tmp_path, fake, superseded_by, expected):
    api = fake()
    run(tmp_path, api, "announce")
    run(tmp_path, api, "finish", THREAD=output(tmp_path, "thread"), STATUS="Failed", SUPERSEDED_BY=superseded_by)
    [reply] = [r["body"] for r in api.slack if r["body"].get("thread_ts")]
    state = json.loads(api.annotations()["release-pipeline/slack-thread-state"])
    assert state["result"].startswith(expected)
    if expected == "superseded":
        assert "reply_broadcast" not in reply or reply["reply_broadcast"] is False
        assert "superseded" in reply["text"]
    else:
        assert reply["reply_broadcast"] is True


def test_slack_rate_limits_and_outages_are_retried(tmp_path, fake):
    api = fake()
    api.slack_busy = [429, 503]
    result = run(tmp_path, api, "announce")
    assert [c["path"] for c in api.slack] == ["/api/chat.postMessage"] * 3, result.stderr
    assert output(tmp_path, "thread") == f"{CHANNEL_ID}/{TS}"
