"""What every stack's render process needs imported, loaded in full before it starts.

``engine.render`` forks each stack's process from a server that imports this module
once (``forkserver`` preload), so the imports are paid once per render, not once per
stack (about half a second each). The provider SDKs load their modules lazily, on the
first attribute access, so a bare import would leave most of the work to every stack:
each module the program uses is touched here. ``tests/test_render_engine.py`` renders
the real stacks after importing this module and fails on any SDK or component module
the render still had to import, so a new one in the program shows up here.

Imports only: nothing here creates a resource, an event loop or SDK state.
"""

from __future__ import annotations

import pulumi
import pulumi.runtime.resource
import pulumi_aws
import pulumi_github
import pulumi_kubernetes
import pulumi_random
import pulumi_tls

import components.access
import components.dashboards
import components.delivery
import components.events
import components.github_access
import components.image_updater
import components.namespaces
import components.platform
import components.registry
import components.render.engine
import components.render.mocks
import components.sensors
import components.slack_relay
import components.workflows

# Touching one member of each lazily loaded module loads it.
LOADED = (
    pulumi.ComponentResource,
    pulumi.runtime.resource.register_resource,
    pulumi_aws.ecr.Repository,
    pulumi_aws.eks.PodIdentityAssociation,
    pulumi_aws.iam.Role,
    pulumi_github.RepositoryWebhook,
    pulumi_kubernetes.admissionregistration.v1.ValidatingAdmissionPolicy,
    pulumi_kubernetes.apiextensions.CustomResource,
    pulumi_kubernetes.core.v1.ConfigMap,
    pulumi_kubernetes.helm.v3.Release,
    pulumi_kubernetes.meta.v1.ObjectMetaArgs,
    pulumi_kubernetes.networking.v1.Ingress,
    pulumi_kubernetes.policy.v1.PodDisruptionBudget,
    pulumi_kubernetes.rbac.v1.Role,
    pulumi_kubernetes.yaml.v2.ConfigGroup,
    pulumi_random.RandomPassword,
    pulumi_tls.PrivateKey,
    components.access.Access,
    components.dashboards.ReleaseDashboard,
    components.delivery.ServiceDelivery,
    components.events.EventIntake,
    components.github_access.SourceRepository,
    components.image_updater.ImageUpdaters,
    components.namespaces.Namespaces,
    components.platform.ArgoPlatform,
    components.registry.ServiceRegistry,
    components.render.engine.render_stack_in_process,
    components.render.mocks.RenderMonitor,
    components.sensors.ServiceSensor,
    components.slack_relay.SlackRelay,
    components.workflows.ReleaseWorkflows,
)
