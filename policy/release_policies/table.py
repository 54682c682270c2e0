"""The pack's table: each policy's name, description and check, in the order Pulumi registers them.

Owns: `Check`, `CHECKS` (the policies of the pack, assembled from the topic modules) and
`violations`, every policy's messages for one resource (what the tests run).
Does not own: the checks (the topic modules), the Pulumi wiring (`policy_pack.py`).

Decisions: docs/decisions/0380-policy-checks-are-pure-functions.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from release_policies.access import (
    check_ecr_grants,
    check_gitops_writes_scoped,
    check_least_privilege_iam,
    check_no_anonymous_uis,
    check_no_wildcard_rbac,
    check_scoped_app_projects,
)
from release_policies.context import Context
from release_policies.credentials import (
    check_no_credentials_in_urls,
    check_no_insecure_tls,
    check_webhooks_have_secrets,
)
from release_policies.inputs import Inputs, Options
from release_policies.payload import check_payload_only_through_env
from release_policies.pods import check_no_package_installs, check_restricted_pods
from release_policies.storage import check_ecr_repository, check_retained

CheckFn = Callable[[str, Inputs, Options, Context], list[str]]


@dataclass(frozen=True)
class Check:
    """One policy of the pack: its name, what it enforces, and the function."""

    name: str
    description: str
    check: CheckFn


CHECKS: tuple[Check, ...] = (
    Check(
        "restricted-pods",
        "No privileged or docker-in-docker pod, hostPath, host namespace or port; pods stay `restricted`, "
        "except seccomp/AppArmor Unconfined and allowPrivilegeEscalation on the build WorkflowTemplate's "
        "BuildKit container in the build namespace.",
        check_restricted_pods,
    ),
    Check(
        "no-runtime-package-installs",
        "No apk/apt-get/yum/pip/npm installs or `curl | sh` in a step's command, args or script: images are "
        "prebuilt.",
        check_no_package_installs,
    ),
    Check(
        "no-credentials-in-urls",
        "No credential in a URL (user:token@, x-access-token:, oauth2:, ?token=) in any input.",
        check_no_credentials_in_urls,
    ),
    Check(
        "no-insecure-tls",
        "No insecure, insecureSsl or insecureSkipVerify set to true.",
        check_no_insecure_tls,
    ),
    Check(
        "webhooks-have-secrets",
        "Every GitHub webhook has a secret and an https URL; every webhook EventSource event verifies its "
        "secret, is not insecure and holds no GitHub API token.",
        check_webhooks_have_secrets,
    ),
    Check(
        "ecr-immutable-scanned-encrypted",
        "ECR repositories: immutable tags (only the cache tag excluded), scan on push, encryption configured.",
        check_ecr_repository,
    ),
    Check(
        "ecr-grants-name-principals",
        "ECR repository and registry policies: every Allow names its principals (no `*`, no NotPrincipal) "
        "and its actions (no wildcard).",
        check_ecr_grants,
    ),
    Check(
        "retained-on-delete",
        "ECR repositories, Argo CRDs and Rollouts are never `protect`ed (destroy must succeed) and ECR "
        "repositories never force-deleted; retain_on_delete where the engine shows it.",
        check_retained,
    ),
    Check(
        "no-wildcard-rbac",
        "No `*` in a Role's or ClusterRole's verbs, resources, apiGroups or nonResourceURLs.",
        check_no_wildcard_rbac,
    ),
    Check(
        "least-privilege-iam",
        "IAM policies: no wildcard actions, Resource `*` only for ecr:GetAuthorizationToken.",
        check_least_privilege_iam,
    ),
    Check(
        "scoped-app-projects",
        "Argo CD AppProjects: no `*` in sourceRepos, sourceNamespaces or destinations; no "
        "clusterResourceWhitelist.",
        check_scoped_app_projects,
    ),
    Check(
        "no-anonymous-uis",
        "Argo CD without anonymous access and with the admin user disabled; Argo Workflows without the "
        "`server` auth mode; the Rollouts dashboard not exposed.",
        check_no_anonymous_uis,
    ),
    Check(
        "payload-only-through-env",
        "Payload parameters (pr-title, author, pr-number, repository, trigger) reach steps only as "
        "env[].value, never by {{...}} in a script, command, args or expression; the Sensor sends pr-title, "
        "author and repository base64-encoded, only ever the whole value of a *_B64 variable; a plain "
        "argument is filtered to a shape; Secrets come after every substituted env value.",
        check_payload_only_through_env,
    ),
    Check(
        "gitops-writes-scoped",
        "No write deploy key on any repository; a branch ruleset lets at most one GitHub App bypass it, "
        "on exactly one refs/heads/<branch>, enforced.",
        check_gitops_writes_scoped,
    ),
)


def violations(
    resource_type: str, inputs: Inputs, options: Options | None = None, context: Context | None = None
) -> dict[str, list[str]]:
    """Every policy's violations for one resource: {policy name: messages}, only the non-empty ones."""
    result = {}
    for check in CHECKS:
        messages = check.check(resource_type, inputs, options or {}, context or Context())
        if messages:
            result[check.name] = messages
    return result
