"""`e2e --load N`: N merged-PR deliveries at once, a share of them delivered twice, and what came of them.

Each delivery is a merge of its own commit into the stack's branch of one of the
services' repositories (round robin over the Sensors' routes), signed like the others;
one in DUPLICATE_EVERY is sent a second time (same body, same delivery id), as GitHub's
retries are. They are sent concurrently (CONCURRENCY connections). Then the Workflows
are read until every delivery has its Workflow or the time is up. Reported: sent,
Workflows created, lost (a delivery without a Workflow), duplicated (more than one
Workflow for one commit), and the latency from send to the Workflow being seen
(p50/p95/max; seen by polling every POLL seconds, so that is the resolution).

Owns: the load cases, sending them, counting. Does not own: starting anything (`runner`).
"""

from __future__ import annotations

import math
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


@dataclass
class Sent:
    case: dl.Case
    at: float


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def run_load(client: ApiClient, count: int, routes: list[dl.Route], secrets: dict[tuple[str, str], str],
             socket_for: dict[str, Path], report: StackReport,
             workflows: Callable[[ApiClient], list[dict[str, Any]]]) -> None:
    """Send ``count`` deliveries (plus duplicates) and add the figures (and any loss) to ``report``."""
    cases: list[dl.Case] = []
    for index in range(count):
        route = routes[index % len(routes)]
        label = f"{route.service}:load:{index}"
        body, headers, sha = dl.delivery(route, label, secrets[route.secret_ref], title=f"load {index}")
        cases.append(dl.Case(f"load {index}", route, body, headers, True, sha))
    duplicates = [dl.redelivery(case) for case in cases[::DUPLICATE_EVERY]]

    def send(case: dl.Case) -> Sent:
        at = time.monotonic()
        dl.send(case, socket_for[case.route.event_source])
        return Sent(case, at)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        sent = list(pool.map(send, [*cases, *duplicates]))
    first_sent = {s.case.sha: s.at for s in sent if s.case in cases}
    refused = [s.case for s in sent if s.case.status != 200]
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
    time.sleep(2.0)  # duplicates that would make a second Workflow have had their chance
    counts = {}
    for workflow in workflows(client):
        for sha in first_sent:
            if workflow["metadata"]["name"].endswith(sha):
                counts[sha] = counts.get(sha, 0) + 1
    lost = sorted(sha for sha in first_sent if counts.get(sha, 0) == 0)
    duplicated = sorted(sha for sha, n in counts.items() if n > 1)
    latencies = [seen[sha] - first_sent[sha] for sha in seen]
    figures = (f"load: sent {len(sent)} ({len(cases)} deliveries + {len(duplicates)} duplicates, "
               f"{len(refused)} not answered 200), Workflows created {sum(counts.values())}, lost {len(lost)}, "
               f"duplicated {len(duplicated)}")
    if latencies:
        figures += (f", latency p50 {_percentile(latencies, 0.5):.2f} s, p95 {_percentile(latencies, 0.95):.2f} s, "
                    f"max {max(latencies):.2f} s")
    report.notes.append(figures)
    if lost:
        report.fail("load", f"{len(lost)} of {len(cases)} deliveries", f"no Workflow (first: commit {lost[0]})")
    if duplicated:
        report.fail("load", f"{len(duplicated)} commits", f"more than one Workflow (first: commit {duplicated[0]})")
