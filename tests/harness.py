"""One way to run a component under Pulumi mocks in the tests.

Owns:
- ``EchoMocks``: outputs are the inputs, ids are ``"<name>-id"``; ``extra`` adds
  the outputs a test needs per resource (an ARN, a generated password),
  ``resource_id`` gives a resource the id the provider would (None: the default), and every
  resource's ``MockResourceArgs`` is kept by name in ``resources``.
- ``password_result``: the ``extra`` for components that generate a password.
- ``RecordingMonitor``: a ``MockMonitor`` that records each registration from the
  raw request, so secret markers stay where the program put them (the stock mock
  hands ``new_resource`` inputs already unwrapped, docs/architecture.md, "The offline render"). A record
  has the ``resources.json`` shape: type, name, parent, inputs, options (protect,
  retain_on_delete, depends_on, ignore_changes as sent), plus the provider reference.
- ``run_under_mocks(program, mocks=None, stack="dev", inputs=None)``: set the mocks,
  run ``program`` as a ``pulumi.runtime.test`` and return the records.

Why not ``components.render.mocks.RenderMonitor``: the render's monitor applies the
engine's rules (protect inherited from the parent, secret inputs redacted, its own
plausible outputs); these tests check what a component sends as it sends it, with
outputs they choose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

PROJECT = "release-pipeline"
Record = dict[str, Any]


def logical_name(urn: str) -> str | None:
    """The logical name in a URN; None for no URN or the stack's."""
    if not urn or "::pulumi:pulumi:Stack::" in urn:
        return None
    return urn.split("::", 3)[-1]


class EchoMocks(Mocks):
    """Outputs echo the inputs (plus ``extra(args)``); every resource is kept by name."""

    def __init__(
        self,
        extra: Callable[[MockResourceArgs], dict[str, Any]] | None = None,
        resource_id: Callable[[MockResourceArgs], str | None] | None = None,
    ) -> None:
        self.extra = extra
        self.resource_id = resource_id
        self.resources: dict[str, MockResourceArgs] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources[args.name] = args
        state = dict(args.inputs)
        if self.extra is not None:
            state |= self.extra(args)
        resource_id = self.resource_id(args) if self.resource_id is not None else None
        return resource_id or f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def password_result(args: MockResourceArgs) -> dict[str, Any]:
    """``extra`` for ``EchoMocks``: a RandomPassword's result is ``"x"`` times its length."""
    if args.typ == "random:index/randomPassword:RandomPassword":
        return {"result": "x" * int(args.inputs.get("length", 16))}
    return {}


class RecordingMonitor(MockMonitor):
    """Records every registration (but the stack's) as the engine receives it."""

    def __init__(self, mocks: Mocks, inputs: Callable[[Any], Any] | None = None) -> None:
        super().__init__(mocks)
        self.records: list[Record] = []
        self._inputs = inputs or (lambda value: value)

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            self.records.append({
                "type": request.type,
                "name": request.name,
                "parent": logical_name(request.parent),
                "inputs": self._inputs(json_format.MessageToDict(request.object)),
                "options": {
                    "protect": bool(request.protect),
                    "retain_on_delete": bool(request.retainOnDelete),
                    "depends_on": sorted(filter(None, map(logical_name, request.dependencies))),
                    "ignore_changes": list(request.ignoreChanges),
                },
                "provider": request.provider or None,  # "<provider urn>::<id>"
            })
        return super().RegisterResource(request)


def run_under_mocks(
    program: Callable[[], Any],
    mocks: Mocks | None = None,
    stack: str = "dev",
    inputs: Callable[[Any], Any] | None = None,
) -> list[Record]:
    """Run ``program`` under ``mocks`` (``EchoMocks()`` by default); return what it registered."""
    mocks = mocks or EchoMocks()
    monitor = RecordingMonitor(mocks, inputs=inputs)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    @pulumi.runtime.test
    def body() -> Any:
        return program()

    body()
    return monitor.records
