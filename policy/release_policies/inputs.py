"""Reading a resource's inputs: the walkers and predicates every check of the pack shares.

Owns: `UNKNOWN` (a value the engine does not know yet, during a preview), the `Inputs`
and `Options` types, and the helpers that read inputs without trusting their shape:
`get_in`, `as_list`, `walk` and `string_leaves` (every value with the path a message
names), `join_path`, how Helm and API values spell true and false, and the predicates on
a resource type (`is_kubernetes`, `is_argo`, `is_workload_data`, `kind_of`).
Does not own: any policy (the topic modules), the stack's `Context` (`context`).

Decisions: docs/decisions/0381-unknown-values-are-left-for-up.md,
docs/decisions/0383-pod-checks-walk-every-pod-shaped-part.md (CRDs are not walked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class _Unknown:
    """A value the engine does not know yet (a preview of a resource to be created)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


Inputs = Mapping[str, Any]
Options = Mapping[str, Any]


def known(value: Any) -> bool:
    return value is not UNKNOWN


def truthy(value: Any) -> bool:
    """True for `true`, `"true"`, `"1"`, `1` (Helm values and GitHub's API use all of them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    if isinstance(value, int | float):
        return value != 0
    return False


def is_number(value: Any) -> bool:
    """An int or a float (the engine sends every number as a float), never a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def falsy(value: Any) -> bool:
    """True only for an explicit false (`false`, `"false"`, `"0"`)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value.strip().lower() in ("false", "0", "no", "off")
    if isinstance(value, int | float):
        return value == 0
    return False


def get_in(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]...; None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$-]*", key):
        key = json.dumps(key)
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a tree of mappings and lists, the root included, depth first."""
    yield path, value
    if isinstance(value, Mapping):
        for key in value:
            yield from walk(value[key], join_path(path, str(key)))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, item in enumerate(value):
            yield from walk(item, join_path(path, index))


def string_leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    for where, item in walk(value, path):
        if isinstance(item, str):
            yield where, item


def kind_of(resource_type: str) -> str:
    """`kubernetes:argoproj.io/v1alpha1:WorkflowTemplate` -> `WorkflowTemplate`."""
    return resource_type.rsplit(":", 1)[-1]


CRD_TYPES = frozenset(
    {
        "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
        "kubernetes:apiextensions.k8s.io/v1beta1:CustomResourceDefinition",
    }
)


def is_kubernetes(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:")


def is_workload_data(resource_type: str) -> bool:
    """Whether the generic walkers apply: anything but a CRD, whose OpenAPI schema names
    every pod field (`hostPath`, `podSpecPatch`, ...) as a property without setting it."""
    return resource_type not in CRD_TYPES


ARGO_API = "kubernetes:argoproj.io/"
WORKFLOW_KINDS = frozenset({"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})


def is_argo(resource_type: str, kinds: frozenset[str]) -> bool:
    return resource_type.startswith(ARGO_API) and kind_of(resource_type) in kinds
