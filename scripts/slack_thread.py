"""One Slack thread per release: open it, record it on the release's objects, update it.

Step script of the release Workflow when Slack threads are on (`slack.threads` per
stack, `slackThreads` per service; docs/release-contract.md, sections 2, 4 and 6, where
its variables are listed). Runs in the `release-tools` image as `python3 slack_thread.py`,
with the release ServiceAccount's token (patch its Application and its Rollout). Never
fails the release: every path exits 0, a Slack or API failure is a warning.

    MODE           announce | stage | finish
    SLACK_TOKEN    bot token (chat:write), from a Secret; sent only in the Authorization header
    CHANNEL        channel name or id (announce; finish without a thread)
    THREAD         stage/finish: `<channel id>/<ts>`, announce's output (may be empty or an
                   unsubstituted Argo tag when announce did not run: then no thread)
    STAGE, STATE   stage: which line of the state table, and its new value
    STATUS, VERIFY_STATUS, SUPERSEDED_BY   finish: as in notify.py
    SERVICE ... ARGOCD_URL   what notify.py takes, for the parent message's header
    APPLICATION, APPLICATION_NAMESPACE, ROLLOUT, ROLLOUT_NAMESPACE   the objects that carry the thread
    SLACK_API, SLACK_RETRY_SECONDS, K8S_API_URL, K8S_TOKEN_FILE, K8S_CA_FILE, OUTPUT_DIR

Outputs: `thread` (announce; "" when Slack refused). Payload text is decoded, folded and
escaped by notify.py's `message_text` before it is posted or stored.

Decisions: docs/decisions/0419-slack-thread-recorded-on-the-releases-objects.md,
docs/decisions/0101-fold-control-characters-in-slack-text.md.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
import notify  # same directory: the header text, escaping, links
from _common import StepError, api_base, write_output
from _kube import Kube, KubeError  # Kube: get and merge-patch one named object
from _retry import Deadline, fetch_with_retries

THREAD_ANNOTATION = "release-pipeline/slack-thread"
REVISION_ANNOTATION = "release-pipeline/slack-thread-revision"
STATE_ANNOTATION = "release-pipeline/slack-thread-state"
HEADER_ANNOTATION = "release-pipeline/slack-thread-header"
# The state table, in order; the only keys the state annotation may hold.
STAGES: tuple[str, ...] = ("tests", "image", "promoted", "synced", "canary", "result")
THREAD = re.compile(r"^([A-Z0-9]{1,20})/([0-9]{1,12}\.[0-9]{1,9})$")
STATE_VALUE = re.compile(r"^[A-Za-z0-9 ._:/#()-]{1,60}$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
HEADER_MAX = 2000
USER_AGENT = "release-pipeline-slack-thread"
CONFLICT_RETRIES = 5
GOOD = ("passed", "pushed", "ready", "synced", "healthy", "completed", "succeeded", "promoted", "skipped")
BAD = ("failed", "aborted", "errored", "error", "degraded")
WAITING = ("paused", "waiting")
SUPERSEDED = "superseded"


def log(message: str) -> None:
    print(f"slack_thread: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the message


def parse_thread(value: str) -> tuple[str, str] | None:
    match = THREAD.fullmatch(value.strip())
    return (match.group(1), match.group(2)) if match else None


def clean_state(state: object) -> dict[str, str]:
    """Only known stages with short plain values: the annotation is data from the cluster."""
    if not isinstance(state, Mapping):
        return {}
    return {k: str(state[k]) for k in STAGES if isinstance(state.get(k), str) and STATE_VALUE.fullmatch(state[k])}


def mark(value: str | None) -> str:
    if not value:
        return ":white_small_square:"
    word = value.lower()
    if word.startswith(SUPERSEDED):
        return ":fast_forward:"
    if any(w in word for w in BAD):
        return ":x:"
    if any(w in word for w in WAITING):
        return ":double_vertical_bar:"
    if any(word.startswith(w) for w in GOOD):
        return ":white_check_mark:"
    return ":hourglass_flowing_sand:"


def state_line(state: Mapping[str, str]) -> str:
    """The release at a glance: one cell per stage, in order."""
    return " | ".join(f"{mark(state.get(k))} {k}" + (f": {state[k]}" if state.get(k) else "") for k in STAGES)


def header_text(environ: Mapping[str, str]) -> str:
    """notify.py's message without its result line, headed by the release itself."""
    service = notify.escape(environ.get("SERVICE", "") or "unknown service")
    environment = notify.escape(environ.get("ENVIRONMENT", "") or "unknown environment")
    lines = notify.message_text(dict(environ)).splitlines()[1:]
    return "\n".join([f":rocket: Release of *{service}* to *{environment}*", *lines])[:HEADER_MAX]


