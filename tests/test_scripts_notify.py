"""scripts/notify.py, run for real against a fake Slack API on 127.0.0.1.

Exit code 0 in every case; the payload is what Slack would receive; text from the
webhook payload arrives base64-encoded (as the Sensor sends it), is decoded byte-exact,
folded onto one line and escaped. How that text gets through Kubernetes and Argo to the
script is tested on the rendered templates (tests/test_payload_paths.py).
"""

from __future__ import annotations

import base64
import itertools
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes import FakeServer, Request, base_env, run_script, servers

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "notify.py"
SHA = "5d41402abc4b2a76b9719d911017c592ae2b1c3f"
SLACK_TOKEN = "xoxb-never-printed-0123456789"


def b64(text: str) -> str:
    """Payload text as the Sensor passes it (components/sensors.py)."""
    return "b64:" + base64.b64encode(text.encode()).decode()


class FakeSlack(FakeServer):
    methods = ("POST",)

    def __init__(self, status: int = 200, answer: dict | None = None) -> None:
        self.requests: list[dict] = []
        self.status, self.reply = status, answer
        super().__init__()
        self.url += "/api"

    def answer(self, request: Request) -> tuple[int, dict]:
        body = request.json()
        self.requests.append({"path": request.path, "body": body, "headers": request.headers})
        return self.status, {"ok": True} if self.reply is None else self.reply


@pytest.fixture
def slack():
    yield from servers(FakeSlack)


