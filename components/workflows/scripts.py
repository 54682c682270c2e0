"""The step scripts ConfigMap: every shipped file of `scripts/`, named after their hash.

Owns which files of `scripts/` ship (not tests, not caches; flat, valid ConfigMap keys,
within a ConfigMap's size), the ConfigMap's name (`release-pipeline-scripts-<hash>`: a
changed script is a new ConfigMap) and its manifest. The scripts are read at Pulumi time
and stay files in the project, tested as files.

Does not own: the scripts themselves (`scripts/`), where the pods mount them
(`pods.SCRIPTS_DIR`), the two ConfigMap resources (`component.ReleaseWorkflows`, which
keeps an old one on delete for the Workflows still running with it).

Decisions: docs/decisions/0350-step-scripts-in-a-hashed-config-map.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from components.workflows.pods import Manifest, labels

SCRIPTS_CONFIG_MAP_PREFIX = "release-pipeline-scripts"
SCRIPTS_HASH_LENGTH = 10
CONFIG_MAP_MAX_BYTES = 1024 * 1024
# What of `scripts/` is not shipped: tests and caches.
SCRIPTS_SKIPPED_DIRS = frozenset({"tests", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

# The project's own `scripts/` (this file is components/workflows/scripts.py).
SCRIPTS_PROJECT_DIR = Path(__file__).resolve().parents[2] / "scripts"


class ScriptsError(ValueError):
    """`scripts/` cannot be shipped as a ConfigMap."""


def read_scripts(directory: Path) -> dict[str, str]:
    """Every file of `scripts/` that ships (not tests, not caches), by file name, sorted."""
    if not directory.is_dir():
        raise ScriptsError(f"{directory} is missing: the workflow steps run the scripts in it")
    files: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        if path.is_dir():
            if path.name in SCRIPTS_SKIPPED_DIRS:
                continue
            raise ScriptsError(f"{path}: a ConfigMap holds files, not directories; keep the scripts flat")
        if path.name.startswith(".") or path.suffix in {".pyc", ".pyo"} or path.name.startswith("test_") \
                or path.name == "conftest.py":
            continue
        if not CONFIG_MAP_KEY.match(path.name):
            raise ScriptsError(f"{path}: not a valid ConfigMap key")
        files[path.name] = path.read_text(encoding="utf-8")
    if not files:
        raise ScriptsError(f"{directory} holds no scripts")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in files.items())
    if size > CONFIG_MAP_MAX_BYTES:
        raise ScriptsError(f"{directory}: {size} bytes, more than a ConfigMap holds ({CONFIG_MAP_MAX_BYTES})")
    return files


def scripts_config_map_name(files: Mapping[str, str]) -> str:
    """`release-pipeline-scripts-<hash>`: a change to any script is a new ConfigMap."""
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return f"{SCRIPTS_CONFIG_MAP_PREFIX}-{digest.hexdigest()[:SCRIPTS_HASH_LENGTH]}"


def scripts_config_map(files: Mapping[str, str], namespace: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": scripts_config_map_name(files), "namespace": namespace,
                     "labels": labels("step-scripts")},
        "immutable": True,
        "data": dict(sorted(files.items())),
    }
