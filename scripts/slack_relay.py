"""The Slack relay: Argo CD's and Argo Rollouts' events into the release's own Slack thread.

A long-running server (Deployment `release-pipeline-slack-relay`, workflows namespace;
components.slack_relay) in the `release-tools` image, `python3 slack_relay.py`. The
notification controllers' `webhook` service `slack-thread` POSTs to `/event`

    {"kind": "Application" | "Rollout", "name": ..., "namespace": ..., "event": ..., "step": "2"?}

names only, never text. The relay reads the thread the release recorded on that object,
replies in it, merges the `synced` (Application) or `canary` (Rollout) line into the
Application's state annotation (resourceVersion precondition, retried on 409) and
updates the parent, through the Kubernetes API with its own ServiceAccount token.

Environment: SLACK_TOKEN, ENVIRONMENT (a Rollout `<service>`'s Application is
`<service>-<env>`), APPLICATION_NAMESPACE, PORT and LISTEN_ADDRESS (default 8080,
0.0.0.0), SLACK_API, SLACK_RETRY_SECONDS, K8S_API_URL, K8S_TOKEN_FILE, K8S_CA_FILE.

Answers: 200 when the thread heard of it (also when Slack failed: a warning, never the
token), 204 nothing to do (no thread, no object), 400 unknown kind, event or name,
404/405 other paths and methods, 411/413 a body without a length or over MAX_BODY, 502
when the Kubernetes API fails. `GET /healthz` answers 200 for the probes.

Decisions: docs/decisions/0417-slack-relay-joins-controller-events-to-the-thread.md,
docs/decisions/0419-slack-thread-recorded-on-the-releases-objects.md.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import slack_thread as st  # same directory: Slack, Kube, merge_state, the state table
from _common import StepError
from _retry import number

MAX_BODY = 4096
REQUEST_TIMEOUT_SECONDS = 10
EVENT_PATH = "/event"
HEALTH_PATH = "/healthz"
STEP = re.compile(r"^[0-9]{1,4}$")
# kind -> event -> (the state table's line, its value; `{step}` filled in when known).
EVENTS: dict[str, dict[str, tuple[str, str]]] = {
    "Application": {
        "sync-succeeded": ("synced", "synced"),
        "sync-failed": ("synced", "sync failed"),
        "health-degraded": ("synced", "degraded"),
    },
    "Rollout": {
        "step-completed": ("canary", "step {step} completed"),
        "paused": ("canary", "paused at step {step}"),
        "aborted": ("canary", "aborted"),
        "completed": ("canary", "completed"),
    },
}


def log(message: str) -> None:
    print(f"slack_relay: {message}", file=sys.stderr, flush=True)


class BadEvent(ValueError):
    """The request is not an event we know: answered 400."""


def parse_event(body: bytes) -> tuple[str, str, str, str, str | None]:
    """(kind, namespace, name, event, step) of a request body, or BadEvent."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadEvent("not JSON") from None
    if not isinstance(data, dict):
        raise BadEvent("not a JSON object")
    kind, name, namespace, event = (data.get(k) for k in ("kind", "name", "namespace", "event"))
    if not isinstance(kind, str) or kind not in EVENTS:
        raise BadEvent("unknown kind")
    if not isinstance(event, str) or event not in EVENTS[kind]:
        raise BadEvent(f"unknown {kind} event")
    if not (isinstance(name, str) and isinstance(namespace, str)
            and st.DNS1123.fullmatch(name) and st.DNS1123.fullmatch(namespace)
            and len(name) <= 253 and len(namespace) <= 63):
        raise BadEvent("not a valid name or namespace")
    # A template renders a missing index as "<no value>": then the line says no number.
    step = data.get("step")
    step = str(step) if isinstance(step, int | str) and STEP.fullmatch(str(step)) else None
    return kind, namespace, name, event, step


def line_for(kind: str, event: str, step: str | None) -> tuple[str, str]:
    stage, value = EVENTS[kind][event]
    if "{step}" in value:
        value = value.format(step=step) if step is not None else value.replace(" {step}", "").replace(
            " at step", "")
    return stage, value


