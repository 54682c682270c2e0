"""`ReleaseWorkflows`: registers a stack's release and build WorkflowTemplates with Pulumi.

Owns the Pulumi resources, once per stack: per service the release WorkflowTemplate
(workflows namespace) and the build WorkflowTemplate (build namespace, its spec waiting
for the ECR repository's URL and name); the step scripts ConfigMap in each of the two
namespaces (kept on delete: running Workflows still mount the old one); the Slack token
Secret of the notify step, in the workflows namespace (a pod mounts only Secrets of its
own namespace; the platform's Slack Secrets live in the Argo CD and Rollouts namespaces).
A `scripts/` that cannot ship ends the program with a message, not a traceback.

Does not own: what the templates hold (`release`, `build`, built as plain dicts with
hera's models of Argo Workflows), the ConfigMap's content (`scripts`), the accounts
(`components.access`, `components.registry`), the checkout-key and helm-writer Secrets
(`components.github_access`), the Argo Workflows controller (`components.helm_values`).

Decisions: docs/decisions/0350-step-scripts-in-a-hashed-config-map.md,
docs/decisions/0351-templates-built-with-hera-models.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import names
from components.config import Service, Settings
from components.workflows.build import build_template
from components.workflows.pods import (
    ARGO_API_VERSION,
    SLACK_SECRET_NAME,
    SLACK_TOKEN_KEY,
    Manifest,
    labels,
    template_metadata,
)
from components.workflows.release import release_template
from components.workflows.scripts import (
    SCRIPTS_PROJECT_DIR,
    ScriptsError,
    read_scripts,
    scripts_config_map,
    scripts_config_map_name,
)

TYPE = "release-pipeline:components:ReleaseWorkflows"


@dataclass(frozen=True)
class ReleaseWorkflowsArgs:
    """What the release and build WorkflowTemplates of a stack are made from."""

    settings: Settings
    """The stack's settings: namespaces, hostnames, helm branch, timeouts, sizes, tool images."""
    services: tuple[Service, ...]
    """This environment's services (`ServicesFile.for_environment`)."""
    namespaces: Mapping[str, pulumi.Input[str]]
    """Platform namespace role -> name, as `Namespaces.platform` gives it (`workflows`,
    `build`): objects in a namespace wait for it."""
    repository_urls: Mapping[str, pulumi.Input[str]]
    """Service -> its ECR repository URL (`ServiceRegistry.repository_url`)."""
    repository_names: Mapping[str, pulumi.Input[str]]
    """Service -> its ECR repository name (`ServiceRegistry.repository_name`)."""
    slack_token: pulumi.Input[str]
    """Slack bot token (config secret `slackToken`): a secret Output."""
    argo_depends_on: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Argo kind -> what a custom resource of that kind waits for; `WorkflowTemplate`
    (its CRD and the Argo Workflows release) is the one used here."""
    scripts_dir: Path = SCRIPTS_PROJECT_DIR
    """The step scripts, shipped as they are."""


class ReleaseWorkflows(pulumi.ComponentResource):
    """Per service, the release and build WorkflowTemplates; the scripts ConfigMaps and Slack Secret."""

    release_templates: dict[str, str]
    """Service -> its release WorkflowTemplate (workflows namespace), what the Sensor references."""
    build_templates: dict[str, str]
    """Service -> its build WorkflowTemplate (build namespace)."""
    scripts_config_map: str
    """Name of the scripts ConfigMap (the same in both namespaces)."""

    def __init__(self, name: str, args: ReleaseWorkflowsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        settings = args.settings
        services = tuple(sorted(args.services, key=lambda s: s.name))
        try:
            files = read_scripts(args.scripts_dir)
        except (OSError, ScriptsError) as err:
            # RunError ends the program with this message and no Python traceback.
            raise pulumi.RunError(f"invalid project: {err}") from None
        super().__init__(TYPE, name, None, opts)

        argo_depends = list(args.argo_depends_on.get("WorkflowTemplate", ()))
        config_map_name = scripts_config_map_name(files)
        config_maps = {
            role: self._config_map(f"{name}-scripts-{role}",
                                   scripts_config_map(files, getattr(settings.namespaces, role)),
                                   args.namespaces[role])
            for role in ("build", "workflows")
        }
        slack = k8s.core.v1.Secret(
            f"{name}-slack-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SLACK_SECRET_NAME, namespace=args.namespaces["workflows"], labels=labels("notify"),
            ),
            type="Opaque",
            string_data={SLACK_TOKEN_KEY: pulumi.Output.secret(args.slack_token)},
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.release_templates = {}
        self.build_templates = {}
        for service in services:
            release = release_template(service, settings, config_map_name)
            self._template(f"{name}-{service.name}-release", release, args.namespaces["workflows"],
                           release["spec"], [*argo_depends, config_maps["workflows"], slack])
            self.release_templates[service.name] = release["metadata"]["name"]

            def build_spec(values: list[Any], service: Service = service) -> Manifest:
                url, repository = values
                return build_template(service, settings, config_map_name, url, repository)["spec"]

            # The spec waits for the repository's URL and name; the metadata does not.
            spec = pulumi.Output.all(args.repository_urls[service.name],
                                     args.repository_names[service.name]).apply(build_spec)
            build_metadata = template_metadata(
                names.build_template_name(service.name), settings.namespaces.build, "build-workflow", service.name,
            ).model_dump(by_alias=True, exclude_none=True)
            self._template(f"{name}-{service.name}-build", {"metadata": build_metadata}, args.namespaces["build"],
                           spec, [*argo_depends, config_maps["build"]])
            self.build_templates[service.name] = build_metadata["name"]

        self.scripts_config_map = config_map_name
        self.register_outputs({
            "release_templates": self.release_templates,
            "build_templates": self.build_templates,
            "scripts_config_map": self.scripts_config_map,
        })

    def _config_map(self, logical: str, manifest: Manifest, namespace: pulumi.Input[str]) -> k8s.core.v1.ConfigMap:
        metadata = manifest["metadata"]
        return k8s.core.v1.ConfigMap(
            logical,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=metadata["name"], namespace=namespace, labels=metadata["labels"]),
            immutable=True,
            data=manifest["data"],
            # Running Workflows keep the template they started with, and with it the old
            # ConfigMap's name: a changed script must not delete the old one under them.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

    def _template(self, logical: str, manifest: Manifest, namespace: pulumi.Input[str],
                  spec: pulumi.Input[Manifest], depends_on: list[pulumi.Resource]) -> None:
        metadata = manifest["metadata"]
        k8s.apiextensions.CustomResource(
            logical,
            api_version=ARGO_API_VERSION,
            kind="WorkflowTemplate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=metadata["name"], namespace=namespace, labels=metadata["labels"]),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
