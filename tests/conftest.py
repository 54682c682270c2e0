"""Test helpers for every module: render the real project offline.

Owns:
- ``SERVICES_FILE``: the tests' own services file (``tests/data/services.yaml``). Tests never
  depend on what the project's ``services.yaml`` lists, so teams edit it freely.
- ``copy_project(dest)``: the stack files (and any other project files named) in ``dest``,
  with the tests' services file as ``services.yaml``.
- ``render_stack`` (session fixture): ``render_stack(stack, services_text=None)``
  renders the real program's stack, with the tests' services file unless
  ``services_text`` is given, through the CLI in a subprocess (exactly what a
  user runs) and returns ``(resources, manifests)`` as loaded from
  ``resources.json`` / ``manifests.yaml``. Results are cached per session; each call
  returns a fresh copy, so a test may modify what it gets.
- ``run_render_cli(*args)``: the CLI as a subprocess, for tests that expect failure.
- ``upstream_judge`` (session fixture): one local kube-apiserver and the Argo tools that
  judge single built objects (tests/upstream_support.py), started on first use.
- ``UPSTREAM``: the pinned upstream data the checks read (``upstream/``, docs/upstream-data.md).

Deliberately not here: per-module fixtures (they live next to their tests).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT / "upstream"  # chart defaults, schemas, webhook payloads: docs/upstream-data.md
SERVICES_FILE = ROOT / "tests" / "data" / "services.yaml"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Resources = list[dict[str, Any]]
Manifests = list[dict[str, Any]]
RenderStack = Callable[..., tuple[Resources, Manifests]]


def copy_project(dest: Path, *names: str) -> Path:
    """``dest`` with every ``Pulumi.<stack>.yaml``, the project files ``names`` and the tests' services file."""
    from components.config import STACKS

    dest.mkdir(parents=True, exist_ok=True)
    for name in [*names, *(f"Pulumi.{stack}.yaml" for stack in STACKS)]:
        shutil.copy(ROOT / name, dest / name)
    shutil.copy(SERVICES_FILE, dest / "services.yaml")
    return dest


def run_render_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m components render ARGS`` from the repository root; never raises on exit code."""
    return subprocess.run(
        [sys.executable, "-m", "components", "render", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def render_stack(tmp_path_factory: pytest.TempPathFactory) -> RenderStack:
    """Render a stack of the real project: ``render_stack("dev", services_text=None)``."""
    from components.render.output import read_stack

    cache: dict[tuple[str, str | None], tuple[Resources, Manifests]] = {}

    def _render(stack: str, services_text: str | None = None) -> tuple[Resources, Manifests]:
        key = (stack, services_text)
        if key not in cache:
            base = tmp_path_factory.mktemp(f"render-{stack}")
            services = base / "services.yaml"
            if services_text is None:
                shutil.copy(SERVICES_FILE, services)
            else:
                services.write_text(services_text, encoding="utf-8")
            args = ["--stack", stack, "--out", str(base / "out"), "--services", str(services)]
            proc = run_render_cli(*args)
            if proc.returncode != 0:
                pytest.fail(
                    f"render of stack {stack!r} failed with exit {proc.returncode}:\n{proc.stderr}",
                    pytrace=False,
                )
            cache[key] = read_stack(base / "out" / stack)
        return copy.deepcopy(cache[key])

    return _render


@pytest.fixture(scope="session")
def upstream_judge() -> Iterator[Any]:
    """One local kube-apiserver (with the pinned CRDs as needed) and the Argo tools for the
    whole session: ``upstream_judge.errors(objects)`` (tests/upstream_support.py)."""
    from components.verify.apiserver import LocalCluster
    from tests.upstream_support import Judge, require

    cluster = LocalCluster(require("kube-apiserver"), require("etcd"))
    with cluster as client:
        yield Judge(client)
