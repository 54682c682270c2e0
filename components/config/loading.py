"""Reading the configuration: services.yaml and `Pulumi.<stack>.yaml` from files
(strict YAML with line numbers, UTF-8), and the settings as Pulumi hands them to the
program; every problem found at once, as a `ConfigError`.

Owns: the project's config keys (`PROJECT`, `SETTINGS_KEY`, the secret keys, the
render's `servicesFile`), the project name `Pulumi.yaml` must have, the keys a stack
file must not hold (a secret in plain text, an unknown key), duplicate service names
reported at the duplicate's line, and the branch map applied to loaded settings.
Does not own: the models (`components.config.services`, `components.config.settings`),
the rules across stacks (`components.config.rules`), nor YAML parsing itself
(`components.yamlsafe`). Decisions: docs/decisions/0200-branch-map-and-known-keys.md.

Secret values never enter the models: the program reads them with
`pulumi.Config.require_secret` so they stay `Output`s marked secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from components import config_keys
from components.config.fields import _shown
from components.config.messages import Describe, _problems_from
from components.config.services import NAMES_CHECKED, ServicesFile
from components.config.settings import Settings
from components.errors import ConfigError, Problem
from components.yamlsafe import Loaded, decode_utf8, load_yaml, load_yaml_file

PROJECT = "release-pipeline"
SETTINGS_KEY = config_keys.SETTINGS
SERVICES_FILE_KEY = "servicesFile"

# Config keys (namespace `release-pipeline`) read with `require_secret`: githubToken
# (GitHub provider: webhooks, deploy keys, rulesets on the repos), helmWriterPrivateKey
# (this environment's GitHub App key, helm repo writes), slackToken (Slack bot token,
# chat:write, for Argo CD / Rollouts / workflow notices), ssoClientSecret (GitHub OAuth
# App client secret for Dex). The offline render substitutes a placeholder for each,
# since `secure:` values cannot be decrypted without the stack's secrets provider. Any
# other key of the project in a stack file is refused (components.config_keys).
SECRET_CONFIG_KEYS: tuple[str, ...] = config_keys.SECRETS


def _describe_service_loc(
    data: object,
) -> Describe:
    services = data.get("services") if isinstance(data, dict) else None

    def describe(loc: tuple[str | int, ...]) -> tuple[str, str]:
        if len(loc) >= 2 and loc[0] == "services" and isinstance(loc[1], int):
            index = loc[1]
            name = None
            if isinstance(services, list) and index < len(services):
                entry = services[index]
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    name = entry["name"]
            where = f"service {_shown(name)}" if name else f"service #{index + 1}"
            return where, ".".join(str(p) for p in loc[2:])
        return "services file", ".".join(str(p) for p in loc)

    return describe


def parse_services(text: str, file: str) -> ServicesFile:
    """Parse and validate services.yaml text; raise ConfigError with every problem."""
    loaded, problems = load_yaml(text, file)
    if loaded is None:
        raise ConfigError([_name_service(p) for p in problems])
    data = loaded.data
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "services file", "",
                                   "must be a mapping with a 'services' list")])
    duplicates = _duplicate_names(data, file, loaded)
    try:
        services = ServicesFile.model_validate(data, context={NAMES_CHECKED: True})
    except ValidationError as err:
        found = _problems_from(err, file, loaded, (), _describe_service_loc(data), ServicesFile)
        raise ConfigError(duplicates + found) from None
    if duplicates:
        raise ConfigError(duplicates)
    return services


def _duplicate_names(data: dict[str, object], file: str, loaded: Loaded) -> list[Problem]:
    """A problem at each later entry that repeats an earlier service's name."""
    entries = data.get("services")
    first_line: dict[str, int | None] = {}
    problems = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        line = loaded.line_of(("services", index, "name"))
        if name not in first_line:
            first_line[name] = line
            continue
        earlier = f"the service on line {first_line[name]}" if first_line[name] else "an earlier service"
        problems.append(Problem(
            file, line, f"service {_shown(name)}", "name",
            f"{name!r} is already the name of {earlier}; a name is the service's own (it names its Sensor, "
            "WorkflowTemplates, Rollout and Applications): rename this one",
        ))
    return problems


def _name_service(problem: Problem) -> Problem:
    """'services.1' (a YAML path) -> 'service #2', as validation errors say it."""
    match = re.fullmatch(r"services\.(\d+)(?:\.(.*))?", problem.where)
    if not match:
        return problem
    field = ".".join(p for p in (match.group(2), problem.field) if p)
    return Problem(problem.file, problem.line, f"service #{int(match.group(1)) + 1}", field,
                   problem.message)


def load_services(path: Path) -> ServicesFile:
    """Read and validate a services file."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([Problem(str(path), None, "services file", "",
                                   f"cannot read: {err.strerror}")]) from None
    text, problems = decode_utf8(raw, str(path))
    if text is None:
        raise ConfigError(problems)
    return parse_services(text, str(path))


def _settings_describe(loc: tuple[str | int, ...]) -> tuple[str, str]:
    return "settings", ".".join(str(p) for p in loc)


def parse_settings(data: object, file: str, loaded: Loaded | None = None,
                   base: tuple[str | int, ...] = ()) -> Settings:
    """Validate a settings object (from a stack file or from Pulumi config)."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_problems_from(err, file, loaded, base, _settings_describe, Settings)) from None
    return settings


