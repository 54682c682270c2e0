"""The vendored upstream data (upstream/charts, schemas, github-webhooks) is what its README says.

Each file is checked against ``upstream/SHA256SUMS.data`` (written when the data was copied,
docs/upstream-data.md), so an accidental edit, a lost file or an unlisted new file fails here
instead of silently changing what the other tests compare with.
"""

from __future__ import annotations

import hashlib
import re

from tests.conftest import UPSTREAM

SUMS = UPSTREAM / "SHA256SUMS.data"
FOLDERS = ("charts", "github-webhooks")
LINE = re.compile(r"^(?P<digest>[0-9a-f]{64})  (?P<path>\S+)$")


def listed() -> dict[str, str]:
    """``{path relative to upstream/: sha256}`` from SHA256SUMS.data (the ``sha256sum`` format)."""
    entries: dict[str, str] = {}
    for number, line in enumerate(SUMS.read_text(encoding="utf-8").splitlines(), start=1):
        match = LINE.match(line)
        assert match, f"{SUMS.name}:{number}: not '<sha256>  <path>': {line!r}"
        assert match["path"] not in entries, f"{SUMS.name}:{number}: {match['path']} listed twice"
        entries[match["path"]] = match["digest"]
    return entries


def present() -> set[str]:
    """Every data file in the vendored folders (the READMEs are the project's own text)."""
    return {
        path.relative_to(UPSTREAM).as_posix()
        for folder in FOLDERS
        for path in (UPSTREAM / folder).rglob("*")
        if path.is_file() and path.name != "README.md"
    }


def test_every_vendored_file_is_listed_and_every_listed_file_is_there() -> None:
    entries = listed()
    assert sorted(present() - set(entries)) == [], f"not in {SUMS.name}: add it with its provenance"
    assert sorted(set(entries) - present()) == [], f"listed in {SUMS.name} but missing"


def test_every_vendored_file_has_its_recorded_checksum() -> None:
    changed = [
        path for path, digest in sorted(listed().items())
        if hashlib.sha256((UPSTREAM / path).read_bytes()).hexdigest() != digest
    ]
    assert changed == [], f"changed since they were copied from upstream (docs/upstream-data.md): {changed}"


def test_each_vendored_folder_says_where_its_files_come_from() -> None:
    for folder in FOLDERS:
        readme = (UPSTREAM / folder / "README.md").read_text(encoding="utf-8")
        assert "github.com/" in readme and "SHA256SUMS.data" in readme, folder
