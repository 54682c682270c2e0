"""Command line of the project: ``python -m components <command>``.

Owns argument parsing, the pre-flight validation call and the exit codes:
0 done, 2 bad input (services file, stack config, or the program refused it; every
problem printed one per line, no traceback), 1 internal failure (details printed).

Commands:
- ``render``: the offline render (``components.render``).
- ``check``: the services file and all four stack settings, cross-stack rules included,
  every problem at once. It is the pre-commit hook and the first CI job, so it imports
  ``components.config`` and nothing heavier (no Pulumi, no render engine).
- ``tools``: build the pinned upstream programs the tests use (``components.toolchain``).
- ``refresh-upstream``: copy the pinned upstream data into ``upstream/``
  (``components.upstream_data``); ``settings-reference``: write docs/settings.md
  (``components.settings_reference``); both with ``--check`` (exit 1 on a difference).
- ``simulate-webhook``: one GitHub delivery through a rendered stack's Sensors with
  Argo Events' own code (``components.upstream_events``).
- ``verify``: the render judged by a local kube-apiserver and the Argo tools
  (``components.verify``); ``e2e``: the release path on loopback (``components.e2e``);
  both exit 0 all checks hold, 1 one fails, 2 unusable input.

Does not own: what is valid (``components.config.validate_all``) and how a stack is
rendered (``components.render.engine``).
Decisions: docs/decisions/0232-command-line-conventions.md.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from components import __version__
from components.errors import Problem

if TYPE_CHECKING:
    from components.yamlsafe import Loaded

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2

# The repository this package lives in: the default project of every command.
PROJECT_DIR = Path(__file__).resolve().parents[1]

# validate_all(stacks, services_path, project_dir) -> problems, each one line by str().
Validator = Callable[[list[str], Path, Path], Sequence[object]]


def default_validator() -> Validator:
    from components.config import validate_all

    return validate_all


def _print_lines(lines: Sequence[object]) -> None:
    for line in lines:
        print(str(line), file=sys.stderr)


# --- render ------------------------------------------------------------------


def _add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from components.config import STACKS as ALL_STACKS

    parser = commands.add_parser(
        "render",
        help="render stacks offline into DIR/<stack>/{manifests.yaml,resources.json}",
        description="Run the program under Pulumi's mock engine, once per stack, and write what it registers.",
    )
    parser.add_argument("--stack", required=True, choices=[*ALL_STACKS, "all"], help="stack to render, or all")
    parser.add_argument(
        "--out", type=Path, default=Path("out"), metavar="DIR", help="output directory (default: out)"
    )
    parser.add_argument("--services", type=Path, metavar="FILE", help="services file instead of services.yaml")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_DIR,
        metavar="DIR",
        help="Pulumi project to render (default: this repository)",
    )
    parser.add_argument("--jobs", type=int, default=None, metavar="N", help="parallel stack processes (1-4)")
    parser.set_defaults(handler=_run_render)


def _out_problem(out: Path) -> str | None:
    """Why the render could not write into ``out``, or None. Checked before rendering:
    the render stages next to it and moves the result into place only at the end."""
    if out.exists():
        if not out.is_dir():
            return f"--out {out}: exists and is not a directory"
        return None if os.access(out, os.W_OK | os.X_OK) else f"--out {out}: not writable"
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"--out {out}: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"--out {out}: cannot create it, {ancestor} is not writable"
    return None


def _run_render(args: argparse.Namespace, validator: Validator | None) -> int:
    from components.render.engine import (
        ALL_STACKS,
        MAX_WORKERS,
        InternalRenderError,
        RenderError,
        StackResult,
        render,
    )

    stacks = list(ALL_STACKS) if args.stack == "all" else [args.stack]
    project_dir: Path = args.project_dir.resolve()
    services_path: Path = (args.services or project_dir / "services.yaml").resolve()

    usage = [_out_problem(args.out.resolve())]
    if args.jobs is not None and not 1 <= args.jobs <= MAX_WORKERS:
        usage.append(f"--jobs {args.jobs}: give 1 to {MAX_WORKERS} parallel stack processes")
    if any(usage):
        _print_lines([f"render: {problem}" for problem in usage if problem])
        return EXIT_BAD_INPUT
    try:
        problems = _located((validator or default_validator())(stacks, services_path, project_dir))
    except Exception as exc:  # a bug, not bad input: said in one line, as `check` does
        print(f"internal error while validating: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    if problems:
        # Word for word what `check` prints (on stderr: the render's stdout is its progress).
        _report(problems, "text", sys.stderr)
        return EXIT_BAD_INPUT

    def report(result: StackResult) -> None:
        _print_lines(result.warnings)
        if result.status == "ok":
            print(f"{result.stack}: {result.resources} resources, {result.manifests} manifests")

    try:
        render(
            stacks,
            args.out,
            project_dir,
            services_path if args.services else None,
            max_workers=args.jobs,
            on_result=report,
        )
    except RenderError as exc:
        _print_lines(exc.problems)
        return EXIT_BAD_INPUT
    except InternalRenderError as exc:
        print("internal error while rendering:", file=sys.stderr)
        _print_lines(exc.details)
        return EXIT_INTERNAL
    except OSError as exc:  # the output directory changed under the render (checked before it)
        print(f"render: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {args.out.resolve()}")
    return EXIT_OK


# --- check -------------------------------------------------------------------


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "check",
        help="validate services.yaml and every Pulumi.<stack>.yaml; report all problems",
        description=(
            "Validate the services file and the settings of all four stacks, with the rules that "
            "span files (one cluster per stack, platform namespaces, name lengths). Prints every "
            "problem, one per line (FILE:LINE: WHERE: FIELD: MESSAGE); exit 0 when there are "
            "none, 2 when there are. Imports no Pulumi: fast enough for a pre-commit hook."
        ),
    )
    parser.add_argument("--services", type=Path, metavar="FILE", help="services file instead of services.yaml")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_DIR,
        metavar="DIR",
        help="directory with the Pulumi.<stack>.yaml files (default: this repository)",
    )
    parser.add_argument(
        "--format",
        choices=["text", "github", "json"],
        default="text",
        help=(
            "github: also print each problem as a GitHub Actions error annotation; json: print one JSON "
            "list of problems (file, line, service, field, message), [] when there are none"
        ),
    )
    parser.set_defaults(handler=_run_check)


def _run_check(args: argparse.Namespace, validator: Validator | None) -> int:
    from components.config import STACKS

    project_dir: Path = args.project_dir.resolve()
    services_path: Path = (args.services or project_dir / "services.yaml").resolve()
    stacks: list[str] = list(STACKS)
    try:
        problems = _located((validator or default_validator())(stacks, services_path, project_dir))
        services = None if problems else _count_services(services_path)
        notices = [] if problems else _branch_notices(stacks, project_dir)
    except Exception as exc:  # a bug, not bad input; still no traceback for a hook
        print(f"internal error while checking: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    if args.format == "json":
        # stdout is the JSON document alone; what a person reads goes to stderr.
        print(json.dumps([_as_json(p) for p in problems], indent=2, ensure_ascii=False))
    elif problems:
        _report(problems, args.format, sys.stdout)
    if problems:
        if args.format == "json":
            files = {p.file for p in problems if isinstance(p, Problem)}
            print(f"{len(problems)} problem(s) in {max(len(files), 1)} file(s)", file=sys.stderr)
        return EXIT_BAD_INPUT
    said = sys.stderr if args.format == "json" else sys.stdout
    for notice in notices:
        print(notice, file=said)
    print(
        f"OK: {_display_path(services_path)} ({services} service{'' if services == 1 else 's'}) and "
        f"{len(stacks)} stacks ({', '.join(stacks)}) are valid",
        file=said,
    )
    return EXIT_OK


def _service_name(where: str) -> str | None:
    """'NAME' of a problem's "service 'NAME'" (the name as config repeats it, a Python literal)."""
    if not where.startswith("service "):
        return None
    try:
        name = ast.literal_eval(where.removeprefix("service "))
    except (ValueError, SyntaxError):  # "service #2" (no name), or a name cut short with "..."
        return None
    return name if isinstance(name, str) else None


