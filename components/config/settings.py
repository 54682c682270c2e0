"""`Settings`: the `release-pipeline:settings` object of one stack, made of the topic
models (`settings_aws`, `settings_access`, `settings_platform`, `settings_release`), and
the rules between its parts (a branch from the branch map, `argocd.ha` needs replicated
servers, `promoteFrom` names another stack's repositories).

Owns: the whole settings model and what it resolves to (`ecr_prefix`, `ecr_registry`,
`promote_from_registry`, `team_slugs`). Does not own: reading it from a stack file or
from Pulumi config (`components.config.loading`), nor the rules across stacks or with
services.yaml (`components.config.rules`). Decisions:
docs/decisions/0141-argo-cd-ha-profile.md, docs/decisions/0200-branch-map-and-known-keys.md.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from components import config_keys
from components.config.fields import CanarySteps, Environment, GitBranch, Model, RelPathBelowRoot
from components.config.settings_access import (
    GithubSettings,
    HelmWriterSettings,
    Hostnames,
    IngressSettings,
    RbacSettings,
    SsoSettings,
)
from components.config.settings_aws import AwsSettings, ClusterSettings, EcrSettings, Irsa, PodIdentity, PromoteFrom
from components.config.settings_platform import (
    ARGOCD_HA_MIN_REPLICAS,
    ARGOCD_HA_SIZES,
    ArgoCdSettings,
    EventBusSettings,
    Namespaces,
    Sizes,
    ToolImages,
)
from components.config.settings_release import AnalysisSettings, MetricsSettings, ReleaseSettings, SlackSettings


class Settings(Model):
    """`release-pipeline:settings` of one stack: everything that differs per environment."""

    environment: Environment = Field(description="The stack's environment; must be the stack's name.")
    # A valid git branch name (no '..', '//', leading/trailing '/', '.lock'); left out, the
    # branch map's (config_keys.BRANCH_MAP); another one needs `branchDeparture: deliberate`.
    branch: GitBranch = Field(
        description=(
            "Branch whose merges this stack releases; left out, the branch map's (another needs branchDeparture)."
        ),
        examples=["main"],
    )
    branch_departure: Literal["deliberate"] | None = Field(
        default=None,
        description="Confirms a branch other than the branch map's is meant.",
    )
    helm_branch: GitBranch = Field(
        description="Branch of the helm repositories the promote step commits to and Argo CD deploys from.",
        examples=["env/dev"],
    )
    values_file: RelPathBelowRoot = Field(
        default="values.yaml",
        description="Values file the promote step edits in each chart, unless a service names its own.",
    )
    aws: AwsSettings = Field(description="AWS account and region of the stack.")
    cluster: ClusterSettings = Field(description="The stack's EKS cluster.")
    identity: Annotated[PodIdentity | Irsa, Field(discriminator="mode")] = Field(
        default=PodIdentity(),
        description="How platform pods get their IAM roles.",
    )
    ecr: EcrSettings = Field(default=EcrSettings(), description="The stack's ECR repositories.")
    github: GithubSettings = Field(description="The GitHub organization.")
    helm_writer: HelmWriterSettings = Field(
        description="This environment's GitHub App, the only identity allowed onto its helm branch.",
    )
    hostnames: Hostnames = Field(description="Public host names of the event intake and the UIs.")
    namespaces: Namespaces = Field(default=Namespaces(), description="The platform's namespaces.")
    slack: SlackSettings = Field(description="Where release notices go.")
    canary: CanarySteps = Field(
        min_length=1,
        description="The stack's canary steps, for every service without its own.",
        examples=[[{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {}}]],
    )
    ingress: IngressSettings = Field(default=IngressSettings(), description="How the hosts are exposed.")
    sso: SsoSettings = Field(description="Sign-in to Argo CD and Argo Workflows through Dex's GitHub connector.")
    rbac: RbacSettings = Field(default=RbacSettings(), description="Who may do what in Argo CD and Argo Workflows.")
    event_bus: EventBusSettings = Field(default=EventBusSettings(), description="The JetStream EventBus.")
    argocd: ArgoCdSettings = Field(default=ArgoCdSettings(), description="How Argo CD itself runs.")
    sizes: Sizes = Field(default=Sizes(), description="Replicas and resources of each platform component.")
    metrics: MetricsSettings = Field(
        default=MetricsSettings(),
        description="Metrics of the controllers and of the releases.",
    )
    tool_images: ToolImages = Field(description="Where the project's own tool images are pushed.")
    analysis: AnalysisSettings = Field(
        default=AnalysisSettings(),
        description="Canary analysis against Prometheus, for services with rollout.analysis.",
    )
    release: ReleaseSettings = Field(
        default=ReleaseSettings(),
        description="Behaviour of the release workflow and the Argo CD Application.",
    )
    # Build once, promote many: reuse the upstream stack's image of the same commit. Off.
    promote_from: PromoteFrom | None = Field(
        default=None,
        description="Build once, promote many: reuse the upstream stack's image of the same commit (off).",
    )

    def team_slugs(self, project: str) -> list[str]:
        """GitHub team slugs that own `project` (default: the project name)."""
        return self.rbac.team_slugs.get(project, [project])

    @property
    def ecr_prefix(self) -> str:
        return self.environment if self.ecr.repository_prefix is None else self.ecr.repository_prefix

    @property
    def promote_same_registry(self) -> bool:
        """Whether `promoteFrom` names a repository in this stack's own account and region."""
        upstream = self.promote_from
        return upstream is not None and (upstream.account_id or self.aws.account_id) == self.aws.account_id \
            and (upstream.region or self.aws.region) == self.aws.region

    @property
    def ecr_registry(self) -> tuple[str, str, str]:
        """(account, region, repository prefix) of this stack's own ECR repositories."""
        return self.aws.account_id, self.aws.region, self.ecr_prefix

    @property
    def promote_from_registry(self) -> tuple[str, str, str] | None:
        """(account, region, repository prefix) of the repositories `promoteFrom` names, or None."""
        upstream = self.promote_from
        if upstream is None:
            return None
        return (upstream.account_id or self.aws.account_id, upstream.region or self.aws.region,
                upstream.upstream_prefix)

    @model_validator(mode="before")
    @classmethod
    def _branch_from_the_map(cls, data: object) -> object:
        return config_keys.with_map_branch(data)

    @model_validator(mode="after")
    def _argocd_ha_replicates_its_servers(self) -> Self:
        if not self.argocd.ha:
            return self
        short = [
            f"sizes.{alias}.replicas is {getattr(self.sizes, key).replicas}"
            for key, alias in ARGOCD_HA_SIZES.items()
            if getattr(self.sizes, key).replicas < ARGOCD_HA_MIN_REPLICAS
        ]
        if short:
            raise ValueError(
                f"argocd.ha needs at least {ARGOCD_HA_MIN_REPLICAS} replicas of the Argo CD API server, repo "
                f"server and ApplicationSet controller, but {', '.join(short)}; raise them or set argocd.ha: false"
            )
        return self

    @model_validator(mode="after")
    def _promote_from_another_repository(self) -> Self:
        upstream = self.promote_from
        if upstream is None:
            return self
        if upstream.environment == self.environment:
            raise ValueError("promoteFrom.environment must be another stack's environment")
        if self.promote_same_registry and upstream.upstream_prefix == self.ecr_prefix:
            raise ValueError("promoteFrom names this stack's own repositories (same account, region and "
                             "repository prefix)")
        if not self.promote_same_registry and upstream.cache_prefix == self.ecr_prefix:
            raise ValueError("promoteFrom.cachePrefix must differ from this stack's ECR repository prefix")
        return self
