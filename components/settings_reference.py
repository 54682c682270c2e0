"""docs/settings.md, generated from the config models: every key of the stack settings
(`release-pipeline:settings`) and of services.yaml, with its type, default, allowed
values, an example and the field's description.

Owns: walking the pydantic models of `components.config` and saying their types and
constraints in words; the `settings-reference` command (`--check` compares the
committed file, exit 1 when it is stale). Does not own: the text of each field (its
`Field(description=...)` in `components.config`) or what is valid (the models).

Hand-written rather than rendered from the models' JSON schema (pydantic's
`model_json_schema`): the schema drops the rules the models check in code
(`AfterValidator`, `field_validator`) and says patterns only as regular expressions,
while a reader needs both in words.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types
import yaml
from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components import config, config_keys

REFERENCE_FILE = Path("docs") / "settings.md"
COMMAND = "python -m components settings-reference"

# What each rule checked in code admits, in words (by function name). A new validator
# without words here fails tests/test_settings_reference.py.
VALIDATOR_WORDS: dict[str, str] = {
    "_dns_label": "a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or "
    "digit, at most 63 characters",
    "_not_kubernetes_namespace": "not one of Kubernetes' own namespaces (" + ", ".join(config.KUBERNETES_NAMESPACES)
    + ")",
    "_dns1035_label": "starting with a letter (it names Kubernetes Services)",
    "_github_repo": "a GitHub repository as owner/name",
    "_relative_path": "a relative path inside the repository: letters, digits, '_', '-', '.' and '/', no leading "
    "'/', no '..'",
    "_not_the_root": "not the repository root ('' or '.')",
    "_ecr_name": "an ECR repository name: lowercase letters, digits, and '.', '_', '-' or '/' between them, at "
    "most 200 characters",
    "_git_branch": "a git branch name: no '..', no empty or '.'-led part between '/', not ending in '.' or "
    "'.lock'",
    "_not_empty": "not empty or only spaces",
    "_no_argo_template": "no '{{' (Argo Workflows would substitute into it)",
    "_not_latest": "not the tag 'latest'",
    "_increasing_weights": "setWeight values strictly increasing",
    "_some_steps": "at least one step",
    "_kms_arn": "a KMS key or alias ARN: arn:aws:kms:REGION:ACCOUNT:key/ID or ...:alias/NAME",
    "_annotation_key": "a Kubernetes annotation key: an optional DNS subdomain prefix and '/', then a name of at "
    "most 63 characters",
    "_analysis_args_only": "uses no Argo Rollouts argument but {{args.service}} and {{args.namespace}}",
    "_grafana_folder": "one folder name: no '/', '\\', control characters, '.' or '..'",
    # field_validator methods
    "_not_the_default_project": "not 'default' (Argo CD's built-in AppProject)",
    "_unique_environments": "each environment at most once",
    "_hostname": "a fully qualified lowercase host name",
    "_one_application_controller": "replicas exactly 1",
    "_one_replica": "replicas exactly 1",
    "_two_event_sources": "replicas at least 2",
}

# Patterns said in words (the rest are shown as the regular expression).
PATTERN_WORDS: dict[str, str] = {
    **{pattern: message.removeprefix("must be ") for pattern, message in config._PATTERN_MESSAGES.items()},
    config.IMAGE_PATTERN: "a container image pinned by a tag (name:tag) or a digest (name@sha256:DIGEST)",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name: letters, digits and '_', not starting with a digit",
    r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$": "a dotted key path, like image.tag",
    r"^[A-Za-z0-9._/-]+$": "letters, digits, '.', '_', '-' and '/'",
    r"^[a-z0-9]+([._-][a-z0-9]+)*$": "lowercase letters and digits, with '.', '_' or '-' between them",
    r"^([a-z0-9]+([._-][a-z0-9]+)*)?$": "lowercase letters and digits, with '.', '_' or '-' between them, or empty "
    "(no prefix)",
    r"^[a-z0-9][a-z0-9_-]{0,99}$": "a GitHub team slug: lowercase letters, digits, '_' and '-'",
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$": "a GitHub organization name: letters, digits and '-', at most 39",
    r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$": "an EKS cluster name: letters, digits, '_' and '-', at most 100",
    r"^[a-z][a-z0-9-]{0,63}$": "lowercase letters, digits and '-', starting with a letter, at most 64",
    r"^[a-z0-9][a-z0-9.-]*$": "lowercase letters, digits, '.' and '-'",
    r"^[a-z0-9][a-z0-9-]{0,40}$": "lowercase letters, digits and '-', at most 41",
    r"^https?://[^\s]+$": "an http:// or https:// URL",
    r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$": "a registry host (with an optional :port) and path",
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$": "an IAM OIDC provider ARN",
    r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$": "an ACM certificate ARN",
    r"^[~^]?v?[0-9xX*]+(\.[0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?$": "one semver constraint without spaces, like 1.2.x, "
    "~1.2 or ^1.4.0",
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}"
    r"[A-Za-z0-9])?$": "a Kubernetes label key: an optional DNS subdomain prefix and '/', then a name of at most 63",
    r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$": "a Kubernetes label value: at most 63 letters, digits, "
    "'-', '_' and '.', starting and ending with a letter or digit, or empty",
    r"^[0-9a-f]{40}$": "a full git sha",
}


@dataclass(frozen=True)
class Shape:
    """A type in words: what it is, and what it admits."""

    kind: str
    allowed: tuple[str, ...] = ()
    models: tuple[type[BaseModel], ...] = ()  # mappings documented under the key
    choices: tuple[object, ...] = ()
    below: str = ""  # how the keys of those mappings continue the path: "[]" (list items), ".<key>" (map values)


def _constraint_words(meta: object, kind: str) -> list[str]:
    """Words for one piece of Annotated metadata on a value of ``kind`` (recursing into a FieldInfo)."""
    unit = "items" if kind.startswith("list") else "entries" if kind.startswith("mapping") else "characters"
    if isinstance(meta, FieldInfo):
        return [w for m in meta.metadata for w in _constraint_words(m, kind)]
    if isinstance(meta, AfterValidator):
        return [_validator_words(meta.func)]
    pattern = getattr(meta, "pattern", None)
    if isinstance(pattern, str):
        return [PATTERN_WORDS.get(pattern, f"matching the regular expression {pattern}")]
    words: dict[type, Callable[[Any], str]] = {
        annotated_types.Ge: lambda m: f"at least {m.ge}",
        annotated_types.Gt: lambda m: f"more than {m.gt}",
        annotated_types.Le: lambda m: f"at most {m.le}",
        annotated_types.Lt: lambda m: f"less than {m.lt}",
        annotated_types.MinLen: lambda m: f"at least {m.min_length} {unit.removesuffix('s') * (m.min_length == 1)}"
        f"{unit * (m.min_length != 1)}",
        annotated_types.MaxLen: lambda m: f"at most {m.max_length} {unit}",
    }
    for constraint, say in words.items():
        if isinstance(meta, constraint):
            return [say(meta)]
    raise TypeError(f"no words for the constraint {meta!r}")


def _validator_words(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", repr(func))
    if name not in VALIDATOR_WORDS:
        raise KeyError(f"validator {name} has no words in components.settings_reference.VALIDATOR_WORDS")
    return VALIDATOR_WORDS[name]


def _quoted(value: object) -> str:
    return f"`{_flow(value)}`"


def shape(annotation: Any) -> Shape:
    """The type ``annotation`` in words (None in a union is left out: the default says so)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        base = shape(inner)
        extra = tuple(w for m in meta for w in _constraint_words(m, base.kind))
        return Shape(base.kind, base.allowed + extra, base.models, base.choices, base.below)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return shape(options[0])
        shapes = [shape(a) for a in options]
        models = tuple(m for s in shapes for m in s.models)
        if models:
            forms = ", ".join(f"`{_variant_label(m) or m.__name__}`" for m in models)
            return Shape(f"mapping in one of the forms {forms}", models=models)
        return Shape(" or ".join(s.kind for s in shapes))
    if origin is Literal:
        choices = typing.get_args(annotation)
        return Shape("one of " + ", ".join(_quoted(c) for c in choices), choices=choices)
    if origin is list:
        item = shape(typing.get_args(annotation)[0])
        allowed = tuple(f"each item {a}" for a in item.allowed)
        return Shape(f"list of {item.kind}", allowed, item.models, below=f"[]{item.below}")
    if origin is dict:
        key, value = (shape(a) for a in typing.get_args(annotation))
        allowed = tuple(f"each key {a}" for a in key.allowed) + tuple(
            a.replace("each item ", "each value's items ", 1) if a.startswith("each item ") else f"each value {a}"
            for a in value.allowed
        )
        return Shape(f"mapping of {key.kind} to {value.kind}", allowed, value.models, below=f".<key>{value.below}")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Shape("mapping", models=(annotation,))
    kinds = {str: "text", bool: "true or false", int: "whole number", float: "number"}
    if annotation in kinds:
        return Shape(kinds[annotation])
    raise TypeError(f"no words for the type {annotation!r}")