def _as_json(problem: object) -> dict[str, object]:
    """A problem as one object of `check --format json`: file (relative to the working
    directory), line, service (its name, or null when the problem is not a service's),
    where (service 'NAME', settings, ...), field and message."""
    if not isinstance(problem, Problem):
        return {"file": None, "line": None, "service": None, "where": None, "field": None, "message": str(problem)}
    service = _service_name(problem.where)
    return {
        "file": _display_path(problem.file),
        "line": problem.line,
        "service": service,
        "where": problem.where,
        "field": problem.field,
        "message": problem.message,
    }


def _located(problems: Sequence[object]) -> list[object]:
    """Problems with a line wherever their file says where, in file and line order."""
    located = [_with_line(p) for p in problems]
    located.sort(key=lambda p: (p.file, p.line or 0) if isinstance(p, Problem) else (str(p), 0))
    return located


def _report(problems: Sequence[object], output_format: str, stream: TextIO) -> None:
    """Each problem as FILE:LINE: WHERE: FIELD: MESSAGE (FILE relative to the working directory),
    then the count on stderr. `check` and `render` report bad input with this one function."""
    for problem in problems:
        print(_shown(problem), file=stream)
        if output_format == "github":
            print(_annotation(problem), file=stream)
    files = {p.file for p in problems if isinstance(p, Problem)}
    print(f"{len(problems)} problem(s) in {max(len(files), 1)} file(s)", file=sys.stderr)


