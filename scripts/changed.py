"""Did this commit change the service's directory? Output `changed` = "true" / "false".

Step script of the release pipeline (docs/release-contract.md, section 4); runs in the
`release-tools` image as `python3 changed.py` after `checkout.py` with DEPTH=2:

    DEST          the checkout (HEAD detached at REVISION)
    REVISION      full commit sha (40 lowercase hex)
    SERVICE_PATH  the service's directory in a monorepo, relative, e.g. services/api
    OUTPUT_DIR    where outputs go, default /tmp/outputs

Output: `$OUTPUT_DIR/changed`.

What "changed" means: the tree of REVISION differs from the tree of its *first parent*
under SERVICE_PATH. For a merge commit the first parent is the target branch before
the merge, so the diff is exactly what the PR brought in; a squash or rebase merge
leaves a one-parent commit, compared with the branch before it in the same way.

Why depth 2 is enough: the comparison needs only two trees, REVISION's and its first
parent's. A fetch of depth 2 brings REVISION and all its parents (every parent is
one step away), with their full trees; no older history is ever read.

Safe default: when no parent is present (a root commit, or a checkout of depth 1
where the parent was cut off) the answer is "true", so a release is never skipped
for lack of history.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
from _common import StepError, commit_sha, relative_path, write_output


def log(message: str) -> None:
    print(f"changed: {message}", file=sys.stderr, flush=True)


def service_path(value: str) -> str:
    """A relative path inside the repository, without `..`; "" means the whole repository."""
    value = value.strip().rstrip("/")
    if value in ("", "."):
        return ""
    if any(c in value for c in "\n\r\0"):
        raise StepError(f"SERVICE_PATH must be a relative path without '..', got {value!r}")
    return relative_path("SERVICE_PATH", value)


def git(dest: str, *args: str) -> subprocess.CompletedProcess[str]:
    # --literal-pathspecs: a path is a path, never pathspec magic like ":(exclude)".
    command = ["git", "-c", f"safe.directory={dest}", "--literal-pathspecs", "-C", dest, *args]
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)


def parents(dest: str, revision: str) -> list[str]:
    """Parents of REVISION as far as the (shallow) clone knows them; [] at a root or a cut."""
    result = git(dest, "rev-list", "--parents", "-n", "1", revision)
    if result.returncode != 0:
        raise StepError(f"{revision} is not in the checkout at {dest}: {result.stderr.strip()}")
    return result.stdout.split()[1:]


def changed(dest: str, revision: str, path: str) -> bool:
    found = parents(dest, revision)
    if not found:
        log(f"{revision} has no parent in the checkout (root commit or shallow cut): assuming changed")
        return True
    if not path:
        log("SERVICE_PATH is empty (the whole repository): assuming changed")
        return True
    first = found[0]
    result = git(dest, "diff-tree", "--quiet", "-r", first, revision, "--", path)
    if result.returncode not in (0, 1):
        raise StepError(f"git diff-tree failed: {result.stderr.strip()}")
    differs = result.returncode == 1
    log(f"{path} {'changed' if differs else 'unchanged'} in {revision} against its first parent {first}")
    return differs


def main() -> int:
    try:
        revision = commit_sha(os.environ)
        dest = os.environ.get("DEST", "")
        if not dest or not os.path.isdir(dest):
            raise StepError(f"DEST must be an existing checkout, got {dest!r}")
        dest = str(Path(dest).absolute())
        path = service_path(os.environ.get("SERVICE_PATH", ""))
        write_output("changed", "true" if changed(dest, revision, path) else "false")
    except StepError as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