def run(tmp_path: Path, api: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = base_env(tmp_path) | {
        "SLACK_API": api,
        "SLACK_RETRY_SECONDS": "0.01",
        "SLACK_TOKEN": SLACK_TOKEN,
        "CHANNEL": "releases-checkout",
        "STATUS": "Succeeded",
        "VERIFY_STATUS": "healthy",
        "SERVICE": "checkout",
        "ENVIRONMENT": "dev",
        "REVISION": SHA,
        "PR_NUMBER": "42",
        "PR_TITLE_B64": b64("Faster checkout"),
        "AUTHOR_B64": b64("octocat"),
        "WORKFLOW_URL": "https://workflows.example.com/workflows/argo/checkout-dev-" + SHA,
        "ARGOCD_URL": "https://argocd.example.com/applications/argocd/checkout-dev",
    }
    result = run_script("notify", {**base, **env})
    assert result.returncode == 0, "a notification never fails the release"
    assert SLACK_TOKEN not in result.stdout + result.stderr
    return result


def test_the_message_names_result_service_commit_pr_author_and_links(tmp_path, slack):
    api = slack()
    run(tmp_path, api.url)
    [request] = api.requests
    assert request["path"] == "/api/chat.postMessage"
    assert request["headers"]["authorization"] == f"Bearer {SLACK_TOKEN}"
    assert request["headers"]["content-type"].startswith("application/json")
    body = request["body"]
    assert body["channel"] == "releases-checkout"
    assert body["unfurl_links"] is False
    assert body["parse"] == "none" and body["link_names"] is False
    text = body["text"]
    assert text.splitlines()[0] == ":white_check_mark: Release of *checkout* to *dev* succeeded"
    assert f"`{SHA[:7]}` ({SHA})" in text
    assert "PR #42: Faster checkout" in text
    assert "Author: octocat" in text
    assert f"<https://workflows.example.com/workflows/argo/checkout-dev-{SHA}|Workflow>" in text
    assert "<https://argocd.example.com/applications/argocd/checkout-dev|Argo CD>" in text


@pytest.mark.parametrize(
    ("status", "verify_status", "headline"),
    [
        ("Succeeded", "paused", ":hourglass_flowing_sand: Release of *checkout* to *dev* is waiting for promotion"),
        ("Failed", "", ":x: Release of *checkout* to *dev* failed"),
        ("Error", "", ":warning: Release of *checkout* to *dev* errored"),
        ("Failed", "paused", ":x: Release of *checkout* to *dev* failed"),
        ("Omitted", "", ":grey_question: Release of *checkout* to *dev* ended with status Omitted"),
    ],
)
def test_the_headline_states_the_result(tmp_path, slack, status, verify_status, headline):
    api = slack()
    run(tmp_path, api.url, STATUS=status, VERIFY_STATUS=verify_status)
    assert api.requests[0]["body"]["text"].splitlines()[0] == headline


def test_a_superseded_release_says_so_instead_of_failed(tmp_path, slack):
    api = slack()
    run(tmp_path, api.url, STATUS="Failed", VERIFY_STATUS="", SUPERSEDED_BY="checkout-dev-abc12")
    text = api.requests[0]["body"]["text"]
    assert text.splitlines()[0] == ":fast_forward: Release of *checkout* to *dev* was superseded by checkout-dev-abc12"
    assert "failed" not in text


@pytest.mark.parametrize(
    "superseded_by",
    [
        "",
        "{{workflow.annotations.release-pipeline/superseded-by}}",  # Argo left the tag: not superseded
        "Checkout-Dev",
        "<!channel>",
        "checkout dev",
        "-checkout",
        "a" * 254,
    ],
)
def test_a_placeholder_or_an_invalid_name_is_not_superseded(tmp_path, slack, superseded_by):
    api = slack()
    run(tmp_path, api.url, STATUS="Failed", VERIFY_STATUS="", SUPERSEDED_BY=superseded_by)
    text = api.requests[0]["body"]["text"]
    assert text.splitlines()[0] == ":x: Release of *checkout* to *dev* failed"
    assert "superseded" not in text


def test_a_succeeded_release_is_never_called_superseded(tmp_path, slack):
    api = slack()
    run(tmp_path, api.url, SUPERSEDED_BY="checkout-dev-abc12")
    headline = api.requests[0]["body"]["text"].splitlines()[0]
    assert headline == ":white_check_mark: Release of *checkout* to *dev* succeeded"


def test_payload_text_is_decoded_exactly_and_escaped_for_slack(tmp_path, slack):
    api = slack()
    title = "$(SLACK_TOKEN); echo `id` <!channel> & <https://evil.example|click>"
    run(tmp_path, api.url, PR_TITLE_B64=b64(title), AUTHOR_B64=b64("<@U123> & co"))
    text = api.requests[0]["body"]["text"]
    assert "PR #42: $(SLACK_TOKEN); echo `id` &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text
    assert "Author: &lt;@U123&gt; &amp; co" in text
    assert "<!channel>" not in text and "<https://evil.example" not in text


def test_a_link_that_is_not_http_is_left_out(tmp_path, slack):
    api = slack()
    run(tmp_path, api.url, WORKFLOW_URL="javascript:alert(1)", ARGOCD_URL="https://x.example/a|b>")
    text = api.requests[0]["body"]["text"]
    assert "Workflow" not in text and "Argo CD" not in text


def test_a_push_without_pr(tmp_path, slack):
    api = slack()
    run(tmp_path, api.url, PR_NUMBER="", PR_TITLE_B64="")
    assert "PR #" not in api.requests[0]["body"]["text"]


def test_unicode_text_arrives_byte_exact(tmp_path, slack):
    api = slack()
    run(tmp_path, api.url, PR_TITLE_B64=b64("Café ✓ 漢字 {{workflow.name}} $(SLACK_TOKEN) $$"))
    assert "PR #42: Café ✓ 漢字 {{workflow.name}} $(SLACK_TOKEN) $$\n" in api.requests[0]["body"]["text"]


@pytest.mark.parametrize("forger", ["\n", "\r\n", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028",
                                    "\u2029", "\x00", "\x1b[31m", "\x7f", "\u202e", "\u2066", "\u200f"])
def test_a_control_or_bidi_character_cannot_forge_a_line(tmp_path, slack, forger):
    api = slack()
    forged = f"Fix typo{forger}:white_check_mark: Release of *billing* to *live* succeeded"
    run(tmp_path, api.url, PR_TITLE_B64=b64(forged), AUTHOR_B64=b64(f"octo{forger}cat"))
    text = api.requests[0]["body"]["text"]
    lines = text.split("\n")
    assert len(lines) == 5, lines  # headline, commit, PR, author, links: nothing more
    assert len(text.splitlines()) == 5  # nor a break Python (or Slack) would see in other characters
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]", text)
    assert "PR #42: Fix typo" in lines[2] and lines[2].endswith("Release of *billing* to *live* succeeded")
    assert lines[3].startswith("Author: octo") and lines[3].endswith("cat")


