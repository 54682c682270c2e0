"""The Pulumi side of the pack: each check of `release_policies` as a mandatory resource policy.

Owns: turning what pulumi-policy hands a validation (`ResourceValidationArgs`: inputs
behind a proxy that raises on values unknown during a preview, and the resource
options it can see) into the plain `(type, inputs, options, context)` the checks take,
and the stack `Context` from the config the engine passes the pack (`PULUMI_CONFIG`).
Does not own: the checks and their table (`release_policies/`), starting the analyzer
(`__main__.py`).

Decisions: docs/decisions/0380-policy-checks-are-pure-functions.md,
docs/decisions/0381-unknown-values-are-left-for-up.md,
docs/decisions/0382-retention-judged-on-what-the-engine-shows.md (the options a policy sees).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError
from release_policies import CHECKS, PROJECT, UNKNOWN, Check, Context, context_from_config

PACK_NAME = "release-pipeline"


def plain(value: Any) -> Any:
    """A copy of pulumi-policy's proxied inputs as dicts and lists, unknowns as `UNKNOWN`.

    Read per value, so an unknown one does not stop the rest of the resource being checked
    (docs/decisions/0381-unknown-values-are-left-for-up.md).
    """
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError:
                out[key] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def options_of(args: ResourceValidationArgs) -> dict[str, Any]:
    """The options a check may use; `retain_on_delete` is absent because the engine never sends it."""
    opts = args.opts
    return {
        "protect": bool(getattr(opts, "protect", False)),
        "ignore_changes": list(getattr(opts, "ignore_changes", []) or []),
    }


def stack_context(environ: Mapping[str, str] | None = None) -> Context:
    """The Context of the stack under preview or update, from the config the engine passes."""
    environ = os.environ if environ is None else environ
    try:
        config = json.loads(environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        config = {}
    project = environ.get("PULUMI_PROJECT") or PROJECT
    return context_from_config(config if isinstance(config, dict) else {}, project)


def resource_policy(check: Check, context: Context) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        inputs = plain(args.props)
        for message in check.check(args.resource_type, inputs, options_of(args), context):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=check.name,
        description=check.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def policies(context: Context | None = None) -> list[ResourceValidationPolicy]:
    """Every check of `release_policies.CHECKS`, mandatory, in the order of the table."""
    context = stack_context() if context is None else context
    return [resource_policy(check, context) for check in CHECKS]