class Relay:
    """What one event does; shared by the server's threads (no state of its own)."""

    def __init__(self, environ: Mapping[str, str], slack: st.Slack, kube: st.Kube) -> None:
        self.environment = environ.get("ENVIRONMENT", "").strip()
        self.application_namespace = environ.get("APPLICATION_NAMESPACE", "").strip()
        self.slack, self.kube = slack, kube

    def handle(self, kind: str, namespace: str, name: str, event: str, step: str | None) -> int:
        try:
            obj = self.kube.request("GET", st.object_path(kind, namespace, name))
        except st.KubeError as error:
            if error.code in (403, 404):
                log(f"{kind} {namespace}/{name}: not readable here ({error}); nothing sent")
                return 204
            log(f"warning: {kind} {namespace}/{name}: {error}")
            return 502
        thread = st.annotations_of(obj).get(st.THREAD_ANNOTATION, "")
        if st.parse_thread(thread) is None:
            return 204  # released before threads were on, or announce could not open one
        if kind == "Application":
            app_namespace, app_name = namespace, name
        else:
            app_namespace, app_name = self.application_namespace, f"{name}-{self.environment}"
        stage, value = line_for(kind, event, step)
        environ = {"THREAD": thread, "APPLICATION": app_name, "APPLICATION_NAMESPACE": app_namespace}
        # slack_thread.advance: merge the line (only into this thread's state), update the
        # parent, reply in the thread; each failure is a warning.
        st.advance(environ, self.slack, self.kube, stage, value,
                   broadcast=any(w in value for w in ("failed", "aborted", "degraded")))
        log(f"{kind} {namespace}/{name}: {event} -> {stage}: {value}")
        return 200


def handler_for(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "release-pipeline-slack-relay"
        sys_version = ""
        timeout = REQUEST_TIMEOUT_SECONDS  # a slow client cannot hold a thread for long

        def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None and status != 204 else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == HEALTH_PATH:
                return self._answer(200, {"ok": True})
            self._answer(404 if self.path != EVENT_PATH else 405, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != EVENT_PATH:
                return self._answer(404, {"error": "not found"})
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                return self._answer(411, {"error": "length required"})
            if int(length) > MAX_BODY:
                self.close_connection = True
                return self._answer(413, {"error": "too large"})
            try:
                kind, namespace, name, event, step = parse_event(self.rfile.read(int(length)))
            except BadEvent as error:
                return self._answer(400, {"error": str(error)})
            except OSError:
                self.close_connection = True
                return None
            try:
                status = relay.handle(kind, namespace, name, event, step)
            except Exception as error:  # a notification never fails anything; answer and go on
                log(f"warning: {kind} {namespace}/{name}: {event}: failed: {type(error).__name__}")
                status = 502
            self._answer(status, {"ok": status == 200})

        def do_PUT(self) -> None:
            self._answer(405, {"error": "method not allowed"})

        do_PATCH = do_DELETE = do_PUT

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per event from Relay.handle instead; never headers

    return Handler


def serve(environ: Mapping[str, str]) -> ThreadingHTTPServer:
    token = environ.get("SLACK_TOKEN", "").strip()
    api = st.api_base(environ.get("SLACK_API") or "https://slack.com/api")
    if api is None:
        raise SystemExit("slack_relay: SLACK_API must be https (plain http only to a loopback address)")
    if not token:
        log("warning: SLACK_TOKEN is empty: Slack will refuse every call")
    if not (environ.get("ENVIRONMENT", "").strip() and environ.get("APPLICATION_NAMESPACE", "").strip()):
        raise SystemExit("slack_relay: ENVIRONMENT and APPLICATION_NAMESPACE are required")
    relay = Relay(environ, st.Slack(api, token), st.Kube(environ, st.USER_AGENT))
    port = int(number(environ, "PORT", 8080, 0, 65535, integer=True))
    server = ThreadingHTTPServer((environ.get("LISTEN_ADDRESS") or "0.0.0.0", port), handler_for(relay))
    server.daemon_threads = True
    return server


def main() -> int:
    try:
        server = serve(dict(os.environ))
    except StepError as error:  # KubeError included
        log(f"cannot start: {error}")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(f"listening on {os.environ.get('LISTEN_ADDRESS') or '0.0.0.0'}:{server.server_port}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
