"""Newest-wins releases: stop this service's older releases, or this one if a newer one took over.

Step script of the release Workflow when newest-wins is on (components.workflows); runs
in the `release-tools` image as `python3 supersede.py`, with the release ServiceAccount's
token (list, get, patch `workflows` in the workflows and the build namespace):

    MODE                 "supersede" (the DAG's `supersede` task) or "guard" (`newest-check`)
    SERVICE, ENVIRONMENT this release's service and environment (from Pulumi config)
    RELEASE_TEMPLATE     the service's release WorkflowTemplate: only its Workflows count
    WORKFLOW_NAME        this release Workflow (`{{workflow.name}}`)
    WORKFLOWS_NAMESPACE, BUILD_NAMESPACE   where the releases and their child builds live
    MAX_ATTEMPTS         default 5, 1..20 (a conflict or a transient API error: list again)
    BACKOFF_SECONDS      default 1, 0..60: base of the exponential backoff (with jitter)
    TIMEOUT_SECONDS      default 300, 1..3600: the whole step, every API call included
    K8S_API_URL, K8S_TOKEN_FILE, K8S_CA_FILE   tests; default the pod's API, token and CA
    OUTPUT_DIR           default /tmp/outputs

Outputs: `stopped` (how many releases this step stopped); guard mode also `superseded`
("true" or "false"); `message`, written on every exit path (a bad setting, an API
failure, the deadline, SIGTERM).

Owns which Workflows to stop (pure functions `to_stop`, `newer_claim`) and the stop
itself (a merge patch on the resourceVersion decided on). Does not own: the RBAC that
allows it (components.access), the DAG that skips promote.

Decisions: docs/decisions/0421-supersede-stops-by-merge-patch-with-resource-version.md.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
import _kube
from _common import StepError, ignore_signals, raise_on_signals, write_output
from _kube import DNS1123_LABEL, DNS1123_SUBDOMAIN, Conflict, NotFound, TransientError
from _retry import Backoff, Deadline, number, retry

WORKFLOWS = "/apis/argoproj.io/v1alpha1/namespaces/{namespace}/workflows"

SERVICE_LABEL = "release-pipeline/service"
ENVIRONMENT_LABEL = "release-pipeline/environment"
PARENT_LABEL = "release-pipeline/release-workflow"  # on child build Workflows
ACTIVE_PHASES = frozenset({"", "Pending", "Running"})
NOT_STARTED = frozenset({"Skipped", "Omitted"})
PROMOTE = "promote"
SUPERSEDE = "supersede"
STOP = "Stop"
# On a stopped release: the newer release that stopped it (its exit handler reads it
# as `{{workflow.annotations.release-pipeline/superseded-by}}`; notify.py SUPERSEDED_BY).
SUPERSEDED_BY_ANNOTATION = "release-pipeline/superseded-by"

Workflow = Mapping[str, Any]


def log(message: str) -> None:
    print(f"supersede: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the decisions (pure)


def _get(obj: object, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def order_key(workflow: Workflow) -> tuple[str, str]:
    """Age order: creationTimestamp (RFC 3339 in UTC, so it sorts as text), then name."""
    return (str(_get(workflow, "metadata", "creationTimestamp") or ""), str(_get(workflow, "metadata", "name") or ""))


def phase(workflow: Workflow) -> str:
    return str(_get(workflow, "status", "phase") or "")


def is_shut_down(workflow: Workflow) -> bool:
    return bool(_get(workflow, "spec", "shutdown"))


def _nodes(workflow: Workflow, task: str) -> list[Mapping[str, Any]]:
    nodes = _get(workflow, "status", "nodes") or {}
    return [n for n in nodes.values() if isinstance(n, Mapping)
            and task in (n.get("displayName"), n.get("templateName"))] if isinstance(nodes, Mapping) else []


def started(workflow: Workflow, task: str) -> bool:
    """True once the DAG has a node for `task` that is not Skipped or Omitted (Pending on the mutex counts)."""
    return any(n.get("phase") not in NOT_STARTED for n in _nodes(workflow, task))


def claimed(workflow: Workflow) -> bool:
    """A release that has run (or is running) its own `supersede`: it will promote unless it fails."""
    return any(n.get("phase") in ("Running", "Succeeded") for n in _nodes(workflow, SUPERSEDE))


def releases_of(workflows: Iterable[Workflow], service: str, environment: str, template: str) -> list[Workflow]:
    """Release Workflows of this service, environment and template (a label selector may return more)."""
    return [
        w for w in workflows
        if _get(w, "metadata", "labels", SERVICE_LABEL) == service
        and _get(w, "metadata", "labels", ENVIRONMENT_LABEL) == environment
        and _get(w, "spec", "workflowTemplateRef", "name") == template
    ]


def _me(workflows: Iterable[Workflow], name: str) -> Workflow:
    for w in workflows:
        if _get(w, "metadata", "name") == name:
            return w
    raise StepError(f"release Workflow {name} is not among the service's releases (labels or template differ)")


def to_stop(workflows: Iterable[Workflow], me: str) -> list[Workflow]:
    """The releases `me` stops: older, Pending or Running, not shut down, promote not started; oldest first."""
    items = list(workflows)
    mine = order_key(_me(items, me))
    return sorted(
        (w for w in items
         if order_key(w) < mine and phase(w) in ACTIVE_PHASES and not is_shut_down(w) and not started(w, PROMOTE)),
        key=order_key,
    )


def newer_claim(workflows: Iterable[Workflow], me: str) -> Workflow | None:
    """The oldest newer release that has claimed the environment, if any."""
    items = list(workflows)
    mine = order_key(_me(items, me))
    newer = sorted(
        (w for w in items
         if order_key(w) > mine and phase(w) not in ("Failed", "Error") and not is_shut_down(w) and claimed(w)),
        key=order_key,
    )
    return newer[0] if newer else None


def children_to_stop(children: Iterable[Workflow]) -> list[Workflow]:
    """Child build Workflows still running and not already shut down."""
    return sorted((w for w in children if phase(w) in ACTIVE_PHASES and not is_shut_down(w)), key=order_key)


# ------------------------------------------------------------------ Kubernetes API


class Kube(_kube.Kube):
    """The shared client (_kube.py) with the two calls this step makes."""

    def __init__(self, environ: Mapping[str, str], deadline: Deadline | None = None) -> None:
        super().__init__(environ, "release-pipeline-supersede", deadline)

    def list_workflows(self, namespace: str, selector: Mapping[str, str]) -> list[Workflow]:
        query = urllib.parse.urlencode({"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))})
        items = self.request("GET", WORKFLOWS.format(namespace=namespace) + "?" + query).get("items")
        return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []

    def stop(self, namespace: str, workflow: Workflow, *, precondition: bool = True,
             superseded_by: str | None = None) -> None:
        """`spec.shutdown: Stop`; with `precondition`, only if it is still the version the decision saw.

        With `superseded_by` (release Workflows), the same patch records the newer release
        in the `release-pipeline/superseded-by` annotation.
        """
        name = str(_get(workflow, "metadata", "name"))
        patch: dict[str, Any] = {"spec": {"shutdown": STOP}}
        metadata: dict[str, Any] = {}
        version = _get(workflow, "metadata", "resourceVersion")
        if version and precondition:
            metadata["resourceVersion"] = str(version)
        if superseded_by:
            metadata["annotations"] = {SUPERSEDED_BY_ANNOTATION: superseded_by}
        if metadata:
            patch["metadata"] = metadata
        self.request("PATCH", WORKFLOWS.format(namespace=namespace) + "/" + urllib.parse.quote(name), patch)


# ------------------------------------------------------------------ the step


def _stop_children(kube: Kube, config: Mapping[str, str], parent: str) -> None:
    """Stop the parent's running child builds (best effort: the parent is already stopping)."""
    for child in children_to_stop(kube.list_workflows(config["BUILD_NAMESPACE"], {PARENT_LABEL: parent})):
        try:
            kube.stop(config["BUILD_NAMESPACE"], child)
            log(f"stopped build {_get(child, 'metadata', 'name')} of {parent}")
        except (Conflict, NotFound):
            pass  # it finished or changed meanwhile; it belongs to a stopped release either way