def _field_shape(info: FieldInfo) -> Shape:
    found = shape(info.annotation)
    extra = tuple(w for m in info.metadata for w in _constraint_words(m, found.kind))
    return Shape(found.kind, found.allowed + extra, found.models, found.choices, found.below)


def _decorated_words(model: type[BaseModel], name: str) -> list[str]:
    """Words for the `field_validator`s of ``model`` that check field ``name``."""
    found = []
    for decorator in model.__pydantic_decorators__.field_validators.values():
        if name in decorator.info.fields or "*" in decorator.info.fields:
            found.append(_validator_words(decorator.func))
    return found


def _flow(value: object) -> str:
    """A value as YAML on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


def _plain(value: Any) -> Any:
    return value.model_dump(by_alias=True, mode="json") if isinstance(value, BaseModel) else value


@dataclass(frozen=True)
class Entry:
    """One key of the reference."""

    path: str
    description: str
    kind: str
    default: str
    allowed: tuple[str, ...]
    example: str | None
    see: str | None = None  # the path where a mapping used more than once is described
    nested: bool = False  # the keys of its mapping(s) follow it


# Defaults the models fill in before validation (a `mode="before"` model validator).
FILLED_DEFAULTS: dict[tuple[type[BaseModel], str], str] = {
    (config.Settings, "branch"): "the branch map's, per environment: "
    + ", ".join(f"{env}: `{branch}`" for env, branch in config_keys.BRANCH_MAP.items()),
}


def _default(info: FieldInfo, found: Shape) -> str:
    if info.default_factory is not None:
        return _quoted(info.default_factory())  # type: ignore[call-arg]
    if info.default is PydanticUndefined:
        return "none: required"
    if info.default is None:
        return "not set"
    default = info.default
    if isinstance(default, BaseModel) and found.models and len(found.models) == 1 and \
            default == _defaults_of(type(default)):
        return "the defaults of its keys"
    return _quoted(_plain(default))


def _defaults_of(model: type[BaseModel]) -> BaseModel | None:
    try:
        return model()
    except ValidationError:  # a model with required keys has no all-default instance
        return None


def _example(key: str, info: FieldInfo, found: Shape) -> str | None:
    """`key: value` from the field's examples, else its default, else its first choice."""
    if info.examples:
        value = info.examples[0]
    elif found.choices:
        value = found.choices[-1] if info.default == found.choices[0] else found.choices[0]
    elif found.kind == "true or false":
        value = not info.default if isinstance(info.default, bool) else True
    elif info.default not in (None, PydanticUndefined) and not found.models and info.default not in ({}, [], ""):
        value = _plain(info.default)
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        return None
    return f"`{key}: {_flow(value)}`"


