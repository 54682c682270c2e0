"""Wait until Argo CD has synced the promoted commit and the Rollout has taken it.

Step script of the release Workflow (docs/release-contract.md, sections 2, 4 and 5); runs
in the `release-tools` image as `python3 verify.py`, with the release ServiceAccount's
token (get/patch the Application, get the Deployment and the Rollout):

    APPLICATION, APPLICATION_NAMESPACE   the Argo CD Application and its namespace
    DEPLOYMENT, ROLLOUT, SERVICE_NAMESPACE   the chart's Deployment, the Rollout, their namespace
    HELM_REVISION          the helm repository commit `promote.py` pushed (40 hex)
    IMAGE_TAG              optional: the image tag it set (the source commit sha); lets a
                           later commit that carries the same tag count as synced
    TIMEOUT_SECONDS        overall limit, default 1800 (1..86400): every API call ends by it too
    POLL_SECONDS           pause between polls, default 5 (0.05..600); a transient API error
                           (429, 5xx, no answer) is retried with exponential backoff from it
    K8S_API_URL, K8S_TOKEN_FILE, K8S_CA_FILE   tests; default the pod's API, token and CA
    OUTPUT_DIR             where outputs go, default /tmp/outputs

Outputs: `status` = "healthy" or "paused" (exit 0); on failure "failed" or "timeout"
(exit 1); `message`, a human sentence. Both are written on every exit path, SIGTERM
included (then "failed").

Owns the refresh, the waits and the verdict. Does not own: the promotion
(`promote.py`), the RBAC that allows the calls (components.access).

Decisions: docs/decisions/0418-verify-waits-for-the-sync-of-this-commit-and-the-new-template.md.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
from _common import SHA, StepError, Terminated, ignore_signals, raise_on_signals, write_output
from _kube import DNS1123_LABEL, DNS1123_SUBDOMAIN, Kube, TransientError
from _retry import Backoff, Deadline, DeadlineExceeded, number

REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"


class Timeout(StepError):
    """The deadline passed before the release settled."""


# Transient API errors: pauses from POLL_SECONDS doubling up to this, within TIMEOUT_SECONDS.
TRANSIENT_PAUSE_CAP_SECONDS = 60.0


def log(message: str) -> None:
    print(f"verify: {message}", file=sys.stderr, flush=True)


def _get(obj: object, *path: str) -> object:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------ the decisions (pure)


def application_state(app: dict[str, object], revision: str) -> tuple[str, str]:
    """("synced" | "other" | "wait" | "failed", message) for the Application's status.

    "other": a successful sync of another commit (maybe a later one carrying our tag).
    """
    sync_revision = _get(app, "status", "sync", "revision")
    operation = _get(app, "status", "operationState") or {}
    phase = _get(operation, "phase")
    op_revision = _get(operation, "syncResult", "revision") or _get(operation, "operation", "sync", "revision")
    message = str(_get(operation, "message") or "")
    if op_revision == revision and phase in ("Failed", "Error"):
        return "failed", f"Argo CD sync of {revision} ended {phase}: {message}"
    if sync_revision == revision and phase == "Succeeded" and _get(operation, "syncResult", "revision") == revision:
        return "synced", f"Argo CD synced {revision}"
    if phase == "Succeeded" and sync_revision and sync_revision == op_revision and sync_revision != revision:
        return "other", f"Argo CD synced {sync_revision}, not {revision}"
    return "wait", f"waiting for Argo CD to sync {revision} (sync revision {sync_revision}, operation {phase})"


def deployment_runs_tag(deployment: dict[str, object], tag: str) -> bool:
    """True if a container of the Deployment's pod template uses an image tagged `tag`."""
    containers = _get(deployment, "spec", "template", "spec", "containers") or []
    images = [str(_get(c, "image") or "") for c in containers if isinstance(c, dict)]
    return any(image.endswith(f":{tag}") or f":{tag}@" in image for image in images)


def rollout_state(rollout: dict[str, object], deployment_generation: int) -> tuple[str, str]:
    """("healthy" | "paused" | "wait" | "failed", message) for the Rollout against the Deployment generation."""
    status = _get(rollout, "status") or {}
    observed = _int(_get(status, "workloadObservedGeneration"))
    if observed is None or observed < deployment_generation:
        return "wait", (
            f"waiting for the Rollout to observe Deployment generation {deployment_generation} (observed {observed})"
        )
    own_generation = _int(_get(rollout, "metadata", "generation"))
    own_observed = _int(_get(status, "observedGeneration"))
    if own_generation is not None and own_observed is not None and own_observed != own_generation:
        return "wait", f"waiting for the Rollouts controller to observe Rollout generation {own_generation}"
    phase = _get(status, "phase")
    message = str(_get(status, "message") or "")
    if _get(status, "abort") is True:
        return "failed", f"the Rollout was aborted: {message}".rstrip(": ")
    if phase == "Degraded":
        return "failed", f"the Rollout is Degraded: {message}".rstrip(": ")
    if phase == "Healthy":
        return "healthy", "the Rollout is Healthy on the new version"
    if phase == "Paused":
        reasons = [str(_get(c, "reason")) for c in _get(status, "pauseConditions") or [] if isinstance(c, dict)]
        suffix = f" ({', '.join(reasons)})" if reasons else ""
        return "paused", f"waiting for promotion{suffix}"
    return "wait", f"waiting for the Rollout (phase {phase or 'unknown'}{': ' + message if message else ''})"


# ------------------------------------------------------------------ the steps


