"""Strict YAML loading for the files people edit: services.yaml and Pulumi.<env>.yaml.

Owns: parsing YAML into plain Python data while
- rejecting duplicate mapping keys (PyYAML silently keeps the last one),
- bounding alias expansion (a "billion laughs" file would otherwise expand without limit),
  nesting depth, and refusing recursive aliases (`&a [*a]`),
- refusing a file that is not UTF-8,
- remembering the line of every value, so a validation error can point at it.

Does not own: what the data means (that is `components.config`).

Why not `yaml.safe_load`: it offers neither duplicate-key detection nor positions. We
compose the node graph with PyYAML's own composer (safe, no arbitrary tags) and build
the Python values from the nodes ourselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.errors import Problem

# Upper bound on the number of nodes visited while building values. Aliases are
# followed (so `*a` costs the size of what it points at); a file that expands past
# this is refused rather than exhausting memory. services.yaml with hundreds of
# services stays far below it.
MAX_EXPANDED_NODES = 200_000

# Upper bound on nesting. The deepest real setting is about eight levels down; a
# deeper file is refused before Python's own recursion limit turns it into a crash
# (PyYAML's composer recurses per level too).
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]


@dataclass
class Loaded:
    """Parsed YAML data with the 1-based line of each value, keyed by its path."""

    data: object
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.problems: list[Problem] = []
        self.visited = 0
        # The nodes being built, outermost first: an alias to one of them is recursive.
        self._open: list[yaml.Node] = []
        # SafeLoader's constructor knows the YAML 1.1 scalar types (int, bool, null,
        # float, timestamp); only scalars are handed to it.
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> object:
        self.visited += 1
        if self.visited > MAX_EXPANDED_NODES:
            raise _TooLarge()
        self.lines.setdefault(path, node.start_mark.line + 1)
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self._scalars.construct_object(node, deep=True)
        if any(node is open_node for open_node in self._open):
            raise _Unbuildable(node.start_mark.line + 1, path, "a recursive alias (it contains itself)")
        if len(self._open) >= MAX_DEPTH:
            raise _Unbuildable(node.start_mark.line + 1, (), f"nested deeper than {MAX_DEPTH} levels")
        self._open.append(node)
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._open.pop()

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, object]:
        result: dict[str, object] = {}
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(
                    Problem(self.file, key_node.start_mark.line + 1, _where(path), "<<",
                            "YAML merge keys are not supported; write the keys out")
                )
                continue
            key = self.build(key_node, path)
            if not isinstance(key, str | int | bool | float) and key is not None:
                self.problems.append(
                    Problem(self.file, key_node.start_mark.line + 1, _where(path), "",
                            "mapping keys must be plain scalars")
                )
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                self.problems.append(
                    Problem(self.file, line, _where(path), str(key),
                            f"duplicate key {key!r} (first defined on line {seen[key]})")
                )
                continue
            seen[key] = line
            result[str(key) if not isinstance(key, str) else key] = self.build(
                value_node, (*path, str(key))
            )
            self.lines[(*path, str(key))] = line
        return result


class _TooLarge(Exception):
    pass


class _Unbuildable(Exception):
    """A structure no configuration can be: recursive, or nested too deeply."""

    def __init__(self, line: int, path: Path_, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.path = path
        self.reason = reason


def _where(path: Path_) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"


def load_yaml(text: str, file: str) -> tuple[Loaded | None, list[Problem]]:
    """Parse `text`; return the data with its lines, or the problems found.

    An empty document is reported as a problem: every file we read must say something.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        # PyYAML's composer recurses once per nesting level.
        return None, [Problem(file, None, "(YAML)", "", f"nested deeper than {MAX_DEPTH} levels")]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        return None, [Problem(file, line, "(YAML)", "", f"not valid YAML: {err.problem}")]
    except yaml.YAMLError as err:
        return None, [Problem(file, None, "(YAML)", "", f"not valid YAML: {err}")]
    if node is None:
        return None, [Problem(file, None, "(top level)", "", "the file is empty")]
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except _TooLarge:
        return None, [
            Problem(file, None, "(YAML)", "",
                    f"expands to more than {MAX_EXPANDED_NODES} nodes through aliases; refusing it")
        ]
    except _Unbuildable as err:
        return None, [Problem(file, err.line, "(YAML)", _where(err.path) if err.path else "", err.reason)]
    except yaml.YAMLError as err:
        return None, [Problem(file, None, "(YAML)", "", f"not valid YAML: {err}")]
    if builder.problems:
        return None, builder.problems
    return Loaded(data, builder.lines), []


def decode_utf8(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    """A file's bytes as text; bytes that are not UTF-8 are a problem at their line."""
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        return None, [Problem(file, line, "(file)", "",
                              f"not UTF-8: byte 0x{raw[err.start]:02x} at offset {err.start}; save the file as UTF-8")]


def read_utf8(path: Path) -> tuple[str | None, list[Problem]]:
    """A file's text; a missing, unreadable or non-UTF-8 file is a problem, not an exception."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, [Problem(str(path), None, "(file)", "", f"cannot read: {err.strerror}")]
    return decode_utf8(raw, str(path))


def load_yaml_file(path: Path) -> tuple[Loaded | None, list[Problem]]:
    """Read and parse a file; a missing, unreadable or non-UTF-8 file is a problem, not an exception."""
    text, problems = read_utf8(path)
    if text is None:
        return None, problems
    return load_yaml(text, str(path))
