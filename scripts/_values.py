"""The one edit promote.py makes to a values file: one key becomes a string, nothing else changes.

Not a step: imported by promote.py. Owns finding the key, refusing an edit through a
YAML alias, the edit itself and the check of its result. Does not own git, nor reading
or writing the file (promote.py refuses a symlink or a file that is not UTF-8).

How, and why this way:
- The file is composed once by PyYAML's C parser (libyaml): every node with its
  position, aliases resolved to the very node they name. ruamel.yaml's round trip is
  pure Python: on a 400 kB values file one load took seconds and the edit several
  loads and dumps.
- A key whose mapping (or value) is shared through an anchor (`defaults: &img`,
  `api.image: *img`, `worker.image: *img`, or a `<<: *img` merge) is refused, naming the
  key and the anchor: setting it would change every user of the anchor.
- When the key holds a one-line scalar (or nothing: `tag:`), only that scalar's
  characters are replaced, in its own quote style: one line of the file changes.
  A missing key is a new line (or lines, for missing parents) after the last entry
  of the deepest mapping that exists, at its indentation. Anything else (a flow
  mapping, a block scalar, a tagged value, a null parent) falls back to a ruamel.yaml
  round-trip dump of the whole document, which keeps comments and key order.
- The result is checked on its own terms: a fresh parse of the original text and a
  fresh parse of the written text, expanded so that no two places share an object,
  must be equal except for the one key, which must read back as the exact string.
"""

from __future__ import annotations

import difflib
import io
import re
from typing import Any

import yaml
from _common import StepError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
ANCHOR = re.compile(r"&([^\s,\[\]{}]+)")
Path = tuple[str, ...]


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError as error:
        raise StepError(f"the values file is not valid YAML: {error}") from None


def _lookup(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key node, value node) of `key` among the mapping's own entries (the last one wins, as in a load)."""
    found = None
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag == STR and key_node.value == key:
            found = (key_node, value_node)
    return found


def _occurrences(root: yaml.Node) -> dict[int, list[str]]:
    """Every place each node appears (document order), keyed by id: more than one means an alias."""
    places: dict[int, list[str]] = {}
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        seen = id(node) in places
        places.setdefault(id(node), []).append(path or "the top level")
        if seen:
            continue
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                children.append((value_node, f"{path}.{name}" if path else name))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack.extend(reversed(children))
    return places


def _refuse_aliases(text: str, root: yaml.Node, nodes: list[tuple[str, yaml.Node]], keys: Path) -> None:
    places = _occurrences(root)
    for path, node in nodes:
        where = places.get(id(node), [])
        if len(where) > 1:
            match = ANCHOR.match(text, node.start_mark.index)
            anchor = f"&{match.group(1)}" if match else "an anchor"
            others = ", ".join(p for p in where if p != path)
            raise StepError(
                f"cannot set {'.'.join(keys)}: {path} is shared through the YAML anchor {anchor} "
                f"(also at {others}), so setting it would change those too; give {path} its own "
                f"value (e.g. a mapping with `<<: *{anchor.lstrip('&')}` and its own keys)"
            )


# ------------------------------------------------------------------ rendering


def _yaml(mapping: int = 2, sequence: int = 2, offset: int = 0, explicit_start: bool = False) -> YAML:
    rt = YAML()  # round-trip: comments, key order and quoting survive load + dump
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a long line
    rt.indent(mapping=mapping, sequence=sequence, offset=offset)
    rt.explicit_start = explicit_start
    return rt


def _dump(rt: YAML, data: object) -> str:
    stream = io.StringIO()
    rt.dump(data, stream)
    return stream.getvalue()


def _styled(value: str, style: str | None) -> object:
    """The value in a quote style: '"' and "'" as given, plain otherwise (quoted if YAML needs it)."""
    if style == '"':
        return DoubleQuotedScalarString(value)
    if style == "'":
        return SingleQuotedScalarString(value)
    return value


def _render(value: str, style: str | None) -> str:
    """How the value is written as a mapping value on one line (ruamel quotes a plain string
    that would read as a number or a boolean)."""
    text = _dump(_yaml(), {"k": _styled(value, style)})
    if not text.startswith("k: ") or text.count("\n") != 1:
        raise StepError("cannot render the new value on one line")
    return text[3:-1]


# ------------------------------------------------------------------ the edits in place