def entries(
    model: type[BaseModel], prefix: str = "", seen: dict[type[BaseModel], str] | None = None
) -> Iterator[Entry]:
    """Every key of ``model``, depth first in the order the model declares them."""
    seen = {} if seen is None else seen
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        found = _field_shape(info)
        allowed = found.allowed + tuple(_decorated_words(model, name))
        nested = [m for m in found.models if m not in seen]
        again = [seen[m] for m in found.models if m in seen]
        yield Entry(
            path=path,
            description=info.description or "",
            kind=found.kind,
            default=FILLED_DEFAULTS.get((model, name)) or _default(info, found),
            allowed=allowed,
            example=_example(key, info, found) if info.examples or not found.models else None,
            see=again[0] if again and not nested else None,
            nested=bool(nested),
        )
        below = f"{path}{found.below}."
        for nested_model in nested:
            seen[nested_model] = path
            variant = _variant_label(nested_model) if len(found.models) > 1 else None
            if variant:
                for e in entries(nested_model, below, seen):
                    yield Entry(f"{e.path} ({variant})", e.description, e.kind, e.default, e.allowed, e.example, e.see,
                                e.nested)
            else:
                yield from entries(nested_model, below, seen)


def _variant_label(model: type[BaseModel]) -> str | None:
    """'mode: irsa' for one member of a tagged union (the field whose type is one Literal)."""
    for name, info in model.model_fields.items():
        if typing.get_origin(info.annotation) is Literal and len(typing.get_args(info.annotation)) == 1:
            return f"{info.alias or name}: {typing.get_args(info.annotation)[0]}"
    return None


