"""The upstream programs the tests check the render with, built from pinned Go modules.

Owns: the table of tools (name -> Go module under ``tools/``, package, pinned version),
where each binary is found (``tool_path``) and how a missing one is built into the
per-user cache (``build``; ``make tools`` / ``python -m components tools``).
Does not own: the versions themselves (``components.versions``, upstream tools
section), nor what the tests do with the binaries.

Where a tool is found, first match wins:
1. a binary the user provides: ``$KUBEBUILDER_ASSETS/<name>`` for kube-apiserver and
   etcd (the layout of setup-envtest), or ``<name>`` on PATH when it reports the pinned
   version;
2. the cached build ``<cache>/<name>-<version>/<name>``, where ``<cache>`` is
   ``$RELEASE_PIPELINE_TOOLS_CACHE``, else ``$XDG_CACHE_HOME/release-pipeline/tools``,
   else ``~/.cache/release-pipeline/tools``.
Otherwise ``ToolMissing`` says what is needed.

Builds use only the Go module proxy: every tool is a pinned module version (source is
never copied into the repository; ``tools/<dir>`` holds our go.mod/go.sum and, where
needed, a wrapper). ``CGO_ENABLED=0``, ``-trimpath``, ``GOTOOLCHAIN=local`` and
``-mod=readonly`` (the committed go.sum is the lock). The Go module and build caches are
Go's own (outside the checkout). A build goes into a temporary directory next to its
final place and is renamed into place, so an interrupted build leaves no half binary.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from components import versions

TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools"
GO_MIN = (1, 26)
# `<tool> --version` and the like must answer within this (a hung binary is not "the pinned one").
VERSION_TIMEOUT_S = 20
# A cold build of kube-apiserver on 2 cores takes minutes; a build that takes this long is stuck.
BUILD_TIMEOUT_S = 45 * 60


class ToolMissing(RuntimeError):
    """A tool is neither provided nor built; the message says what is needed."""


class BuildError(RuntimeError):
    """A build failed; the message names the tool and carries Go's output."""


@dataclass(frozen=True)
class Tool:
    """One upstream program: how it is built and how it tells its version."""

    name: str
    module_dir: str  # directory under tools/ holding our go.mod
    package: str  # package to build, as `go build` takes it from module_dir
    version: str  # pinned version (tools/<module_dir>/go.mod requires the module at it)
    module: str  # the upstream module whose version is pinned
    version_args: tuple[str, ...] = ("--version",)
    ldflags: tuple[str, ...] = ()
    # Build inside a writable copy of the upstream module (its own go.mod/go.sum) with
    # these empty placeholder files created first: for a module whose package embeds
    # files that the published module does not contain.
    placeholders: tuple[str, ...] = field(default=())
    kubebuilder_asset: bool = False  # setup-envtest lays it out under KUBEBUILDER_ASSETS

    @property
    def bare_version(self) -> str:
        return self.version.removeprefix("v")


def _kube_ldflags(version: str) -> tuple[str, ...]:
    # As kubernetes' hack/lib/version.sh sets them, so the server reports its real version.
    major, minor = version.removeprefix("v").split(".")[:2]
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    return tuple(
        f"-X k8s.io/{package}.{key}={value}"
        for package in ("client-go/pkg/version", "component-base/version")
        for key, value in values.items()
    )


