"""Run the real Pulumi program offline, one stack per process, and collect what it registers.

Owns:
- reading a stack's ``Pulumi.<stack>.yaml`` into the config map the Pulumi CLI would
  hand the program (objects JSON-encoded, ``secure:`` values and missing secret keys
  replaced by a placeholder and marked secret);
- ``render_stack_in_process``: run ``__main__.py`` unchanged under the recording
  mock engine in *this* process and return what it registered;
- ``render``: the multi-stack driver: every stack in a fresh process (the
  SDK keeps global state, so two stacks must never share an interpreter), written
  to a temporary directory and moved into place only when every stack rendered.

Deliberately not here: argument parsing and exit codes (``components.cli``), input
validation of services and settings (``components.config``), outputs and recording
(``mocks``), file format (``output``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import runpy
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config import PROJECT, SECRET_CONFIG_KEYS, SERVICES_FILE_KEY, STACKS
from components.render.output import extract_manifests, sort_resources, write_stack

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_PROJECT = PROJECT
ALL_STACKS: tuple[str, ...] = STACKS
PLACEHOLDER = "offline-placeholder"
MAX_WORKERS = 4

# Environment variables the provider SDKs read as defaults (region, tokens,
# kubeconfig) or the Pulumi SDK reads as config: a render must not depend on the
# shell it runs in, and must never copy a token from it into its output.
_SCRUBBED_ENV_PREFIXES = ("PULUMI_", "AWS_", "GITHUB_", "GH_", "KUBE", "HELM_", "SLACK_", "ARGOCD_")


class RenderError(Exception):
    """A problem the user can fix (bad input, the program refused it): exit 2."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = [str(p) for p in problems]
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class InternalRenderError(Exception):
    """The render itself failed (a bug, a crash): exit 1, with the details."""

    def __init__(self, details: Sequence[str]) -> None:
        self.details = [str(d) for d in details]
        super().__init__("\n".join(self.details))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.details,))


@dataclass
class Rendered:
    """What one stack registered, in the shapes of ``resources.json`` / ``manifests.yaml``."""

    stack: str
    resources: list[dict[str, Any]]
    manifests: list[dict[str, Any]]
    # RegisterStackTransform calls and legacy stack transformations: they do not run
    # under mocks (pulumi/pulumi#17090), so the program should register none.
    stack_transforms: list[str] = field(default_factory=list)
    # Resources that declare resource-level transforms (not run under mocks either).
    resource_transforms: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- stack config ------------------------------------------------------------


