"""`python -m components verify` as a user runs it: exit codes, the table, nothing left running.

Runs the real render of all four stacks through the command (one local API server per
stack), with three defects planted by hand in the copy of one of them, and a run
interrupted by Ctrl-C. Needs the pinned tools (`make tools`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.verify.apply import CRDS_DIR, InputError, load_crds
from components.verify.runner import find_tools
from tests.conftest import ROOT, run_render_cli

STARTED = re.compile(r"^(\w+): local API server on 127\.0\.0\.1:(\d+) \(pids ([\d ]+)\)$", re.MULTILINE)


@pytest.fixture(scope="module", autouse=True)
def tools_present() -> None:
    try:
        find_tools()
        load_crds(CRDS_DIR)
    except InputError as exc:
        pytest.fail(f"verify needs the pinned tools and CRDs: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def render_all(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify-render") / "out"
    proc = run_render_cli("--stack", "all", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def _verify(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "components", "verify", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _assert_gone(stderr: str) -> None:
    """Every process verify said it started has exited, and nothing listens on its port."""
    started = STARTED.findall(stderr)
    assert started, stderr
    for _stack, port, pids in started:
        for pid in map(int, pids.split()):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        with socket.socket() as sock, pytest.raises(OSError):
            sock.settimeout(1)
            sock.connect(("127.0.0.1", int(port)))
    leftovers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in leftovers.splitlines() if "release-pipeline-verify-" in line and "ps -eo" not in line]


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_stack_holds_and_planted_defects_exit_1_naming_each_object(render_all: Path, tmp_path: Path) -> None:
    """The real render of dev, sandbox and integration holds; in a copy of live three
    defects are planted by hand, and each is named (one run: one API server per stack)."""
    out = tmp_path / "out"
    shutil.copytree(render_all, out)
    manifests = _docs(out / "live" / "manifests.yaml")
    build = next(m for m in manifests if m["kind"] == "WorkflowTemplate"
                 and m["metadata"]["labels"]["app.kubernetes.io/component"] == "build-workflow")
    next(t for t in build["spec"]["templates"] if t["name"] == "buildkit")["container"]["securityContext"][
        "privileged"] = True
    role = next(m for m in manifests if m["kind"] == "Role" and m["metadata"]["name"] == "sensor-workflows")
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    config_map = next(m for m in manifests if m["kind"] == "ConfigMap")
    config_map["datta"] = {"x": "y"}
    (out / "live" / "manifests.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False))

    proc = _verify("--in", str(out), "--stack", "all")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    rows = {cells[0]: cells for cells in (line.split() for line in proc.stdout.splitlines())
            if cells and cells[0] in ("dev", "sandbox", "integration", "live")}
    assert sorted(rows) == ["dev", "integration", "live", "sandbox"], proc.stdout
    for stack in ("dev", "sandbox", "integration"):
        assert rows[stack][-1] == "ok" and rows[stack][2] == "0", proc.stdout
    assert rows["live"][-1] == "FAILED" and rows["live"][2] == "1"

    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAIL ")]
    assert failures and all(line.startswith("FAIL live: ") for line in failures), failures
    build_name = f"{build['metadata']['namespace']}/{build['metadata']['name']}"
    assert any(f"WorkflowTemplate {build_name} template buildkit:" in f and "privileged" in f for f in failures)
    assert any("ServiceAccount argo-events/sensor-workflows: get secrets in namespace" in f for f in failures)
    cm_name = f"ConfigMap {config_map['metadata']['namespace']}/{config_map['metadata']['name']}"
    assert any(f"apply: {cm_name}: refused:" in f and ".datta: field not declared in schema" in f for f in failures)
    _assert_gone(proc.stderr)


def test_ctrl_c_stops_the_local_servers(render_all: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "components", "verify", "--in", str(render_all), "--stack",
                                "dev"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        first = ""
        while not STARTED.search(first):  # printed once the API server answers
            line = process.stderr.readline()
            assert line, f"verify ended before its API server answered: {first}"
            first += line
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # only on a failed assertion above: SIGTERM lets it stop its servers
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 128 + signal.SIGINT, first + rest
    assert "Traceback" not in rest
    _assert_gone(first + rest)
