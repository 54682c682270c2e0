"""Credentials and transport (`policy/release_policies/credentials.py`).

`no-credentials-in-urls`, `no-insecure-tls` and `webhooks-have-secrets` report the
violations they exist for; a message never repeats the credential it found.
"""

from __future__ import annotations

from typing import Any

from tests.policy_support import (
    CTX,
    EVENT_SOURCE,
    RELEASE,
    SECRET,
    TOOL,
    WEBHOOK,
    WORKFLOW_TEMPLATE,
    BadCase,
    _with,
    argo_cd,
    argo_workflows,
    assert_reports,
    bad_cases,
    build_template,
    event_source,
    policy_messages,
    rp,
    webhook,
)

BAD: list[BadCase] = [
    # no-credentials-in-urls
    ("user-token-url", "no-credentials-in-urls", SECRET,
     {"stringData": {"url": "https://bot:ghp_abcdef123456@github.com/Org/helm.git"}}, "user:password@", {}, CTX),
    ("x-access-token", "no-credentials-in-urls", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.env", [{"name": "GIT_AUTH", "value": "basic x-access-token:abc"}]),
     "x-access-token", {}, CTX),
    ("token-query", "no-credentials-in-urls", WEBHOOK,
     webhook(url="https://events.dev.example.com/github/x?token=abc123"), "query string", {}, CTX),
    ("oauth2-credential", "no-credentials-in-urls", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.args", ["git", "clone", "oauth2:glpat-x@gitlab.example.com/o/r.git"]),
     "oauth2:", {}, CTX),
    # no-insecure-tls
    ("webhook-insecure-ssl", "no-insecure-tls", WEBHOOK, webhook(insecureSsl=True),
     "configuration.insecureSsl", {}, CTX),
    ("event-source-insecure", "no-insecure-tls", EVENT_SOURCE, event_source(insecure=True), "insecure", {}, CTX),
    ("sso-skip-verify", "no-insecure-tls", RELEASE,
     argo_workflows(sso={"enabled": True, "insecureSkipVerify": True}), "insecureSkipVerify", {}, CTX),
    ("argocd-server-insecure", "no-insecure-tls", RELEASE,
     argo_cd(params={"server.insecure": "true"}), "server.insecure", {}, CTX),
    # webhooks-have-secrets
    ("webhook-without-secret", "webhooks-have-secrets", WEBHOOK, webhook(secret=None), "configuration.secret",
     {}, CTX),
    ("webhook-empty-secret", "webhooks-have-secrets", WEBHOOK, webhook(secret=""), "configuration.secret", {}, CTX),
    ("webhook-plain-http", "webhooks-have-secrets", WEBHOOK, webhook(url="http://events.example.com/x"),
     "https://", {}, CTX),
    ("event-without-secret", "webhooks-have-secrets", EVENT_SOURCE, event_source(webhookSecret=None),
     "spec.github.appen-repo.webhookSecret", {}, CTX),
    ("event-insecure", "webhooks-have-secrets", EVENT_SOURCE, event_source(insecure=True),
     "spec.github.appen-repo.insecure", {}, CTX),
    ("event-api-token", "webhooks-have-secrets", EVENT_SOURCE,
     event_source(apiToken={"name": "github-token", "key": "token"}), "apiToken", {}, CTX),
    ("generic-webhook-without-auth", "webhooks-have-secrets", EVENT_SOURCE,
     {"spec": {"webhook": {"hook": {"endpoint": "/x", "port": "12000", "method": "POST"}}}},
     "spec.webhook.hook.authSecret", {}, CTX),
]


@bad_cases(BAD)
def test_each_policy_reports_its_violation(
    policy: str, resource_type: str, inputs: Any, fragment: str, options: dict, context: rp.Context
) -> None:
    assert_reports(policy, resource_type, inputs, fragment, options, context)


def test_messages_never_repeat_a_credential() -> None:
    token = "ghp_0123456789abcdefSECRET"
    messages = policy_messages(
        "no-credentials-in-urls", SECRET, {"stringData": {"url": f"https://bot:{token}@github.com/o/r"}}
    )
    assert messages and all(token not in m and "bot:" not in m for m in messages)
