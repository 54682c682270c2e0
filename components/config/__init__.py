"""Configuration: the services file and each stack's settings, as typed models.

Owns: the pydantic models of `services.yaml` and of the `release-pipeline:settings`
object in `Pulumi.<env>.yaml`; loading them from files (strict YAML, line numbers) or
from Pulumi config; every validation rule, including the ones that span several stacks
(no two stacks on one cluster); and the list of secret config keys the program reads.

Does not own: secrets. Secret values never enter these models: the program reads them
with `pulumi.Config.require_secret` so they stay `Output`s marked secret. Nor the names
of the config keys and the branch map (`components.config_keys`).

Field names are camelCase in YAML (as in Kubernetes and Pulumi config) and snake_case
in Python. The modules, lowest first: `fields` (value types), `messages` (refusals in
the file's terms), `service_options` and `services` (services.yaml), `settings_aws`,
`settings_access`, `settings_platform`, `settings_release` and `settings` (a stack's
settings), `loading` (files and Pulumi config), `rules` (across files). This package
re-exports what the rest of the program and the tests import from `components.config`.

Decisions: docs/decisions/0300-config-package-seams.md,
docs/decisions/0231-settings-reference-generated-from-the-models.md.
"""

from __future__ import annotations

from components.config.fields import (
    DURATION_PATTERN,
    IMAGE_PATTERN,
    KUBERNETES_NAMESPACES,
    STACKS,
    CanaryStep,
    _dns_label,
)
from components.config.loading import (
    PROJECT,
    SECRET_CONFIG_KEYS,
    SERVICES_FILE_KEY,
    SETTINGS_KEY,
    load_services,
    load_stack_settings,
    own_stack_file_problems,
    parse_services,
    parse_settings,
    project_name,
    settings_from_pulumi_config,
    stack_file,
)
from components.config.messages import _PATTERN_MESSAGES
from components.config.rules import service_problems, sibling_settings, sibling_stack_problems, validate_all
from components.config.service_options import SHA_TAG_REGEXP, SemverTagPolicy, ShaTagPolicy
from components.config.services import Service, ServicesFile
from components.config.settings import Settings
from components.config.settings_access import HelmWriterSettings, IngressSettings, RbacSettings
from components.config.settings_aws import AwsSettings, EcrSettings, Irsa, PodIdentity
from components.config.settings_platform import EventBusSettings, Namespaces, Resources, Size, quantity_value
from components.config.settings_release import ANALYSIS_ARGS, GrafanaDashboard, MetricsSettings, ReleaseSettings
from components.errors import ConfigError

# Private names (`_dns_label`, `_PATTERN_MESSAGES`): components.settings_reference and
# its test read them to say the rules in words.
__all__ = [
    "ANALYSIS_ARGS",
    "DURATION_PATTERN",
    "IMAGE_PATTERN",
    "KUBERNETES_NAMESPACES",
    "PROJECT",
    "SECRET_CONFIG_KEYS",
    "SERVICES_FILE_KEY",
    "SETTINGS_KEY",
    "SHA_TAG_REGEXP",
    "STACKS",
    "_PATTERN_MESSAGES",
    "AwsSettings",
    "CanaryStep",
    "ConfigError",
    "EcrSettings",
    "EventBusSettings",
    "GrafanaDashboard",
    "HelmWriterSettings",
    "IngressSettings",
    "Irsa",
    "MetricsSettings",
    "Namespaces",
    "PodIdentity",
    "RbacSettings",
    "ReleaseSettings",
    "Resources",
    "SemverTagPolicy",
    "Service",
    "ServicesFile",
    "Settings",
    "ShaTagPolicy",
    "Size",
    "_dns_label",
    "load_services",
    "load_stack_settings",
    "own_stack_file_problems",
    "parse_services",
    "parse_settings",
    "project_name",
    "quantity_value",
    "service_problems",
    "settings_from_pulumi_config",
    "sibling_settings",
    "sibling_stack_problems",
    "stack_file",
    "validate_all",
]
