"""The release pipeline of one environment: a table of contents, nothing clever.

Load the stack's settings and services.yaml, create the providers, build the
components, export what operators need.
"""

from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_github as github
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls

from components.access import Access, AccessArgs
from components.config import (
    PROJECT,
    SERVICES_FILE_KEY,
    SETTINGS_KEY,
    ConfigError,
    load_services,
    own_stack_file_problems,
    project_name,
    service_problems,
    settings_from_pulumi_config,
    sibling_settings,
    sibling_stack_problems,
)
from components.dashboards import (
    DASHBOARD_FILE,
    DashboardError,
    ReleaseDashboard,
    ReleaseDashboardArgs,
    read_dashboard,
)
from components.delivery import ServiceDelivery, ServiceDeliveryArgs
from components.events import EventIntake, EventIntakeArgs
from components.github_access import (
    HelmRepository,
    HelmRepositoryArgs,
    SourceRepository,
    SourceRepositoryArgs,
)
from components.image_updater import (
    ImageUpdaterAccess,
    ImageUpdaterAccessArgs,
    ImageUpdaters,
    ImageUpdatersArgs,
    opted_in,
)
from components.names import repo_slug
from components.namespaces import Namespaces, NamespacesArgs
from components.platform import ArgoPlatform, ArgoPlatformArgs
from components.registry import (
    PromotionCache,
    PromotionCacheArgs,
    ServiceRegistry,
    ServiceRegistryArgs,
    promote_source,
    promotion_downstreams,
)
from components.sensors import ServiceSensor, ServiceSensorArgs
from components.slack_relay import SlackRelay, SlackRelayArgs, relay_url, threaded
from components.workflows import ReleaseWorkflows, ReleaseWorkflowsArgs

PROJECT_DIR = Path(__file__).parent
config = pulumi.Config(PROJECT)

try:
    # Before any config is read: under another project name Pulumi files every key
    # elsewhere, and `config.require` would report a missing setting instead.
    project_name(PROJECT_DIR)
    settings = settings_from_pulumi_config(config.require(SETTINGS_KEY), pulumi.get_stack())
    services_path = PROJECT_DIR / (config.get(SERVICES_FILE_KEY) or "services.yaml")
    services_file = load_services(services_path)
    problems = own_stack_file_problems(PROJECT_DIR, pulumi.get_stack())
    problems += service_problems(services_file, settings, str(services_path))
    # The other stack files: the cross-stack rules, and which of them promote images
    # from this stack (`promoteFrom`).
    siblings = sibling_settings(pulumi.get_stack(), PROJECT_DIR)
    problems += sibling_stack_problems(settings, pulumi.get_stack(), PROJECT_DIR, siblings)
    if problems:
        raise ConfigError(problems)
except ConfigError as err:
    # RunError ends the program with this message and no Python traceback.
    raise pulumi.RunError(f"invalid configuration:\n{err}") from None

# The dashboard file the program ships as it is (`metrics.grafanaDashboard`): read and
# checked before anything is registered, so a bad file stops `pulumi up` with nothing done.
try:
    dashboard_text = read_dashboard(PROJECT_DIR / DASHBOARD_FILE) if settings.metrics.grafana_dashboard else None
except DashboardError as err:
    raise pulumi.RunError(f"invalid project: {err}") from None

services = services_file.for_environment(settings.environment)
source_repos = sorted({s.repo for s in services})
helm_repos = sorted({s.helm.repo for s in services})

# Providers: created here, passed down, inherited by every child.
aws_provider = aws.Provider(
    "aws",
    region=settings.aws.region,
    allowed_account_ids=[settings.aws.account_id],
    default_tags=aws.ProviderDefaultTagsArgs(
        tags={"managed-by": "release-pipeline", "environment": settings.environment}
    ),
)
k8s_provider = k8s.Provider(
    "k8s",
    context=settings.cluster.kube_context,
    kubeconfig=settings.cluster.kubeconfig,
)
github_token = config.require_secret("githubToken")
github_providers = {
    owner: github.Provider(f"github-{owner.lower()}", owner=owner, token=github_token)
    for owner in sorted({repo.split("/")[0] for repo in source_repos + helm_repos})
}


# Keys and the webhook secrets are generated locally; default providers are
# disabled in every stack, so these are explicit too.
random_provider = random.Provider("random")
tls_provider = tls.Provider("tls")


def github_for(repo: str) -> github.Provider:
    return github_providers[repo.split("/")[0]]


namespaces = Namespaces(
    "namespaces",
    NamespacesArgs(
        platform=settings.namespaces,
        services=tuple(sorted({s.namespace for s in services})),
    ),
    opts=pulumi.ResourceOptions(provider=k8s_provider),
)

