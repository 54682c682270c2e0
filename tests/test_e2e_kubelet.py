"""`components.e2e.kubelet`: a program that exits during the load is restarted, one killed on purpose is not."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from components.e2e import kubelet
from components.verify.apiserver import _Process


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
