"""Helm values of the argo-cd chart.

Owns: Argo CD's values: sign-in through Dex's GitHub connector (the teams allowed, a
static client for Argo Workflows), its RBAC policy (`policy.csv`), HA replicas and the
Redis or redis-ha profile (`settings.argocd.ha`), the UI's Ingress, the notifications.

Does not own: the notification templates (`helm_values.notifications`), the Secrets
the values name, the AppProjects (`components.access`).

Decisions: docs/decisions/0141-argo-cd-ha-profile.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from components.config import Settings, Size
from components.helm_values.common import (
    DEX_GITHUB_SECRET,
    DEX_GITHUB_SECRET_KEY,
    WORKFLOWS_SSO_CLIENT_ID,
    WORKFLOWS_SSO_ENV,
    WORKFLOWS_SSO_SECRET,
    WORKFLOWS_SSO_SECRET_KEY,
    Values,
    alb_annotations,
    block_yaml,
    metrics,
    pdb,
    resources,
)
from components.helm_values.notifications import (
    argocd_notifications,
)


def _team_groups(settings: Settings, projects: Iterable[str]) -> list[tuple[str, list[str]]]:
    return [(p, sorted(set(settings.team_slugs(p)))) for p in sorted(set(projects))]


def _group(settings: Settings, team: str) -> str:
    # Dex's GitHub connector names a team "<org>:<team slug>" (teamNameField: slug).
    return f"{settings.github.organization}:{team}"


def sso_teams(settings: Settings, projects: Iterable[str]) -> list[str]:
    """GitHub teams allowed to sign in: the admin team, the teams of the services'
    projects, and the release managers where only they may sync."""
    teams = {settings.rbac.admin_team}
    if settings.rbac.sync_by == "release-managers":
        teams.add(settings.rbac.release_managers_team)
    for _, slugs in _team_groups(settings, projects):
        teams.update(slugs)
    return sorted(teams)


def argocd_policy_csv(settings: Settings, projects: Iterable[str]) -> str:
    """Argo CD RBAC (policy.csv): admins; each team gets (and, where allowed, syncs)
    the applications of its own project; in release-managers mode only the release
    managers sync. Everyone signed in falls back to `policy.default` (read-only).
    Ref: https://argo-cd.readthedocs.io/en/stable/operator-manual/rbac/
    """
    lines = [f"g, {_group(settings, settings.rbac.admin_team)}, role:admin"]
    for project, teams in _team_groups(settings, projects):
        role = f"role:team-{project}"
        lines.append(f"p, {role}, applications, get, {project}/*, allow")
        if settings.rbac.sync_by == "team":
            lines.append(f"p, {role}, applications, sync, {project}/*, allow")
        lines += [f"g, {_group(settings, team)}, {role}" for team in teams]
    if settings.rbac.sync_by == "release-managers":
        role = "role:release-managers"
        lines += [
            f"p, {role}, applications, get, */*, allow",
            f"p, {role}, applications, sync, */*, allow",
            f"g, {_group(settings, settings.rbac.release_managers_team)}, {role}",
        ]
    return "\n".join(lines) + "\n"


def dex_config(settings: Settings, projects: Iterable[str]) -> str:
    """Dex (run by Argo CD): the GitHub connector, and a static client for Argo Workflows.

    The client secrets are references, resolved at run time: `$<secret>:<key>` by Argo
    CD, `secretEnv` by Dex from the environment the chart gives its pod.
    Ref: https://argo-cd.readthedocs.io/en/stable/operator-manual/user-management/#dex
    Ref: https://argo-workflows.readthedocs.io/en/stable/argo-server-sso-argocd/
    """
    config = {
        "connectors": [
            {
                "type": "github",
                "id": "github",
                "name": "GitHub",
                "config": {
                    "clientID": settings.sso.client_id,
                    "clientSecret": f"${DEX_GITHUB_SECRET}:{DEX_GITHUB_SECRET_KEY}",
                    "orgs": [{"name": settings.github.organization, "teams": sso_teams(settings, projects)}],
                    "teamNameField": "slug",
                },
            }
        ],
        "staticClients": [
            {
                "id": WORKFLOWS_SSO_CLIENT_ID,
                "name": "Argo Workflows",
                "redirectURIs": [f"https://{settings.hostnames.workflows}/oauth2/callback"],
                "secretEnv": WORKFLOWS_SSO_ENV,
            }
        ],
    }
    return block_yaml(config)


def argocd_redis_values(settings: Settings) -> Values:
    """Argo CD's Redis: one Redis, or with `argocd.ha` the chart's HA profile (redis-ha).

    redis-ha is the argo-cd chart's dependency (subchart `redis-ha`, enabled by
    `redis-ha.enabled`); the chart's own single Redis must then be off (`redis.enabled:
    false`), as its HA documentation says. The subchart's replica counts are left at
    its defaults (three Redis with Sentinel, three HAProxy, each one per node: hard
    anti-affinity, so the cluster needs three nodes). Its Redis, HAProxy and init
    containers get `sizes.argocdRedis` through the subchart's `resources` keys; the
    Sentinel and split-brain sidecars keep the subchart's defaults (no requests or
    limits), because the argo-cd chart's values do not know those keys
    (docs/decisions/0141-argo-cd-ha-profile.md).
    Ref: https://github.com/argoproj/argo-helm/tree/main/charts/argo-cd#high-availability
    """
    size = resources(settings.sizes.argocd_redis)
    if not settings.argocd.ha:
        return {"redis": {"enabled": True, "resources": size}}
    return {
        "redis": {"enabled": False},
        "redis-ha": {
            "enabled": True,
            "redis": {"resources": size},
            "init": {"resources": size},
            "haproxy": {"resources": size, "init": {"resources": size}},
        },
    }


def argocd_values(settings: Settings, projects: Iterable[str], slack_relay_url: str | None = None) -> Values:
    """Values of the argo-cd chart."""
    sizes = settings.sizes
    host = settings.hostnames.argocd
    projects = sorted(set(projects))

    def component(size: Size, *, replicas: bool = True) -> Values:
        block: Values = {"resources": resources(size), "metrics": metrics(settings)}
        if replicas:
            block |= {"replicas": size.replicas, "pdb": pdb(size)}
        return block

    notifications = argocd_notifications(settings, slack_relay_url)
    return {
        "crds": {"install": False, "keep": True},
        "global": {"domain": host},
        "configs": {
            "cm": {
                "url": f"https://{host}",
                "admin.enabled": "false",
                "users.anonymous.enabled": "false",
                "exec.enabled": "false",
                "dex.config": dex_config(settings, projects),
            },
            "rbac": {
                "policy.default": "role:readonly",
                "policy.csv": argocd_policy_csv(settings, projects),
                "policy.matchMode": "glob",
                "scopes": "[groups]",
            },
        },
        "controller": component(sizes.argocd_controller),
        "server": component(sizes.argocd_server)
        | {
            "ingress": {
                "enabled": True,
                # 'aws' adds the gRPC Service and the ALB condition the argocd CLI needs.
                "controller": "aws",
                "ingressClassName": settings.ingress.class_name,
                "hostname": host,
                "path": "/",
                "pathType": "Prefix",
                "tls": True,
                "annotations": alb_annotations(settings.ingress),
                "aws": {"serviceType": "ClusterIP", "backendProtocolVersion": "GRPC"},
            },
        },
        "repoServer": component(sizes.argocd_repo_server)
        | {"copyutil": {"resources": resources(sizes.argocd_repo_server)}},
        "applicationSet": component(sizes.argocd_applicationset),
        "dex": component(sizes.argocd_dex, replicas=False)
        | {
            "enabled": True,
            "initImage": {"resources": resources(sizes.argocd_dex)},
            "env": [
                {
                    "name": WORKFLOWS_SSO_ENV,
                    "valueFrom": {
                        "secretKeyRef": {"name": WORKFLOWS_SSO_SECRET, "key": WORKFLOWS_SSO_SECRET_KEY}
                    },
                }
            ],
        },
        **argocd_redis_values(settings),
        "redisSecretInit": {"resources": resources(sizes.argocd_redis)},
        "notifications": component(sizes.argocd_notifications, replicas=False)
        | {
            "enabled": True,
            "argocdUrl": f"https://{host}",
            "secret": {"create": False},
            **notifications,
        },
    }
