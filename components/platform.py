"""The Argo platform of one stack: CRDs, controllers (Helm releases) and their Secrets.

Owns:
- the Argo CRDs as Pulumi resources, one `kubernetes:yaml/v2:ConfigFile` per upstream
  CRD file at the pinned application version (fetched by URL at deploy time), each
  retained on delete;
- the argo-cd, argo-workflows, argo-events and argo-rollouts `helm.v3.Release`s
  (argo-helm repository, pinned versions, `skip_crds`, atomic, values from
  `components.helm_values`), each after its namespace and its CRDs;
- only when some service opts in (`ArgoPlatformArgs.image_updater`): the
  argocd-image-updater CRD and release, after Argo CD and after the registry
  identity and git Secret `components.image_updater` makes for it;
- the Secrets those values name (Dex's GitHub client secret, the Argo Workflows SSO
  client secret in both namespaces that read it, the Slack token), every value a
  secret Output passed as `stringData`;
- `depends_for(kind)`: what an Argo custom resource of `kind` must depend on (its
  CRD and its controller's release), so that a destroy deletes the object while
  the controller holding its finalizers still runs.

Does not own: the namespaces (`components.namespaces`), the Argo objects themselves
(EventBus, EventSources, Sensors, AppProjects, Applications, Rollouts, ...), the
ServiceAccounts that SSO RBAC maps people to (`components.access`), the values
(`components.helm_values`), the versions (`components.versions`).

Decisions: docs/decisions/0415-crds-retained-through-the-configfile.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import helm_values as hv
from components.config import Settings
from components.crds import CrdFile, crd_files, kind_index, platform_charts
from components.versions import (
    ARGO_CD,
    ARGO_EVENTS,
    ARGO_HELM_REPO,
    ARGO_ROLLOUTS,
    ARGO_WORKFLOWS,
    ARGOCD_IMAGE_UPDATER,
    CHARTS,
)

TYPE = "release-pipeline:components:ArgoPlatform"

# Seconds Helm waits for a release's workloads before an atomic rollback. Argo CD
# waits for its Dex and Redis; Argo Workflows' server needs Argo CD's Dex reachable
# at its public host name (DNS and the load balancer) before it turns ready.
RELEASE_TIMEOUTS: dict[str, int] = {
    ARGO_CD.chart: 900,
    ARGO_WORKFLOWS.chart: 900,
    ARGO_EVENTS.chart: 600,
    ARGO_ROLLOUTS.chart: 600,
    ARGOCD_IMAGE_UPDATER.chart: 600,
}
MAX_HISTORY = 10
WORKFLOWS_SSO_SECRET_LENGTH = 48
_PINS = {pin.chart: pin for pin in CHARTS}


@dataclass(frozen=True)
class ImageUpdaterRelease:
    """What the argocd-image-updater release needs from `components.image_updater`."""

    service_account_annotations: Mapping[str, pulumi.Input[str]]
    """Annotations of the chart's ServiceAccount (IRSA: the role ARN; Pod Identity: none)."""
    depends_on: tuple[pulumi.Resource, ...]
    """The registry identity and the git credentials Secret: there before the pod starts."""


@dataclass(frozen=True)
class ArgoPlatformArgs:
    """Inputs of the Argo platform of one stack."""

    settings: Settings
    """The stack's settings: hostnames, ingress, SSO, RBAC, sizes, metrics, Slack channel."""
    projects: tuple[str, ...]
    """Argo CD projects (teams) of this environment's services: their GitHub teams may
    sign in, and each may see (and, where allowed, sync) its own applications."""
    namespaces: Mapping[str, pulumi.Input[str]]
    """Platform namespaces by role (`Namespaces.platform`): argocd, workflows, events,
    rollouts. Outputs, so everything here waits for its namespace."""
    slack_token: pulumi.Input[str]
    """Slack bot token (config secret `slackToken`): a secret Output."""
    sso_client_secret: pulumi.Input[str]
    """GitHub OAuth App client secret for Dex (config secret `ssoClientSecret`): a secret Output."""
    slack_relay_url: str | None = None
    """`components.slack_relay.relay_url`, only when some service has Slack threads on:
    Argo CD's and Argo Rollouts' notifications then call the relay (`helm_values`)."""
    image_updater: ImageUpdaterRelease | None = None
    """Set only when some service opts in to the image updater: then its CRD and release
    are deployed too; otherwise nothing of it is."""