_ARGO_WF = "github.com/argoproj/argo-workflows/v4"
_ROLLOUTS = "github.com/argoproj/argo-rollouts"

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "kube-apiserver",
            "kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-apiserver",
            versions.KUBERNETES,
            "k8s.io/kubernetes",
            ldflags=_kube_ldflags(versions.KUBERNETES),
            kubebuilder_asset=True,
        ),
        Tool(
            "etcd",
            "etcd",
            "go.etcd.io/etcd/server/v3",
            versions.ETCD,
            "go.etcd.io/etcd/server/v3",
            kubebuilder_asset=True,
        ),
        Tool(
            "argo-events-check",
            "eventscheck",
            ".",
            versions.ARGO_EVENTS_CHECK,
            "github.com/argoproj/argo-events",
            version_args=("version",),  # prints the argo-events module version it was built with
        ),
        Tool(
            "argo-events",
            "argo-events",
            "github.com/argoproj/argo-events/cmd",
            versions.ARGO_EVENTS.app_version,
            "github.com/argoproj/argo-events",
            # It has no version command: only the cached build (whose inputs are stamped) is used.
            version_args=("--version",),
            ldflags=(
                f"-X github.com/argoproj/argo-events.version={versions.ARGO_EVENTS.app_version}",
                "-X github.com/argoproj/argo-events.gitTreeState=clean",
            ),
        ),
        Tool(
            "argo",
            "argo",
            "./cmd/argo",
            versions.ARGO_WORKFLOWS_CLI,
            _ARGO_WF,
            version_args=("version", "--short"),
            ldflags=(
                f"-X {_ARGO_WF}.version={versions.ARGO_WORKFLOWS_CLI}",
                f"-X {_ARGO_WF}.gitTreeState=clean",
            ),
            placeholders=("ui/dist/app/placeholder",),
        ),
        Tool(
            "workflow-controller",
            "argo",  # the same pinned module as the CLI, built the same way
            "./cmd/workflow-controller",
            versions.ARGO_WORKFLOWS_CLI,
            _ARGO_WF,
            version_args=("version",),
            ldflags=(
                f"-X {_ARGO_WF}.version={versions.ARGO_WORKFLOWS_CLI}",
                f"-X {_ARGO_WF}.gitTreeState=clean",
            ),
            placeholders=("ui/dist/app/placeholder",),
        ),
        Tool(
            "kubectl-argo-rollouts",
            "kubectl-argo-rollouts",
            f"{_ROLLOUTS}/cmd/kubectl-argo-rollouts",
            versions.ARGO_ROLLOUTS_CLI,
            _ROLLOUTS,
            version_args=("version", "--short"),
            ldflags=(
                f"-X {_ROLLOUTS}/utils/version.version={versions.ARGO_ROLLOUTS_CLI.removeprefix('v')}",
                f"-X {_ROLLOUTS}/utils/version.gitTag={versions.ARGO_ROLLOUTS_CLI}",
                f"-X {_ROLLOUTS}/utils/version.gitTreeState=clean",
            ),
        ),
        Tool(
            "actionlint",
            "actionlint",
            "github.com/rhysd/actionlint/cmd/actionlint",
            versions.ACTIONLINT,
            "github.com/rhysd/actionlint",
            version_args=("-version",),
            ldflags=(f"-X github.com/rhysd/actionlint.version={versions.ACTIONLINT}",),
        ),
        Tool(
            "nats-server",
            "nats-server",
            "github.com/nats-io/nats-server/v2",
            versions.NATS_SERVER,
            "github.com/nats-io/nats-server/v2",
        ),
    )
}


# --- where a tool is -----------------------------------------------------------


