"""The vendored upstream data (upstream/charts, upstream/github-webhooks) is what its README says.

Each folder lists its files with their SHA-256 in its own ``SHA256SUMS``, the same scheme
as ``upstream/crds`` (read by ``components.upstream_data.read_sums``), so an accidental edit,
a lost file or an unlisted new file fails here instead of silently changing what the other
tests compare with. These folders are copied by hand (docs/upstream-data.md), not from Go
modules: their provenance is in each folder's README.
"""

from __future__ import annotations

import hashlib

import pytest

from components.upstream_data import SUMS, read_sums
from tests.conftest import UPSTREAM

FOLDERS = ("charts", "github-webhooks")


def present(folder: str) -> set[str]:
    """Every data file in the folder (its README and SHA256SUMS are the project's own text)."""
    base = UPSTREAM / folder
    return {path.relative_to(base).as_posix() for path in base.rglob("*")
            if path.is_file() and path.name not in {"README.md", SUMS}}


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_vendored_file_is_listed_and_every_listed_file_is_there(folder: str) -> None:
    entries = read_sums(folder)
    assert sorted(present(folder) - set(entries)) == [], f"not in upstream/{folder}/{SUMS}: add it with its provenance"
    assert sorted(set(entries) - present(folder)) == [], f"listed in upstream/{folder}/{SUMS} but missing"


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_vendored_file_has_its_recorded_checksum(folder: str) -> None:
    changed = [
        path for path, digest in sorted(read_sums(folder).items())
        if hashlib.sha256((UPSTREAM / folder / path).read_bytes()).hexdigest() != digest
    ]
    assert changed == [], f"changed since they were copied from upstream (docs/upstream-data.md): {changed}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_vendored_folder_says_where_its_files_come_from(folder: str) -> None:
    readme = (UPSTREAM / folder / "README.md").read_text(encoding="utf-8")
    assert "github.com/" in readme and SUMS in readme, folder


def test_one_checksum_scheme_for_all_upstream_data() -> None:
    """Every folder under upstream/ carries its own SHA256SUMS; no other checksum file."""
    folders = {path.name for path in UPSTREAM.iterdir() if path.is_dir()}
    assert all((UPSTREAM / folder / SUMS).is_file() for folder in folders), folders
    stray = [path.name for path in UPSTREAM.iterdir() if path.is_file()]
    assert stray == [], f"checksum files belong in upstream/<folder>/{SUMS}: {stray}"
