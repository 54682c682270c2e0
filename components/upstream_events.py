"""Argo Events' own code run on the render: validation and simulated webhook deliveries.

Owns:
- running ``argo-events-check`` (``tools/eventscheck``, built against the argo-events
  version the chart deploys; found through ``components.toolchain.tool_path``):
  ``validate`` (every Sensor, EventSource and EventBus of a manifests file, with the
  controllers' own validation) and ``simulate`` (one GitHub delivery through every
  Sensor, with upstream's filter, parameter and k8s-trigger code);
- the ``simulate-webhook`` command: ``python -m components simulate-webhook --in OUT
  --stack S --event E --payload FILE [--header NAME=VALUE ...]`` runs a delivery
  through the Sensors of ``OUT/<S>/manifests.yaml`` (as ``render`` writes it) and prints
  the JSON list ``[{"sensor", "namespace", "fired", "created", ...}]``.

``--event`` names the EventSource event the delivery arrives at, as Argo Events does:
the event of one repository (``components.intake.event_name``), i.e. which webhook URL
GitHub posted to. The GitHub event type travels in the ``X-GitHub-Event`` header, as it
does from GitHub (docs/decisions/0180-argo-events-checked-by-its-own-code.md).

Does not own: what the Sensors say (``components.sensors``), how the tool is built
(``components.toolchain``), the argo-events semantics (upstream).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TOOL = "argo-events-check"
# One call checks a few objects or runs one delivery: well under a second. A hung binary is a failure.
TIMEOUT_S = 120

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2


class EventsCheckError(Exception):
    """The delivery or the manifests are unusable; the message says what and where."""


class ToolUnavailable(Exception):
    """``argo-events-check`` is neither built nor provided; the message says how to get it."""


def binary() -> Path:
    """Path of ``argo-events-check``; raises ``ToolUnavailable`` with what to do."""
    try:
        from components import toolchain
    except ImportError as exc:  # pragma: no cover - the toolchain module is part of the project
        raise ToolUnavailable(f"{TOOL}: components.toolchain is missing ({exc})") from None
    try:
        return toolchain.tool_path(TOOL)
    except toolchain.ToolMissing as exc:
        raise ToolUnavailable(str(exc)) from None


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(binary()), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{TOOL} {args[0]} did not answer within {TIMEOUT_S} s") from None


def _output(proc: subprocess.CompletedProcess[str], allowed: set[int]) -> Any:
    if proc.returncode == EXIT_BAD_INPUT:
        raise EventsCheckError(proc.stderr.strip().removeprefix("eventscheck: "))
    if proc.returncode not in allowed:
        raise RuntimeError(f"{TOOL} failed with exit {proc.returncode}: {proc.stderr.strip()}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"{TOOL} printed no JSON ({exc}): {proc.stdout[:200]!r}") from None


def validate(manifests: Path) -> dict[str, Any]:
    """``{"argoEvents", "checked": [ref], "findings": [ref + check + message]}``; a ref is kind/namespace/name."""
    report: dict[str, Any] = _output(_run(["validate", str(manifests)]), {0, 1})
    return report


def simulate(manifests: Path, event: str, payload: Path, headers: Sequence[tuple[str, str]] = ()) -> list[Any]:
    """One delivery (payload file + headers) to the EventSource event ``event``, through every Sensor."""
    args = ["simulate", "--manifests", str(manifests), "--event", event, "--payload", str(payload)]
    for name, value in headers:
        args += ["--header", f"{name}={value}"]
    results: list[Any] = _output(_run(args), {0})
    return results


def parse_header(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> (name, value); the value may contain ``=`` and be empty."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or any(c in name for c in " \t\r\n:"):
        raise EventsCheckError(f"--header {text!r}: expected NAME=VALUE with a header name such as X-GitHub-Event")
    if any(c in value for c in "\r\n\0"):
        raise EventsCheckError(f"--header {name}: a header value cannot contain a line break or NUL")
    return name, value


def stack_manifests(out: Path, stack: str) -> Path:
    """``OUT/<stack>/manifests.yaml`` of a render; EventsCheckError when it is not there."""
    if not out.is_dir():
        raise EventsCheckError(f"--in {out}: no such directory (write it with `python -m components render --out`)")
    manifests = out / stack / "manifests.yaml"
    if not manifests.is_file():
        raise EventsCheckError(
            f"--in {out}: no {stack}/manifests.yaml (render the stack with "
            f"`python -m components render --stack {stack} --out {out}`)"
        )
    return manifests


def check_payload(payload: Path) -> None:
    """A payload GitHub could send: a readable file holding one JSON object."""
    try:
        text = payload.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EventsCheckError(f"--payload {payload}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EventsCheckError(f"--payload {payload}: cannot read it as UTF-8 text: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventsCheckError(f"--payload {payload}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventsCheckError(f"--payload {payload}: a webhook payload is a JSON object, not {type(data).__name__}")


def simulate_stack(out: Path, stack: str, event: str, payload: Path, headers: Sequence[str]) -> list[Any]:
    """The ``simulate-webhook`` command without printing: checks the input, then ``simulate``."""
    parsed = [parse_header(h) for h in headers]
    manifests = stack_manifests(out, stack)
    check_payload(payload)
    return simulate(manifests, event, payload, parsed)


# --- command line -----------------------------------------------------------------


def add_simulate_webhook(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from components.config import STACKS

    parser = commands.add_parser(
        "simulate-webhook",
        help="run one GitHub delivery through a rendered stack's Sensors with Argo Events' own code",
        description=(
            "Build the event the github EventSource publishes for the delivery, run it through every "
            "Sensor of OUT/STACK/manifests.yaml with argo-events' filter and trigger code, and print "
            "[{sensor, namespace, fired, created, dependencies, errors}] as JSON. Exit 2 on unusable input."
        ),
    )
    parser.add_argument("--in", dest="out", required=True, type=Path, metavar="OUT", help="render output directory")
    parser.add_argument("--stack", required=True, choices=list(STACKS), help="stack whose Sensors receive it")
    parser.add_argument(
        "--event",
        required=True,
        metavar="EVENT",
        help="EventSource event it arrives at: one per repository, e.g. appen-sid-verification-backend-api",
    )
    parser.add_argument("--payload", required=True, type=Path, metavar="FILE", help="JSON body of the delivery")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="request header, repeatable; X-GitHub-Event is required (Content-Type defaults to application/json)",
    )
    parser.set_defaults(handler=run_simulate_webhook)


def run_simulate_webhook(args: argparse.Namespace, _validator: object = None) -> int:
    try:
        results = simulate_stack(args.out, args.stack, args.event, args.payload, args.header)
    except EventsCheckError as exc:
        print(f"simulate-webhook: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ToolUnavailable, RuntimeError, OSError) as exc:
        print(f"simulate-webhook: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return EXIT_OK
