"""The benchmark's services generator: valid files of the requested sizes (no timing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from components.config import load_services

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("render_bench", ROOT / "benchmarks" / "render_bench.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("count", [1, 10, 100, 300])
def test_generated_services_are_valid(tmp_path: Path, count: int) -> None:
    bench = _bench()
    path = bench.write_services(count, tmp_path / "services.yaml")
    services = load_services(path).services
    assert len(services) == count
    if count >= 100:
        assert len({s.repo for s in services}) < count  # monorepos shared by several services
        assert any(s.path for s in services) and any(s.tests for s in services)
        assert any(s.rollout.traffic_routing for s in services) and any(s.trigger_on_push for s in services)
        assert len({s.project for s in services}) > 3 and len({s.helm.repo for s in services}) > 3


def test_generation_is_deterministic(tmp_path: Path) -> None:
    bench = _bench()
    first = bench.write_services(30, tmp_path / "a.yaml").read_text()
    assert bench.write_services(30, tmp_path / "b.yaml").read_text() == first