# One webhook and one read-only deploy key per source repository, shared by the
# services that live in it.
sources = {
    repo: SourceRepository(
        repo_slug(repo),
        SourceRepositoryArgs(
            repo=repo,
            environment=settings.environment,
            events_host=settings.hostnames.events,
            events_namespace=namespaces.platform["events"],
            workflows_namespace=namespaces.platform["workflows"],
            build_namespace=namespaces.platform["build"],
        ),
        opts=pulumi.ResourceOptions(
            providers=[k8s_provider, github_for(repo), random_provider, tls_provider]
        ),
    )
    for repo in source_repos
}

# Write access to this environment's branch of each helm repository, and only that.
helm_writer_key = config.require_secret("helmWriterPrivateKey")
helm = {
    repo: HelmRepository(
        repo_slug(repo),
        HelmRepositoryArgs(
            repo=repo,
            environment=settings.environment,
            branch=settings.helm_branch,
            writer=settings.helm_writer,
            writer_private_key=helm_writer_key,
            argocd_namespace=namespaces.platform["argocd"],
            workflows_namespace=namespaces.platform["workflows"],
        ),
        opts=pulumi.ResourceOptions(
            providers=[k8s_provider, github_for(repo), random_provider, tls_provider]
        ),
    )
    for repo in helm_repos
}

registries = {
    service.name: ServiceRegistry(
        service.name,
        ServiceRegistryArgs(
            service=service,
            environment=settings.environment,
            repository_prefix=settings.ecr_prefix,
            ecr=settings.ecr,
            identity=settings.identity,
            cluster_name=settings.cluster.name,
            build_namespace=namespaces.platform["build"],
            promote_source=promote_source(settings, service),
            promotion_downstreams=promotion_downstreams(settings, siblings, service),
        ),
        opts=pulumi.ResourceOptions(providers=[aws_provider, k8s_provider]),
    )
    for service in services
}

# Build once, promote many (`promoteFrom`, off by default): from another account or
# region, the upstream images come through a pull-through cache rule of this registry.
if settings.promote_from is not None and not settings.promote_same_registry:
    PromotionCache(
        "promotion-cache",
        PromotionCacheArgs(settings=settings),
        opts=pulumi.ResourceOptions(provider=aws_provider),
    )

# Registry-driven updates, only for the services that opt in (`imageUpdater`): the
# image updater's AWS identity (read exactly their ECR repositories) and its git
# write-back credentials (this environment's GitHub App). With none, nothing of it.
image_updated = opted_in(services)
image_updater_access = (
    ImageUpdaterAccess(
        "image-updater",
        ImageUpdaterAccessArgs(
            settings=settings,
            repository_arns={s.name: registries[s.name].repository_arn for s in image_updated},
            argocd_namespace=namespaces.platform["argocd"],
            writer_private_key=helm_writer_key,
        ),
        opts=pulumi.ResourceOptions(providers=[aws_provider, k8s_provider]),
    )
    if image_updated
    else None
)

# Argo CRDs (retained on delete), the four Argo controllers (Helm) and the Secrets
# they read (and the image updater's CRD and release when a service opts in). Every
# Argo object depends on `platform.depends_for(<kind>)`.
platform = ArgoPlatform(
    "platform",
    ArgoPlatformArgs(
        settings=settings,
        projects=tuple(sorted({s.project for s in services})),
        namespaces=namespaces.platform,
        slack_token=config.require_secret("slackToken"),
        sso_client_secret=config.require_secret("ssoClientSecret"),
        image_updater=image_updater_access.release if image_updater_access else None,
        # Argo CD and Argo Rollouts notify the Slack relay for services with threads on.
        slack_relay_url=relay_url(settings) if threaded(services, settings) else None,
    ),
    opts=pulumi.ResourceOptions(providers=[k8s_provider, random_provider]),
)

# EventBus, the `github` EventSource (one webhook event per source repository) and
# its public Ingress, after the Argo Events CRDs and controller.
event_intake = EventIntake(
    "event-intake",
    EventIntakeArgs(
        settings=settings,
        repos=source_repos,
        namespace=namespaces.platform["events"],
        argo_depends_on={kind: platform.depends_for(kind) for kind in ("EventBus", "EventSource")},
    ),
    opts=pulumi.ResourceOptions(provider=k8s_provider),
)

# Argo CD AppProject per team (after Argo CD's CRDs and controller); ServiceAccounts,
# Roles and tokens of the Sensors, the release Workflows and the Argo Workflows UI (SSO).
access = Access(
    "access",
    AccessArgs(
        settings=settings,
        services=tuple(services),
        platform_namespaces=namespaces.platform,
        service_namespaces=namespaces.services,
        argo_depends_on={"AppProject": platform.depends_for("AppProject")},
    ),
    opts=pulumi.ResourceOptions(provider=k8s_provider),
)

