"""Tell the service's Slack channel how a release ended. Never fails the release.

Step script of the release Workflow's onExit handler (docs/release-contract.md,
sections 2 and 4, where its variables are listed); runs in the `release-tools` image as
`python3 notify.py`:

    SLACK_TOKEN    bot token (chat:write), from a Secret; sent only in the Authorization header
    CHANNEL, STATUS, VERIFY_STATUS, SUPERSEDED_BY (newest-wins only)
    SERVICE, ENVIRONMENT, REVISION (full sha), PR_NUMBER (digits)
    PR_TITLE_B64, AUTHOR_B64   payload text as the Sensor encodes it: `b64:` + base64 (or empty)
    WORKFLOW_URL, ARGOCD_URL   links to the Argo Workflows and Argo CD UIs
    SLACK_API      default https://slack.com/api (tests: a fake server on 127.0.0.1)
    SLACK_RETRY_SECONDS  base of the backoff before Slack is asked again (429, 5xx, no answer), default 1

No outputs; exit code 0 always. A Slack outage, a bad token or a missing one prints a
warning (never the token) and the release's own result stands.

Owns the message (`message_text`): the PR title and author, attacker-controlled, are
decoded, folded onto one line and escaped for Slack mrkdwn (&, <, >), never interpreted.
Does not own: the Slack token's Secret, the thread of a release (`slack_thread.py`).

Decisions: docs/decisions/0100-payload-base64-from-the-sensor.md,
docs/decisions/0101-fold-control-characters-in-slack-text.md.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
from _common import SHA, StepError, api_base, payload_text  # api_base: https, or loopback http (tests)
from _retry import Backoff, Deadline, fetch_with_retries, number

# Slack's 429 (after its Retry-After, when that is at most 20 s), its 5xx and no answer are
# tried again, SLACK_ATTEMPTS times at most, with exponential backoff and jitter from
# $SLACK_RETRY_SECONDS (default 1, 0..30), within SLACK_DEADLINE_SECONDS in all.
SLACK_ATTEMPTS = 4
SLACK_DEADLINE_SECONDS = 45.0


def slack_backoff() -> Backoff:
    try:
        base = number(os.environ, "SLACK_RETRY_SECONDS", 1, 0, 30)
    except StepError as error:
        log(f"warning: {error}; using 1")
        base = 1.0
    return Backoff(attempts=SLACK_ATTEMPTS, base=base, cap=20.0)

RESULTS = {
    "Succeeded": (":white_check_mark:", "succeeded"),
    "Failed": (":x:", "failed"),
    "Error": (":warning:", "errored"),
}


SUPERSEDED_BY_ANNOTATION = "release-pipeline/superseded-by"
# A Workflow name: a DNS-1123 subdomain (an unresolved `{{...}}` tag never matches).
WORKFLOW_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def superseded_by(environ: Mapping[str, str]) -> str | None:
    """The newer release that stopped this one, when SUPERSEDED_BY holds a valid Workflow name."""
    name = environ.get("SUPERSEDED_BY", "").strip()
    return name if len(name) <= 253 and WORKFLOW_NAME.fullmatch(name) else None


def log(message: str) -> None:
    print(f"notify: {message}", file=sys.stderr, flush=True)


def escape(text: str) -> str:
    """Slack mrkdwn escaping: the three control characters, nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# C0 and C1 controls (newline, CR, tab, NEL ...), DEL, the Unicode line and paragraph
# separators, and the bidirectional marks, embeddings, overrides and isolates (which can
# make text read in another order than it is: "Trojan Source").
FOLDED = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]+")


def fold(text: str) -> str:
    """`text` on one line: every run of control, separator or bidi characters becomes one space."""
    return FOLDED.sub(" ", text).strip()


def shown(environ: Mapping[str, str], name: str) -> str:
    """Payload text of `name` (a `*_B64` variable) fit for a Slack line: decoded, folded, escaped.

    A value that is not the Sensor's encoding is left out (""), with a warning naming it.
    """
    try:
        return escape(fold(payload_text(environ, name)))
    except StepError as error:
        log(f"warning: {error}; left out of the message")
        return ""