def parent_text(header: str, state: Mapping[str, str]) -> str:
    return f"{header}\n{state_line(state)}"


def result_value(status: str, verify_status: str, superseded_by: str | None = None) -> str:
    if status == "Succeeded":
        return "paused (waiting for promotion)" if verify_status == "paused" else "succeeded"
    if superseded_by:
        # The state table takes short values only; the name when it fits.
        value = f"{SUPERSEDED} by {superseded_by}"
        return value if STATE_VALUE.fullmatch(value) else SUPERSEDED
    return {"Failed": "failed", "Error": "errored"}.get(status, "unknown")


# ------------------------------------------------------------------------ Slack


class Slack:
    def __init__(self, api: str, token: str) -> None:
        self.api, self.token = api, token

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The answer of a Web API method, or None after a warning (never the token)."""
        body = {"parse": "none", "link_names": False, "unfurl_links": False, "unfurl_media": False,
                "mrkdwn": True, **body}
        request = urllib.request.Request(
            f"{self.api}/{method}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json; charset=utf-8",
                     "User-Agent": USER_AGENT},
        )
        try:
            # notify.py's bounds: 429 (Retry-After), 5xx and no answer are tried again.
            response = fetch_with_retries(request, what=method, backoff=notify.slack_backoff(),
                                          deadline=Deadline(notify.SLACK_DEADLINE_SECONDS), log=log, timeout=15)
        except StepError as error:
            log(f"warning: {method}: cannot reach Slack: {error}")
            return None
        if response.status != 200:
            log(f"warning: {method}: Slack answered HTTP {response.status}")
            return None
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            refusal = answer.get("error", "unknown error") if isinstance(answer, dict) else "unexpected answer"
            log(f"warning: {method}: Slack refused: {str(refusal)[:100]}")
            return None
        return answer

    def post(self, channel: str, text: str, thread_ts: str | None = None,
             broadcast: bool = False) -> dict[str, Any] | None:
        body: dict[str, Any] = {"channel": channel, "text": text}
        if thread_ts:
            body |= {"thread_ts": thread_ts, "reply_broadcast": broadcast}
        return self.call("chat.postMessage", body)

    def update(self, channel: str, ts: str, text: str) -> dict[str, Any] | None:
        return self.call("chat.update", {"channel": channel, "ts": ts, "text": text})


# ------------------------------------------------------------------- Kubernetes


def object_path(kind: str, namespace: str, name: str) -> str:
    plural = {"Application": "applications", "Rollout": "rollouts"}[kind]
    if not (DNS1123.fullmatch(namespace) and DNS1123.fullmatch(name)):
        raise KubeError(f"{kind} {namespace}/{name}: not a valid name")
    return f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/{plural}/{name}"


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    value = (obj.get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def annotate(kube: Kube, path: str, annotations: Mapping[str, str | None]) -> None:
    kube.request("PATCH", path, {"metadata": {"annotations": dict(annotations)}})


def merge_state(kube: Kube, path: str, thread: str, update: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
    """Merge `update` into the Application's state if it still carries `thread`.

    Returns (header, merged state), or None when the Application belongs to another
    thread now (a newer release): this release's lines must not overwrite it.
    """
    for _ in range(CONFLICT_RETRIES):
        obj = kube.request("GET", path)
        current = annotations_of(obj)
        if current.get(THREAD_ANNOTATION) != thread:
            return None
        try:
            state = clean_state(json.loads(current.get(STATE_ANNOTATION) or "{}"))
        except ValueError:
            state = {}
        state |= clean_state(update)
        patch = {"metadata": {
            "resourceVersion": (obj.get("metadata") or {}).get("resourceVersion"),
            "annotations": {STATE_ANNOTATION: json.dumps(state, sort_keys=True, separators=(",", ":"))},
        }}
        try:
            kube.request("PATCH", path, patch)
        except KubeError as error:
            if error.code == 409:
                continue  # someone else merged first: read again
            raise
        return current.get(HEADER_ANNOTATION, ""), state
    raise KubeError(f"PATCH {path}: still conflicting after {CONFLICT_RETRIES} attempts")


# ------------------------------------------------------------------------ modes


def announce(environ: Mapping[str, str], slack: Slack, kube: Kube | None) -> None:
    write_output("thread", "")
    header = header_text(environ)
    state = {"result": "running"}
    answer = slack.post(environ.get("CHANNEL", "").strip(), parent_text(header, state))
    if not answer:
        return
    channel, ts = str(answer.get("channel", "")), str(answer.get("ts", ""))
    thread = f"{channel}/{ts}"
    if parse_thread(thread) is None:
        log("warning: Slack's answer has no channel id and ts; no thread")
        return
    write_output("thread", thread)
    log(f"opened thread {thread}")
    if kube is None:
        return
    revision = environ.get("REVISION", "")
    common = {THREAD_ANNOTATION: thread, REVISION_ANNOTATION: revision if notify.SHA.fullmatch(revision) else ""}
    targets = (
        ("Application", environ.get("APPLICATION_NAMESPACE", ""), environ.get("APPLICATION", ""),
         common | {STATE_ANNOTATION: json.dumps(state, separators=(",", ":")), HEADER_ANNOTATION: header}),
        ("Rollout", environ.get("ROLLOUT_NAMESPACE", ""), environ.get("ROLLOUT", ""), common),
    )
    for kind, namespace, name, values in targets:
        try:
            annotate(kube, object_path(kind, namespace, name), values)
        except KubeError as error:
            log(f"warning: cannot record the thread on the {kind}: {error}")


def advance(environ: Mapping[str, str], slack: Slack, kube: Kube | None, stage: str, value: str,
            *, broadcast: bool = False, also: Mapping[str, str] | None = None) -> bool:
    """Reply in the thread and update the parent's state table; False when there is no thread."""
    thread = environ.get("THREAD", "").strip()
    parsed = parse_thread(thread)
    if parsed is None:
        return False
    channel, ts = parsed
    merged = None
    if kube is not None:
        try:
            path = object_path("Application", environ.get("APPLICATION_NAMESPACE", ""), environ.get("APPLICATION", ""))
            merged = merge_state(kube, path, thread, {**(also or {}), stage: value})
        except KubeError as error:
            log(f"warning: cannot merge the release state: {error}")
    if merged is not None:
        header, state = merged
        slack.update(channel, ts, parent_text(header or header_text(environ), state))
    slack.post(channel, f"{mark(value)} *{stage}*: {notify.escape(value)}", thread_ts=ts, broadcast=broadcast)
    return True