def project_name(project_dir: Path) -> str:
    path = project_dir / "Pulumi.yaml"
    if not path.is_file():
        return DEFAULT_PROJECT
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RenderError([f"{path.name}: not valid YAML: {_one_line(exc)}"]) from None
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return data["name"]
    return DEFAULT_PROJECT


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return True
        return any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def _without_secure(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return PLACEHOLDER
        return {k: _without_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secure(v) for v in value]
    return value


def _config_text(value: Any) -> str:
    # As the Pulumi CLI hands config to a program: strings as they are, everything
    # else (objects, lists, numbers, booleans) JSON-encoded.
    if isinstance(value, str):
        return value
    return json.dumps(value)


def load_stack_config(
    stack: str,
    project_dir: Path,
    services_path: Path | None = None,
    secret_keys: Iterable[str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The config map and secret key list the program would get for ``stack``.

    ``secret_keys`` are bare key names in the project namespace that the program
    reads as secrets; any not set in the stack file gets the placeholder.
    """
    project = project_name(project_dir)
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise RenderError([f"{path.name}: stack config file not found in {project_dir}"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RenderError([f"{path.name}: not valid YAML: {_one_line(exc)}"]) from None
    data = data or {}
    if not isinstance(data, dict):
        raise RenderError([f"{path.name}: expected a mapping at the top level"])
    raw_config = data.get("config") or {}
    if not isinstance(raw_config, dict):
        raise RenderError([f"{path.name}: 'config' must be a mapping"])

    config: dict[str, str] = {}
    secret: set[str] = set()
    for key, value in raw_config.items():
        full_key = str(key) if ":" in str(key) else f"{project}:{key}"
        if _has_secure(value):
            secret.add(full_key)
            value = _without_secure(value)
        config[full_key] = _config_text(value)
    for bare in secret_keys if secret_keys is not None else SECRET_CONFIG_KEYS:
        full_key = bare if ":" in bare else f"{project}:{bare}"
        if full_key not in config:
            config[full_key] = PLACEHOLDER
            secret.add(full_key)
    if services_path is not None:
        config[f"{project}:{SERVICES_FILE_KEY}"] = str(Path(services_path).resolve())
    return config, sorted(secret)


# --- one stack, in this process ------------------------------------------------


def _scrub_environment() -> None:
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_ENV_PREFIXES):
            del os.environ[name]


def _user_error_types() -> tuple[type[BaseException], ...]:
    import pulumi

    types: list[type[BaseException]] = [
        pulumi.RunError,
        pulumi.InputPropertyError,
        pulumi.InputPropertiesError,
        yaml.YAMLError,
    ]
    try:
        import pydantic

        types.append(pydantic.ValidationError)
    except ImportError:  # pragma: no cover - pydantic is a pinned dependency
        pass
    return tuple(types)


# --- the mock engine, tuned for one short-lived process per stack ---------------
#
# Measured with `benchmarks/render_bench.py profile` (100 services, dev stack, one
# core): 9.2 s as the SDK runs by default, 3.8 s with the three changes below; the
# render output is byte-identical either way (the monitor never sees what they skip).


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each ``run_in_executor`` call at once, on the event loop's own thread.

    The SDK hands every monitor RPC to a thread pool because a real monitor is a gRPC
    server in another process. The render's monitor is a Python object in this one:
    the hop to a worker thread only adds a GIL hand-over per RPC. asyncio accepts only
    a ``ThreadPoolExecutor`` as the default executor, hence the subclass; no thread is
    ever started.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as a pool would
            future.set_exception(exc)
        return future


def _event_loop() -> asyncio.AbstractEventLoop:
    """A fresh event loop for this thread, RPCs run inline (``_InlineExecutor``).

    The SDK's ``_sync_await`` and ``set_mocks`` use the thread's current loop.
    """
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_InlineExecutor())
    asyncio.set_event_loop(loop)
    return loop


def _skip_source_positions(pulumi_resource_module: Any) -> None:
    """Stop the SDK from capturing a stack trace for every resource it registers.

    ``pulumi.runtime.resource._get_stack_trace`` walks the Python stack and turns
    every frame's file into a URI so the engine can show where a resource was
    declared; that was a tenth of the render's time. The render's monitor records no
    source positions, so it gets an empty trace (what the SDK itself sends when it
    finds no user frame). A private SDK function: if a release renames it, the
    render simply keeps the SDK's behaviour.
    """
    if not hasattr(pulumi_resource_module, "_get_stack_trace"):
        return
    from pulumi.runtime.proto import source_pb2

    pulumi_resource_module._get_stack_trace = source_pb2.StackTrace


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the program runs.

    The SDK keeps several futures, tasks and Outputs per resource alive until the
    program ends, and the collector rescans that growing heap again and again: about
    half of a large stack's render. Reference counting still frees all acyclic
    garbage; the cycles left are freed when the process (one per stack) ends. Costs
    about a fifth more peak memory at 300 services (benchmarks/results.md).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def render_stack_in_process(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    services_path: Path | None = None,
) -> Rendered:
    """Run the program for ``stack`` under the mock engine in this very process.

    Call it at most once per process: the Pulumi SDK keeps global state (settings,
    root stack, config). It also changes the working directory to the project and
    removes provider credentials from the environment. ``render`` and
    ``render_stack_isolated`` give every stack its own process.
    """
    project_dir = Path(project_dir).resolve()
    main = project_dir / "__main__.py"
    if not main.is_file():
        raise RenderError([f"{main}: program not found"])
    config, secret_keys = load_stack_config(stack, project_dir, services_path)

    _scrub_environment()
    os.chdir(project_dir)
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    import pulumi
    import pulumi.runtime.resource
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from components.render.mocks import (
        DEFAULT_ACCOUNT,
        DEFAULT_REGION,
        AwsEnv,
        CollectingHandler,
        RenderMocks,
        RenderMonitor,
    )

    accounts: Any = config.get("aws:allowedAccountIds")
    try:
        accounts = json.loads(accounts) if accounts else []
    except ValueError:
        accounts = [accounts]
    fallback = AwsEnv(
        region=config.get("aws:region") or DEFAULT_REGION,
        account=str(accounts[0]) if isinstance(accounts, list) and accounts else DEFAULT_ACCOUNT,
    )
    mocks = RenderMocks(fallback)
    monitor = RenderMonitor(mocks)
    handler = CollectingHandler()
    logger = logging.getLogger(f"components.render.program.{stack}")
    logger.handlers = [handler]
    logger.setLevel(logging.WARNING)
    logger.propagate = False

    _event_loop()
    _skip_source_positions(pulumi.runtime.resource)
    pulumi.runtime.set_all_config(config, secret_keys)
    pulumi.runtime.set_mocks(
        mocks,
        project=project_name(project_dir),
        stack=stack,
        preview=False,
        logger=logger,
        monitor=monitor,
    )

    def program() -> None:
        runpy.run_path(str(main), run_name="__main__")

    try:
        # run_pulumi_func waits for every outstanding registration and apply, and
        # re-raises the first error the program (or one of its applies) raised.
        with _cyclic_gc_paused():
            _sync_await(run_pulumi_func(program))
    except _user_error_types() as exc:
        raise RenderError(
            [f"{stack}: {line}" for line in str(exc).splitlines() if line.strip()] or [f"{stack}: {type(exc).__name__}"]
        ) from None
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise RenderError([f"{stack}: the program exited with status {exc.code}"]) from None
    if handler.errors:
        # The engine fails a deployment whose program logged an error; so does the render.
        raise RenderError([f"{stack}: {message}" for message in handler.errors])

    resources = sort_resources(record.to_json() for record in monitor.records())
    root = get_root_resource()
    legacy = [getattr(t, "__qualname__", repr(t)) for t in (getattr(root, "_transformations", None) or [])]
    return Rendered(
        stack=stack,
        resources=resources,
        manifests=extract_manifests(resources),
        stack_transforms=monitor.stack_transforms() + legacy,
        resource_transforms=sorted(f"{r.type}::{r.name}" for r in monitor.records() if r.transforms),
        warnings=[f"{stack}: {message}" for message in handler.warnings],
    )


# --- many stacks, one process each ------------------------------------------


@dataclass
class StackResult:
    """What a worker process reports back about one stack."""

    stack: str
    status: str  # "ok" | "input" | "internal"
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resources: int = 0
    manifests: int = 0
    # Peak resident memory of the stack's process, KiB (0 where the platform has no
    # `resource` module). Reported by the process itself: under forkserver it is not a
    # child of the caller, whose RUSAGE_CHILDREN would not see it.
    peak_rss_kib: int = 0


def _peak_rss_kib() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak // 1024 if sys.platform == "darwin" else peak


def _collector_off_for_this_process() -> None:
    """Turn the cyclic collector off for the rest of a stack's process.

    The process renders one stack and ends (``max_tasks_per_child=1``), so the cycles
    it leaves are freed with it. Turning the collector back on after the render cost
    more than the render's pause saved: every object the render made was still in the
    youngest generation, and the next allocation (sending the result back) scanned
    them all, about a second per stack at 100 services, during which the pool waited
    to start the next stack. Sorting and writing run with it off too: they build as
    many objects again while the program's are still alive.
    """
    gc.disable()


def _render_worker(stack: str, project_dir: str, services_path: str | None, out_dir: str) -> StackResult:
    _collector_off_for_this_process()
    try:
        rendered = render_stack_in_process(stack, Path(project_dir), Path(services_path) if services_path else None)
        write_stack(Path(out_dir), rendered.resources, rendered.manifests)
        return StackResult(
            stack=stack,
            status="ok",
            warnings=rendered.warnings,
            resources=len(rendered.resources),
            manifests=len(rendered.manifests),
            peak_rss_kib=_peak_rss_kib(),
        )
    except RenderError as exc:
        return StackResult(stack=stack, status="input", messages=exc.problems)
    except BaseException:
        return StackResult(stack=stack, status="internal", messages=[f"{stack}: {traceback.format_exc()}"])


def _isolated_worker(stack: str, project_dir: str, services_path: str | None) -> Rendered:
    _collector_off_for_this_process()
    return render_stack_in_process(stack, Path(project_dir), Path(services_path) if services_path else None)


# What every stack's process imports before the program registers anything (the
# render engine, the provider SDKs' modules the program uses, this project's
# components), loaded in full by one module.
_PRELOAD = ("components.render.warm",)


def _process_context() -> multiprocessing.context.BaseContext:
    """Fresh processes for the stacks, started as cheaply as the platform allows.

    With ``forkserver`` (Linux, macOS) one server process imports ``_PRELOAD`` once
    and every stack's process is forked from it: the imports are paid once per
    render, not once per stack. The server only imports; it never runs a program,
    so a stack's process starts with the SDK exactly as freshly imported, as under
    ``spawn`` (the fallback elsewhere).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_PRELOAD))
    return context


def _pool(workers: int) -> ProcessPoolExecutor:
    # A fresh process per stack (one task per process): a stack never inherits
    # another's SDK state.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_process_context(),
        max_tasks_per_child=1,
    )