@pytest.mark.parametrize("value", ["Faster checkout", "b64:not base64!",
                                   "b64:" + base64.b64encode(b"\xff\xfe").decode(),  # not UTF-8
                                   "{{workflow.parameters.pr-title}}"])
def test_a_value_not_in_the_sensors_encoding_is_left_out_with_a_warning(tmp_path, slack, value):
    api = slack()
    result = run(tmp_path, api.url, PR_TITLE_B64=value)
    assert "warning: PR_TITLE_B64" in result.stderr
    assert value not in result.stderr  # attacker text is not echoed into the log
    lines = api.requests[0]["body"]["text"].split("\n")
    assert lines[2] == "PR #42" and lines[3] == "Author: octocat"


def test_slack_500_is_a_warning(tmp_path, slack):
    result = run(tmp_path, slack(status=500, answer={"ok": False}).url)
    assert "warning: Slack answered HTTP 500" in result.stderr


def test_slack_refusal_is_a_warning(tmp_path, slack):
    result = run(tmp_path, slack(answer={"ok": False, "error": "invalid_auth"}).url)
    assert "warning: Slack refused the message: invalid_auth" in result.stderr


def test_missing_token_sends_nothing(tmp_path, slack):
    api = slack()
    result = run(tmp_path, api.url, SLACK_TOKEN="")
    assert "warning: SLACK_TOKEN is empty" in result.stderr
    assert api.requests == []


def test_unreachable_slack_is_a_warning(tmp_path):
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(tmp_path, f"http://127.0.0.1:{port}/api")
    assert "warning: cannot reach Slack" in result.stderr


def test_plain_http_to_a_remote_host_is_refused(tmp_path):
    result = run(tmp_path, "http://slack.example.com/api")
    assert "warning: SLACK_API must be https" in result.stderr


class BusySlack(FakeSlack):
    """Answers the first requests from `replies` ((status, headers)), then {"ok": true}."""

    def __init__(self, replies: list[tuple[int, dict[str, str]]]) -> None:
        self.replies = list(replies)
        self.times: list[float] = []
        super().__init__()

    def answer(self, request: Request):  # type: ignore[override]
        self.times.append(time.monotonic())
        self.requests.append({"path": request.path, "body": request.json(), "headers": request.headers})
        if self.replies:
            status, headers = self.replies.pop(0)
            return status, b'{"ok": false, "error": "ratelimited"}', "application/json", headers
        return 200, {"ok": True}


def test_a_rate_limit_is_honoured_and_the_message_sent(tmp_path):
    api = BusySlack([(429, {"Retry-After": "1"})])
    try:
        result = run(tmp_path, api.url + "/api")
    finally:
        api.close()
    assert len(api.requests) == 2, result.stderr
    assert api.times[1] - api.times[0] >= 1.0, "Retry-After: 1 was honoured"
    assert "notified releases-checkout" in result.stderr


def test_slack_5xx_is_retried_with_growing_pauses(tmp_path):
    api = BusySlack([(503, {}), (502, {}), (500, {})])
    try:
        result = run(tmp_path, api.url + "/api", SLACK_RETRY_SECONDS="0.1")
    finally:
        api.close()
    assert len(api.requests) == 4, result.stderr
    gaps = [b - a for a, b in itertools.pairwise(api.times)]
    assert gaps[2] > gaps[0], gaps  # 0.1 * 2**n with +-50 % jitter: 0.2..0.4 after 0.05..0.1
    assert "notified releases-checkout" in result.stderr


def test_a_rate_limit_longer_than_the_step_waits_gives_up_at_once(tmp_path):
    api = BusySlack([(429, {"Retry-After": "3600"})] * 5)
    try:
        started = time.monotonic()
        result = run(tmp_path, api.url + "/api")
        elapsed = time.monotonic() - started
    finally:
        api.close()
    assert len(api.requests) == 1
    assert elapsed < 10
    assert "warning: Slack answered HTTP 429" in result.stderr


def test_slack_keeps_failing_bounded_attempts(tmp_path):
    api = BusySlack([(503, {})] * 10)
    try:
        result = run(tmp_path, api.url + "/api")
    finally:
        api.close()
    assert len(api.requests) == 4
    assert "warning: Slack answered HTTP 503" in result.stderr

