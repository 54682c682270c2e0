"""scripts/supersede.py: the newest-wins decisions over real Workflow-shaped objects, then
the script run for real against a fake Kubernetes API on 127.0.0.1.

The Workflow objects look like what the API server returns for the release Workflows
the Sensor creates (labels, `workflowTemplateRef`, `creationTimestamp`,
`resourceVersion`, `status.phase` and `status.nodes` keyed by node id, with
`displayName`/`templateName`/`phase`). The fake API answers list (with a label
selector), and merge-patch with Kubernetes' optimistic concurrency (409 when the
patch's resourceVersion is stale), and records every call.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeServer, Request, TrickleServer, base_env, run_script, servers

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "supersede.py"
API_TOKEN = "k8s-service-account-token-never-printed"
WF_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argo/workflows"
BUILD_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argo-build/workflows"

spec = importlib.util.spec_from_file_location("supersede", SCRIPT)
assert spec and spec.loader
sup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sup)


def node(task: str, phase: str) -> dict[str, Any]:
    return {"displayName": task, "templateName": task, "type": "Pod", "phase": phase}


def release(name: str, created: str, phase: str = "Running", nodes: dict[str, str] | None = None, *,
            service: str = "svc", environment: str = "dev", template: str = "svc-release",
            shutdown: str | None = None, version: str = "1") -> dict[str, Any]:
    """A release Workflow as the API returns it; `nodes` maps task -> node phase."""
    workflow: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name, "namespace": "argo", "creationTimestamp": created, "resourceVersion": version,
            "labels": {"release-pipeline/service": service, "release-pipeline/environment": environment,
                       "workflows.argoproj.io/phase": phase or "Pending"},
        },
        "spec": {"workflowTemplateRef": {"name": template}, "arguments": {"parameters": []}},
        "status": {"phase": phase, "nodes": {
            name: {"displayName": name, "templateName": "release", "type": "DAG", "phase": phase or "Pending"},
            **{f"{name}-{i}": node(task, p) for i, (task, p) in enumerate((nodes or {}).items())},
        }},
    }
    if shutdown:
        workflow["spec"]["shutdown"] = shutdown
    return workflow


def child(name: str, parent: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "argo-build", "creationTimestamp": "2025-01-01T00:00:00Z",
                     "resourceVersion": "7", "labels": {"release-pipeline/release-workflow": parent}},
        "spec": {"workflowTemplateRef": {"name": "svc-build"}},
        "status": {"phase": phase},
    }


def names(workflows: list[dict[str, Any]]) -> list[str]:
    return [w["metadata"]["name"] for w in workflows]


T1, T2, T3, T4 = (f"2025-01-01T10:0{i}:00Z" for i in range(1, 5))


# ------------------------------------------------------------------ pure decisions


def test_a_newer_release_stops_every_older_one_that_has_not_reached_promote() -> None:
    workflows = [
        release("svc-dev-a", T1, nodes={"supersede": "Succeeded", "build": "Running"}),
        release("svc-dev-b", T2, nodes={"supersede": "Succeeded", "tests": "Running"}),
        release("svc-dev-c", T3, nodes={"supersede": "Running"}),
    ]
    # The order the API lists them in does not matter.
    for order in itertools.permutations(workflows):
        assert names(sup.to_stop(order, "svc-dev-c")) == ["svc-dev-a", "svc-dev-b"]
        assert names(sup.to_stop(order, "svc-dev-b")) == ["svc-dev-a"]
        assert sup.to_stop(order, "svc-dev-a") == []


def test_an_older_release_already_in_promote_is_left_to_finish() -> None:
    for promote_phase in ("Pending", "Running", "Succeeded"):  # Pending: waiting for the mutex
        workflows = [
            release("svc-dev-a", T1, nodes={"build": "Succeeded", "newest-check": "Succeeded",
                                            "promote": promote_phase}),
            release("svc-dev-b", T2, nodes={"supersede": "Running"}),
        ]
        assert sup.to_stop(workflows, "svc-dev-b") == [], promote_phase
    # A promote node that was skipped (no change) does not count as started.
    skipped = [release("svc-dev-a", T1, nodes={"promote": "Skipped"}), release("svc-dev-b", T2)]
    assert names(sup.to_stop(skipped, "svc-dev-b")) == ["svc-dev-a"]


def test_finished_and_already_stopped_releases_are_not_stopped_again() -> None:
    workflows = [
        release("svc-dev-a", T1, "Succeeded"),
        release("svc-dev-b", T1, "Failed"),
        release("svc-dev-c", T1, "Error"),
        release("svc-dev-d", T2, "Running", shutdown="Stop"),
        release("svc-dev-e", T2, "Pending"),
        release("svc-dev-f", T2, ""),  # just created, not yet seen by the controller
        release("svc-dev-g", T3),
    ]
    assert names(sup.to_stop(workflows, "svc-dev-g")) == ["svc-dev-e", "svc-dev-f"]


def test_same_second_releases_are_ordered_by_name() -> None:
    workflows = [release("svc-dev-b", T1), release("svc-dev-a", T1)]
    assert names(sup.to_stop(workflows, "svc-dev-b")) == ["svc-dev-a"]
    assert sup.to_stop(workflows, "svc-dev-a") == []


def test_only_this_service_environment_and_template_count() -> None:
    workflows = [
        release("other-dev-a", T1, service="other"),
        release("svc-live-a", T1, environment="live"),
        release("svc-dev-manual", T1, template="something-else"),
        release("svc-dev-a", T2),
        release("svc-dev-b", T3),
    ]
    mine = sup.releases_of(workflows, "svc", "dev", "svc-release")
    assert names(mine) == ["svc-dev-a", "svc-dev-b"]
    assert names(sup.to_stop(mine, "svc-dev-b")) == ["svc-dev-a"]


def test_the_guard_yields_only_to_a_newer_release_that_has_claimed() -> None:
    me = release("svc-dev-a", T1, nodes={"build": "Succeeded", "newest-check": "Running"})
    cases = [
        (release("svc-dev-b", T2, nodes={"supersede": "Succeeded", "tests": "Running"}), "svc-dev-b"),
        (release("svc-dev-b", T2, nodes={"supersede": "Running"}), "svc-dev-b"),
        (release("svc-dev-b", T2, "Succeeded", nodes={"supersede": "Succeeded", "promote": "Succeeded"}),
         "svc-dev-b"),
        # Still in its change check: it may turn out not to touch the service.
        (release("svc-dev-b", T2, nodes={"changed": "Running"}), None),
        # It did not touch the service: its supersede was skipped.
        (release("svc-dev-b", T2, "Succeeded", nodes={"changed": "Succeeded", "supersede": "Skipped"}), None),
        # It failed, or is being stopped itself.
        (release("svc-dev-b", T2, "Failed", nodes={"supersede": "Succeeded", "tests": "Failed"}), None),
        (release("svc-dev-b", T2, nodes={"supersede": "Succeeded"}, shutdown="Stop"), None),
    ]
    for newer, expected in cases:
        for order in ([me, newer], [newer, me]):
            found = sup.newer_claim(order, "svc-dev-a")
            assert (found and found["metadata"]["name"]) == expected, newer["status"]
    # An older release never makes a newer one yield.
    older = release("svc-dev-0", "2025-01-01T09:00:00Z", nodes={"supersede": "Succeeded"})
    assert sup.newer_claim([older, me], "svc-dev-a") is None


def test_two_releases_never_both_stop_each_other() -> None:
    """Whatever their states, at most one of two releases stops the other."""
    phases = ["", "Pending", "Running", "Succeeded", "Failed"]
    node_sets = [{}, {"supersede": "Running"}, {"supersede": "Succeeded", "promote": "Pending"}]
    for (pa, na), (pb, nb) in itertools.product(itertools.product(phases, node_sets), repeat=2):
        a, b = release("svc-dev-a", T1, pa, na), release("svc-dev-b", T2, pb, nb)
        a_stops_b = "svc-dev-b" in names(sup.to_stop([a, b], "svc-dev-a"))
        a_yields = sup.newer_claim([a, b], "svc-dev-a") is not None
        assert not a_stops_b  # the older never stops the newer
        b_stops_a = "svc-dev-a" in names(sup.to_stop([a, b], "svc-dev-b"))
        assert not (b_stops_a and "promote" in na), (pa, na, pb, nb)
        # The older yields only to a newer one that will go on to promote.
        if a_yields:
            assert pb not in ("Failed", "Error") and sup.claimed(b)


def test_children_to_stop_are_the_running_builds() -> None:
    children = [child("svc-build-1", "p"), child("svc-build-2", "p", "Succeeded"), child("svc-build-3", "p", "")]
    assert names(sup.children_to_stop(children)) == ["svc-build-1", "svc-build-3"]


def test_a_missing_own_workflow_is_an_error() -> None:
    with pytest.raises(sup.StepError, match="not among"):
        sup.to_stop([release("svc-dev-a", T1)], "svc-dev-z")


# ------------------------------------------------------------------ the script, for real


class FakeKube(FakeServer):
    """Lists by label selector and merge-patches with resourceVersion preconditions."""

    methods = ("GET", "PATCH")

    def __init__(self, objects: dict[str, list[dict[str, Any]]], conflicts: int = 0) -> None:
        self.objects = {path: {o["metadata"]["name"]: o for o in items} for path, items in objects.items()}
        self.calls: list[dict[str, Any]] = []
        self.conflicts = conflicts  # answer this many patches with 409, then behave
        self.handle_conflict = True  # on a 409, the release moved on to promote
        super().__init__()

    def answer(self, request: Request) -> tuple[int, Any]:
        body = json.loads(request.body) if request.body else None
        url = urllib.parse.urlsplit(request.path)
        self.calls.append({"method": request.method, "path": url.path, "query": url.query, "body": body,
                           "headers": request.headers})
        return self.handle(request.method, url.path, urllib.parse.parse_qs(url.query), body)

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "GET" and path in self.objects:
            selector = dict(part.split("=", 1) for part in query.get("labelSelector", [""])[0].split(",") if part)
            items = [o for o in self.objects[path].values()
                     if all(o["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
            return 200, {"kind": "WorkflowList", "items": copy.deepcopy(items)}
        collection, _, name = path.rpartition("/")
        if method == "PATCH" and collection in self.objects:
            current = self.objects[collection].get(name)
            if current is None:
                return 404, {"kind": "Status", "code": 404, "message": "not found"}
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if self.conflicts or (wanted and wanted != current["metadata"]["resourceVersion"]):
                self.conflicts = max(0, self.conflicts - 1)
                # Meanwhile the controller moved it on: it started promote.
                current["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
                if self.handle_conflict:
                    current["status"]["nodes"]["p"] = node("promote", "Pending")
                return 409, {"kind": "Status", "code": 409, "message": "the object has been modified"}
            current["spec"].update(body["spec"])
            current["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
            return 200, current
        return 404, {"kind": "Status", "code": 404, "message": f"{path} not found"}

    def patched(self) -> list[tuple[str, Any]]:
        return [(c["path"].rsplit("/", 1)[1], c["body"]) for c in self.calls if c["method"] == "PATCH"]


@pytest.fixture
def kube():
    def start(releases: list[dict[str, Any]], builds: list[dict[str, Any]] = (), conflicts: int = 0) -> FakeKube:
        return FakeKube({WF_PATH: releases, BUILD_PATH: list(builds)}, conflicts)

    yield from servers(start)


def run(tmp_path: Path, fake: FakeKube | TrickleServer, mode: str, me: str,
        **env: str) -> subprocess.CompletedProcess[str]:
    token_file = tmp_path / "token"
    token_file.write_text(API_TOKEN + "\n")
    base = {
        **base_env(tmp_path), "OUTPUT_DIR": str(tmp_path / "outputs"),
        "K8S_API_URL": fake.url, "K8S_TOKEN_FILE": str(token_file),
        "MODE": mode, "SERVICE": "svc", "ENVIRONMENT": "dev", "RELEASE_TEMPLATE": "svc-release",
        "WORKFLOW_NAME": me, "WORKFLOWS_NAMESPACE": "argo", "BUILD_NAMESPACE": "argo-build",
        "BACKOFF_SECONDS": "0",
    }
    result = run_script("supersede", {**base, **env}, timeout=30)
    assert API_TOKEN not in result.stdout + result.stderr
    return result


def outputs(tmp_path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (tmp_path / "outputs").iterdir()}


def test_supersede_stops_the_older_releases_and_their_builds(tmp_path: Path, kube: Any) -> None:
    fake = kube(
        [release("svc-dev-a", T1, nodes={"supersede": "Succeeded", "build": "Running"}, version="10"),
         release("svc-dev-b", T2, nodes={"promote": "Running"}),
         release("svc-dev-c", T3, nodes={"supersede": "Running"}),
         release("other-dev-a", T1, service="other")],
        [child("svc-build-aaaaa", "svc-dev-a"), child("svc-build-bbbbb", "svc-dev-b"),
         child("svc-build-old", "svc-dev-a", "Failed")],
    )
    result = run(tmp_path, fake, "supersede", "svc-dev-c")
    assert result.returncode == 0, result.stderr
    # The stopped release carries the newer one's name, in the same patch; its builds do not.
    assert fake.patched() == [
        ("svc-dev-a", {"spec": {"shutdown": "Stop"},
                       "metadata": {"resourceVersion": "10",
                                    "annotations": {"release-pipeline/superseded-by": "svc-dev-c"}}}),
        ("svc-build-aaaaa", {"spec": {"shutdown": "Stop"}, "metadata": {"resourceVersion": "7"}}),
    ]
    assert outputs(tmp_path) == {"stopped": "1", "message": "stopped 1 older release(s): svc-dev-a"}
    lists = [c for c in fake.calls if c["method"] == "GET"]
    assert urllib.parse.parse_qs(lists[0]["query"]) == {
        "labelSelector": ["release-pipeline/environment=dev,release-pipeline/service=svc"]}
    assert urllib.parse.parse_qs(lists[1]["query"]) == {
        "labelSelector": ["release-pipeline/release-workflow=svc-dev-a"]}
    for call in fake.calls:
        assert call["headers"]["authorization"] == f"Bearer {API_TOKEN}"
        if call["method"] == "PATCH":
            assert call["headers"]["content-type"] == "application/merge-patch+json"


def test_supersede_decides_again_when_the_older_release_moved_on(tmp_path: Path, kube: Any) -> None:
    """409: between the list and the stop, the older release started promote; it is left alone."""
    fake = kube([release("svc-dev-a", T1, nodes={"build": "Succeeded", "newest-check": "Running"}),
                 release("svc-dev-b", T2, nodes={"supersede": "Running"})], conflicts=1)
    result = run(tmp_path, fake, "supersede", "svc-dev-b")
    assert result.returncode == 0, result.stderr
    assert [name for name, _ in fake.patched()] == ["svc-dev-a"]  # the one refused attempt
    assert fake.objects[WF_PATH]["svc-dev-a"]["spec"].get("shutdown") is None
    assert outputs(tmp_path)["stopped"] == "0"


def test_supersede_with_nothing_older_stops_nothing(tmp_path: Path, kube: Any) -> None:
    fake = kube([release("svc-dev-a", T1, nodes={"supersede": "Running"})])
    result = run(tmp_path, fake, "supersede", "svc-dev-a")
    assert result.returncode == 0, result.stderr
    assert fake.patched() == []
    assert outputs(tmp_path) == {"stopped": "0", "message": "stopped 0 older release(s)"}


def test_the_guard_stops_its_own_release_when_a_newer_one_claimed(tmp_path: Path, kube: Any) -> None:
    fake = kube([release("svc-dev-a", T1, nodes={"build": "Succeeded", "newest-check": "Running"}),
                 release("svc-dev-b", T2, nodes={"supersede": "Succeeded", "tests": "Running"})],
                [child("svc-build-aaaaa", "svc-dev-a", "Succeeded")])
    result = run(tmp_path, fake, "guard", "svc-dev-a")
    assert result.returncode == 0, result.stderr
    annotation = {"release-pipeline/superseded-by": "svc-dev-b"}
    assert fake.patched() == [("svc-dev-a", {"spec": {"shutdown": "Stop"}, "metadata": {"annotations": annotation}})]
    assert outputs(tmp_path) == {"superseded": "true", "stopped": "1",
                                 "message": "superseded by svc-dev-b: stopped before promote"}


def test_the_guard_lets_the_newest_release_promote(tmp_path: Path, kube: Any) -> None:
    fake = kube([release("svc-dev-a", T1, "Failed"),
                 release("svc-dev-b", T2, nodes={"newest-check": "Running"}),
                 release("svc-dev-c", T3, nodes={"changed": "Running"})])
    result = run(tmp_path, fake, "guard", "svc-dev-b")
    assert result.returncode == 0, result.stderr
    assert fake.patched() == []
    assert outputs(tmp_path)["superseded"] == "false"
    assert outputs(tmp_path)["stopped"] == "0"


def test_api_errors_fail_the_step_without_leaking_the_token(tmp_path: Path, kube: Any) -> None:
    fake = kube([release("svc-dev-a", T1)])
    fake.objects.pop(WF_PATH)  # the list answers 404: e.g. RBAC or a wrong namespace
    result = run(tmp_path, fake, "supersede", "svc-dev-a")
    assert result.returncode == 1
    assert "HTTP 404" in outputs(tmp_path)["message"]
    result = run(tmp_path, fake, "supersede", "svc-dev-a", K8S_API_URL="http://10.0.0.1:1")
    assert result.returncode == 1
    assert "loopback" in outputs(tmp_path)["message"]


@pytest.mark.parametrize(("key", "value"), [("MODE", "stop-all"), ("SERVICE", "Svc;rm"),
                                            ("SERVICE", "svc\n"), ("WORKFLOW_NAME", "a/../b"),
                                            ("WORKFLOW_NAME", "svc-dev-a\n"), ("MAX_ATTEMPTS", "x"),
                                            ("MAX_ATTEMPTS", "1.5"), ("MAX_ATTEMPTS", "0"), ("MAX_ATTEMPTS", "-1"),
                                            ("BACKOFF_SECONDS", "-1"), ("BACKOFF_SECONDS", "inf"),
                                            ("TIMEOUT_SECONDS", "0"), ("TIMEOUT_SECONDS", "1e3")])
def test_bad_configuration_is_refused(tmp_path: Path, kube: Any, key: str, value: str) -> None:
    fake = kube([release("svc-dev-a", T1)])
    result = run(tmp_path, fake, "supersede", "svc-dev-a", **{key: value})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert fake.calls == []
    assert key in outputs(tmp_path)["message"]


def test_conflicts_that_never_end_give_up_after_max_attempts(tmp_path: Path, kube: Any) -> None:
    fake = kube([release("svc-dev-a", T1, nodes={"supersede": "Succeeded"}),
                 release("svc-dev-b", T2, nodes={"supersede": "Running"})], conflicts=100)
    # Each 409 moves svc-dev-a on to promote in the fake: make it never do so.
    fake.handle_conflict = False
    result = run(tmp_path, fake, "supersede", "svc-dev-b", MAX_ATTEMPTS="3")
    assert result.returncode == 1
    assert len(fake.patched()) <= 3
    assert "HTTP 409" in outputs(tmp_path)["message"]


def test_a_trickling_api_cannot_outlast_the_deadline(tmp_path: Path) -> None:
    server = TrickleServer(interval=0.4)
    try:
        started = time.monotonic()
        result = run(tmp_path, server, "guard", "svc-dev-a", TIMEOUT_SECONDS="1")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert result.returncode == 1
    assert elapsed < 6, f"supersede ran {elapsed:.1f}s with TIMEOUT_SECONDS=1"
    assert "no complete answer within" in outputs(tmp_path)["message"]
