"""Cross-references from code, config and docs to a section of the README or of docs/.

A comment that sends a reader to `README, "Images"` when the README has no such
section is a dead end; sections get renamed, so every reference is checked.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# `README, "Section"`, `README: "Section"`, `README ("Section")`, and the same with
# `docs/<name>.md` in place of README.
REFERENCE = re.compile(r'(README|docs/[a-z-]+\.md)(?:, |: | \()"([^"]+)"')


def _headings(markdown: Path) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", markdown.read_text(encoding="utf-8"), re.M)}


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    suffixes = {".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".json", ""}
    return [ROOT / name for name in listed.split() if Path(name).suffix in suffixes and (ROOT / name).is_file()]


def test_every_section_reference_names_a_section_that_exists() -> None:
    headings: dict[str, set[str]] = {}
    references = []
    dead = []
    for path in _tracked_text_files():
        if path.parent.name == "tests":
            continue  # this module's own examples
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in REFERENCE.finditer(line):
                target, section = match.groups()
                document = ROOT / ("README.md" if target == "README" else target)
                if target not in headings:
                    headings[target] = _headings(document) if document.is_file() else set()
                references.append((path, section))
                # A heading may go on with what it covers: "Build once, promote many (`promoteFrom`...)".
                if not any(h == section or h.startswith(f"{section} (") for h in headings[target]):
                    dead.append(f"{path.relative_to(ROOT)}:{number}: {target}, {section!r}")
    assert len(references) > 10  # the pattern still finds the references
    assert dead == []


# Built from parts so that this file does not match itself.
OUTSIDE = re.compile("|".join([
    r"\.\./" + "shared", "DESIGN" + r"\.md", "shared/" + "(?:tools|schemas|charts|fixtures)",
]))


def test_no_file_depends_on_a_folder_beside_the_repository() -> None:
    """The repository stands alone: docs cite its own docs, tests read upstream/ and tests/checks."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _tracked_text_files()
        if path.suffix != ".json"  # vendored upstream data
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []
