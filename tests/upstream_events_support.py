"""Shared by the tests that run Argo Events' own code (tools/eventscheck) on the render.

Owns:
- ``rendered()``: the four stacks rendered once per test session through the CLI
  (``python -m components render --stack all``), as a directory ``OUT`` holding
  ``OUT/<stack>/manifests.yaml``; ``rendered(services_text)`` renders with another
  services file than the tests' own (tests/data/services.yaml) (cached per text);
- ``require_tool()``: the ``argo-events-check`` binary, or a skip saying how to build it
  (a failure under CI, which builds every tool first: ``make test`` -> ``make tools``);
- ``payload(name)``: a fresh copy of a real GitHub payload from ``upstream/github-webhooks``.

Deliberately not here: the assertions (next to their tests).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SERVICES_FILE, run_render_cli

PAYLOADS = ROOT / "upstream" / "github-webhooks"


def require_tool() -> Path:
    from components import upstream_events

    try:
        return upstream_events.binary()
    except upstream_events.ToolUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI builds every tool first (make test -> make tools): {exc}")
        pytest.skip(str(exc))


@functools.cache
def _render(services_text: str | None, stacks: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix="upstream-events-"))
    atexit.register(shutil.rmtree, base, True)
    services = base / "services.yaml"
    services.write_text(SERVICES_FILE.read_text(encoding="utf-8") if services_text is None else services_text,
                        encoding="utf-8")
    args = ["--stack", stacks, "--out", str(base / "out"), "--services", str(services)]
    proc = run_render_cli(*args)
    if proc.returncode != 0:
        raise RuntimeError(f"render --stack {stacks} failed with exit {proc.returncode}:\n{proc.stderr}")
    return base / "out"


def rendered(services_text: str | None = None, stacks: str = "all") -> Path:
    """Render output directory (read only: tests copy what they change)."""
    try:
        return _render(services_text, stacks)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def pull_request(name: str = "pull_request.closed-merged.json", *, base: str, repo: str,
                 **pr: Any) -> dict[str, Any]:
    """A real PR payload, retargeted at `base` of `repo` (the payloads all merge into `master`)."""
    body = payload(name)
    body["pull_request"]["base"]["ref"] = base
    body["repository"]["full_name"] = repo
    body["pull_request"].update(pr)
    return body


def push(*, branch: str, repo: str, **changes: Any) -> dict[str, Any]:
    body = payload("push.branch.json")
    body["ref"] = f"refs/heads/{branch}"
    body["repository"]["full_name"] = repo
    body.update(changes)
    return body