def _on_the_branch_map(settings: Settings, file: str, loaded: Loaded | None = None,
                       base: tuple[str | int, ...] = ()) -> Settings:
    """``settings`` when its branch is the branch map's or departs from it deliberately."""
    departure = config_keys.departure_problem(settings.environment, settings.branch, settings.branch_departure)
    if departure:
        field, message = departure
        line = (loaded.line_of((*base, field)) or loaded.line_of(base)) if loaded else None
        raise ConfigError([Problem(file, line, "settings", field, message)])
    return settings


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def project_name(project_dir: Path) -> str:
    """The project's name from `Pulumi.yaml`, which must be `PROJECT`.

    The program reads its config as `release-pipeline:<key>` (`pulumi.Config(PROJECT)`
    in __main__.py, and the policy pack likewise), while `pulumi config set` and a bare
    key in a stack file use the project's name: any other name would leave the program
    without its settings and secrets. Without a `Pulumi.yaml` (a copy of the stack files
    alone) the name is taken to be `PROJECT`.
    """
    path = project_dir / "Pulumi.yaml"
    if not path.exists():
        return PROJECT
    loaded, problems = load_yaml_file(path)
    if loaded is None:
        raise ConfigError(problems)
    name = loaded.data.get("name") if isinstance(loaded.data, dict) else None
    if name != PROJECT:
        shown = "missing" if name is None else f"is {_shown(name)}"
        raise ConfigError([Problem(
            str(path), loaded.line_of(("name",)) or 1, "project", "name",
            f"{shown}; must be {PROJECT!r}: the program reads its config as '{PROJECT}:<key>' "
            "(settings, githubToken, ...), and Pulumi files a stack's config under the project's name",
        )])
    return name


def _encrypted(value: object) -> bool:
    """A config value as `pulumi config set --secret` writes it: `{secure: <ciphertext>}`."""
    return isinstance(value, dict) and set(value) == {"secure"}


def _misplaced_config(path: Path, loaded: Loaded, config: Mapping[str, object], project: str) -> list[Problem]:
    """Keys that must not be in a stack file: a config secret in plain text, and the
    render's services-file key."""
    misplaced = [
        Problem(str(path), loaded.line_of(("config", spelled)), "secrets", spelled,
                f"is in plain text in the stack file; remove it and run `pulumi config set --secret {name}`, "
                "which stores it encrypted as `secure:`")
        for name in SECRET_CONFIG_KEYS
        for spelled in (f"{project}:{name}", name)
        if spelled in config and not _encrypted(config[spelled])
    ]
    # The render hands `--services` to the program through this key; in a stack file it
    # would point `pulumi up` at another file than the one `check` validates.
    services_keys = (f"{project}:{SERVICES_FILE_KEY}", SERVICES_FILE_KEY)
    misplaced += [
        Problem(str(path), loaded.line_of(("config", spelled)), "settings", spelled,
                "is not a stack setting: every stack reads services.yaml (the offline render's "
                "--services sets it for a render only)")
        for spelled in services_keys
        if spelled in config
    ]
    # Any other key of the project is one the program would never read: a typo, most likely.
    misplaced += config_keys.unknown_key_problems(
        str(path), config, project, lambda spelled: loaded.line_of(("config", spelled)), refused=services_keys,
    )
    return misplaced


def own_stack_file_problems(project_dir: Path, stack: str) -> list[Problem]:
    """What `pulumi up` of `stack` refuses in its own stack file, beyond the settings
    Pulumi hands it: the keys `_misplaced_config` names. A missing or unparsable file
    is left to Pulumi, which reads it first."""
    path = stack_file(project_dir, stack)
    if not path.is_file():
        return []
    loaded, _ = load_yaml_file(path)
    config = loaded.data.get("config") if loaded is not None and isinstance(loaded.data, dict) else None
    if loaded is None or not isinstance(config, dict):
        return []
    return _misplaced_config(path, loaded, config, PROJECT)


def load_stack_settings(project_dir: Path, stack: str) -> Settings:
    """Read `Pulumi.<stack>.yaml` and validate its settings object.

    As Pulumi does, the key `settings` without a namespace is the project's
    (`<project>:settings`); the file may spell it one way, not both.
    """
    project = project_name(project_dir)
    path = stack_file(project_dir, stack)
    loaded, problems = load_yaml_file(path)
    if loaded is None:
        raise ConfigError(problems)
    config = loaded.data.get("config") if isinstance(loaded.data, dict) else None
    key = f"{project}:{SETTINGS_KEY}"
    present = [k for k in (key, SETTINGS_KEY) if isinstance(config, dict) and k in config]
    if not isinstance(config, dict) or not present:
        raise ConfigError([Problem(str(path), None, "settings", "",
                                   f"missing 'config: {key}:'")])
    if len(present) > 1:
        raise ConfigError([Problem(
            str(path), loaded.line_of(("config", SETTINGS_KEY)), "settings", "",
            f"set twice, as '{key}' and as '{SETTINGS_KEY}' (Pulumi reads both as '{key}'); keep one",
        )])
    misplaced = _misplaced_config(path, loaded, config, project)
    if misplaced:
        raise ConfigError(misplaced)
    key = present[0]
    settings = parse_settings(config[key], str(path), loaded, ("config", key))
    if settings.environment != stack:
        raise ConfigError([Problem(str(path), loaded.line_of(("config", key, "environment")),
                                   "settings", "environment",
                                   f"is {settings.environment!r} in the file of stack {stack!r}")])
    return _on_the_branch_map(settings, str(path), loaded, ("config", key))


def settings_from_pulumi_config(raw: str | Mapping[str, object], stack: str) -> Settings:
    """Validate the settings object as Pulumi hands it to the program (JSON)."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    return _on_the_branch_map(parse_settings(data, f"Pulumi.{stack}.yaml"), f"Pulumi.{stack}.yaml")