class Poller:
    """Polls until a deadline, logging each new state once; transient API errors are retried
    with exponential backoff (from the poll interval), never past the deadline."""

    def __init__(self, deadline: Deadline, interval: float) -> None:
        self.deadline = deadline
        self.interval = interval
        self.backoff = Backoff(attempts=1, base=interval, cap=max(interval, TRANSIENT_PAUSE_CAP_SECONDS))
        self.last = ""
        self.stage = "asking Argo CD to refresh"  # what a timeout message names

    def note(self, message: str) -> None:
        if message != self.last:
            log(message)
            self.last = message

    def call(self, what: str, fn, *args):  # type: ignore[no-untyped-def]
        failures = 0
        while True:
            try:
                return fn(*args)
            except DeadlineExceeded as error:
                log(f"{what}: {error}")
                raise Timeout(f"timed out {self.stage}") from None
            except TransientError as error:
                failures += 1
                self.note(f"{what}: {error} (retrying)")
                self.sleep(what, self.backoff.pause(failures))

    def sleep(self, waiting_for: str, seconds: float | None = None) -> None:
        pause = self.interval if seconds is None else seconds
        if pause >= self.deadline.remaining():
            raise Timeout(f"timed out {self.stage if seconds is not None else waiting_for}")
        time.sleep(pause)


def verify(environ: dict[str, str]) -> tuple[str, str]:
    config = read_config(environ)
    deadline = Deadline(config["timeout"])  # type: ignore[arg-type]
    kube = Kube(environ, "release-pipeline-verify", deadline)
    poll = Poller(deadline, config["interval"])  # type: ignore[arg-type]
    revision, tag = str(config["revision"]), str(config["image_tag"])
    app_path = f"/apis/argoproj.io/v1alpha1/namespaces/{config['app_ns']}/applications/{config['application']}"
    deployment_path = f"/apis/apps/v1/namespaces/{config['service_ns']}/deployments/{config['deployment']}"
    rollout_path = f"/apis/argoproj.io/v1alpha1/namespaces/{config['service_ns']}/rollouts/{config['rollout']}"

    poll.call(
        "asking Argo CD to refresh",
        kube.request,
        "PATCH",
        app_path,
        {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}},
    )
    log(f"asked Argo CD to refresh {config['application']}")
    poll.stage = f"waiting for Argo CD to sync {revision}"

    while True:
        state, message = application_state(
            poll.call("reading the Application", kube.request, "GET", app_path), revision
        )
        if state == "failed":
            raise StepError(message)
        if state == "synced":
            break
        if state == "other" and tag:
            deployment = poll.call("reading the Deployment", kube.request, "GET", deployment_path)
            if deployment_runs_tag(deployment, tag):
                message = f"{message}; it already carries image tag {tag}"
                break
        poll.note(message)
        poll.sleep(f"waiting for Argo CD to sync {revision}")
    log(message)
    poll.stage = "waiting for the Rollout"

    deployment = poll.call("reading the Deployment", kube.request, "GET", deployment_path)
    generation = _int(_get(deployment, "metadata", "generation"))
    if generation is None:
        raise StepError(f"the Deployment {config['deployment']} has no metadata.generation")
    while True:
        state, message = rollout_state(poll.call("reading the Rollout", kube.request, "GET", rollout_path), generation)
        if state == "failed":
            raise StepError(message)
        if state in ("healthy", "paused"):
            log(message)
            return state, message
        poll.note(message)
        poll.sleep("waiting for the Rollout")


def read_config(environ: dict[str, str]) -> dict[str, object]:
    def need(name: str, pattern: re.Pattern[str], what: str) -> str:
        value = environ.get(name, "")
        if not pattern.fullmatch(value) or len(value) > 253:
            raise StepError(f"{name} must be {what}, got {value!r}")
        return value

    image_tag = environ.get("IMAGE_TAG", "")
    if image_tag and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", image_tag):
        raise StepError(f"IMAGE_TAG must be an image tag or empty, got {image_tag!r}")
    timeout = number(environ, "TIMEOUT_SECONDS", 1800, 0.1, 86400)
    interval = number(environ, "POLL_SECONDS", 5, 0.05, 600)
    return {
        "application": need("APPLICATION", DNS1123_SUBDOMAIN, "an Application name"),
        "app_ns": need("APPLICATION_NAMESPACE", DNS1123_LABEL, "a namespace"),
        "deployment": need("DEPLOYMENT", DNS1123_SUBDOMAIN, "a Deployment name"),
        "rollout": need("ROLLOUT", DNS1123_SUBDOMAIN, "a Rollout name"),
        "service_ns": need("SERVICE_NAMESPACE", DNS1123_LABEL, "a namespace"),
        "revision": need("HELM_REVISION", SHA, "a full 40-hex commit sha"),
        "image_tag": image_tag,
        "timeout": timeout,
        "interval": interval,
    }


def main() -> int:
    raise_on_signals()
    status, message, code = "failed", "verify ended unexpectedly", 1
    try:
        status, message = verify(dict(os.environ))
        code = 0
    except (Timeout, DeadlineExceeded) as error:
        status, message = "timeout", str(error)
        log(f"error: {error}")
    except Terminated as error:
        message = f"{error} before the release settled"
        log(f"error: {message}")
    except StepError as error:
        message = str(error)
        log(f"error: {error}")
    except Exception as error:  # the status output is written whatever happened
        message = f"verify failed: {type(error).__name__}"
        log(f"error: {message}")
    finally:
        ignore_signals()  # the outputs are written, also when a signal cut the step short
        write_output("status", status)
        write_output("message", message)
    return code


if __name__ == "__main__":
    sys.exit(main())