def _releases(kube: Kube, config: Mapping[str, str]) -> list[Workflow]:
    selector = {SERVICE_LABEL: config["SERVICE"], ENVIRONMENT_LABEL: config["ENVIRONMENT"]}
    return releases_of(kube.list_workflows(config["WORKFLOWS_NAMESPACE"], selector),
                       config["SERVICE"], config["ENVIRONMENT"], config["RELEASE_TEMPLATE"])


def supersede_once(kube: Kube, config: Mapping[str, str], done: list[str]) -> None:
    """One pass of supersede mode; `done` collects the names stopped (across passes)."""
    for older in to_stop(_releases(kube, config), config["WORKFLOW_NAME"]):
        name = str(_get(older, "metadata", "name"))
        try:
            kube.stop(config["WORKFLOWS_NAMESPACE"], older, superseded_by=config["WORKFLOW_NAME"])
        except NotFound:
            continue
        done.append(name)
        log(f"stopped {name}: superseded by {config['WORKFLOW_NAME']}")
        _stop_children(kube, config, name)


def guard_once(kube: Kube, config: Mapping[str, str]) -> str | None:
    """One pass of guard mode: the newer release's name if this one stopped itself."""
    me = config["WORKFLOW_NAME"]
    releases = _releases(kube, config)
    newer = newer_claim(releases, me)
    if newer is None:
        return None
    newer_name = str(_get(newer, "metadata", "name"))
    # First the output the DAG's `when` reads, then the stop.
    write_output("superseded", "true")
    write_output("stopped", "1")
    # No resourceVersion here: the controller updates this Workflow all the time, and
    # the decision does not depend on its own state.
    kube.stop(config["WORKFLOWS_NAMESPACE"], _me(releases, me), precondition=False, superseded_by=newer_name)
    log(f"stopped {me}: superseded by {newer_name}")
    _stop_children(kube, config, me)
    return newer_name


