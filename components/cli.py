"""Command line of the project: ``python -m components <command>``.

Owns argument parsing, the pre-flight validation call and the exit codes:
0 done, 2 bad input (services file, stack config, or the program refused it; every
problem printed one per line, no traceback), 1 internal failure (details printed).

Commands:
- ``render``: the offline render of DESIGN.md section 7 (``components.render``).
- ``check`` is reserved for the invariant checks over a render; it plugs in as one
  more ``_add_<command>`` below with its own handler.

Deliberately not here: what is valid (``components.config.validate_all``) and how a
stack is rendered (``components.render.engine``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2

# validate_all(stacks, services_path, project_dir) -> problems, each one line by str().
Validator = Callable[[list[str], Path, Path], Sequence[object]]


def default_validator() -> Validator:
    from components.config import validate_all

    return validate_all  # type: ignore[return-value]


def _print_lines(lines: Sequence[object]) -> None:
    for line in lines:
        print(str(line), file=sys.stderr)


# --- render ------------------------------------------------------------------


def _add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from components.render.engine import ALL_STACKS, PROJECT_DIR

    parser = commands.add_parser(
        "render",
        help="render stacks offline into DIR/<stack>/{manifests.yaml,resources.json}",
        description="Run the program under Pulumi's mock engine, once per stack, and write what it registers.",
    )
    parser.add_argument("--stack", required=True, choices=[*ALL_STACKS, "all"], help="stack to render, or all")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
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


def _run_render(args: argparse.Namespace, validator: Validator | None) -> int:
    from components.render.engine import ALL_STACKS, InternalRenderError, RenderError, StackResult, render

    stacks = list(ALL_STACKS) if args.stack == "all" else [args.stack]
    project_dir: Path = args.project_dir.resolve()
    services_path: Path = (args.services or project_dir / "services.yaml").resolve()

    problems = (validator or default_validator())(stacks, services_path, project_dir)
    if problems:
        _print_lines(problems)
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
    print(f"wrote {args.out.resolve()}")
    return EXIT_OK


# --- entry point ----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_render(commands)
    # _add_check(commands) goes here.
    return parser


def main(argv: Sequence[str] | None = None, *, validator: Validator | None = None) -> int:
    """Run a command; returns the exit code. ``validator`` replaces ``validate_all`` (tests)."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args, validator))
