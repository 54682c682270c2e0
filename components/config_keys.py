"""Names in the configuration: the branch map, the keys a stack file may hold, suggestions.

Owns:
- ``BRANCH_MAP``: the branch each environment releases from (docs/architecture.md). A stack
  file may leave ``branch`` out (the map's is used); another branch needs
  ``branchDeparture: deliberate`` beside it, and ``check`` then prints a notice.
- ``READ_KEYS``: every ``release-pipeline:<key>`` the program reads. Any other key of the
  project in a stack file is refused, with a suggestion, rather than silently ignored.
- ``did_you_mean``: the close match an "unknown" message suggests, and ``known_fields``:
  the fields a model accepts at the place of an unknown one.

Does not own: the models and the rules about values (``components.config``), nor the
output of ``check`` (``components.cli``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Union

from pydantic import BaseModel

from components.errors import Problem

# The documented branch map: environment -> the branch a merge into releases it.
BRANCH_MAP: Mapping[str, str] = {"dev": "development", "sandbox": "sandbox", "integration": "release", "live": "main"}
# The setting that lets a stack file name another branch than the map's, and its one value.
DEPARTURE_FIELD = "branchDeparture"
DEPARTURE_VALUE = "deliberate"

# Keys of the project's namespace (`release-pipeline:<key>`, or bare) the program reads.
SETTINGS = "settings"
SECRETS: tuple[str, ...] = ("githubToken", "helmWriterPrivateKey", "slackToken", "ssoClientSecret")
READ_KEYS: tuple[str, ...] = (SETTINGS, *SECRETS)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, ignoring case; ``""`` when none is close."""
    by_lower: dict[str, str] = {}
    for choice in sorted(choices):
        by_lower.setdefault(choice.lower(), choice)
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.75)
    return f" (did you mean {by_lower[match[0]]!r}?)" if match else ""


def with_map_branch(data: object) -> object:
    """A raw settings object with ``branch`` filled in from the map when the file leaves it out."""
    if isinstance(data, dict) and "branch" not in data and data.get("environment") in BRANCH_MAP:
        return {**data, "branch": BRANCH_MAP[data["environment"]]}
    return data


def departure_problem(environment: str, branch: str, departure: str | None) -> tuple[str, str] | None:
    """``(field, message)`` when ``branch`` breaks the map for ``environment``, or None."""
    expected = BRANCH_MAP[environment]
    if branch != expected and departure != DEPARTURE_VALUE:
        return "branch", (
            f"{branch!r} is not {environment}'s branch in the branch map ({expected!r}); leave `branch` out to "
            f"use the map's, or set `{DEPARTURE_FIELD}: {DEPARTURE_VALUE}` beside it to release {environment} "
            "from another branch on purpose (docs/architecture.md)"
        )
    if branch == expected and departure is not None:
        return DEPARTURE_FIELD, (
            f"is set, but {branch!r} is {environment}'s branch in the branch map: remove `{DEPARTURE_FIELD}`"
        )
    return None


def branch_notice(file: str, environment: str, branch: str) -> str | None:
    """The notice ``check`` prints for a stack that deliberately departs from the map."""
    expected = BRANCH_MAP.get(environment)
    if expected is None or branch == expected:
        return None
    return (
        f"notice: {file}: stack {environment!r} releases from branch {branch!r}, not {expected!r} "
        f"of the branch map ({DEPARTURE_FIELD}: {DEPARTURE_VALUE})"
    )


def unknown_key_problems(file: str, config: Mapping[str, object], project: str,
                         line_of: typing.Callable[[str], int | None], refused: Iterable[str] = ()) -> list[Problem]:
    """A problem for each key of the project's namespace the program does not read.

    Pulumi files a bare key under the project's namespace, so ``slackTokn`` is checked as
    ``release-pipeline:slackTokn``. Keys of other namespaces (``aws:``, ``pulumi:``) are the
    providers' and left alone. ``refused`` keys have a message of their own elsewhere.
    """
    skip = set(refused)
    problems = []
    for spelled in sorted(config):
        if spelled in skip:
            continue
        namespace, _, key = spelled.rpartition(":")
        if namespace not in ("", project) or key in READ_KEYS:
            continue
        hint = did_you_mean(key, READ_KEYS)
        problems.append(Problem(
            file, line_of(spelled), "settings", spelled,
            f"unknown key{hint}: the program reads only {', '.join(f'{project}:{k}' for k in READ_KEYS)}",
        ))
    return problems


# ----------------------------------------------------------- fields of a model at a location


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold: itself, the members of a union, list items, dict values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0])
    if origin in (Union, types.UnionType):
        return [m for arg in args for m in _models_in(arg)]
    if origin in (list, tuple, set, frozenset) and args:
        return _models_in(args[0])
    if origin is dict and len(args) == 2:
        return _models_in(args[1])
    return []


def _field_of(model: type[BaseModel], part: str) -> Any:
    for name, info in model.model_fields.items():
        if part in (name, info.alias):
            return info.annotation
    return None


def known_fields(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The field names (as the file spells them) accepted beside the unknown field at ``loc``.

    ``loc`` is pydantic's error location, ending with the unknown field. List indexes, dict
    keys and the member named by a union (its tag or class name) are stepped over. Empty
    when the place is not a model.
    """
    models: list[type[BaseModel]] = [root]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotations = [a for a in (_field_of(m, part) for m in models) if a is not None]
        if annotations:
            models = [m for a in annotations for m in _models_in(a)]
            continue
        # Not a field: a dict key (the models stay) or the union member pydantic names.
        named = [m for m in models if part == m.__name__ or _is_tag(m, part)]
        models = named or models
    return sorted({info.alias or name for model in models for name, info in model.model_fields.items()})


def _is_tag(model: type[BaseModel], part: str) -> bool:
    return any(
        typing.get_origin(info.annotation) is typing.Literal and part in typing.get_args(info.annotation)
        for info in model.model_fields.values()
    )
