"""The policy pack's table (`policy/release_policies/table.py`) and the real stacks.

- the pack has every policy, in order; a compliant resource of each kind passes every
  policy, and every policy has a case it reports (each topic's table, found through
  `violations()`, so dropping a check from the pack's table fails);
- values unknown during a preview are left for `pulumi up`;
- every resource of every rendered stack passes every policy, options included.

Each topic's policies: tests/test_policy_pods.py, _credentials, _storage, _access,
_payload; the stack context: tests/test_policy_context.py; the Pulumi wiring:
tests/test_policy_pack.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.config import STACKS
from tests.policy_support import (
    APP_PROJECT,
    BK,
    CONFIG_FILE,
    CTX,
    DEPLOY_KEY,
    DEPLOYMENT,
    ECR,
    ECR_REGISTRY_POLICY,
    ECR_REPOSITORY_POLICY,
    EVENT_SOURCE,
    GOOD_RULE,
    LOGIN,
    PUSH,
    RELEASE,
    ROLE,
    ROLE_POLICY,
    ROLLOUT,
    RULESET,
    SECRET,
    SENSOR,
    WEBHOOK,
    WORKFLOW_TEMPLATE,
    _with,
    app_project,
    argo_cd,
    argo_workflows,
    build_template,
    deployment,
    ecr_grant,
    ecr_repository,
    event_source,
    iam_policy,
    pod_spec,
    policy_messages,
    pulumi_config,
    release_template,
    role,
    rp,
    ruleset,
    sensor,
    webhook,
)
from tests.test_policy_access import BAD as ACCESS_BAD
from tests.test_policy_credentials import BAD as CREDENTIALS_BAD
from tests.test_policy_payload import BAD as PAYLOAD_BAD
from tests.test_policy_pods import BAD as PODS_BAD
from tests.test_policy_storage import BAD as STORAGE_BAD

BAD = [*PODS_BAD, *CREDENTIALS_BAD, *STORAGE_BAD, *ACCESS_BAD, *PAYLOAD_BAD]


def test_the_pack_has_every_policy() -> None:
    assert [c.name for c in rp.CHECKS] == [
        "restricted-pods",
        "no-runtime-package-installs",
        "no-credentials-in-urls",
        "no-insecure-tls",
        "webhooks-have-secrets",
        "ecr-immutable-scanned-encrypted",
        "ecr-grants-name-principals",
        "retained-on-delete",
        "no-wildcard-rbac",
        "least-privilege-iam",
        "scoped-app-projects",
        "no-anonymous-uis",
        "payload-only-through-env",
        "gitops-writes-scoped",
    ]


GOOD: list[tuple[str, str, Any, dict]] = [
    ("build-template", WORKFLOW_TEMPLATE, build_template(), {}),
    ("release-template", WORKFLOW_TEMPLATE, release_template(), {}),
    ("deployment", DEPLOYMENT, deployment(pod_spec(volumes=[{"name": "c", "configMap": {"name": "c"}}])), {}),
    ("ecr", ECR, ecr_repository(), {"protect": False, "retain_on_delete": True}),
    ("ecr-immutable", ECR, ecr_repository(imageTagMutability="IMMUTABLE", imageTagMutabilityExclusionFilters=[]),
     {"protect": False}),
    ("crd-file", CONFIG_FILE, {"file": "https://raw.githubusercontent.com/x/y/v1/manifests/crds/a-crd.yaml"},
     {"protect": False, "retain_on_delete": True}),
    ("rollout", ROLLOUT, {"spec": {"workloadRef": {"kind": "Deployment", "name": "app"}}},
     {"protect": False, "retain_on_delete": True}),
    ("event-source", EVENT_SOURCE, event_source(), {}),
    ("webhook", WEBHOOK, webhook(), {}),
    ("webhook-secret-unknown", WEBHOOK, webhook(secret=rp.UNKNOWN), {}),
    ("role", ROLE, role([GOOD_RULE]), {}),
    ("iam", ROLE_POLICY, iam_policy(LOGIN, PUSH), {}),
    ("ecr-grant", ECR_REPOSITORY_POLICY, ecr_grant(), {}),
    ("ecr-grant-two-accounts", ECR_REPOSITORY_POLICY,
     ecr_grant({"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]}), {}),
    ("ecr-registry-grant", ECR_REGISTRY_POLICY, ecr_grant(), {}),
    ("ecr-grant-unknown", ECR_REPOSITORY_POLICY, {"policy": rp.UNKNOWN, "repository": "integration/app"}, {}),
    ("app-project", APP_PROJECT, app_project(), {}),
    ("argo-cd", RELEASE, argo_cd(), {}),
    ("argo-workflows", RELEASE, argo_workflows(), {}),
    ("argo-rollouts", RELEASE, {"chart": "argo-rollouts", "values": {"dashboard": {
        "enabled": True, "readonly": True, "ingress": {"enabled": False}, "service": {"type": "ClusterIP"}}}}, {}),
    ("deploy-key", DEPLOY_KEY, {"key": "ssh-ed25519 AAAA", "readOnly": True, "repository": "repo"}, {}),
    ("ruleset", RULESET, ruleset(), {}),
    ("sensor", SENSOR, sensor(), {}),
    ("secret-with-ssh-url", SECRET, {"stringData": {"url": "git@github.com:Org/helm.git", "type": "git"}}, {}),
]


@pytest.mark.parametrize(("resource_type", "inputs", "options"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_compliant_resources_pass_every_policy(resource_type: str, inputs: Any, options: dict) -> None:
    assert rp.violations(resource_type, inputs, options, CTX) == {}


def test_every_policy_has_a_bad_case() -> None:
    assert {b[1] for b in BAD} == {c.name for c in rp.CHECKS}


def test_unknown_values_are_left_for_up() -> None:
    # During a preview the namespace may be an Output not known yet: nothing is
    # reported then; `pulumi up` runs the policy again on the known value.
    unknown_namespace = _with(build_template(namespace="argo"), "metadata.namespace", rp.UNKNOWN)
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, unknown_namespace) == []
    assert policy_messages("webhooks-have-secrets", WEBHOOK, webhook(secret=rp.UNKNOWN)) == []
    # Unknowns elsewhere do not hide what is known.
    still_bad = _with(unknown_namespace, f"{BK}.securityContext.privileged", True)
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, still_bad)


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_resource_passes_every_policy(render_stack: Any, stack: str) -> None:
    resources, _ = render_stack(stack)
    context = rp.context_from_config(pulumi_config(stack))
    found = {
        f"{r['type']} {r['name']}": v
        for r in resources
        if (v := rp.violations(r["type"], r["inputs"], r["options"], context))
    }
    assert found == {}
    # Not vacuous: the data-holding kinds are there with their options.
    retained = [r for r in resources if rp._is_retained_kind(r["type"], r["inputs"])]
    assert {r["type"] for r in retained} >= {ECR, CONFIG_FILE}
    assert all(r["options"]["retain_on_delete"] for r in retained)