def _count_services(services_path: Path) -> int:
    from components.config import load_services

    return len(load_services(services_path).services)


def _branch_notices(stacks: list[str], project_dir: Path) -> list[str]:
    """A notice per stack whose file releases from another branch than the branch map's, on purpose."""
    from components.config import load_stack_settings, stack_file
    from components.config_keys import branch_notice

    notices = (
        branch_notice(
            _display_path(stack_file(project_dir, stack)), stack, load_stack_settings(project_dir, stack).branch,
        )
        for stack in stacks
    )
    return [notice for notice in notices if notice]


def _display_path(path: str | Path) -> str:
    """Relative to the working directory when under it (what editors and annotations want)."""
    try:
        resolved = Path(path).resolve()
        return os.path.relpath(resolved) if resolved.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _shown(problem: object) -> str:
    if isinstance(problem, Problem):
        return str(dataclasses.replace(problem, file=_display_path(problem.file)))
    return str(problem)


def _annotation(problem: object) -> str:
    """The problem as a GitHub Actions workflow command: ``::error file=F,line=L,title=T::message``."""

    def escape(value: str, *, prop: bool = False) -> str:
        value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return value.replace(":", "%3A").replace(",", "%2C") if prop else value

    if not isinstance(problem, Problem):
        return f"::error::{escape(str(problem))}"
    props = [f"file={escape(_display_path(problem.file), prop=True)}"]
    if problem.line:
        props.append(f"line={problem.line}")
    title = f"{problem.where}: {problem.field}" if problem.field else problem.where
    props.append(f"title={escape(title, prop=True)}")
    return f"::error {','.join(props)}::{escape(problem.message)}"


