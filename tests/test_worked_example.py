"""The worked example in services.yaml runs as written in its own test image.

`vbsiv`'s test image is `python:*-slim`: a bare CPython with no third-party package
(no pytest) and, in the tests step, a read-only root filesystem, so nothing can be
installed. Its command must need only the standard library. This runs the command
with an interpreter that cannot see any site-packages (`-I -S`: no user or site
directories), against a one-test directory, as the step would run it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from components.config import load_services

ROOT = Path(__file__).resolve().parents[1]


def test_the_python_example_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    [service] = [s for s in load_services(ROOT / "services.yaml").services if s.name == "vbsiv"]
    assert service.tests is not None
    assert service.tests.image.startswith("python:") and "-slim" in service.tests.image
    command = list(service.tests.command)
    assert command[:2] == ["python", "-m"], command
    (tmp_path / "test_sample.py").write_text(
        "import unittest\n\n\nclass Sample(unittest.TestCase):\n"
        "    def test_it(self):\n        self.assertTrue(True)\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-I", "-S", *command[1:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Ran 1 test" in done.stderr
