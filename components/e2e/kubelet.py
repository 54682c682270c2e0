"""What the kubelet does for a pod whose program exits, during `e2e --load --fault`: start it again.

argo-events v1.9.10's EventSource can crash on a bus outage: its reconnect daemon
(`pkg/eventsources/eventing.go`) sets the bus connection to nil when a reconnect fails
while a publish is being retried, and the retry then calls the nil connection
(`eventing.go:594`, SIGSEGV). In a cluster the kubelet restarts the container
(`restartPolicy: Always`, first back-off 10 s) and GitHub's sender sees no answer for
the requests in flight, which it may redeliver. During a load burst this watcher does
the same: a program that exits is started again after BACKOFF seconds, with the same
box, and the exit is recorded (with the program's last `panic:` line) for the report.
A crash is a finding when no fault was injected, a note when one was (`runner`).

Owns: watching and restarting. Does not own: what a restart is (`Program.restart`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from components.e2e.programs import Program

BACKOFF = 10.0  # the kubelet's first restart back-off (CrashLoopBackOff starts at 10 s)
POLL = 0.5


@dataclass
class Crash:
    program: str
    code: int
    reason: str
    during: str  # the fault being injected at the time


class Kubelet:
    """Restarts any of ``programs`` that exits, while running (``start`` .. ``stop``)."""

    def __init__(self, programs: list[Program]) -> None:
        self.programs = programs
        self.crashes: list[Crash] = []
        self.during = "none"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="kubelet", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(POLL):
            for program in self.programs:
                process = program.process
                if process is None or program.killed or process.popen.poll() is None:
                    continue  # running, or killed on purpose by the fault (which restarts it itself)
                self.crashes.append(Crash(program.name, int(process.popen.returncode), _panic(program), self.during))
                if self._stop.wait(BACKOFF):
                    return
                if program.process is process and not program.killed:
                    program.restart()


def _panic(program: Program) -> str:
    assert program.process is not None
    try:
        text = program.process.log.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.startswith("panic: ")]
    return lines[-1] if lines else ""
