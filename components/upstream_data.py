"""Pinned copies of upstream data files under ``upstream/``, taken from Go modules.

Owns: which upstream files are copied, per kind of data (``KINDS``: the kind is the
directory under ``upstream/``), copying them byte for byte from the pinned module
versions in Go's module cache (``go mod download -json MODULE@VERSION`` gives the
directory), the ``upstream/<kind>/SHA256SUMS`` of each kind, and checking the copies
against both (``python -m components refresh-upstream [--check]``).
Does not own: the versions (``components.versions``: ``CHARTS`` and ``CRD_SOURCES``),
nor what the tests do with the data.

Adding a kind: write a function returning its ``UpstreamFile`` list and add it to
``KINDS``; the refresh, the sums and the checks follow.

The data is never edited and never invented: when the proxy does not serve the
pinned version of a module, the source names the nearest served version and says
why (``CrdSource.deviation``), and SHA256SUMS repeats it in its header.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from components import versions

UPSTREAM_DIR = Path(__file__).resolve().parents[1] / "upstream"
SUMS = "SHA256SUMS"
GO_TIMEOUT_S = 600


class UpstreamError(RuntimeError):
    """Go or the module proxy could not give a module; the message says which and why."""


@dataclass(frozen=True)
class UpstreamFile:
    """One file copied from a pinned module version into ``upstream/<kind>/<dest>``."""

    kind: str
    dest: str  # relative path under upstream/<kind>/
    module: str
    version: str
    path: str  # path of the file inside the module
    note: str = ""

    @property
    def local(self) -> Path:
        return UPSTREAM_DIR / self.kind / self.dest


def crd_files() -> list[UpstreamFile]:
    """The CRDs the program installs at ``pulumi up`` (``ChartPin.crd_paths``), per chart."""
    sources = {source.chart: source for source in versions.CRD_SOURCES}
    files = []
    for pin in versions.CHARTS:
        source = sources[pin.chart]
        for path in pin.crd_paths:
            dest = f"{pin.chart}/{PurePosixPath(path).name}"
            files.append(UpstreamFile("crds", dest, source.module, source.version, path, source.deviation))
    return sorted(files, key=lambda f: f.dest)


KINDS: dict[str, Callable[[], list[UpstreamFile]]] = {"crds": crd_files}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sums_text(kind: str, files: Iterable[UpstreamFile], digests: dict[str, str]) -> str:
    """``upstream/<kind>/SHA256SUMS``: a header naming each source module, then sha256sum lines."""
    files = sorted(files, key=lambda f: f.dest)
    lines = [
        f"# upstream/{kind}: copied byte for byte from Go modules by `python -m components refresh-upstream`.",
        "# Sources (directory: module@version):",
    ]
    seen: set[tuple[str, str, str]] = set()
    for item in files:
        key = (item.dest.split("/")[0], item.module, item.version)
        if key not in seen:
            seen.add(key)
            note = f" -- NOTE: {item.note}" if item.note else ""
            lines.append(f"#   {key[0]}: {item.module}@{item.version}{note}")
    lines.extend(f"{digests[item.dest]}  {item.dest}" for item in files)
    return "\n".join(lines) + "\n"


def read_sums(kind: str) -> dict[str, str]:
    """dest -> sha256 from ``upstream/<kind>/SHA256SUMS`` (comment lines skipped)."""
    text = (UPSTREAM_DIR / kind / SUMS).read_text(encoding="utf-8")
    sums = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            digest, _, dest = line.partition("  ")
            sums[dest] = digest
    return sums


def module_dir(module: str, version: str) -> Path:
    """Directory of ``module@version`` in Go's module cache, downloaded through the proxy."""
    go = shutil.which("go")
    if go is None:
        raise UpstreamError("go is not on PATH: refreshing upstream data needs Go and the Go module proxy")
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", GOWORK="off")
    with tempfile.TemporaryDirectory() as outside_any_module:
        try:
            proc = subprocess.run(
                [go, "mod", "download", "-json", f"{module}@{version}"],
                cwd=outside_any_module,
                env=env,
                capture_output=True,
                text=True,
                timeout=GO_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise UpstreamError(f"{module}@{version}: `go mod download` took over {GO_TIMEOUT_S} s") from None
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        info = {"Error": (proc.stdout + proc.stderr).strip()}
    if proc.returncode != 0 or info.get("Error") or not info.get("Dir"):
        raise UpstreamError(f"{module}@{version}: {info.get('Error') or proc.stderr.strip()}")
    return Path(info["Dir"])


def _source_path(item: UpstreamFile, dirs: dict[tuple[str, str], Path]) -> Path:
    key = (item.module, item.version)
    if key not in dirs:
        dirs[key] = module_dir(*key)
    return dirs[key] / item.path


def refresh(kinds: Iterable[str] | None = None, *, check: bool = False) -> list[str]:
    """Copy (or with ``check``, compare) every file of ``kinds``; returns the differences found.

    Without ``check`` the copies and SHA256SUMS are rewritten and files no longer listed
    are removed; the returned lines say what changed.
    """
    dirs: dict[tuple[str, str], Path] = {}
    changes: list[str] = []
    for kind in sorted(kinds or KINDS):
        files = KINDS[kind]()
        digests = {}
        for item in files:
            source = _source_path(item, dirs)
            if not source.is_file():
                raise UpstreamError(f"{item.module}@{item.version} has no {item.path}")
            data = source.read_bytes()
            digests[item.dest] = hashlib.sha256(data).hexdigest()
            if not item.local.is_file() or item.local.read_bytes() != data:
                what = "differs from" if item.local.is_file() else "missing; it is"
                changes.append(f"upstream/{kind}/{item.dest}: {what} {item.module}@{item.version}/{item.path}")
                if not check:
                    item.local.parent.mkdir(parents=True, exist_ok=True)
                    item.local.write_bytes(data)
        base = UPSTREAM_DIR / kind
        wanted = {item.dest for item in files} | {SUMS}
        for path in sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []:
            rel = path.relative_to(base).as_posix()
            if rel not in wanted:
                changes.append(f"upstream/{kind}/{rel}: not an upstream file of this kind")
                if not check:
                    path.unlink()
        text = sums_text(kind, files, digests)
        sums = base / SUMS
        if not sums.is_file() or sums.read_text(encoding="utf-8") != text:
            changes.append(f"upstream/{kind}/{SUMS}: out of date")
            if not check:
                base.mkdir(parents=True, exist_ok=True)
                sums.write_text(text, encoding="utf-8")
    return changes