def render_stack_isolated(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    services_path: Path | None = None,
) -> Rendered:
    """``render_stack_in_process`` in a fresh process; raises ``RenderError`` as it does."""
    with _pool(1) as pool:
        return pool.submit(
            _isolated_worker, stack, str(Path(project_dir).resolve()), str(services_path) if services_path else None
        ).result()


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def render(
    stacks: Sequence[str],
    out_dir: Path,
    project_dir: Path = PROJECT_DIR,
    services_path: Path | None = None,
    *,
    max_workers: int | None = None,
    on_result: Callable[[StackResult], None] | None = None,
) -> list[StackResult]:
    """Render every stack into ``out_dir/<stack>/``; all of them or nothing.

    Raises ``RenderError`` (some stack's input or program failed) or
    ``InternalRenderError`` (the render crashed); in both cases nothing is written.
    """
    stacks = _unique(stacks)
    project_dir = Path(project_dir).resolve()
    out_dir = Path(out_dir).resolve()
    services = str(Path(services_path).resolve()) if services_path else None
    # Two to four processes: each imports the provider SDKs, more than the CPUs buy nothing.
    default_workers = max(2, min(MAX_WORKERS, os.cpu_count() or 2))
    workers = max(1, min(len(stacks), max_workers or default_workers, MAX_WORKERS))

    # Stage next to the destination when possible so the final move is a rename.
    stage_parent = out_dir.parent if out_dir.parent.is_dir() else None
    stage = Path(tempfile.mkdtemp(prefix=".render-", dir=stage_parent))
    try:
        with _pool(workers) as pool:
            futures = [
                pool.submit(_render_worker, stack, str(project_dir), services, str(stage / stack)) for stack in stacks
            ]
            try:
                results = [future.result() for future in futures]
            except BrokenProcessPool as exc:
                raise InternalRenderError([f"a render process died: {exc}"]) from None
        for result in results:
            if on_result is not None:
                on_result(result)
        internal = [m for r in results if r.status == "internal" for m in r.messages]
        problems = [m for r in results if r.status == "input" for m in r.messages]
        if internal:
            raise InternalRenderError(internal + problems)
        if problems:
            raise RenderError(problems)
        _move_into_place(stage, out_dir, stacks)
        return results
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_into_place(stage: Path, out_dir: Path, stacks: Sequence[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stack in stacks:
        target = out_dir / stack
        if target.exists():
            # Move the old render aside first so a stack directory is never a mix
            # of two renders.
            old = Path(tempfile.mkdtemp(prefix=f".{stack}-old-", dir=out_dir))
            target.rename(old / stack)
            shutil.move(str(stage / stack), str(target))
            shutil.rmtree(old, ignore_errors=True)
        else:
            shutil.move(str(stage / stack), str(target))
