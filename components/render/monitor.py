"""The recording monitor of the offline render.

Owns: ``RenderMonitor``, a ``MockMonitor`` whose ``RegisterResource`` reads the raw
request (object with its secret markers, protect, retainOnDelete, ignoreChanges,
dependencies, parent, additionalSecretOutputs) and records one ``Record`` per resource
in the ``resources.json`` shape. The stock monitor deserialises the object first, which
turns a whole map secret when one value in it is, and it ignores
``additionalSecretOutputs`` (docs/architecture.md, "The offline render"); this one keeps
each secret at its own position and returns the listed outputs as secrets, as the engine
does. Also the protobuf Struct conversions it uses and ``CollectingHandler`` (what the
program logs).

Does not own: the outputs themselves (``render.plausible``), running the program
(``render.engine``), writing files (``render.output``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.proto import provider_pb2, resource_pb2

from components.render.output import (
    STACK_TYPE,
    has_markers,
    is_secret,
    normalize_numbers,
    redact,
    secret,
    unwrap_secrets,
    urn_name,
    urn_type,
)
from components.render.plausible import PROVIDER_PREFIX, RenderMocks


def _value_to_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return {k: _value_to_py(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_value_to_py(v) for v in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        # protobuf's Struct carries every number as a double: give integers back.
        return int(number) if number.is_integer() else number
    if kind == "bool_value":
        return value.bool_value
    return None


def _struct_to_py(message: struct_pb2.Struct) -> dict[str, Any]:
    """``normalize_numbers(json_format.MessageToDict(message))`` in one pass.

    Written out because ``MessageToDict`` handles every message type generically and
    was a third of the monitor's time; a Struct has just these six kinds of value.
    """
    return {k: _value_to_py(v) for k, v in message.fields.items()}


def _py_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


@dataclass
class Record:
    """One registered resource, as ``resources.json`` shows it (plus bookkeeping)."""

    urn: str
    type: str
    name: str
    parent: str | None
    inputs: Any
    protect: bool
    retain_on_delete: bool
    depends_on: list[str]
    ignore_changes: list[str]
    transforms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "inputs": self.inputs,
            "options": {
                "protect": self.protect,
                "retain_on_delete": self.retain_on_delete,
                "depends_on": self.depends_on,
                "ignore_changes": self.ignore_changes,
            },
        }


def _outputs(
    raw: dict[str, Any], plain: dict[str, Any], state: dict[str, Any], additional_secret: Iterable[str]
) -> dict[str, Any]:
    """The outputs the engine hands back: inputs' secrets kept where they were, and every
    `additionalSecretOutputs` key made secret (the stock mock ignores those)."""
    outputs = {k: _reapply_secrets(raw[k], plain[k], v) if k in raw else v for k, v in state.items()}
    for key in additional_secret:
        if key in outputs:
            outputs[key] = secret(outputs[key])
    return outputs


def _reapply_secrets(raw: Any, plain: Any, new: Any) -> Any:
    """Put the input's secret markers back where an output passes the input through.

    ``raw`` is the input with its markers, ``plain`` the same without, ``new`` the
    mocked output. An output derived from a secret input stays secret, as the engine
    keeps it.
    """
    if new == plain:
        return raw
    if is_secret(raw):
        return secret(_reapply_secrets(raw.get("value"), plain, new))
    if isinstance(raw, dict) and isinstance(plain, dict) and isinstance(new, dict):
        return {k: _reapply_secrets(raw[k], plain[k], v) if k in raw else v for k, v in new.items()}
    return new


class RenderMonitor(MockMonitor):
    """Mock monitor that records every registration the way the engine sees it."""

    mocks: RenderMocks

    def __init__(self, mocks: RenderMocks) -> None:
        super().__init__(mocks)
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        self.stack_transform_requests: list[str] = []

    # Public view ------------------------------------------------------------

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records.values())

    def stack_transforms(self) -> list[str]:
        """One description per ``RegisterStackTransform`` call (should be none)."""
        described = [getattr(t, "__qualname__", repr(t)) for t in self.get_registered_transforms()]
        # A request whose callback could not be resolved still counts.
        return described + self.stack_transform_requests[len(described) :]

    # Helpers ----------------------------------------------------------------

    def _parent(self, parent_urn: str) -> tuple[str | None, Record | None]:
        if not parent_urn or urn_type(parent_urn) == STACK_TYPE:
            return None, None
        with self._lock:
            record = self._records.get(parent_urn)
        return urn_name(parent_urn), record

    # Monitor RPCs -------------------------------------------------------------

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        self._refuse_duplicate(urn)

        raw = _struct_to_py(request.object)
        marked = has_markers(raw)
        # Unmarked, the plain and the redacted forms are the wire value itself; nothing
        # below changes it in place (the mocks copy what they change, outputs are new).
        plain = unwrap_secrets(raw) if marked else raw
        parent_name, parent_record = self._parent(request.parent)
        # The engine inherits protect and retainOnDelete from the parent when the
        # program leaves them unset (the SDK sends them as optional fields).
        if request.HasField("protect"):
            protect = bool(request.protect)
        else:
            protect = parent_record.protect if parent_record else False
        if request.HasField("retainOnDelete"):
            retain = bool(request.retainOnDelete)
        else:
            retain = parent_record.retain_on_delete if parent_record else False

        resource_id, state = self.mocks.new_resource(
            MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=plain,
                provider=request.provider or None,
                resource_id=request.importId or None,
                custom=request.custom or False,
            )
        )
        state = normalize_numbers(state)
        outputs = _outputs(raw, plain, state, request.additionalSecretOutputs)

        if request.type.startswith(PROVIDER_PREFIX):
            self.mocks.note_provider(f"{urn}::{resource_id}", request.type, plain)

        record = Record(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=parent_name,
            inputs=redact(raw) if marked else raw,
            protect=protect,
            retain_on_delete=retain,
            depends_on=sorted({urn_name(dep) for dep in request.dependencies}),
            ignore_changes=list(request.ignoreChanges),
            transforms=len(request.transforms),
        )
        with self._lock:
            self._records[urn] = record
            plain_outputs = unwrap_secrets(outputs) if marked or request.additionalSecretOutputs else outputs
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id or "", plain_outputs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id or "", object=_py_to_struct(outputs))

    def _refuse_duplicate(self, urn: str) -> None:
        """Fail a second registration of one URN, as the engine does at `pulumi up`.

        Left alone, the second record would replace the first and the render would
        show one resource where a real deployment fails.
        """
        with self._lock:
            taken = urn in self._records
        if taken:
            import pulumi

            raise pulumi.RunError(f"Duplicate resource URN '{urn}'; try giving it a unique name")

    def ReadResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        self._refuse_duplicate(urn)
        raw = _struct_to_py(request.properties)
        plain = unwrap_secrets(raw)
        parent_name, _ = self._parent(request.parent)
        _, state = self.mocks.new_resource(
            MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=plain,
                provider=request.provider or None,
                resource_id=request.id,
            )
        )
        state = normalize_numbers(state)
        outputs = _outputs(raw, plain, state, request.additionalSecretOutputs)
        record = Record(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=parent_name,
            inputs=redact(raw),
            protect=False,
            retain_on_delete=False,
            depends_on=sorted({urn_name(dep) for dep in request.dependencies}),
            ignore_changes=[],
        )
        with self._lock:
            self._records[urn] = record
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, request.id, unwrap_secrets(outputs))
        return resource_pb2.ReadResourceResponse(urn=urn, properties=_py_to_struct(outputs))

    def Invoke(self, request: Any) -> Any:
        if request.tok == "pulumi:pulumi:getResource":
            return super().Invoke(request)
        args = unwrap_secrets(_struct_to_py(request.args))
        result, failures = self.mocks.call(MockCallArgs(token=request.tok, args=args, provider=request.provider))
        fields: dict[str, Any] = {
            "return": _py_to_struct(normalize_numbers(result)),
            "failures": [provider_pb2.CheckFailure(property=prop, reason=reason) for prop, reason in failures or []],
        }
        return resource_pb2.ResourceInvokeResponse(**fields)

    def RegisterStackTransform(self, request: Any) -> Any:
        with self._lock:
            self.stack_transform_requests.append(f"callback:{request.token}")
        return super().RegisterStackTransform(request)


class CollectingHandler(logging.Handler):
    """Keeps what the program logs through ``pulumi.log`` (warnings and errors)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        (self.errors if record.levelno >= logging.ERROR else self.warnings).append(message)