# Per service: the Argo CD Application `<service>-<env>` (after Argo CD's CRD and
# controller) and the Rollout `<service>` with its canary Services and analysis
# (after Argo Rollouts'). The Rollout side is retained on delete in every stack.
deliveries = {
    service.name: ServiceDelivery(
        f"{service.name}-delivery",
        ServiceDeliveryArgs(
            service=service,
            settings=settings,
            namespace=namespaces.services[service.namespace],
            argocd_namespace=namespaces.platform["argocd"],
            argo_depends_on={
                kind: platform.depends_for(kind) for kind in ("Application", "AnalysisTemplate", "Rollout")
            },
            app_project=[access.projects[service.project]],
        ),
        opts=pulumi.ResourceOptions(provider=k8s_provider),
    )
    for service in services
}

# Per service: the Sensor `<service>` that starts its release Workflow when a PR is
# merged into this environment's branch; after the Sensor CRD and controller, and the
# EventBus and EventSource it names.
service_sensors = {
    service.name: ServiceSensor(
        f"{service.name}-trigger",
        ServiceSensorArgs(
            service=service,
            settings=settings,
            namespace=namespaces.platform["events"],
            eventbus_name=event_intake.eventbus_name,
            eventsource_name=event_intake.eventsource_name,
            depends_on=platform.depends_for("Sensor"),
        ),
        opts=pulumi.ResourceOptions(provider=k8s_provider),
    )
    for service in services
}

# Per service: the release WorkflowTemplate (workflows namespace) and the build
# WorkflowTemplate (build namespace); the step scripts ConfigMap in both, and the
# notify step's Slack token. After the WorkflowTemplate CRD and Argo Workflows.
release_workflows = ReleaseWorkflows(
    "release-workflows",
    ReleaseWorkflowsArgs(
        settings=settings,
        services=tuple(services),
        namespaces=namespaces.platform,
        repository_urls={name: registry.repository_url for name, registry in registries.items()},
        repository_names={name: registry.repository_name for name, registry in registries.items()},
        slack_token=config.require_secret("slackToken"),
        argo_depends_on={"WorkflowTemplate": platform.depends_for("WorkflowTemplate")},
    ),
    opts=pulumi.ResourceOptions(provider=k8s_provider),
)

# One Slack thread per release (`slack.threads`, `slackThreads`, off by default): the
# relay that Argo CD's and Argo Rollouts' notification webhooks call, after the scripts
# ConfigMap and the Slack Secret it uses. Nothing of it when no service has threads on.
if threaded(services, settings):
    SlackRelay(
        "slack-relay",
        SlackRelayArgs(
            settings=settings,
            services=tuple(services),
            namespaces={getattr(settings.namespaces, role): ns for role, ns in namespaces.platform.items()}
            | dict(namespaces.services),
            scripts_config_map=release_workflows.scripts_config_map,
            depends_on=(release_workflows,),
        ),
        opts=pulumi.ResourceOptions(provider=k8s_provider),
    )

# Per opted-in service: the ImageUpdater object (Argo CD namespace) that matches its
# Application, after the ImageUpdater CRD and the image updater, and its git Secret.
if image_updater_access is not None:
    ImageUpdaters(
        "image-updaters",
        ImageUpdatersArgs(
            settings=settings,
            services=tuple(image_updated),
            repository_urls={s.name: registries[s.name].repository_url for s in image_updated},
            argocd_namespace=namespaces.platform["argocd"],
            depends_on=(*platform.depends_for("ImageUpdater"), image_updater_access.git_secret),
        ),
        opts=pulumi.ResourceOptions(provider=k8s_provider),
    )

# The release dashboard (`metrics.grafanaDashboard`, off by default): the repository's
# dashboards/release-pipeline.json as a ConfigMap labelled for Grafana's dashboards
# sidecar, in a namespace the sidecar searches (it must exist unless it is one of ours).
if settings.metrics.grafana_dashboard is not None and dashboard_text is not None:
    ReleaseDashboard(
        "release-dashboard",
        ReleaseDashboardArgs(
            options=settings.metrics.grafana_dashboard,
            text=dashboard_text,
            namespaces={getattr(settings.namespaces, role): ns for role, ns in namespaces.platform.items()}
            | dict(namespaces.services),
        ),
        opts=pulumi.ResourceOptions(provider=k8s_provider),
    )

pulumi.export("environment", settings.environment)
pulumi.export(
    "images",
    {name: registry.repository_url for name, registry in sorted(registries.items())},
)
pulumi.export(
    "webhooks",
    {repo: source.webhook_url for repo, source in sorted(sources.items())},
)