def link(url: str, label: str) -> str | None:
    """A Slack link to an http(s) URL, or None when the URL is not one we can embed safely."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or re.search(r"[\s<>|]", url):
        return None
    return f"<{url}|{label}>"


def message_text(environ: Mapping[str, str]) -> str:
    status = environ.get("STATUS", "")
    service = escape(environ.get("SERVICE", "") or "unknown service")
    environment = escape(environ.get("ENVIRONMENT", "") or "unknown environment")
    emoji, verb = RESULTS.get(status, (":grey_question:", f"ended with status {status or 'unknown'}"))
    headline = f"{emoji} Release of *{service}* to *{environment}* {escape(verb)}"
    if status == "Succeeded" and environ.get("VERIFY_STATUS") == "paused":
        headline = f":hourglass_flowing_sand: Release of *{service}* to *{environment}* is waiting for promotion"
    newer = superseded_by(environ)
    if status != "Succeeded" and newer:
        # Stopped by newest-wins: `{{workflow.status}}` says Failed, but nothing failed.
        headline = f":fast_forward: Release of *{service}* to *{environment}* was superseded by {escape(newer)}"

    revision = environ.get("REVISION", "")
    lines = [headline]
    if SHA.fullmatch(revision):
        lines.append(f"Commit `{revision[:7]}` ({revision})")
    elif revision:
        lines.append(f"Commit {escape(fold(revision))}")
    pr_number = environ.get("PR_NUMBER", "")
    title = shown(environ, "PR_TITLE_B64")
    author = shown(environ, "AUTHOR_B64")
    if re.fullmatch(r"[0-9]+", pr_number):
        lines.append(f"PR #{pr_number}: {title}" if title else f"PR #{pr_number}")
    if author:
        lines.append(f"Author: {author}")
    links = [
        link(environ.get("WORKFLOW_URL", ""), "Workflow"),
        link(environ.get("ARGOCD_URL", ""), "Argo CD"),
    ]
    if any(links):
        lines.append(" | ".join(item for item in links if item))
    return "\n".join(lines)


def post(api: str, token: str, channel: str, text: str) -> str | None:
    """Send the message; None on success, else a reason (never containing the token)."""
    # parse "none" and no link_names: nothing in the text becomes a mention or a link
    # except the <url|label> links built above.
    body = {
        "channel": channel,
        "text": text,
        "mrkdwn": True,
        "parse": "none",
        "link_names": False,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    request = urllib.request.Request(
        f"{api}/chat.postMessage",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "release-pipeline-notify",
        },
    )
    try:
        response = fetch_with_retries(request, what="chat.postMessage", backoff=slack_backoff(),
                                      deadline=Deadline(SLACK_DEADLINE_SECONDS), log=log, timeout=15)
    except StepError as error:  # no answer (Unreachable) or out of time (DeadlineExceeded)
        return f"cannot reach Slack: {error}"
    if response.status != 200:
        return f"Slack answered HTTP {response.status}"
    try:
        answer = json.loads(response.body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        error = answer.get("error", "unknown error") if isinstance(answer, dict) else "unexpected answer"
        return f"Slack refused the message: {str(error)[:100]}"
    return None


def main() -> int:
    try:
        environ = dict(os.environ)
        token = environ.get("SLACK_TOKEN", "").strip()
        channel = environ.get("CHANNEL", "").strip()
        api = api_base(environ.get("SLACK_API") or "https://slack.com/api")
        if not token:
            log("warning: SLACK_TOKEN is empty; no notification sent")
        elif not channel:
            log("warning: CHANNEL is empty; no notification sent")
        elif api is None:
            log("warning: SLACK_API must be https (plain http only to a loopback address); no notification sent")
        else:
            reason = post(api, token, channel, message_text(environ))
            if reason:
                log(f"warning: {reason.replace(token, '[redacted]')}; the release result stands")
            else:
                log(f"notified {channel}")
    except Exception as error:  # a notification must never fail the release
        log(f"warning: notification failed: {type(error).__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