class ArgoPlatform(pulumi.ComponentResource):
    """Argo CRDs, the four Argo controllers and the Secrets they read."""

    crds: dict[str, k8s.yaml.v2.ConfigFile]
    """ConfigFile per CRD file, by logical name (`crds-<chart>-<file>`)."""
    crds_by_kind: dict[str, k8s.yaml.v2.ConfigFile]
    """ConfigFile that defines each Argo kind ('Application', 'Sensor', 'Rollout', ...)."""
    releases: dict[str, k8s.helm.v3.Release]
    """Helm release by chart name ('argo-cd', 'argo-workflows', 'argo-events', 'argo-rollouts',
    and 'argocd-image-updater' when some service opts in)."""

    def __init__(self, name: str, args: ArgoPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        settings = args.settings
        values = hv.chart_values(settings, args.projects, args.slack_relay_url)

        charts = platform_charts(image_updater=args.image_updater is not None)
        self._kinds: dict[str, CrdFile] = kind_index(charts)
        self.crds = {file.logical_name: self._crd(file) for file in crd_files(charts)}
        self.crds_by_kind = {kind: self.crds[file.logical_name] for kind, file in self._kinds.items()}

        secrets = self._secrets(name, args)

        self.releases = {}
        # Argo CD first: its Dex is the identity provider of the workflows server.
        for chart in (ARGO_CD.chart, ARGO_WORKFLOWS.chart, ARGO_EVENTS.chart, ARGO_ROLLOUTS.chart):
            depends: list[pulumi.Resource] = [
                self.crds[f.logical_name] for f in crd_files([chart])
            ] + secrets.get(chart, [])
            if chart == ARGO_WORKFLOWS.chart:
                depends.append(self.releases[ARGO_CD.chart])
            self.releases[chart] = self._release(
                name, chart, args.namespaces[hv.RELEASE_NAMESPACE_ROLES[chart]], values[chart], depends
            )
        if args.image_updater is not None:
            self.releases[ARGOCD_IMAGE_UPDATER.chart] = self._image_updater_release(name, args, args.image_updater)

        self.register_outputs(
            {
                "crds": sorted(self.crds),
                "releases": {chart: release.name for chart, release in sorted(self.releases.items())},
            }
        )

    def depends_for(self, kind: str) -> list[pulumi.Resource]:
        """What a custom resource of `kind` depends on: its CRD and its controller's release.

        For `depends_on` of every Argo object (EventBus, EventSource, Sensor,
        AppProject, Application, WorkflowTemplate, Rollout, AnalysisTemplate, ...).
        """
        if kind not in self._kinds:
            known = ", ".join(sorted(self._kinds))
            raise KeyError(f"no Argo CRD defines kind {kind!r}; known kinds: {known}")
        return [self.crds_by_kind[kind], self.releases[self._kinds[kind].chart.chart]]

    # --- children -------------------------------------------------------------------

    def _image_updater_release(
        self, name: str, args: ArgoPlatformArgs, updater: ImageUpdaterRelease
    ) -> k8s.helm.v3.Release:
        chart = ARGOCD_IMAGE_UPDATER.chart
        values = hv.image_updater_values(args.settings)
        if updater.service_account_annotations:
            values["serviceAccount"]["annotations"] = dict(sorted(updater.service_account_annotations.items()))
        # After Argo CD: the image updater reads Applications and Argo CD's settings.
        depends: list[pulumi.Resource] = [
            *(self.crds[f.logical_name] for f in crd_files([chart])),
            self.releases[ARGO_CD.chart],
            *updater.depends_on,
        ]
        return self._release(
            name, chart, args.namespaces[hv.RELEASE_NAMESPACE_ROLES[chart]], values, depends
        )

    def _crd(self, file: CrdFile) -> k8s.yaml.v2.ConfigFile:
        return k8s.yaml.v2.ConfigFile(
            file.logical_name,
            file=file.url,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

    def _release(
        self,
        name: str,
        chart: str,
        namespace: pulumi.Input[str],
        values: hv.Values,
        depends_on: list[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        pin = _PINS[chart]
        return k8s.helm.v3.Release(
            f"{name}-{chart}",
            name=hv.RELEASE_NAMES[chart],
            chart=pin.chart,
            version=pin.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ARGO_HELM_REPO),
            namespace=namespace,
            create_namespace=False,
            values=values,
            skip_crds=True,
            atomic=True,
            cleanup_on_fail=True,
            timeout=RELEASE_TIMEOUTS[chart],
            max_history=MAX_HISTORY,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _secret(
        self,
        logical: str,
        secret_name: str,
        namespace: pulumi.Input[str],
        data: Mapping[str, pulumi.Input[str]],
        labels: Mapping[str, str],
    ) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            logical,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name,
                namespace=namespace,
                labels={"app.kubernetes.io/managed-by": "release-pipeline", **labels},
            ),
            type="Opaque",
            string_data=dict(data),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _secrets(self, name: str, args: ArgoPlatformArgs) -> dict[str, list[pulumi.Resource]]:
        """The Secrets the values name, by the chart whose pods read them."""
        ns = args.namespaces
        # Secret already by the provider's schema; wrapped again so it stays secret
        # whatever engine (or mock) runs the program.
        sso_client = random.RandomPassword(
            f"{name}-workflows-sso-client-secret",
            length=WORKFLOWS_SSO_SECRET_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        client_secret: pulumi.Output[str] = pulumi.Output.secret(sso_client.result)
        sso_client_data: dict[str, pulumi.Input[str]] = {
            hv.WORKFLOWS_SSO_ID_KEY: hv.WORKFLOWS_SSO_CLIENT_ID,
            hv.WORKFLOWS_SSO_SECRET_KEY: client_secret,
        }
        slack = pulumi.Output.secret(args.slack_token)
        return {
            ARGO_CD.chart: [
                self._secret(
                    f"{name}-dex-github",
                    hv.DEX_GITHUB_SECRET,
                    ns["argocd"],
                    {hv.DEX_GITHUB_SECRET_KEY: pulumi.Output.secret(args.sso_client_secret)},
                    hv.ARGOCD_SECRET_LABELS,
                ),
                self._secret(
                    f"{name}-workflows-sso-dex",
                    hv.WORKFLOWS_SSO_SECRET,
                    ns["argocd"],
                    sso_client_data,
                    hv.ARGOCD_SECRET_LABELS,
                ),
                self._secret(
                    f"{name}-argocd-notifications",
                    hv.ARGOCD_NOTIFICATIONS_SECRET,
                    ns["argocd"],
                    {hv.SLACK_TOKEN_KEY: slack},
                    hv.ARGOCD_SECRET_LABELS,
                ),
            ],
            ARGO_WORKFLOWS.chart: [
                self._secret(
                    f"{name}-workflows-sso-server",
                    hv.WORKFLOWS_SSO_SECRET,
                    ns["workflows"],
                    sso_client_data,
                    {},
                ),
            ],
            ARGO_ROLLOUTS.chart: [
                self._secret(
                    f"{name}-rollouts-notifications",
                    hv.ROLLOUTS_NOTIFICATIONS_SECRET,
                    ns["rollouts"],
                    {hv.SLACK_TOKEN_KEY: slack},
                    hv.ROLLOUTS_SECRET_LABELS,
                ),
            ],
        }