def run(config: Mapping[str, str], kube: Kube) -> str:
    backoff = Backoff(attempts=int(config["MAX_ATTEMPTS"]), base=float(config["BACKOFF_SECONDS"]))
    stopped: list[str] = []

    def once() -> str:
        if config["MODE"] == "guard":
            newer = guard_once(kube, config)
            if newer:
                return f"superseded by {newer}: stopped before promote"
            write_output("superseded", "false")
            write_output("stopped", "0")
            return "no newer release has claimed the environment"
        supersede_once(kube, config, stopped)
        write_output("stopped", str(len(stopped)))
        return f"stopped {len(stopped)} older release(s)" + (f": {', '.join(stopped)}" if stopped else "")

    try:
        return retry(once, what="listing again", backoff=backoff, deadline=kube.deadline, log=log,
                     transient=lambda error: 0.0 if isinstance(error, Conflict | TransientError) else None)
    except (Conflict, TransientError) as error:
        raise StepError(f"{error} (gave up after {backoff.attempts} attempt(s) or TIMEOUT_SECONDS)") from None


def read_config(environ: Mapping[str, str]) -> dict[str, str]:
    config = {key: environ.get(key, "") for key in (
        "MODE", "SERVICE", "ENVIRONMENT", "RELEASE_TEMPLATE", "WORKFLOW_NAME", "WORKFLOWS_NAMESPACE",
        "BUILD_NAMESPACE")}
    if config["MODE"] not in ("supersede", "guard"):
        raise StepError("MODE must be 'supersede' or 'guard'")
    for key in ("SERVICE", "ENVIRONMENT", "RELEASE_TEMPLATE", "WORKFLOWS_NAMESPACE", "BUILD_NAMESPACE"):
        if not DNS1123_LABEL.fullmatch(config[key]) or len(config[key]) > 63:
            raise StepError(f"{key} must be a DNS-1123 label")
    if not DNS1123_SUBDOMAIN.fullmatch(config["WORKFLOW_NAME"]) or len(config["WORKFLOW_NAME"]) > 253:
        raise StepError("WORKFLOW_NAME must be a Kubernetes object name")
    config["MAX_ATTEMPTS"] = str(number(environ, "MAX_ATTEMPTS", 5, 1, 20, integer=True))
    config["BACKOFF_SECONDS"] = str(number(environ, "BACKOFF_SECONDS", 1, 0, 60))
    config["TIMEOUT_SECONDS"] = str(number(environ, "TIMEOUT_SECONDS", 300, 1, 3600))
    return config


def main() -> int:
    raise_on_signals()
    message, code = "supersede ended unexpectedly", 1
    try:
        config = read_config(os.environ)
        message = run(config, Kube(os.environ, Deadline(float(config["TIMEOUT_SECONDS"]))))
        code = 0
        log(message)
    except StepError as error:
        message = str(error)
        log(f"failed: {error}")
    except Exception as error:  # the message output is written whatever happened
        message = f"supersede failed: {type(error).__name__}"
        log(f"failed: {message}")
    finally:
        ignore_signals()
        write_output("message", message)
    return code


if __name__ == "__main__":
    sys.exit(main())
