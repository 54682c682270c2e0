"""The step scripts ConfigMap (components/workflows/scripts.py): what ships, its name, and
that every script a step runs is in it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components import workflows as wf
from tests.workflows_support import (
    PROJECT_DIR,
    _all_containers,
    _build,
    _env,
    _pod_templates,
    _release,
    _service,
    _settings,
    _variants,
)

# -------------------------------------------------------------- what each script gets


def test_every_script_a_step_runs_exists_and_reads_its_outputs_from_tmp() -> None:
    scripts = set(wf.read_scripts(PROJECT_DIR / "scripts"))
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            for _, container in _all_containers(manifest):
                command = container.get("command", [])
                if command[:1] == ["python3"]:
                    assert command[1].startswith(wf.SCRIPTS_DIR + "/")
                    assert command[1].rsplit("/", 1)[1] in scripts
                    assert _env(container)["OUTPUT_DIR"] == "/tmp/outputs"
            for template in manifest["spec"]["templates"]:
                for output in template.get("outputs", {}).get("parameters", []):
                    path = output["valueFrom"].get("path")
                    assert path is None or path.startswith("/tmp/outputs/")


# -------------------------------------------------------------------------- scripts


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def test_scripts_config_map_holds_every_script_but_tests_and_caches(tmp_path: Path) -> None:
    _write(tmp_path, {
        "checkout.py": "print('checkout')\n", "github_known_hosts": "github.com ssh-ed25519 AAAA\n",
        "tests/test_checkout.py": "x", "__pycache__/checkout.cpython-311.pyc": "x", "test_local.py": "x",
        "conftest.py": "x", ".hidden": "x",
    })
    files = wf.read_scripts(tmp_path)
    assert files == {"checkout.py": "print('checkout')\n", "github_known_hosts": "github.com ssh-ed25519 AAAA\n"}
    manifest = wf.scripts_config_map(files, "argo")
    assert manifest["data"] == files
    assert manifest["immutable"] is True
    assert manifest["metadata"]["namespace"] == "argo"
    name = manifest["metadata"]["name"]
    assert re.fullmatch(r"release-pipeline-scripts-[0-9a-f]{10}", name)
    assert wf.scripts_config_map_name(files) == name
    assert wf.scripts_config_map_name({**files, "checkout.py": "print(1)\n"}) != name
    assert wf.scripts_config_map_name({"a": "bc"}) != wf.scripts_config_map_name({"ab": "c"})


def test_scripts_that_cannot_ship_are_refused(tmp_path: Path) -> None:
    with pytest.raises(wf.ScriptsError, match="missing"):
        wf.read_scripts(tmp_path / "nope")
    with pytest.raises(wf.ScriptsError, match="no scripts"):
        wf.read_scripts(tmp_path)
    _write(tmp_path / "nested", {"lib/helper.py": "x"})
    with pytest.raises(wf.ScriptsError, match="flat"):
        wf.read_scripts(tmp_path / "nested")


def test_the_projects_scripts_ship_and_are_what_the_steps_mount() -> None:
    files = wf.read_scripts(PROJECT_DIR / "scripts")
    assert {"checkout.py", "github_known_hosts"} <= set(files)
    name = wf.scripts_config_map_name(files)
    volume = {"name": "scripts", "configMap": {"name": name, "defaultMode": 0o444}}
    release = wf.release_template(_service(), _settings(), name)
    for template in _pod_templates(release):
        if "container" in template:
            assert volume in template["volumes"], template["name"]
