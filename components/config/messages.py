"""A pydantic refusal as a `Problem` a person can act on: file, line, where (service or
settings), field, and the message in the file's own terms.

Owns: the words for strict-type mismatches (YAML 1.1 booleans, a word where a mapping
belongs), for the patterns that have a name (durations, regions, accounts, quantities,
images), and "did you mean" for an unknown field. Does not own: the line numbers
(`components.yamlsafe`), which file is read and how its locations are named
(`components.config.loading`), nor the rules (the models).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from components import config_keys
from components.config.fields import (
    ACCOUNT_PATTERN,
    DURATION_PATTERN,
    IMAGE_PATTERN,
    QUANTITY_PATTERN,
    REGION_PATTERN,
    _shown,
)
from components.errors import Problem
from components.yamlsafe import Loaded

# Turns a pydantic error location into (where, field) for a Problem.
Describe = Callable[[tuple[str | int, ...]], tuple[str, str]]

_PATTERN_MESSAGES = {
    DURATION_PATTERN: "must be a duration in whole seconds, minutes or hours, like 30s, 10m or 2h",
    REGION_PATTERN: "must be an AWS region name, like us-east-1 or eu-west-2",
    ACCOUNT_PATTERN: "must be a 12-digit AWS account id, quoted so YAML keeps it a string",
    QUANTITY_PATTERN: "must be a Kubernetes quantity, like 250m or 2 (CPU) or 256Mi or 1Gi (memory)",
}


def _image_message(value: object) -> str:
    """Why ``value`` is no pinned image, in words (not the pattern)."""
    text = str(value)
    if "@" not in text and ":" not in text.rsplit("/", 1)[-1]:
        return (f"{_shown(value)} has no tag: add one, like '{text}:<version>' ('latest' is refused), "
                "or pin a digest with '@sha256:<digest>'")
    return (f"must be a container image pinned by a tag or a digest: a lowercase name, then ':<tag>' or "
            f"'@sha256:<digest>', not {_shown(value)}")


# Strict types (Model): what an integer or boolean field says when given something else.
# YAML 1.1 reads on/off/yes/no unquoted as booleans.
_STRICT_TYPE_MESSAGES: dict[str, Callable[[object], str]] = {
    "int_type": lambda got: (
        f"must be a whole number, not {_shown(got)}" + (" (YAML reads on/off/yes/no/true/false as booleans)"
                                                        if isinstance(got, bool) else "")
    ),
    "bool_type": lambda got: f"must be true or false (unquoted), not {_shown(got)}",
    # Never pydantic's "instance of <Class>": the file has mappings, not classes.
    "model_type": lambda got: f"must be a mapping of fields (key: value lines below it), not {_shown(got)}",
    "model_attributes_type": lambda got: f"must be a mapping of fields (key: value lines below it), not {_shown(got)}",
    "dict_type": lambda got: f"must be a mapping (key: value), not {_shown(got)}",
    "string_type": lambda got: f"must be text, not {_shown(got)}" + (
        " (quote it: YAML reads it as a number or a boolean)" if isinstance(got, int | float) else ""
    ),
}


def _problems_from(
    err: ValidationError, file: str, loaded: Loaded | None, base: tuple[str | int, ...],
    describe: Describe, model: type[BaseModel],
) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where, field = describe(loc)
        line = loaded.line_of(base + loc) if loaded else None
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown field" + config_keys.did_you_mean(str(loc[-1]), config_keys.known_fields(model, loc))
        elif e["type"] in _STRICT_TYPE_MESSAGES:
            message = _STRICT_TYPE_MESSAGES[e["type"]](e["input"])
        elif e["type"] == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") == IMAGE_PATTERN:
            message = _image_message(e["input"])
        elif e["type"] == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") in _PATTERN_MESSAGES:
            message = f"{_PATTERN_MESSAGES[e['ctx']['pattern']]}, not {_shown(e['input'])}"
        problems.append(Problem(file, line, where, field, message))
    return problems