def _replace_scalar(text: str, key_node: yaml.Node, node: yaml.ScalarNode, value: str) -> str | None:
    """Replace a one-line scalar's characters (or fill an empty value); None when it is not one."""
    start, end = node.start_mark.index, node.end_mark.index
    if node.tag == NULL and start == end:  # `tag:` with nothing: the value goes after the colon
        colon = key_node.end_mark.index
        while colon < len(text) and text[colon] in " \t":
            colon += 1
        if text[colon : colon + 1] != ":":
            return None
        return text[: colon + 1] + " " + _render(value, None) + text[colon + 1 :]
    if node.start_mark.line != node.end_mark.line or node.style not in (None, "", '"', "'"):
        return None  # a multi-line or block scalar
    if text[start : start + 1] in ("&", "!", "*", ""):
        return None  # an anchor or a tag before the value: leave it to the full dump
    return text[:start] + _render(value, node.style or None) + text[end:]


def _last_line(node: yaml.Node) -> int:
    """The last line a block mapping's own entries occupy. Only scalars and flow collections
    end where their text ends (a block collection ends at the next token, past comments and
    blank lines); an alias's lines are the anchor's, always earlier."""
    last = node.start_mark.line
    stack = [node]
    while stack:
        current = stack.pop()
        end = current.end_mark
        if isinstance(current, yaml.ScalarNode) or getattr(current, "flow_style", False):
            last = max(last, end.line - 1 if end.column == 0 and end.line > current.start_mark.line else end.line)
        elif isinstance(current, yaml.MappingNode):
            stack.extend(n for pair in current.value for n in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return last


def _insert_keys(text: str, chain: list[yaml.MappingNode], missing: Path, value: str) -> str | None:
    """New lines for the missing keys after the last entry of the deepest existing mapping."""
    holder = chain[-1]
    if holder.flow_style or not holder.value:
        return None
    column = holder.value[0][0].start_mark.column
    step = 2
    if len(chain) > 1 and chain[-2].value:
        step = max(1, column - chain[-2].value[0][0].start_mark.column)
    lines = [f"{' ' * (column + step * i)}{key}:" for i, key in enumerate(missing[:-1])]
    lines.append(f"{' ' * (column + step * (len(missing) - 1))}{missing[-1]}: {_render(value, None)}")
    newline = "\r\n" if "\r\n" in text else "\n"
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    after = _last_line(holder) + 1
    if after >= len(starts) or starts[after] > len(text):
        prefix = "" if not text or text.endswith("\n") else newline
        return text + prefix + newline.join(lines) + newline
    return text[: starts[after]] + newline.join(lines) + newline + text[starts[after] :]


# ------------------------------------------------------------------ the last resort: a full dump


def _full_dump(text: str, keys: Path, value: str, style: str | None) -> str:
    """ruamel.yaml's round trip of the whole document, with the indentation that re-dumps the
    original most faithfully among a few usual ones (tried on the original only if it is small)."""
    try:
        data = _yaml().load(text) if text.strip() else None
    except YAMLError as error:
        raise StepError(f"the values file is not valid YAML: {error}") from None
    data = CommentedMap() if data is None else data
    node = data
    for depth, key in enumerate(keys[:-1]):
        if not isinstance(node, dict):
            raise StepError(f"{'.'.join(keys[:depth]) or 'the top level'} is not a mapping in the values file")
        if node.get(key) is None:
            node[key] = CommentedMap()
        node = node[key]
    if not isinstance(node, dict):
        raise StepError(f"{'.'.join(keys[:-1])} is not a mapping in the values file")
    node[keys[-1]] = _styled(value, style)
    first = next((line for line in text.splitlines() if line.strip() and not line.startswith("#")), "")
    candidates = [(m, o + 2, o) for m in (2, 4, 3) for o in (0, 2, m)]
    best = candidates[0]
    if text.strip() and len(text) < 64 * 1024:
        scores = []
        for mapping, sequence, offset in candidates:
            rt = _yaml(mapping, sequence, offset, first.startswith("---"))
            scores.append((_changed_lines(text, _dump(rt, rt.load(text))), (mapping, sequence, offset)))
            if scores[-1][0] == 0:
                break
        best = min(scores, key=lambda score: score[0])[1]
    return _dump(_yaml(*best, explicit_start=first.startswith("---")), data)


def _changed_lines(a: str, b: str) -> int:
    matcher = difflib.SequenceMatcher(a=a.splitlines(), b=b.splitlines(), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


# ------------------------------------------------------------------ the check
#
# What a document means, built from the composed nodes (PyYAML's own constructor is pure
# Python and several times slower): a scalar is its resolved tag and text, a sequence a
# tuple, a mapping a dict (`<<` merges applied, own keys winning). An alias is the very
# object of its anchor; the expected document is built by copying only the mappings on
# the key's path, so a change that reaches other places through an alias shows.


def _meaning(node: yaml.Node, memo: dict[int, Any]) -> Any:
    if id(node) in memo:
        return memo[id(node)]
    if isinstance(node, yaml.ScalarNode):
        value: Any = (node.tag, node.value)
    elif isinstance(node, yaml.SequenceNode):
        value = tuple(_meaning(item, memo) for item in node.value)
    else:
        value = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in reversed(sources):
                    inherited = _meaning(source, memo)
                    if isinstance(inherited, dict):
                        merged.update(inherited)
                continue
            key = _meaning(key_node, memo)
            if isinstance(key, dict):
                raise StepError("the values file has a mapping as a key, which promote does not edit")
            value[key] = _meaning(value_node, memo)
        value = {**merged, **value}
    memo[id(node)] = value
    return value


def _only_key_changed(old_text: str, new_text: str, keys: Path, value: str,
                      old_root: yaml.Node | bool | None = False) -> bool:
    """A fresh parse of each text (the original's may be given, composed once): equal except
    for `keys`, which reads back as the string `value`."""
    if old_root is False:
        old_root = _compose(old_text)
    assert not isinstance(old_root, bool)
    try:
        new_root = yaml.compose(new_text, Loader=LOADER)
    except yaml.YAMLError:
        return False
    old = _meaning(old_root, {}) if old_root is not None else {}
    new = _meaning(new_root, {}) if new_root is not None else None
    expected = dict(old) if isinstance(old, dict) else {}
    holder = expected
    for key in keys[:-1]:
        child = holder.get((STR, key))
        holder[(STR, key)] = dict(child) if isinstance(child, dict) else {}
        holder = holder[(STR, key)]
    holder[(STR, keys[-1])] = (STR, value)
    return bool(new == expected)


# ------------------------------------------------------------------ the edit


def set_yaml_value(text: str, keys: Path, value: str) -> str | None:
    """`text` with `keys` set to the string `value`, or None when it already is.

    Creates missing mappings on the way; keeps the old value's quote style. StepError when
    the document or a key on the path is not a mapping, when the path goes through an
    alias, or when no edit can be shown to change that key alone.
    """
    root = _compose(text)
    new_text: str | None
    if root is None:
        new_text = text + ("" if not text or text.endswith("\n") else "\n") + _insert_lines(keys, value)
        return _checked(text, root, new_text, keys, value)
    if not isinstance(root, yaml.MappingNode):
        raise StepError("the values file's top level is not a mapping")
    chain: list[yaml.MappingNode] = [root]
    on_path: list[tuple[str, yaml.Node]] = []
    node: yaml.Node = root
    for depth, key in enumerate(keys):
        found = _lookup(node, key)  # type: ignore[arg-type]
        if found is None:
            _refuse_aliases(text, root, on_path, keys)
            new_text = _insert_keys(text, chain, keys[depth:], value)
            return _checked(text, root, new_text, keys, value)
        key_node, node = found
        on_path.append((".".join(keys[: depth + 1]), node))
        if depth == len(keys) - 1:
            break
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL:
            _refuse_aliases(text, root, on_path, keys)
            return _checked(text, root, None, keys, value)  # `image:` with nothing: the full dump makes it a mapping
        if not isinstance(node, yaml.MappingNode):
            raise StepError(f"{'.'.join(keys[: depth + 1])} is not a mapping in the values file")
        chain.append(node)
    if isinstance(node, yaml.ScalarNode) and node.tag == STR and node.value == value:
        return None
    _refuse_aliases(text, root, on_path, keys)
    new_text = _replace_scalar(text, key_node, node, value) if isinstance(node, yaml.ScalarNode) else None
    return _checked(text, root, new_text, keys, value, getattr(node, "style", None) or None)


def _insert_lines(keys: Path, value: str) -> str:
    lines = [f"{'  ' * i}{key}:" for i, key in enumerate(keys[:-1])]
    return "\n".join([*lines, f"{'  ' * (len(keys) - 1)}{keys[-1]}: {_render(value, None)}"]) + "\n"


def _checked(text: str, root: yaml.Node | None, new_text: str | None, keys: Path, value: str,
             style: str | None = None) -> str:
    """`new_text` if it changes only the key; else the full dump if that does; else StepError."""
    if new_text is not None and _only_key_changed(text, new_text, keys, value, root):
        return new_text
    new_text = _full_dump(text, keys, value, style if style in ('"', "'") else None)
    if not _only_key_changed(text, new_text, keys, value, root):
        raise StepError(f"could not set {'.'.join(keys)} in the values file without changing other values")
    return new_text
