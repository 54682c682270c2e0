"""What happens to an environment variable's value between a Workflow's arguments and a step's process.

Owns two small models the payload tests run the rendered templates through, and one
helper that runs the real Sensors:
- ``k8s_expand`` / ``mapping_func_for`` / ``container_environment``: the kubelet's
  `$(VAR)` expansion of `env[].value`, re-implemented from Kubernetes v1.31
  third_party/forked/golang/expansion/expand.go (`Expand`, `tryReadVariableName`,
  `MappingFuncFor`, `syntaxWrap`) and pkg/kubelet/kubelet_pods.go
  (`makeEnvironmentVariables`: the variables are resolved in list order, each value
  expanded with the ones resolved *before* it, a `valueFrom` Secret resolved as it is
  reached; the service-link variables are a second context). Byte-based like the Go
  code, including its quirk of writing `$` plus the next *byte* as a rune.
- ``argo_substitute``: Argo Workflows' `{{...}}` substitution, modelled as its worst
  case: replace every known simple tag and mark every `{{=expression}}` as evaluated,
  again and again over the substituted text until nothing changes. Argo runs a fixed
  number of passes (the Workflow's globals, then each template's `SubstituteParams`,
  whose second `Replace` runs over already-substituted text); whatever survives the
  fixed point survives those.
- ``sensor_deliveries``: the Workflow a rendered Sensor creates from a delivery, by Argo
  Events' own code (``components.upstream_events``), not by a model.

Not a test module; imported by tests/test_payload_paths.py. Hand-written: neither
expansion is available as a Python library.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

OPERATOR, OPENER, CLOSER = ord("$"), ord("("), ord(")")


def _syntax_wrap(name: bytes) -> bytes:
    return b"$(" + name + b")"


def mapping_func_for(*contexts: Mapping[bytes, bytes]) -> Any:
    """`MappingFuncFor`: the first context that defines the name wins; else `$(name)` unchanged."""
    def mapping(name: bytes) -> bytes:
        for context in contexts:
            if name in context:
                return context[name]
        return _syntax_wrap(name)
    return mapping


def _try_read_variable_name(data: bytes) -> tuple[bytes, bool, int]:
    first = data[0]
    if first == OPERATOR:  # `$$`: an escaped operator
        return data[0:1], False, 1
    if first == OPENER:
        for i in range(1, len(data)):
            if data[i] == CLOSER:
                return data[1:i], True, i + 1
        return b"$(", False, 1  # an incomplete reference is kept
    # `string(operator) + string(input[0])`: Go converts the byte to a rune.
    return b"$" + chr(first).encode(), False, 1


def k8s_expand(value: bytes, mapping: Any) -> bytes:
    """`expansion.Expand`."""
    out = bytearray()
    checkpoint = 0
    cursor = 0
    while cursor < len(value):
        if value[cursor] == OPERATOR and cursor + 1 < len(value):
            out += value[checkpoint:cursor]
            read, is_var, advance = _try_read_variable_name(value[cursor + 1:])
            out += mapping(read) if is_var else read
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return bytes(out) + value[checkpoint:]


def container_environment(env: Sequence[Mapping[str, Any]], secrets: Mapping[tuple[str, str], str],
                          service_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`makeEnvironmentVariables` for `env` (after Argo's substitution): name -> the process's value."""
    resolved: dict[bytes, bytes] = {}
    services = {k.encode(): v.encode() for k, v in (service_env or {}).items()}
    mapping = mapping_func_for(resolved, services)
    for var in env:
        value = var.get("value", "").encode()
        if value:
            value = k8s_expand(value, mapping)
        elif "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            value = secrets[(ref["name"], ref["key"])].encode()
        resolved[var["name"].encode()] = value
    return {k.decode(): v.decode("utf-8", "surrogateescape") for k, v in resolved.items()}


TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def argo_substitute(text: str, known: Mapping[str, str], max_passes: int = 10) -> str:
    """`{{name}}` -> its value (unknown tags stay), `{{=expr}}` -> a marker, until nothing changes."""
    def one(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        if inner.startswith("="):
            return f"<evaluated {inner[1:].strip()}>"
        return known.get(inner, match.group(0))

    for _ in range(max_passes):
        after = TAG.sub(one, text)
        if after == text:
            return text
        text = after
    return text


EVENTS_KINDS = ("EventBus", "EventSource", "Sensor")


def sensor_deliveries(objects: Sequence[Mapping[str, Any]], event: str, body: Mapping[str, Any],
                      github_event: str) -> dict[str, list[dict[str, Any]]]:
    """What each Sensor among `objects` creates for one GitHub delivery, by Argo Events' own code.

    `objects` may be a whole stack: its EventBus, EventSource and Sensors are written to a
    temporary file and the delivery of `body` (header `X-GitHub-Event: github_event`) to the
    EventSource event `event` goes through ``components.upstream_events.simulate``
    (tools/eventscheck: argo-events v1.9.10's github EventSource, filters and k8s trigger).
    Returns {Sensor name: created objects}; a Sensor that did not fire maps to [].
    """
    from components import upstream_events

    with tempfile.TemporaryDirectory(prefix="payload-sim-") as tmp:
        manifests, delivery = Path(tmp) / "manifests.yaml", Path(tmp) / "delivery.json"
        manifests.write_text(yaml.safe_dump_all([o for o in objects if o.get("kind") in EVENTS_KINDS]),
                             encoding="utf-8")
        delivery.write_text(json.dumps(body), encoding="utf-8")
        headers = [("Content-Type", "application/json"), ("X-GitHub-Event", github_event),
                   ("X-GitHub-Delivery", "00000000-0000-4000-8000-000000000001")]
        results = upstream_events.simulate(manifests, event, delivery, headers)
    assert all(r["errors"] == [] for r in results), results
    return {r["sensor"]: list(r["created"]) if r["fired"] else [] for r in results}
