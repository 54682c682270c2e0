"""A Python service on a bare `python:*-slim` test image runs its tests as written.

`vbsiv`'s test image is `python:*-slim`: a bare CPython with no third-party package
(no pytest) and, in the tests step, a read-only root filesystem, so nothing can be
installed. Its command must need only the standard library. This runs the command
with an interpreter that cannot see any site-packages (`-I -S`: no user or site
directories), against a one-test directory, as the step would run it: for the tests'
own services file (which always has such a service) and for every such service of the
project's services.yaml (a rule on the teams' file, not a list of what it holds).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.config import Service, load_services
from tests.conftest import SERVICES_FILE

ROOT = Path(__file__).resolve().parents[1]


def bare_python_services(path: Path) -> list[Service]:
    return [s for s in load_services(path).services
            if s.tests is not None and s.tests.image.startswith("python:") and "-slim" in s.tests.image]


def test_the_tests_services_file_has_a_bare_python_service() -> None:
    assert bare_python_services(SERVICES_FILE)


@pytest.mark.parametrize("path", [SERVICES_FILE, ROOT / "services.yaml"], ids=["tests", "project"])
def test_a_bare_python_service_runs_its_tests_with_the_standard_library_only(tmp_path: Path, path: Path) -> None:
    for service in bare_python_services(path):
        assert service.tests is not None
        run_with_the_standard_library_only(list(service.tests.command), tmp_path)


def run_with_the_standard_library_only(command: list[str], tmp_path: Path) -> None:
    assert command[:2] == ["python", "-m"], command
    (tmp_path / "test_sample.py").write_text(
        "import unittest\n\n\nclass Sample(unittest.TestCase):\n"
        "    def test_it(self):\n        self.assertTrue(True)\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-I", "-S", *command[1:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Ran 1 test" in done.stderr
