"""`components.e2e.kubelet` and the load's recovery step, without servers: a program that exits during the load is
restarted (one killed on purpose is not); deliveries waiting behind a stuck Sensor are told from lost ones."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from components.e2e import deliveries as dl
from components.e2e import kubelet, load
from components.verify.apiserver import _Process
from components.verify.report import StackReport
from tests.conftest import RenderStack


class FakeProgram:
    def __init__(self, name: str, log: Path, code: int) -> None:
        self.name = name
        self.killed = False
        self.restarts = 0
        log.write_text("starting\npanic: runtime error: invalid memory address or nil pointer dereference\n")
        popen = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
        popen.wait()
        self.process: Any = _Process(name, popen, log)

    def restart(self) -> None:
        self.restarts += 1
        popen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        self.process = _Process(self.name, popen, self.process.log)


def test_an_exited_program_is_restarted_after_the_backoff_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubelet, "BACKOFF", 0.05)
    monkeypatch.setattr(kubelet, "POLL", 0.01)
    crashed = FakeProgram("EventSource argo-events/github", tmp_path / "a.log", 2)
    killed = FakeProgram("Sensor argo-events/svc", tmp_path / "b.log", -9)
    killed.killed = True  # the fault killed it and restarts it itself
    watcher = kubelet.Kubelet([crashed, killed])  # type: ignore[list-item]
    watcher.during = "bus"
    watcher.start()
    deadline = time.monotonic() + 30
    while crashed.restarts == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    watcher.stop()
    try:
        assert crashed.restarts == 1 and killed.restarts == 0
        crashes = [(c.program, c.code, c.during) for c in watcher.crashes]
        assert crashes == [("EventSource argo-events/github", 2, "bus")]
        assert watcher.crashes[0].reason.startswith("panic: runtime error: invalid memory address")
    finally:
        crashed.process.popen.kill()
        crashed.process.popen.wait()


def test_deliveries_waiting_for_a_stuck_sensor_are_stalled_not_lost_and_a_real_loss_still_fails(
    render_stack: RenderStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, manifests = render_stack("dev")
    sources = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "EventSource"}
    routes = [dl.route_of(s, sources) for s in manifests if s["kind"] == "Sensor"]
    secrets = {r.secret_ref: "s3cret" for r in routes}
    for name, value in (("BASE_TIMEOUT", 0.3), ("PER_DELIVERY", 0.0), ("SETTLE", 0.0), ("POLL", 0.01)):
        monkeypatch.setattr(load, name, value)

    def send(case: dl.Case, _socket: Path) -> None:
        case.status = 200

    monkeypatch.setattr(load.dl, "send", send)
    posted: list[str] = []
    restarted: list[bool] = []

    def workflows(_client: Any) -> list[dict[str, Any]]:
        # Before the Sensors' restart half of the commits have a Workflow; after it, all but those in `missing`.
        shas = posted if restarted else posted[: len(posted) // 2]
        return [{"metadata": {"name": f"w-{sha}"}} for sha in shas if sha not in missing]

    original = dl.delivery

    def delivery(*args: Any, **kwargs: Any) -> tuple[bytes, dict[str, str], str]:
        body, headers, sha = original(*args, **kwargs)
        if sha not in posted:
            posted.append(sha)
        return body, headers, sha

    monkeypatch.setattr(load.dl, "delivery", delivery)
    missing: list[str] = []
    report = StackReport("dev")
    load.run_load(None, 4, routes, secrets, {r.event_source: Path("x") for r in routes}, report,  # type: ignore[arg-type]
                  workflows, "bus", None, lambda: restarted.append(True))
    assert report.findings == [], report.findings
    assert "load (fault bus): 2 deliveries had no Workflow until the Sensors were restarted by hand" in report.notes[1]
    assert report.notes[1].endswith("after that 0 lost")

    posted.clear()
    restarted.clear()

    def workflows_losing_one(client: Any) -> list[dict[str, Any]]:
        missing[:] = [posted[-1]]
        return workflows(client)

    report = StackReport("dev")
    load.run_load(None, 4, routes, secrets, {r.event_source: Path("x") for r in routes}, report,  # type: ignore[arg-type]
                  workflows_losing_one, "bus", None, lambda: restarted.append(True))
    assert [f.subject for f in report.findings] == ["fault bus: 1 of 4 deliveries"]
    assert report.notes[1].endswith("after that 1 lost")
