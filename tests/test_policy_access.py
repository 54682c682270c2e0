"""Who may do what (`policy/release_policies/access.py`).

`no-wildcard-rbac`, `least-privilege-iam`, `ecr-grants-name-principals`,
`scoped-app-projects`, `no-anonymous-uis` and `gitops-writes-scoped` report the
violations they exist for.
"""

from __future__ import annotations

import json
from typing import Any

from tests.policy_support import (
    APP_PROJECT,
    CLUSTER_ROLE,
    CTX,
    DEPLOY_KEY,
    ECR_REGISTRY_POLICY,
    ECR_REPOSITORY_POLICY,
    GOOD_RULE,
    LOGIN,
    PUSH,
    RELEASE,
    ROLE,
    ROLE_POLICY,
    RULESET,
    BadCase,
    app_project,
    argo_cd,
    argo_workflows,
    assert_reports,
    bad_cases,
    ecr_grant,
    iam_policy,
    role,
    rp,
    ruleset,
)

BAD: list[BadCase] = [
    # no-wildcard-rbac
    ("rbac-star-verbs", "no-wildcard-rbac", ROLE, role([{**GOOD_RULE, "verbs": ["*"]}]), "rules[0].verbs", {}, CTX),
    ("rbac-star-resources", "no-wildcard-rbac", ROLE, role([GOOD_RULE, {**GOOD_RULE, "resources": ["pods/*"]}]),
     "rules[1].resources", {}, CTX),
    ("rbac-star-groups", "no-wildcard-rbac", CLUSTER_ROLE, role([{**GOOD_RULE, "apiGroups": ["*"]}]),
     "rules[0].apiGroups", {}, CTX),
    ("rbac-star-urls", "no-wildcard-rbac", CLUSTER_ROLE, role([{"nonResourceURLs": ["*"], "verbs": ["get"]}]),
     "nonResourceURLs", {}, CTX),
    # least-privilege-iam
    ("iam-action-wildcard", "least-privilege-iam", ROLE_POLICY,
     iam_policy(LOGIN, {**PUSH, "Action": ["ecr:*"]}), "Statement[1].Action", {}, CTX),
    ("iam-push-anywhere", "least-privilege-iam", ROLE_POLICY,
     iam_policy({**PUSH, "Resource": "*"}), "Statement[0].Resource", {}, CTX),
    ("iam-not-action", "least-privilege-iam", ROLE_POLICY,
     iam_policy({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": ["arn:x"]}), "NotAction", {}, CTX),
    # ecr-grants-name-principals
    ("ecr-grant-anyone", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY, ecr_grant("*"),
     "Statement[0].Principal", {}, CTX),
    ("ecr-grant-any-aws", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY, ecr_grant({"AWS": "*"}),
     "Statement[0].Principal", {}, CTX),
    ("ecr-grant-star-in-list", "ecr-grants-name-principals", ECR_REGISTRY_POLICY,
     ecr_grant({"AWS": ["arn:aws:iam::222222222222:root", "*"]}), "Statement[0].Principal", {}, CTX),
    ("ecr-grant-not-principal", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY,
     {"policy": json.dumps({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"},
                                           "Action": ["ecr:BatchGetImage"]}]})}, "NotPrincipal", {}, CTX),
    ("ecr-grant-action-wildcard", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY,
     ecr_grant(actions=["ecr:*"]), "Statement[0].Action", {}, CTX),
    # scoped-app-projects
    ("project-any-repo", "scoped-app-projects", APP_PROJECT, app_project(sourceRepos=["*"]),
     "spec.sourceRepos[0]", {}, CTX),
    ("project-repo-pattern", "scoped-app-projects", APP_PROJECT,
     app_project(sourceRepos=["git@github.com:Org/helm.git", "https://github.com/Org/*"]), "spec.sourceRepos[1]",
     {}, CTX),
    ("project-any-namespace", "scoped-app-projects", APP_PROJECT,
     app_project(destinations=[{"namespace": "*", "server": "https://kubernetes.default.svc"}]),
     "spec.destinations[0].namespace", {}, CTX),
    ("project-any-cluster", "scoped-app-projects", APP_PROJECT,
     app_project(destinations=[{"namespace": "datacollect", "server": "*"}]), "spec.destinations[0].server", {}, CTX),
    ("project-cluster-resources", "scoped-app-projects", APP_PROJECT,
     app_project(clusterResourceWhitelist=[{"group": "", "kind": "Namespace"}]), "clusterResourceWhitelist", {}, CTX),
    # no-anonymous-uis
    ("argocd-anonymous", "no-anonymous-uis", RELEASE, argo_cd({"users.anonymous.enabled": "true"}),
     "users.anonymous.enabled", {}, CTX),
    ("argocd-admin-by-default", "no-anonymous-uis", RELEASE,
     {"chart": "argo/argo-cd", "values": {"configs": {"cm": {"users.anonymous.enabled": "false"}}}},
     "admin.enabled", {}, CTX),
    ("argocd-admin", "no-anonymous-uis", RELEASE, argo_cd({"admin.enabled": True}), "admin.enabled", {}, CTX),
    ("argocd-disable-auth", "no-anonymous-uis", RELEASE, argo_cd(server={"extraArgs": ["--disable-auth"]}),
     "--disable-auth", {}, CTX),
    ("workflows-server-auth", "no-anonymous-uis", RELEASE, argo_workflows(authModes=["sso", "server"]),
     "authModes", {}, CTX),
    ("workflows-server-auth-arg", "no-anonymous-uis", RELEASE, argo_workflows(extraArgs=["--auth-mode=server"]),
     "--auth-mode=server", {}, CTX),
    ("rollouts-dashboard-ingress", "no-anonymous-uis", RELEASE,
     {"chart": "argo-rollouts", "values": {"dashboard": {"enabled": True, "ingress": {"enabled": True}}}},
     "dashboard.ingress", {}, CTX),
    # gitops-writes-scoped
    ("write-deploy-key", "gitops-writes-scoped", DEPLOY_KEY, {"key": "ssh-ed25519 A", "readOnly": False},
     "readOnly", {}, CTX),
    ("deploy-key-read-only-unset", "gitops-writes-scoped", DEPLOY_KEY, {"key": "ssh-ed25519 A"}, "readOnly", {}, CTX),
    ("ruleset-two-apps", "gitops-writes-scoped", RULESET, ruleset(bypassActors=[
        {"actorId": 1, "actorType": "Integration", "bypassMode": "always"},
        {"actorId": 2, "actorType": "Integration", "bypassMode": "always"}]), "2 Integrations", {}, CTX),
    ("ruleset-pattern", "gitops-writes-scoped", RULESET,
     ruleset(conditions={"refName": {"includes": ["refs/heads/*"], "excludes": []}}), "refName.includes", {}, CTX),
    ("ruleset-two-branches", "gitops-writes-scoped", RULESET, ruleset(conditions={"refName": {
        "includes": ["refs/heads/development", "refs/heads/main"], "excludes": []}}), "exactly one", {}, CTX),
    ("ruleset-all", "gitops-writes-scoped", RULESET,
     ruleset(conditions={"refName": {"includes": ["~ALL"], "excludes": []}}), "~ALL", {}, CTX),
    ("ruleset-evaluate-only", "gitops-writes-scoped", RULESET, ruleset(enforcement="evaluate"), "enforcement",
     {}, CTX),
]


@bad_cases(BAD)
def test_each_policy_reports_its_violation(
    policy: str, resource_type: str, inputs: Any, fragment: str, options: dict, context: rp.Context
) -> None:
    assert_reports(policy, resource_type, inputs, fragment, options, context)