def _with_line(problem: object) -> object:
    """Give a line to a problem that has none, where its file says where it is.

    The rules that need two files (cross-stack, services against a stack) name a file
    and a field but no line; the field's position in that file is still the most useful
    place to point at. Problems about a whole file point at line 1.
    """
    if not isinstance(problem, Problem) or problem.line is not None or not Path(problem.file).is_file():
        return problem
    from components.config import PROJECT, SETTINGS_KEY
    from components.yamlsafe import load_yaml_file

    loaded, _ = load_yaml_file(Path(problem.file))
    if loaded is None:
        return dataclasses.replace(problem, line=1) if problem.where == "(top level)" else problem
    fields: list[str | int] = [f for f in problem.field.split(".") if f]
    path: list[str | int] = []
    if problem.where == "settings":
        # Spelled with the project's name or bare, as Pulumi reads both.
        config = loaded.data.get("config") if isinstance(loaded.data, dict) else None
        key = SETTINGS_KEY if isinstance(config, dict) and SETTINGS_KEY in config else f"{PROJECT}:{SETTINGS_KEY}"
        path = ["config", key, *fields]
    elif problem.where.startswith("service '") and isinstance(loaded.data, dict):
        name = problem.where.removeprefix("service '").removesuffix("'")
        entries = loaded.data.get("services")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, dict) and entry.get("name") == name:
                path = ["services", index, *fields]
                break
    return dataclasses.replace(problem, line=_line_of(loaded, path) or 1)


def _line_of(loaded: Loaded, path: list[str | int]) -> int | None:
    """Line of the deepest part of ``path`` the file has (keys compared case-insensitively)."""
    data, found = loaded.data, []
    for part in path:
        if isinstance(data, dict):
            key = next((k for k in data if str(k).lower() == str(part).lower()), None)
            if key is None:
                break
            found.append(key)
            data = data[key]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            found.append(part)
            data = data[part]
        else:
            break
    return loaded.line_of(tuple(found))


# --- tools -------------------------------------------------------------------


