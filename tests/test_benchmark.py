"""The benchmark's services generator (valid files of the requested sizes) and its cluster footprint (no timing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from components.config import load_services
from tests.conftest import SERVICES_FILE

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


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_the_cluster_footprint_reads_the_real_render(render_stack, stack: str) -> None:  # type: ignore[no-untyped-def]
    # The report's footprint table, from the same render and settings as the benchmark.
    from components.config import load_services, load_stack_settings

    bench = _bench()
    _, manifests = render_stack(stack)
    sizes = load_stack_settings(ROOT, stack).sizes
    deployed = len(load_services(SERVICES_FILE).for_environment(stack))
    sensors = bench.sensor_footprint(manifests)
    assert sensors["pods"] == deployed * sizes.sensor.replicas > 0
    assert sensors["cpu"] == pytest.approx(sensors["pods"] * bench.cpu(sizes.sensor.resources.requests.cpu))
    fixed = bench.platform_footprint(stack, manifests)
    controllers = sum(getattr(sizes, field).replicas for field in bench.PLATFORM_SIZES)
    event_source = sizes.event_source.replicas
    assert fixed["pods"] > controllers + event_source  # and the EventBus's replicas
    assert fixed["cpu"] > 0 and fixed["mib"] > 0