def cache_root() -> Path:
    """Directory of the cached builds (outside the checkout)."""
    explicit = os.environ.get("RELEASE_PIPELINE_TOOLS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "release-pipeline" / "tools"


def cached_path(name: str) -> Path:
    tool = _tool(name)
    return cache_root() / f"{tool.name}-{tool.version}" / tool.name


def _tool(name: str) -> Tool:
    try:
        return TOOLS[name]
    except KeyError:
        raise ToolMissing(f"unknown tool {name!r}: known are {', '.join(sorted(TOOLS))}") from None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def reports_version(path: Path, tool: Tool) -> bool:
    """Whether the binary at ``path`` says it is the pinned version."""
    return _reports_version(str(path), tool.name, _stat_key(path))


def _stat_key(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _reports_version(path: str, name: str, _stat: tuple[int, int]) -> bool:
    tool = TOOLS[name]
    try:
        proc = subprocess.run(
            [path, *tool.version_args],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    pattern = rf"(?<![\w.])v?{re.escape(tool.bare_version)}(?![\w.-])"
    return re.search(pattern, proc.stdout + proc.stderr) is not None


def provided_path(name: str) -> Path | None:
    """A binary the user provides (KUBEBUILDER_ASSETS, or PATH at the pinned version)."""
    tool = _tool(name)
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if tool.kubebuilder_asset and assets:
        candidate = Path(assets) / tool.name
        if _executable(candidate):
            return candidate
    found = shutil.which(tool.name)
    if found and Path(found).resolve() != cached_path(name).resolve() and reports_version(Path(found), tool):
        return Path(found)
    return None


def tool_path(name: str) -> Path:
    """The binary to run for ``name``; raises ``ToolMissing`` saying what is needed."""
    tool = _tool(name)
    provided = provided_path(name)
    if provided is not None:
        return provided
    cached = cached_path(name)
    if _executable(cached):
        return cached
    where = " ($KUBEBUILDER_ASSETS/" + tool.name + " or PATH)" if tool.kubebuilder_asset else " on PATH"
    raise ToolMissing(
        f"{tool.name} {tool.version} is not built: run `make tools` (needs Go >= {GO_MIN[0]}.{GO_MIN[1]} "
        f"and the Go module proxy; builds into {cached.parent}), or provide {tool.name} {tool.version}{where}"
    )


# --- building ------------------------------------------------------------------


def go_problem(go: str | None = None) -> str | None:
    """Why Go cannot build the tools here, or None."""
    go = go or shutil.which("go")
    if not go:
        return f"go is not on PATH (needs Go >= {GO_MIN[0]}.{GO_MIN[1]})"
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{go} env GOVERSION failed: {exc}"
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < GO_MIN:
        return f"{go} is {out or 'of unknown version'}; needs Go >= {GO_MIN[0]}.{GO_MIN[1]}"
    return None


def inputs_digest(tool: Tool) -> str:
    """Hash of what the build of ``tool`` depends on in this repository (files and flags)."""
    digest = hashlib.sha256(json.dumps([tool.package, tool.version, tool.ldflags, tool.placeholders]).encode())
    source = TOOLS_DIR / tool.module_dir
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


STAMP = ".inputs"


def _up_to_date(tool: Tool) -> bool:
    binary = cached_path(tool.name)
    stamp = binary.parent / STAMP
    try:
        return _executable(binary) and stamp.read_text(encoding="utf-8").strip() == inputs_digest(tool)
    except OSError:
        return False


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly -buildvcs=false", GOWORK="off")
    return env


def _run(argv: Sequence[str], cwd: Path, tool: Tool) -> str:
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=_go_env(),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"{tool.name}: `{' '.join(argv)}` took over {BUILD_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        raise BuildError(f"{tool.name}: `{' '.join(argv)}` failed:\n{(proc.stdout + proc.stderr).strip()}")
    return proc.stdout


def _module_copy(tool: Tool, go: str, into: Path) -> Path:
    """A writable copy of the pinned upstream module (from Go's module cache) in ``into``."""
    argv = [go, "mod", "download", "-json", f"{tool.module}@{tool.version}"]
    info = json.loads(_run(argv, TOOLS_DIR / tool.module_dir, tool))
    source = Path(info["Dir"])
    copy = into / "src"
    shutil.copytree(source, copy, symlinks=True)
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    for placeholder in tool.placeholders:
        target = copy / placeholder
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    return copy


def _build_one(tool: Tool, go: str) -> None:
    final_dir = cached_path(tool.name).parent
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", dir=final_dir.parent))
    try:
        out_dir = work / "out"
        out_dir.mkdir()
        cwd = _module_copy(tool, go, work) if tool.placeholders else TOOLS_DIR / tool.module_dir
        argv = [go, "build", "-trimpath", "-ldflags", " ".join(["-s", "-w", *tool.ldflags])]
        _run([*argv, "-o", str(out_dir / tool.name), tool.package], cwd, tool)
        (out_dir / STAMP).write_text(inputs_digest(tool) + "\n", encoding="utf-8")
        if final_dir.exists():  # a stale build (its inputs changed): replaced whole
            final_dir.rename(work / "stale")
        try:
            out_dir.rename(final_dir)
        except OSError:
            if not _up_to_date(tool):  # else a concurrent `make tools` put the same build there first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build(names: Iterable[str] | None = None, *, out: TextIO | None = None) -> list[str]:
    """Build the tools (all, or ``names``) that are neither provided nor cached.

    Prints one line per tool (to ``out``, default stdout). Returns the names whose build
    failed. Raises ``ToolMissing`` when a tool must be built and Go cannot build it.
    """
    stream = out if out is not None else sys.stdout
    wanted = [_tool(name) for name in (names or TOOLS)]

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    todo: list[Tool] = []
    for tool in wanted:
        provided = provided_path(tool.name)
        if provided is not None:
            say(f"{tool.name} {tool.version}: provided ({provided})")
        elif _up_to_date(tool):
            say(f"{tool.name} {tool.version}: cached ({cached_path(tool.name)})")
        elif not (TOOLS_DIR / tool.module_dir / "go.mod").is_file():
            say(f"{tool.name} {tool.version}: missing source (tools/{tool.module_dir}/go.mod), not built")
        else:
            todo.append(tool)
    if not todo:
        return []
    go = shutil.which("go")
    problem = go_problem(go)
    if problem or go is None:
        names_ = ", ".join(f"{t.name} {t.version}" for t in todo)
        raise ToolMissing(
            f"cannot build {names_}: {problem}. `make tools` needs Go >= {GO_MIN[0]}.{GO_MIN[1]} and the Go "
            f"module proxy; or provide each binary at its pinned version (on PATH, or $KUBEBUILDER_ASSETS "
            f"for kube-apiserver and etcd)"
        )
    failed: list[str] = []
    for tool in todo:
        started = time.monotonic()
        try:
            _build_one(tool, go)
        except (BuildError, OSError) as exc:
            say(f"{tool.name} {tool.version}: FAILED: {exc}")
            failed.append(tool.name)
            continue
        say(f"{tool.name} {tool.version}: built in {time.monotonic() - started:.0f} s ({cached_path(tool.name)})")
    return failed
