"""scripts/verify.py, run for real against a fake Kubernetes API on 127.0.0.1.

The fake serves scripted sequences of the Application, the Deployment and the Rollout
(each GET takes the next state; the last one repeats), so the script sees a release
unfold: the old revision, the new one syncing, the Rollout catching up.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import FakeServer, Request, TrickleServer, base_env, run_script, servers

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "verify.py"
OLD = "a" * 40
NEW = "b" * 40
LATER = "c" * 40
IMAGE_TAG = "d" * 40
API_TOKEN = "k8s-service-account-token-never-printed"
APP = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/checkout-dev"
DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/checkout"
ROLLOUT = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout"


def application(sync: str, phase: str, op_revision: str, message: str = "") -> dict:
    return {
        "metadata": {"name": "checkout-dev"},
        "status": {
            "sync": {"status": "Synced", "revision": sync},
            "health": {"status": "Healthy"},
            "operationState": {"phase": phase, "message": message, "syncResult": {"revision": op_revision}},
        },
    }


def deployment(generation: int, tag: str = IMAGE_TAG) -> dict:
    containers = [{"name": "app", "image": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/dev/checkout:{tag}"}]
    return {"metadata": {"generation": generation}, "spec": {"template": {"spec": {"containers": containers}}}}


def rollout(observed: object, phase: str, **status: object) -> dict:
    return {
        "metadata": {"generation": 3},
        "status": {"workloadObservedGeneration": observed, "observedGeneration": "3", "phase": phase, **status},
    }


class FakeKube(FakeServer):
    methods = ("GET", "PATCH")

    def __init__(self, states: dict[str, list[tuple[int, dict]]]) -> None:
        self.states = states
        self.calls: list[dict] = []
        super().__init__()

    def answer(self, request: Request) -> tuple[int, dict]:
        body = json.loads(request.body) if request.body else None
        self.calls.append({"method": request.method, "path": request.path, "body": body, "headers": request.headers,
                           "at": time.monotonic()})
        sequence = self.states.get(request.path)
        if sequence is None:
            return 404, {"kind": "Status", "message": f"{request.path} not found"}
        if request.method == "PATCH":
            return 200, sequence[0][1]
        count = sum(1 for c in self.calls if c["path"] == request.path and c["method"] == "GET")
        return sequence[min(count, len(sequence)) - 1]


@pytest.fixture
def kube():
    def start(app: list, deploy: list, roll: list) -> FakeKube:
        def ok(objs: list) -> list[tuple[int, dict]]:
            return [o if isinstance(o, tuple) else (200, o) for o in objs]

        states = {APP: ok(app), DEPLOYMENT: ok(deploy), ROLLOUT: ok(roll)}
        return FakeKube({path: seq for path, seq in states.items() if seq})

    yield from servers(start)


def run(tmp_path: Path, fake: FakeKube | TrickleServer, **env: str) -> subprocess.CompletedProcess[str]:
    token_file = tmp_path / "token"
    token_file.write_text(API_TOKEN + "\n")
    base = base_env(tmp_path) | {
        "OUTPUT_DIR": str(tmp_path / "outputs"),
        "K8S_API_URL": fake.url,
        "K8S_TOKEN_FILE": str(token_file),
        "APPLICATION": "checkout-dev",
        "APPLICATION_NAMESPACE": "argocd",
        "DEPLOYMENT": "checkout",
        "ROLLOUT": "checkout",
        "SERVICE_NAMESPACE": "shop",
        "HELM_REVISION": NEW,
        "TIMEOUT_SECONDS": "20",
        "POLL_SECONDS": "0.05",
    }
    result = run_script("verify", {**base, **env}, timeout=30)
    assert API_TOKEN not in result.stdout + result.stderr
    return result


def outputs(tmp_path: Path) -> tuple[str | None, str | None]:
    def read(name: str) -> str | None:
        path = tmp_path / "outputs" / name
        return path.read_text() if path.exists() else None

    return read("status"), read("message")


def test_a_release_that_becomes_healthy(tmp_path, kube):
    fake = kube(
        app=[
            application(OLD, "Succeeded", OLD),  # Synced and Healthy, but on the previous commit
            application(NEW, "Running", NEW),
            application(NEW, "Succeeded", NEW),
        ],
        deploy=[deployment(7)],
        roll=[
            rollout("6", "Healthy"),  # still the old template
            rollout(7, "Progressing", message="more replicas need to be updated"),
            rollout("7", "Healthy"),
        ],
    )
    result = run(tmp_path, fake)
    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path) == ("healthy", "the Rollout is Healthy on the new version")
    patch = fake.calls[0]
    assert patch["method"] == "PATCH" and patch["path"] == APP
    assert patch["headers"]["content-type"] == "application/merge-patch+json"
    assert patch["body"] == {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
    assert all(call["headers"]["authorization"] == f"Bearer {API_TOKEN}" for call in fake.calls)
    gets = [call["path"] for call in fake.calls if call["method"] == "GET"]
    assert gets == [APP, APP, APP, DEPLOYMENT, ROLLOUT, ROLLOUT, ROLLOUT]


def test_a_canary_paused_at_its_gate(tmp_path, kube):
    paused = rollout(
        "7",
        "Paused",
        pauseConditions=[{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}],
        controllerPause=True,
    )
    fake = kube(
        app=[application(NEW, "Succeeded", NEW)], deploy=[deployment(7)], roll=[rollout("6", "Healthy"), paused]
    )
    result = run(tmp_path, fake)
    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path) == ("paused", "waiting for promotion (CanaryPauseStep)")


def test_a_degraded_rollout_fails(tmp_path, kube):
    degraded = rollout("7", "Degraded", message="ProgressDeadlineExceeded: ReplicaSet has timed out progressing.")
    fake = kube(app=[application(NEW, "Succeeded", NEW)], deploy=[deployment(7)], roll=[degraded])
    result = run(tmp_path, fake)
    assert result.returncode != 0
    assert "Degraded" in result.stderr
    assert outputs(tmp_path)[0] == "failed"


def test_an_aborted_rollout_fails(tmp_path, kube):
    aborted = rollout("7", "Degraded", abort=True, message="RolloutAborted: metric success-rate assessed Failed")
    fake = kube(app=[application(NEW, "Succeeded", NEW)], deploy=[deployment(7)], roll=[aborted])
    result = run(tmp_path, fake)
    assert result.returncode != 0
    assert "aborted" in result.stderr
    assert outputs(tmp_path)[0] == "failed"


def test_a_failed_sync_of_the_revision_fails_fast(tmp_path, kube):
    failed = application(OLD, "Failed", NEW, message="one or more objects failed to apply")
    fake = kube(
        app=[application(OLD, "Succeeded", OLD), failed], deploy=[deployment(7)], roll=[rollout("7", "Healthy")]
    )
    result = run(tmp_path, fake, TIMEOUT_SECONDS="30")
    assert result.returncode != 0
    assert "ended Failed: one or more objects failed to apply" in result.stderr
    assert outputs(tmp_path)[0] == "failed"
    assert not any(call["path"] == ROLLOUT for call in fake.calls)


def test_times_out_when_argo_cd_never_syncs(tmp_path, kube):
    fake = kube(app=[application(OLD, "Succeeded", OLD)], deploy=[deployment(7)], roll=[rollout("7", "Healthy")])
    result = run(tmp_path, fake, TIMEOUT_SECONDS="0.3", POLL_SECONDS="0.05")
    assert result.returncode != 0
    assert "timed out waiting for Argo CD to sync" in result.stderr
    assert outputs(tmp_path)[0] == "timeout"


def test_times_out_when_the_rollout_never_observes_the_new_template(tmp_path, kube):
    fake = kube(app=[application(NEW, "Succeeded", NEW)], deploy=[deployment(7)], roll=[rollout("6", "Healthy")])
    result = run(tmp_path, fake, TIMEOUT_SECONDS="0.3", POLL_SECONDS="0.05")
    assert result.returncode != 0
    assert "timed out waiting for the Rollout" in result.stderr
    assert outputs(tmp_path)[0] == "timeout"


def test_a_later_commit_carrying_the_tag_counts_when_image_tag_is_given(tmp_path, kube):
    fake = kube(app=[application(LATER, "Succeeded", LATER)], deploy=[deployment(7)], roll=[rollout("7", "Healthy")])
    result = run(tmp_path, fake, IMAGE_TAG=IMAGE_TAG)
    assert result.returncode == 0, result.stderr
    assert f"Argo CD synced {LATER}" in result.stderr
    assert outputs(tmp_path)[0] == "healthy"


def test_a_later_commit_without_the_tag_does_not_count(tmp_path, kube):
    fake = kube(
        app=[application(LATER, "Succeeded", LATER)],
        deploy=[deployment(7, tag="e" * 40)],
        roll=[rollout("7", "Healthy")],
    )
    result = run(tmp_path, fake, IMAGE_TAG=IMAGE_TAG, TIMEOUT_SECONDS="0.3", POLL_SECONDS="0.05")
    assert result.returncode != 0
    assert outputs(tmp_path)[0] == "timeout"


def test_transient_api_errors_are_retried(tmp_path, kube):
    busy = (503, {"kind": "Status", "message": "the server is currently unable to handle the request"})
    fake = kube(
        app=[busy, application(NEW, "Succeeded", NEW)], deploy=[deployment(7)], roll=[busy, rollout("7", "Healthy")]
    )
    result = run(tmp_path, fake)
    assert result.returncode == 0, result.stderr
    assert "HTTP 503" in result.stderr


def test_a_missing_application_fails_fast(tmp_path, kube):
    fake = kube(app=[], deploy=[deployment(7)], roll=[rollout("7", "Healthy")])
    result = run(tmp_path, fake, TIMEOUT_SECONDS="30")
    assert result.returncode != 0
    assert "HTTP 404" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HELM_REVISION", "main"),
        ("APPLICATION", "Checkout"),
        ("SERVICE_NAMESPACE", "shop/../kube-system"),
        ("ROLLOUT", ""),
        ("IMAGE_TAG", "x y"),
        ("TIMEOUT_SECONDS", "soon"),
        ("TIMEOUT_SECONDS", "0"),
        ("TIMEOUT_SECONDS", "nan"),
        ("POLL_SECONDS", "0"),
        ("POLL_SECONDS", "-1"),
        ("POLL_SECONDS", "1e-9"),
        ("POLL_SECONDS", "fast"),
        ("K8S_API_URL", "http://10.0.0.1"),
    ],
)
def test_refuses_bad_input(tmp_path, kube, name, value):
    fake = kube(app=[application(NEW, "Succeeded", NEW)], deploy=[deployment(7)], roll=[rollout("7", "Healthy")])
    result = run(tmp_path, fake, **{name: value})
    assert result.returncode != 0
    assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert fake.calls == []
    assert outputs(tmp_path)[0] == "failed", "the status output is written for bad input too"


def test_transient_api_errors_back_off_exponentially(tmp_path, kube):
    busy = (503, {"kind": "Status", "message": "the server is currently unable to handle the request"})
    fake = kube(app=[busy] * 5 + [application(NEW, "Succeeded", NEW)], deploy=[deployment(7)],
                roll=[rollout("7", "Healthy")])
    result = run(tmp_path, fake, POLL_SECONDS="0.05")
    assert result.returncode == 0, result.stderr
    times = [c["at"] for c in fake.calls if c["method"] == "GET" and c["path"] == APP]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 5
    # Pauses of 0.05 * 2**n with +-50 % jitter: the fourth is at least twice the first.
    assert gaps[3] > 2 * gaps[0], gaps


def test_a_trickling_api_cannot_outlast_the_deadline_and_the_status_is_written(tmp_path):
    """One byte every 0.4 s never trips a per-read socket timeout; the overall deadline must."""
    server = TrickleServer(interval=0.4)
    try:
        started = time.monotonic()
        result = run(tmp_path, server, TIMEOUT_SECONDS="1.5", POLL_SECONDS="0.05")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert result.returncode == 1
    assert elapsed < 6, f"verify ran {elapsed:.1f}s with TIMEOUT_SECONDS=1.5"
    assert outputs(tmp_path) == ("timeout", "timed out asking Argo CD to refresh")
    assert "no complete answer within" in result.stderr


def test_sigterm_still_writes_the_status(tmp_path, kube):
    fake = kube(app=[application(OLD, "Succeeded", OLD)], deploy=[deployment(7)], roll=[rollout("7", "Healthy")])
    token_file = tmp_path / "token"
    token_file.write_text(API_TOKEN)
    env = base_env(tmp_path) | {
        "OUTPUT_DIR": str(tmp_path / "outputs"), "K8S_API_URL": fake.url, "K8S_TOKEN_FILE": str(token_file),
        "APPLICATION": "checkout-dev", "APPLICATION_NAMESPACE": "argocd", "DEPLOYMENT": "checkout",
        "ROLLOUT": "checkout", "SERVICE_NAMESPACE": "shop", "HELM_REVISION": NEW, "POLL_SECONDS": "0.05",
    }
    process = subprocess.Popen([sys.executable, str(SCRIPT)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not any(c["method"] == "GET" for c in fake.calls) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 1
    assert outputs(tmp_path) == ("failed", "stopped by SIGTERM before the release settled"), stderr
