"""The offline render's mock engine, tuned for one process per stack, and the warm module.

The monitor's calls on the program's thread, the cyclic collector paused and frozen,
the fork server, and the preloaded modules (``components.render.warm``). Most tests
render the small throwaway project of tests/render_support.py.
"""

from __future__ import annotations

import gc
import importlib
import json
import operator
import os
import shutil
import subprocess
import sys
import threading
import types

import pytest

from components.render import (
    PROJECT_DIR,
    engine,
    render_stack_isolated,
)
from tests.render_support import (
    manifest,
    write_project,
)

# --- the mock engine, tuned for one process per stack ----------------------------------

PROGRAM_FACTS = """\
import gc
import sys
import threading

import pulumi
import pulumi_kubernetes as k8s

first = k8s.core.v1.ConfigMap("first", metadata={"name": "first"}, data={"a": "b"})
k8s.core.v1.ConfigMap(
    "engine-facts",
    metadata={"name": "engine-facts"},
    data={
        # Read once the first registration has come back from the monitor.
        "threads": first.id.apply(lambda _: str(threading.active_count())),
        "cyclicGc": first.id.apply(lambda _: str(gc.isenabled())),
        # Set in the fork server this process was forked from (components/render/warm.py).
        "serverExitsAtOnce": str(getattr(sys.modules.get("components.render.warm"), "FAST_EXIT", None)),
        "frozenByServer": str(gc.get_freeze_count() > 0),
    },
)
"""


def test_monitor_calls_run_on_the_programs_own_thread(tmp_path):
    # The SDK sends each RPC to a thread pool; the render's monitor is in-process,
    # so the calls run inline and no pool thread is ever started.
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["threads"] == "1"


def test_the_program_runs_with_the_cyclic_collector_paused(tmp_path):
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["cyclicGc"] == "False"


def test_the_fork_server_imports_with_the_collector_off_and_freezes_what_it_imported(tmp_path):
    # A stack's process inherits the server's imports in the permanent generation, which
    # no collection scans; the server's own collector is back on.
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["frozenByServer"] == "True"
    assert gc.get_freeze_count() == 0  # this process imported warm.py too, outside a fork server


STACK_PROCESS = """
import gc, sys
from components.render import engine
result = engine._render_worker("dev", sys.argv[1], None, sys.argv[2])
print(result.status, gc.isenabled())
"""


def test_a_stack_process_keeps_the_collector_off_after_its_render(tmp_path):
    # Turned back on, the collector scanned every object the render made at the next
    # allocation (the result's hand-back): about a second per stack at 100 services,
    # while the pool waited to start the next stack. The process ends right after.
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    proc = subprocess.run([sys.executable, "-c", STACK_PROCESS, str(project), str(tmp_path / "out")],
                          cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["ok", "False"]
    assert (tmp_path / "out" / "resources.json").is_file()


def test_only_the_fork_server_leaves_without_its_teardown(tmp_path):
    # The stack's process was forked from the server, which registered the immediate
    # exit; this process (pytest) imported the same module and must not have.
    from components.render import warm

    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["serverExitsAtOnce"] == "True"
    assert warm.FAST_EXIT is False


def test_inline_executor_runs_at_once_and_hands_back_errors():
    executor = engine._InlineExecutor()
    done = executor.submit(threading.get_ident)
    assert done.done() and done.result() == threading.get_ident()
    failed = executor.submit(operator.truediv, 1, 0)
    assert isinstance(failed.exception(), ZeroDivisionError)


def test_cyclic_gc_pause_restores_the_collectors_state():
    assert gc.isenabled()
    with engine._cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with engine._cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # was off before: stays off
    finally:
        gc.enable()


def test_source_positions_are_skipped_only_where_the_sdk_has_the_hook():
    from pulumi.runtime.proto import source_pb2

    def capture() -> source_pb2.StackTrace:
        return source_pb2.StackTrace(frames=[source_pb2.StackFrame()])

    sdk = types.SimpleNamespace(_get_stack_trace=capture)
    engine._skip_source_positions(sdk)
    assert sdk._get_stack_trace() == source_pb2.StackTrace()
    other = types.SimpleNamespace()
    engine._skip_source_positions(other)
    assert not hasattr(other, "_get_stack_trace")


def test_a_component_that_fails_to_import_is_reported_by_its_stack(tmp_path):
    # The fork server survives a module it cannot preload; the stack's process meets the
    # failure itself and the render reports it with its traceback (no dead server, no
    # EOFError from the pool).
    repo = tmp_path / "repo"
    shutil.copytree(PROJECT_DIR, repo, ignore=shutil.ignore_patterns(
        ".git", ".venv", "out", "tests", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"))
    with (repo / "components" / "slack_relay.py").open("a", encoding="utf-8") as module:
        module.write("\nraise RuntimeError('broken on purpose')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([sys.executable, "-m", "components", "render", "--stack", "dev", "--out",
                           str(tmp_path / "out")], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("internal error while rendering:\ndev: Traceback")
    assert "RuntimeError: broken on purpose" in proc.stderr and "EOFError" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_every_preloaded_module_exists():
    # The fork server ignores a module it cannot import: a stale name would quietly
    # bring back the imports in every stack's process.
    for name in engine._PRELOAD:
        importlib.import_module(name)


WARM_RENDER = """
import json, sys
from pathlib import Path
import components.render.warm
from components.render.engine import render_stack_in_process
before = set(sys.modules)
render_stack_in_process(sys.argv[1], Path(sys.argv[2]))
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_the_warm_module_loads_every_sdk_and_component_module_the_program_uses(stack):
    # What a stack's process still imports after the fork server's preload is paid
    # once per stack again: the program uses a module components/render/warm.py misses.
    proc = subprocess.run([sys.executable, "-c", WARM_RENDER, stack, str(PROJECT_DIR)], cwd=PROJECT_DIR,
                          capture_output=True, text=True, check=True)
    imported = json.loads(proc.stdout.splitlines()[-1])
    ours = ("pulumi", "pulumi_aws", "pulumi_github", "pulumi_kubernetes", "pulumi_random", "pulumi_tls",
            "components", "hera", "pydantic")
    assert [m for m in imported if m.split(".")[0] in ours] == []


def test_stack_processes_report_their_peak_memory(tmp_path):
    project = write_project(tmp_path / "project")
    results = engine.render(["dev"], tmp_path / "out", project, project / "services.yaml")
    # A process with the Pulumi SDK imported holds tens of MiB.
    assert [r.stack for r in results] == ["dev"] and results[0].peak_rss_kib > 20 * 1024
