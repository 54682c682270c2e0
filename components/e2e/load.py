"""`e2e --load N`: N merged-PR deliveries at once, a share of them delivered twice, and what came of them.

Each delivery is a merge of its own commit into the stack's branch of one of the
services' repositories (round robin over the Sensors' routes), signed like the others;
one in DUPLICATE_EVERY is sent a second time (same body, same delivery id), as GitHub's
retries are. They are sent concurrently (CONCURRENCY connections). Then the Workflows
are read until every delivery has its Workflow or the time is up. Reported: sent,
Workflows created, lost (a delivery without a Workflow), duplicated (more than one
Workflow for one commit), and the latency from send to the Workflow being seen
(p50/p95/max; seen by polling every POLL seconds, so that is the resolution).

With a fault (`--fault sensor|bus`), the runner's injector runs once half of the posts
have started; a post answered 5xx or not at all is redelivered by the sender (GitHub's
"Redeliver", done by an App or a person: GitHub does not retry), never one answered
2xx; after the bus case, deliveries still without a Workflow are looked for again once
the Sensors are restarted, and reported as stalled (decision 0261).

Owns: the load cases, sending them, counting. Does not own: starting anything (`runner`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.e2e import deliveries as dl
from components.verify.client import ApiClient
from components.verify.report import StackReport

CONCURRENCY = 16
DUPLICATE_EVERY = 5
POLL = 0.25
BASE_TIMEOUT = 60.0
PER_DELIVERY = 0.5
REDELIVER_FIRST = 1.0
REDELIVER_MAX = 8.0
SETTLE = 5.0
FAULTS = ("none", "sensor", "bus")


@dataclass
class Sent:
    case: dl.Case
    at: float
    redelivered: int = 0  # times the sender delivered it again after a non-2xx answer or no answer


Fault = Callable[[], None]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _deliver(case: dl.Case, socket: Path, deadline: float) -> int:
    """Post ``case``; after a 5xx answer or none, deliver it again (GitHub's "Redeliver", which a GitHub App or
    a person does: GitHub itself does not retry) until it is answered 2xx or the time is up. A 4xx is final.
    Returns how many times it was delivered again."""
    again = 0
    pause = REDELIVER_FIRST
    while True:
        case.status, case.error = None, None
        dl.send(case, socket)
        accepted = case.status is not None and case.status < 500
        if accepted or time.monotonic() + pause > deadline:
            return again
        time.sleep(pause)
        pause = min(pause * 2, REDELIVER_MAX)
        again += 1


def _count(client: ApiClient, workflows: Callable[[ApiClient], list[dict[str, Any]]],
           first_sent: dict[str, float]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for workflow in workflows(client):
        for sha in first_sent:
            if workflow["metadata"]["name"].endswith(sha):
                counts[sha] = counts.get(sha, 0) + 1
    return counts


def run_load(client: ApiClient, count: int, routes: list[dl.Route], secrets: dict[tuple[str, str], str],
             socket_for: dict[str, Path], report: StackReport,
             workflows: Callable[[ApiClient], list[dict[str, Any]]], fault: str = "none",
             inject: Fault | None = None, recover: Fault | None = None) -> None:
    """Send ``count`` deliveries (plus duplicates), run ``inject`` (the fault) once half of them are sent, and add
    the figures (and any loss) to ``report``."""
    cases: list[dl.Case] = []
    for index in range(count):
        route = routes[index % len(routes)]
        label = f"{route.service}:load:{fault}:{index}"
        body, headers, sha = dl.delivery(route, label, secrets[route.secret_ref], title=f"load {fault} {index}")
        cases.append(dl.Case(f"load {fault} {index}", route, body, headers, True, sha))
    duplicates = [dl.redelivery(case) for case in cases[::DUPLICATE_EVERY]]
    every = [*cases, *duplicates]
    send_deadline = time.monotonic() + BASE_TIMEOUT + PER_DELIVERY * count
    lock = threading.Lock()
    started = [0]
    faults: list[threading.Thread] = []
    fault_errors: list[str] = []

    def run_fault() -> None:
        assert inject is not None
        try:
            inject()
        except Exception as exc:  # reported as a finding; the run goes on to count what came through
            fault_errors.append(f"{type(exc).__name__}: {exc}")

    def send(case: dl.Case) -> Sent:
        with lock:
            started[0] += 1
            if inject is not None and started[0] == len(every) // 2:
                faults.append(threading.Thread(target=run_fault, name=f"fault-{fault}"))
                faults[-1].start()
        at = time.monotonic()
        again = _deliver(case, socket_for[case.route.event_source], send_deadline)
        return Sent(case, at, again)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        sent = list(pool.map(send, every))
    for thread in faults:
        thread.join()
    first_sent = {s.case.sha: s.at for s in sent if s.case in cases}
    refused = [s.case for s in sent if s.case.status is None or not 200 <= s.case.status < 300]
    seen: dict[str, float] = {}
    counts: dict[str, int] = {}
    deadline = time.monotonic() + BASE_TIMEOUT + PER_DELIVERY * count
    while time.monotonic() < deadline:
        now = time.monotonic()
        counts = {}
        for workflow in workflows(client):
            for sha in first_sent:
                if workflow["metadata"]["name"].endswith(sha):
                    counts[sha] = counts.get(sha, 0) + 1
                    seen.setdefault(sha, now)
        if len(seen) == len(first_sent):
            break
        time.sleep(POLL)
    time.sleep(SETTLE)  # redelivered messages that would make a second Workflow have had their chance
    counts = _count(client, workflows, first_sent)
    stalled = sorted(sha for sha in first_sent if counts.get(sha, 0) == 0)
    if stalled and recover is not None:
        # Are they lost, or waiting in the stream? Restart the Sensors (an operator's rollout restart) and look again.
        recover()
        deadline = time.monotonic() + BASE_TIMEOUT + PER_DELIVERY * len(stalled)
        while time.monotonic() < deadline and any(counts.get(sha, 0) == 0 for sha in stalled):
            time.sleep(POLL)
            counts = _count(client, workflows, first_sent)
            now = time.monotonic()
            for sha in stalled:
                if counts.get(sha, 0):
                    seen.setdefault(sha, now)
        time.sleep(SETTLE)
        counts = _count(client, workflows, first_sent)
    lost = sorted(sha for sha in first_sent if counts.get(sha, 0) == 0)
    duplicated = sorted(sha for sha, n in counts.items() if n > 1)
    latencies = [seen[sha] - first_sent[sha] for sha in seen]
    redelivered = sum(s.redelivered for s in sent)
    figures = (f"load (fault {fault}): sent {len(every)} ({len(cases)} deliveries + {len(duplicates)} duplicates; "
               f"{redelivered} redelivered by the sender after a non-2xx answer, {len(refused)} never answered 2xx), "
               f"Workflows created {sum(counts.values())}, lost {len(lost)}, duplicated {len(duplicated)}")
    if latencies:
        figures += (f", latency p50 {_percentile(latencies, 0.5):.2f} s, p95 {_percentile(latencies, 0.95):.2f} s, "
                    f"max {max(latencies):.2f} s")
    report.notes.append(figures)
    if stalled and recover is not None:
        report.notes.append(f"load (fault {fault}): {len(stalled)} deliveries had no Workflow until the Sensors were "
                            f"restarted by hand (a Sensor stuck after the bus came back); after that {len(lost)} lost")
    for error in fault_errors:
        report.fail("load", f"fault {fault}", f"could not be injected: {error}")
    if lost:
        report.fail("load", f"fault {fault}: {len(lost)} of {len(cases)} deliveries",
                    f"no Workflow (first: commit {lost[0]})")
    if duplicated:
        report.fail("load", f"fault {fault}: {len(duplicated)} commits",
                    f"more than one Workflow (first: commit {duplicated[0]})")