def run(environ: Mapping[str, str]) -> None:
    token = environ.get("SLACK_TOKEN", "").strip()
    api = api_base(environ.get("SLACK_API") or "https://slack.com/api")
    mode = environ.get("MODE", "")
    if mode == "announce":
        write_output("thread", "")
    if not token or api is None:
        log("warning: SLACK_TOKEN is empty or SLACK_API is not https; nothing sent")
        return
    slack = Slack(api, token)
    try:
        kube: Kube | None = Kube(environ, USER_AGENT)
    except KubeError as error:
        log(f"warning: no Kubernetes API ({error}); the thread is not recorded on the release's objects")
        kube = None
    if mode == "announce":
        announce(environ, slack, kube)
    elif mode == "stage":
        stage, value = environ.get("STAGE", ""), environ.get("STATE", "")
        if stage not in STAGES or not STATE_VALUE.fullmatch(value):
            log(f"warning: unknown stage {stage[:20]!r} or state; nothing sent")
        elif not advance(environ, slack, kube, stage, value):
            log("no thread (announce did not open one); nothing sent")
    elif mode == "finish":
        verify = environ.get("VERIFY_STATUS", "")
        value = result_value(environ.get("STATUS", ""), verify, notify.superseded_by(dict(environ)))
        # verify's outcome is the `synced` line: Argo CD synced the commit, the Rollout took it.
        also = {"synced": verify} if verify in ("healthy", "paused") else {}
        # No thread: the one message notify.py would have sent.
        if not advance(environ, slack, kube, "result", value, broadcast=value in ("failed", "errored"), also=also) \
                and slack.post(environ.get("CHANNEL", "").strip(), notify.message_text(dict(environ))):
            log("no thread; posted the result on its own")
    else:
        log(f"warning: unknown MODE {mode[:20]!r}; nothing sent")


def main() -> int:
    try:
        run(dict(os.environ))
    except Exception as error:  # a notification must never fail the release
        log(f"warning: failed: {type(error).__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