def _add_tools(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from components.toolchain import TOOLS

    parser = commands.add_parser(
        "tools",
        help="build the pinned upstream tools the tests use into the user cache (make tools)",
        description="Build each tool that is neither provided nor cached; one line per tool.",
    )
    parser.add_argument("--only", nargs="+", choices=sorted(TOOLS), metavar="NAME", help="build only these tools")
    parser.set_defaults(handler=_run_tools)


def _run_tools(args: argparse.Namespace, _validator: Validator | None) -> int:
    from components.toolchain import ToolMissing, build

    try:
        failed = build(args.only)
    except ToolMissing as exc:
        print(f"tools: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if failed:
        print(f"tools: failed to build {', '.join(failed)}", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def _add_refresh_upstream(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from components.upstream_data import KINDS

    parser = commands.add_parser(
        "refresh-upstream",
        help="copy the pinned upstream data files (CRDs, ...) from Go modules into upstream/",
        description="Copy each upstream file byte for byte from its pinned Go module; rewrite SHA256SUMS.",
    )
    parser.add_argument("--kind", nargs="+", choices=sorted(KINDS), help="only these kinds of data")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a copy differs")
    parser.set_defaults(handler=_run_refresh_upstream)


def _run_refresh_upstream(args: argparse.Namespace, _validator: Validator | None) -> int:
    from components.upstream_data import UpstreamError, refresh

    try:
        changes = refresh(args.kind, check=args.check)
    except UpstreamError as exc:
        print(f"refresh-upstream: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for change in changes:
        print(change)
    if args.check and changes:
        return EXIT_INTERNAL
    print("upstream data is up to date" if not changes else f"updated: {len(changes)} change(s)")
    return EXIT_OK


# --- verify ------------------------------------------------------------------


def _add_verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from components.config import STACKS as ALL_STACKS

    parser = commands.add_parser(
        "verify",
        help="apply a render to a local kube-apiserver and check RBAC, admission and the Argo linters",
        description=(
            "Per stack: a local etcd and kube-apiserver, the pinned CRDs, every object of "
            "OUT/<stack>/manifests.yaml applied server-side, SubjectAccessReviews, dry-run pods, "
            "argo lint, kubectl-argo-rollouts lint and argo-events validation. Exit 0 all hold, "
            "1 a check fails, 2 unusable input."
        ),
    )
    parser.add_argument("--in", dest="render_dir", required=True, type=Path, metavar="OUT",
                        help="render folder (python -m components render --stack all --out OUT)")
    parser.add_argument("--stack", default="all", choices=[*ALL_STACKS, "all"], help="stack to verify, or all")
    parser.set_defaults(handler=_run_verify)


def _run_verify(args: argparse.Namespace, _validator: Validator | None) -> int:
    from components.config import STACKS as ALL_STACKS
    from components.verify.apiserver import Interrupted
    from components.verify.runner import run

    stacks = list(ALL_STACKS) if args.stack == "all" else [args.stack]
    try:
        return run(args.render_dir, stacks)
    except Interrupted as exc:  # the local servers are already stopped (their context managers ran)
        print(f"verify: interrupted by signal {exc.signum}; local servers stopped", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:  # a bug, not a finding: one line, servers stopped all the same
        print(f"verify: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


def _add_e2e(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from components.config import STACKS as ALL_STACKS

    parser = commands.add_parser(
        "e2e",
        help="run the release path on loopback: real EventSource and Sensor, signed GitHub deliveries",
        description=(
            "A local etcd and kube-apiserver with the stack's render applied, nats-server as the "
            "EventBus, the argo-events EventSource and Sensor programs; signed GitHub deliveries "
            "are posted and the Workflows they create are checked. Exit 0 all hold, 1 a check "
            "fails, 2 unusable input."
        ),
    )
    parser.add_argument("--in", dest="render_dir", required=True, type=Path, metavar="OUT",
                        help="render folder (python -m components render --stack all --out OUT)")
    parser.add_argument("--stack", required=True, choices=list(ALL_STACKS), help="stack to run")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs of every program)")
    parser.add_argument("--load", type=_count, default=0, metavar="N",
                        help="also send N merged-PR deliveries at once (plus duplicates) and report loss and latency")
    parser.add_argument("--fault", choices=["none", "sensor", "bus", "all"], default="none",
                        help="with --load: during the burst, SIGKILL and restart the Sensor programs (sensor) or "
                             "nats-server (bus); all: one burst per case (none, sensor, bus)")
    parser.set_defaults(handler=_run_e2e)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 10000:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 0 to 10000")
    return value


def _run_e2e(args: argparse.Namespace, _validator: Validator | None) -> int:
    from components.e2e.runner import run
    from components.verify.apiserver import Interrupted

    try:
        if args.fault != "none" and not args.load:
            print(f"e2e: --fault {args.fault} needs --load N (the faults are injected during the load)",
                  file=sys.stderr)
            return 2
        faults = ("none", "sensor", "bus") if args.fault == "all" else (args.fault,)
        return run(args.render_dir, args.stack, keep=args.keep, load=args.load, faults=faults)
    except Interrupted as exc:  # everything it started is already stopped
        print(f"e2e: interrupted by signal {exc.signum}; local servers and programs stopped", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:  # a bug, not a finding: one line, everything stopped all the same
        print(f"e2e: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


# --- entry point ----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from components.config import PROJECT

    parser = argparse.ArgumentParser(
        prog="python -m components",
        description=f"Command line of {PROJECT}: offline render, checks, upstream tools and data.",
    )
    parser.add_argument("--version", action="version", version=f"{PROJECT} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_render(commands)
    _add_check(commands)
    _add_tools(commands)
    _add_refresh_upstream(commands)
    from components.upstream_events import add_simulate_webhook

    add_simulate_webhook(commands)
    from components.settings_reference import add_settings_reference

    add_settings_reference(commands)
    _add_verify(commands)
    _add_e2e(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, validator: Validator | None = None) -> int:
    """Run a command; returns the exit code. ``validator`` replaces ``validate_all`` (tests)."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args, validator))
