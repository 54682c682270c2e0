"""Offline render of the release-pipeline program (docs/architecture.md, "The offline render").

Owns the public entry points of the render: ``render`` (many stacks, one process
each, all-or-nothing into ``DIR/<stack>/``), ``render_stack_in_process`` and
``render_stack_isolated`` (one stack, returned as ``Rendered``), and the two error
types the CLI maps to exit codes. The pieces live in ``engine`` (running the
program), ``mocks`` (the recording mock engine: ``monitor`` and
``plausible`` outputs) and ``output`` (file format).
"""

from components.render.engine import (
    ALL_STACKS,
    PLACEHOLDER,
    PROJECT_DIR,
    InternalRenderError,
    Rendered,
    RenderError,
    StackResult,
    load_stack_config,
    render,
    render_stack_in_process,
    render_stack_isolated,
)
from components.render.output import read_stack

__all__ = [
    "ALL_STACKS",
    "PLACEHOLDER",
    "PROJECT_DIR",
    "InternalRenderError",
    "RenderError",
    "Rendered",
    "StackResult",
    "load_stack_config",
    "read_stack",
    "render",
    "render_stack_in_process",
    "render_stack_isolated",
]
