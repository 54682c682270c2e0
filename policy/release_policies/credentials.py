"""Credentials and transport: `no-credentials-in-urls`, `no-insecure-tls`, `webhooks-have-secrets`.

Owns: the checks that no input of any resource holds a credential in a URL or turns TLS
verification off, that every GitHub webhook has a secret and an https URL, and that every
webhook EventSource event verifies its secret, is not insecure and holds no GitHub token.
Does not own: the walkers (`inputs`).

Decisions: docs/decisions/0380-policy-checks-are-pure-functions.md (messages never
repeat a credential).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from release_policies.context import Context
from release_policies.inputs import (
    UNKNOWN,
    Inputs,
    Options,
    get_in,
    is_argo,
    is_workload_data,
    join_path,
    string_leaves,
    truthy,
    walk,
)

# ------------------------------------------------------- credentials and TLS


URL_CREDENTIALS = [
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@:]*:[^/\s@]*@", re.IGNORECASE), "user:password@ in a URL"),
    (re.compile(r"x-access-token:", re.IGNORECASE), "an x-access-token: credential"),
    (re.compile(r"\boauth2:[^\s/]", re.IGNORECASE), "an oauth2: credential"),
    (
        re.compile(
            r"[?&](access_token|token|private_token|api_key|apikey|password|passwd|client_secret|secret)=[^&\s]",
            re.IGNORECASE,
        ),
        "a credential in a query string",
    ),
]
INSECURE_KEYS = frozenset(
    {"insecure", "insecureSsl", "insecure_ssl", "insecureSkipVerify", "insecureSkipTlsVerify", "insecure_skip_verify"}
)


def check_no_credentials_in_urls(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No credential in a URL or a URL-like string, in any input of any resource."""
    if not is_workload_data(resource_type):
        return []
    found = []
    for where, text in string_leaves(inputs):
        for pattern, what in URL_CREDENTIALS:
            if pattern.search(text):
                # Never repeat the value: it holds the credential.
                found.append(f"{where}: contains {what}: pass credentials in a Secret or header, never in a URL")
                break
    return found


def check_no_insecure_tls(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No `insecure`, `insecureSsl` or `insecureSkipVerify` set to true, in any resource."""
    if not is_workload_data(resource_type):
        return []
    found = []
    for path, value in walk(inputs):
        if not isinstance(value, Mapping):
            continue
        for key, item in value.items():
            if str(key).rsplit(".", 1)[-1] in INSECURE_KEYS and truthy(item):
                found.append(f"{join_path(path, str(key))}: TLS verification may not be turned off (must be false)")
    return found


# ------------------------------------------------------------------ webhooks


GITHUB_WEBHOOK_TYPES = frozenset(
    {"github:index/repositoryWebhook:RepositoryWebhook", "github:index/organizationWebhook:OrganizationWebhook"}
)
# EventSource event types that receive webhooks, and the field holding their secret.
EVENT_SOURCE_SECRET_FIELDS = {
    "github": "webhookSecret",
    "gitlab": "secretToken",
    "bitbucketserver": "webhookSecret",
    "webhook": "authSecret",
}


def _present(value: Any) -> bool:
    return value is UNKNOWN or (value is not None and value != "" and value != {})


def check_webhooks_have_secrets(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """Every GitHub webhook has a secret and TLS; every webhook EventSource event verifies it."""
    found = []
    if resource_type in GITHUB_WEBHOOK_TYPES:
        configuration = inputs.get("configuration")
        if configuration is UNKNOWN:
            return []
        if not isinstance(configuration, Mapping) or not _present(configuration.get("secret")):
            found.append("configuration.secret: missing: every webhook is HMAC-signed with its own secret")
        url = get_in(configuration, "url")
        if isinstance(url, str) and not url.lower().startswith("https://"):
            found.append("configuration.url: must be https:// (the EventSource is behind TLS)")
        return found
    if not is_argo(resource_type, frozenset({"EventSource"})):
        return []
    spec = inputs.get("spec")
    if not isinstance(spec, Mapping):
        return []
    for source, secret_field in sorted(EVENT_SOURCE_SECRET_FIELDS.items()):
        events = spec.get(source)
        if not isinstance(events, Mapping):
            continue
        for name, event in events.items():
            where = join_path(join_path("spec", source), str(name))
            if not isinstance(event, Mapping):
                continue
            if not _present(event.get(secret_field)):
                found.append(f"{where}.{secret_field}: missing: the EventSource must verify every delivery")
            if truthy(event.get("insecure")):
                found.append(f"{where}.insecure: must not be true in any environment")
            if source == "github" and _present(event.get("apiToken")):
                found.append(
                    f"{where}.apiToken: not allowed: Pulumi owns the webhooks, the EventSource holds no GitHub token"
                )
    return found