def _anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def _section(title: str, intro: str, items: list[Entry], anchor_prefix: str) -> list[str]:
    lines = [f"## {title}", "", intro, ""]
    for entry in items:
        lines += [f'<a id="{_anchor(anchor_prefix + entry.path)}"></a>', f"### `{entry.path}`", ""]
        if entry.description:
            lines += [entry.description, ""]
        kind = entry.kind
        if entry.see:
            kind += f", described under [`{entry.see}`](#{_anchor(anchor_prefix + entry.see)})"
        elif entry.nested:
            kind += ": its keys follow"
        lines.append(f"- Type: {kind}")
        lines.append(f"- Default: {entry.default}")
        if entry.allowed:
            lines.append(f"- Allowed: {'; '.join(entry.allowed)}")
        if entry.example:
            lines.append(f"- Example: {entry.example}")
        lines.append("")
    return lines


def render() -> str:
    """The text of docs/settings.md."""
    lines = [
        "# Settings reference",
        "",
        f"<!-- Generated by `{COMMAND}` from components/config/: edit the models' "
        "Field descriptions there, not this file. -->",
        "",
        "Every key of a stack's settings and of `services.yaml`, generated from the models that "
        f"validate them (`components/config/`); `{COMMAND} --check` (a test) fails when this file "
        "is out of date. Keys are camelCase, as written in YAML; `a[]` is each item of the list `a`, "
        "`a.<key>` each value of the mapping `a`. `python -m components check` validates both files.",
        "",
        "- [Stack settings](#stack-settings): `Pulumi.<env>.yaml`, `config: release-pipeline:settings:`",
        "- [services.yaml](#servicesyaml): each entry of `services:`; "
        "[docs/adding-a-service.md](adding-a-service.md) explains them with worked examples",
        "",
    ]
    lines += _section(
        "Stack settings",
        "The object under `config: release-pipeline:settings:` in `Pulumi.<env>.yaml` "
        "(the key may also be spelled bare, `settings:`). Secrets are not settings: they are the "
        "config secrets " + ", ".join(f"`{k}`" for k in config.SECRET_CONFIG_KEYS) + " (`pulumi config set --secret`).",
        list(entries(config.Settings)),
        "settings.",
    )
    lines += _section(
        "services.yaml",
        "Each entry of the `services:` list.",
        list(entries(config.Service, "services[].")),
        "",
    )
    return "\n".join(lines).rstrip("\n") + "\n"


# --- command -------------------------------------------------------------------


def add_settings_reference(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "settings-reference",
        help="write docs/settings.md, the reference of every settings and services.yaml key, from the models",
        description="Generate the settings reference from components/config/. With --check, write nothing: "
        "exit 1 when the file differs from what the models give.",
    )
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when the file is out of date")
    parser.add_argument("--out", type=Path, metavar="FILE", help="file to write or check (default: docs/settings.md)")
    parser.set_defaults(handler=run_settings_reference)


def run_settings_reference(args: argparse.Namespace, _validator: object = None) -> int:
    from components.cli import PROJECT_DIR

    path: Path = args.out or PROJECT_DIR / REFERENCE_FILE
    text = render()
    if args.check:
        try:
            current = path.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"settings-reference: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        if current == text:
            print(f"{path} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), str(path), "generated", lineterm="")
        print("\n".join(list(diff)[:60]), file=sys.stderr)
        print(f"settings-reference: {path} is out of date; run `{COMMAND}`", file=sys.stderr)
        return 1
    try:
        path.write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        print(f"settings-reference: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
