"""Replica counts and replica-weighted canary steps: the arithmetic (components.canary),
the settings that give a Rollout its count, and the rule `check` applies
(docs/decisions/0142-canary-steps-and-replicas.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.canary import canary_pods, fewest_replicas, unhonoured_steps
from components.config import STACKS, ConfigError, load_stack_settings, parse_services, validate_all
from tests.conftest import SERVICES_FILE

ROOT = Path(__file__).resolve().parents[1]

LIVE_STEPS = [20, 40, 60, 80]

SERVICE = """services:
  - name: vbsiv
    repo: Appen/sid_verification_backend_api
    imageRepository: datacollect-vbsiv
    namespace: datacollect
    project: datacollect
    helm: {repo: Appen-International/datacollect-helm, path: app/vbsiv}
"""


# ------------------------------------------------------------------ arithmetic


@pytest.mark.parametrize(("weight", "replicas", "pods"), [
    (20, 5, 1), (40, 5, 2), (80, 5, 4), (100, 5, 5), (20, 1, 1), (10, 3, 1), (50, 3, 2), (1, 100, 1), (99, 100, 99),
])
def test_canary_pods_is_the_ceiling_of_the_weighted_count(weight: int, replicas: int, pods: int) -> None:
    assert canary_pods(weight, replicas) == pods


def test_one_pod_collapses_every_live_step() -> None:
    assert unhonoured_steps(LIVE_STEPS, 1) == [
        "setWeight 20 and 40 both run 1 canary pod",
        "setWeight 40 and 60 both run 1 canary pod",
        "setWeight 60 and 80 both run 1 canary pod",
        "setWeight 20 already runs all 1 pod as canary",
        "setWeight 40 already runs all 1 pod as canary",
        "setWeight 60 already runs all 1 pod as canary",
        "setWeight 80 already runs all 1 pod as canary",
    ]


def test_four_pods_promote_fully_at_eighty_five_honour_every_step() -> None:
    assert unhonoured_steps(LIVE_STEPS, 4) == ["setWeight 80 already runs all 4 pods as canary"]
    assert unhonoured_steps(LIVE_STEPS, 5) == []
    assert fewest_replicas(LIVE_STEPS) == 5


@pytest.mark.parametrize(("weights", "fewest"), [
    ([100], 1), ([], 1), ([50], 2), ([25, 50], 3), ([10, 50], 3), ([10, 20, 30], 7), ([1, 2, 99, 100], 100),
])
def test_fewest_replicas(weights: list[int], fewest: int) -> None:
    assert fewest_replicas(weights) == fewest
    assert unhonoured_steps(weights, fewest) == []
    assert fewest == 1 or unhonoured_steps(weights, fewest - 1) != []


# ------------------------------------------------------------------ settings


def _service(extra: str = ""):  # type: ignore[no-untyped-def]
    return parse_services(SERVICE + extra, "services.yaml").services[0]


def test_hpa_and_a_replica_count_are_refused_together() -> None:
    for fields in ("{hpa: true, replicas: 3}", "{hpa: true, replicasByEnvironment: {live: 3}}"):
        with pytest.raises(ConfigError) as err:
            _service(f"    rollout: {fields}\n")
        [problem] = err.value.problems
        assert (problem.where, problem.field) == ("service 'vbsiv'", "rollout")
        assert "hpa: true leaves the replica count to the HPA" in problem.message
        assert "remove replicas and replicasByEnvironment" in problem.message


def test_a_replica_count_for_an_environment_the_service_is_not_deployed_to_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        _service("    environments: [dev]\n    rollout: {replicasByEnvironment: {live: 5}}\n")
    assert "rollout.replicasByEnvironment.live: the service is not deployed to live" in str(err.value)
    assert "remove that replica count or add the environment" in str(err.value)


def test_the_replica_count_follows_environment_service_stack_then_steps() -> None:
    live, dev = load_stack_settings(ROOT, "live"), load_stack_settings(ROOT, "dev")
    assert _service().replicas_and_source_in(live) == (5, "release.replicas of stack 'live'")
    assert _service().replicas_and_source_in(dev)[0] == 1
    both = _service("    rollout: {replicas: 6, replicasByEnvironment: {live: 8}}\n")
    assert both.replicas_and_source_in(live) == (8, "rollout.replicasByEnvironment.live")
    assert both.replicas_and_source_in(dev) == (6, "rollout.replicas")
    assert _service("    rollout: {hpa: true}\n").replicas_in(live) is None


# ------------------------------------------------------------------ check


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in (f"Pulumi.{s}.yaml" for s in STACKS):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(SERVICES_FILE, tmp_path / "services.yaml")  # the tests' own services file
    return tmp_path


def _with(project: Path, rollout: str) -> None:
    path = project / "services.yaml"
    text = path.read_text(encoding="utf-8")
    marker = "      command: [\"python\", \"-m\", \"unittest\", \"discover\", \"-v\"]\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + f"    rollout: {rollout}\n", 1), encoding="utf-8")


def _messages(project: Path) -> list[str]:
    return [str(p) for p in validate_all(STACKS, project / "services.yaml", project)]


def test_check_refuses_a_service_count_the_live_steps_cannot_be_carried_out_with(project: Path) -> None:
    _with(project, "{replicas: 1}")
    found = _messages(project)
    # One pod carries out dev's single setWeight 100, nothing else.
    assert [m.split(": ")[3].split(",")[0] for m in found] == ["in integration", "in live", "in sandbox"]
    [message] = [m for m in found if ": in live," in m]
    assert message.startswith(f"{project / 'services.yaml'}: service 'vbsiv': rollout.replicas: in live, 1 replica "
                              "(rollout.replicas) cannot carry out the stack's canary (setWeight 20, 40, 60, 80): "
                              "setWeight 20 and 40 both run 1 canary pod;")
    assert "give live a count that does (rollout.replicasByEnvironment.live, or rollout.replicas for every " \
           "environment), the fewest being 5; or change the steps, or use rollout.trafficRouting" in message


def test_check_names_the_environment_entry_that_set_the_count(project: Path) -> None:
    _with(project, "{replicasByEnvironment: {live: 4, integration: 2}}")
    found = _messages(project)
    assert len(found) == 2
    live = next(m for m in found if "in live" in m)
    assert "service 'vbsiv': rollout.replicasByEnvironment.live: in live, 4 replicas" in live
    assert "setWeight 80 already runs all 4 pods as canary" in live
    integration = next(m for m in found if "in integration" in m)
    assert "rollout.replicasByEnvironment.integration: in integration, 2 replicas" in integration
    assert "setWeight 25 and 50 both run 1 canary pod" in integration and "the fewest being 3" in integration


def test_check_refuses_a_stack_count_too_small_for_the_steps(project: Path) -> None:
    path = project / "Pulumi.live.yaml"
    text = path.read_text(encoding="utf-8")
    assert "      replicas: 5 " in text
    path.write_text(text.replace("      replicas: 5 ", "      replicas: 3 ", 1), encoding="utf-8")
    found = _messages(project)
    assert found and all("in live, 3 replicas (release.replicas of stack 'live')" in m for m in found)
    assert {m.split(": ")[1] for m in found} == {"service 'labeling-api'", "service 'vbsiv'"}


@pytest.mark.parametrize("rollout", ["{replicas: 1, trafficRouting: true}", "{hpa: true}",
                                     "{replicas: 5}", "{replicasByEnvironment: {live: 9}}"])
def test_check_accepts_traffic_routing_an_hpa_or_enough_replicas(project: Path, rollout: str) -> None:
    _with(project, rollout)
    assert _messages(project) == []


def test_the_check_command_fails_with_the_message_and_no_traceback(project: Path) -> None:
    _with(project, "{replicas: 2}")
    proc = subprocess.run([sys.executable, "-m", "components", "check", "--services", str(project / "services.yaml"),
                           "--project-dir", str(project)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in output
    assert "service 'vbsiv': rollout.replicas: in live, 2 replicas" in output
