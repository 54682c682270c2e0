"""Payload text: `payload-only-through-env`.

Owns: the check that the payload parameters (pr-title, author, pr-number, repository,
trigger) reach a step only as an `env[].value`, followed through the parameters that
carry them on; that the base64-encoded ones are only ever the whole value of a `*_B64`
variable, and a Secret's variable comes after every value Argo fills in; and that a
Sensor encodes them, or holds a plain one to a shape with a filter. The names are copies
of the program's (a test keeps them equal).
Does not own: the walkers (`inputs`); building the Sensors and templates (`components`).

Decisions: docs/decisions/0100-payload-base64-from-the-sensor.md,
docs/decisions/0380-policy-checks-are-pure-functions.md; docs/security-model.md,
"Payload text".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from release_policies.context import Context
from release_policies.inputs import WORKFLOW_KINDS, Inputs, Options, as_list, get_in, is_argo, string_leaves, walk

PAYLOAD_PARAMETERS = frozenset({"pr-title", "author", "pr-number", "repository", "trigger"})
# Free text the Sensor carries as `b64:` + base64 (components.sensors.Encoded; a test keeps them equal):
# only ever the whole value of an environment variable named `*_B64`.
ENCODED_PARAMETERS = frozenset({"pr-title", "author", "repository"})
ENCODED_ENV_SUFFIX = "_B64"
ENCODED_SENSOR_TEMPLATE = re.compile(r"^b64:\{\{ \.Input\.[A-Za-z0-9_.]+ \| toString \| b64enc \}\}$")
_WHOLE_TAG = re.compile(r"^\{\{\s*(workflow|inputs)\.parameters\.[A-Za-z0-9_-]+\s*\}\}$")
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _refs(expression: str, scope: str) -> set[str]:
    """Parameter names `expression` (the inside of one `{{...}}`) takes from `scope`."""
    names = set(re.findall(rf"{scope}\.parameters\.([A-Za-z0-9_-]+)", expression))
    names |= set(re.findall(rf"{scope}\.parameters\[\s*['\"]([^'\"]+)['\"]\s*\]", expression))
    return names


def _whole_set(expression: str, scope: str) -> bool:
    """`{{workflow.parameters.json}}`, `{{inputs.parameters}}`: every parameter at once."""
    text = expression.strip().lstrip("=").strip()
    return text in (f"{scope}.parameters", f"{scope}.parameters.json")


def _taints(text: str, tainted_inputs: set[str], roots: frozenset[str] = PAYLOAD_PARAMETERS) -> list[str]:
    """The payload references among the `{{...}}` tags of `text` (empty when there are none)."""
    found: list[str] = []
    for match in _TAG.finditer(text):
        inner = match.group(1)
        found += [f"workflow.parameters.{n}" for n in sorted(_refs(inner, "workflow") & roots)]
        found += [f"inputs.parameters.{n}" for n in sorted(_refs(inner, "inputs") & tainted_inputs)]
        for scope in ("workflow", "inputs"):
            if _whole_set(inner, scope):
                found.append(f"{scope}.parameters (all of them)")
    return list(dict.fromkeys(found))


def _is_env_value(path: str) -> bool:
    return re.search(r"\.env\[\d+\]\.value$", path) is not None


def _is_parameter_value(path: str) -> bool:
    return re.search(r"\.parameters\[\d+\]\.(value|default)$", path) is not None


def check_payload_only_through_env(
    resource_type: str, inputs: Inputs, options: Options, context: Context
) -> list[str]:
    """Payload parameters reach a step only as an `env[].value`, never by `{{...}}` in its source.

    `{{workflow.parameters.<pr-title|author|pr-number|repository|trigger>}}` may stand in
    an `env[].value`; it may also be passed on as a parameter's value (arguments or
    inputs), which makes that parameter payload too: `{{inputs.parameters.<it>}}` is then
    held to the same rule. Anywhere else (script source, command, args, a `when`, a
    manifest, a label) it is a violation.

    The Sensor sends pr-title, author and repository base64-encoded (docs/decisions/0100):
    in a Workflow kind such a parameter may only be the whole value of a `*_B64` variable,
    and a variable from a Secret must come after every env value Argo fills in
    (Kubernetes expands `$(NAME)` with earlier variables only). In a Sensor, an encoded
    argument must come from the encoding `dataTemplate`, and an argument taken plain by
    `dataKey` must be on a path a string filter of its dependency holds to a shape.
    """
    if not is_argo(resource_type, WORKFLOW_KINDS | frozenset({"Sensor"})):
        return []
    strings = list(string_leaves(inputs))
    tainted = _tainted(inputs, strings, PAYLOAD_PARAMETERS)
    found = []
    if is_argo(resource_type, WORKFLOW_KINDS):
        found += _env_order_and_encoding(inputs, _tainted(inputs, strings, ENCODED_PARAMETERS))
    else:
        found += _sensor_encodes_payload(inputs)
    for path, text in strings:
        if _is_env_value(path) or _is_parameter_value(path) or not _taints(text, tainted):
            continue
        refs = ", ".join(_taints(text, tainted))
        found.append(
            f"{path}: substitutes {refs} (payload text: pr-title, author, pr-number, repository, trigger) "
            "with {{...}}: pass it only as an env[].value and quote it in the script"
        )
    return found


def _tainted(inputs: Inputs, strings: list[tuple[str, str]], roots: frozenset[str]) -> set[str]:
    """Parameters that carry one of `roots`, by name, to a fixed point (names, not templates:
    a name tainted anywhere is held to the rule everywhere, which errs on the safe side)."""
    tainted: set[str] = set()
    while True:
        before = len(tainted)
        for path, text in strings:
            if _is_parameter_value(path) and _taints(text, tainted, roots):
                owner = _get_path(inputs, path.rsplit(".", 1)[0])
                name = get_in(owner, "name")
                if isinstance(name, str):
                    tainted.add(name)
        if len(tainted) == before:
            return tainted


def _env_lists(value: Any, path: str = "") -> Iterator[tuple[str, list[Any]]]:
    for where, item in walk(value, path):
        if where.endswith(".env") and isinstance(item, list):
            yield where, item


def _env_order_and_encoding(inputs: Inputs, encoded: set[str]) -> list[str]:
    """Encoded payload only as the whole value of a `*_B64` variable; Secrets after every
    value Argo fills in (Kubernetes expands `$(NAME)` only with variables defined earlier)."""
    found = []
    for path, env in _env_lists(inputs):
        last_substituted = None
        for i, var in enumerate(env):
            name, value = get_in(var, "name"), get_in(var, "value")
            if isinstance(value, str) and "{{" in value:
                last_substituted = (i, name)
            if not isinstance(value, str):
                continue
            refs = _taints(value, encoded, ENCODED_PARAMETERS)
            if refs and not (_WHOLE_TAG.match(value) and isinstance(name, str) and name.endswith(ENCODED_ENV_SUFFIX)):
                found.append(
                    f"{path}[{i}]: {name} takes {', '.join(refs)}, which the Sensor sends base64-encoded: it must be "
                    f"the whole value of a variable named *{ENCODED_ENV_SUFFIX}, which the script decodes"
                )
        if last_substituted is None:
            continue
        for i, var in enumerate(env[:last_substituted[0]]):
            if get_in(var, "valueFrom", "secretKeyRef") is not None:
                found.append(
                    f"{path}[{i}]: {get_in(var, 'name')} comes from a Secret before {path}[{last_substituted[0]}] "
                    f"({last_substituted[1]}), whose value Argo fills in at run time: Kubernetes expands $(NAME) "
                    "with the variables defined earlier, so Secrets go last (or in a volume)"
                )
    return found


def _sensor_encodes_payload(inputs: Inputs) -> list[str]:
    """A Sensor's k8s trigger: an encoded argument comes from the encoding `dataTemplate`; an
    argument taken plain by `dataKey` is held to a shape by a string filter on that path."""
    found = []
    filtered: dict[Any, set[Any]] = {}
    for dependency in as_list(get_in(inputs, "spec", "dependencies")):
        filtered[get_in(dependency, "name")] = {
            get_in(f, "path") for f in as_list(get_in(dependency, "filters", "data")) if get_in(f, "type") == "string"}
    for t, trigger in enumerate(as_list(get_in(inputs, "spec", "triggers"))):
        k8s = get_in(trigger, "template", "k8s")
        declared = as_list(get_in(k8s, "source", "resource", "spec", "arguments", "parameters"))
        arguments = [get_in(p, "name") for p in declared]
        for i, parameter in enumerate(as_list(get_in(k8s, "parameters"))):
            dest = get_in(parameter, "dest")
            match = re.fullmatch(r"spec\.arguments\.parameters\.(\d+)\.value", dest) if isinstance(dest, str) else None
            if match is None or int(match.group(1)) >= len(arguments):
                continue
            argument, src = arguments[int(match.group(1))], get_in(parameter, "src")
            where = f"spec.triggers[{t}].template.k8s.parameters[{i}].src"
            key, template = get_in(src, "dataKey"), get_in(src, "dataTemplate")
            if argument in ENCODED_PARAMETERS and not (
                    key is None and isinstance(template, str) and ENCODED_SENSOR_TEMPLATE.match(template)):
                found.append(f"{where}: argument {argument} is payload text: carry it as "
                             "b64:{{ .Input.<path> | toString | b64enc }}, not plain")
            elif key is not None and key not in filtered.get(get_in(src, "dependencyName"), set()):
                found.append(f"{where}: argument {argument} is taken plain from {key}, which no string filter of "
                             "its dependency holds to a shape: filter it, or carry it encoded")
    return found


def _get_path(data: Any, path: str) -> Any:
    for key in re.findall(r'\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.\[\]]+)', path):
        index, quoted, plain = key
        if index:
            items = as_list(data)
            data = items[int(index)] if int(index) < len(items) else None
        else:
            data = get_in(data, json.loads(f'"{quoted}"') if quoted else plain)
    return data
