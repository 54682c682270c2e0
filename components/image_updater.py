"""Registry-driven updates: Argo CD Image Updater for the services that ask for it.

A service may set `imageUpdater.enabled: true` in services.yaml for images pushed to
its ECR repository by something other than this pipeline; the image updater then commits
newer tags to this environment's branch of the helm repository, to the same values file
and key the promote step edits. Off by default; with no service opted in, nothing of the
image updater exists in the stack.

Owns (only when some service of the stack opts in):
- `ImageUpdaterAccess`: an IAM role allowed to log in to ECR and read exactly the
  opted-in services' repositories, bound to the chart's ServiceAccount
  (`argocd-image-updater`, Argo CD namespace) through Pod Identity or IRSA; and this
  environment's GitHub App credentials in a Secret of the Argo CD namespace, in the
  form the image updater reads;
- `ImageUpdaters`: one `ImageUpdater` object per opted-in service, named like and
  matching exactly the service's Application `<service>-<env>`;
- the pure builders of both (manifests and policies; no Pulumi).

Does not own: the CRD and the Helm release (`components.platform`, from
`components.helm_values.image_updater_values`), the ECR repositories
(`components.registry`), the branch ruleset that lets the App onto this branch and
no other (`components.github_access`), the Application (`components.delivery`).

Decisions: docs/decisions/0414-image-updater-crd-credentials-and-write-back.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import names
from components.access import labels
from components.config import (
    SHA_TAG_REGEXP,
    HelmWriterSettings,
    Irsa,
    SemverTagPolicy,
    Service,
    Settings,
    ShaTagPolicy,
)
from components.delivery import values_path_in_repo
from components.github_access import split_repo
from components.helm_values import IMAGE_UPDATER_SERVICE_ACCOUNT
from components.platform import ImageUpdaterRelease
from components.registry import LOGIN_ACTION, bind_identity, policy_json, trust_policy

ACCESS_TYPE = "release-pipeline:components:ImageUpdaterAccess"
TYPE = "release-pipeline:components:ImageUpdaters"

API_VERSION = "argocd-image-updater.argoproj.io/v1alpha1"
KIND = "ImageUpdater"
GIT_SECRET_NAME = "image-updater-helm-writer"
# Secret keys of GitHub App credentials, as the image updater reads them.
# Ref: https://argocd-image-updater.readthedocs.io/en/stable/basics/update-methods/#specifying-git-credentials
GITHUB_APP_ID = "githubAppID"
GITHUB_APP_INSTALLATION_ID = "githubAppInstallationID"
GITHUB_APP_PRIVATE_KEY = "githubAppPrivateKey"

SHA_STRATEGY = "newest-build"
SEMVER_STRATEGY = "semver"
# What finding and comparing tags needs: list the tags, describe them, fetch the
# manifest and the config blob (creation date, platforms). No push, no delete.
# Ref: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html
READ_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
)
ROLE_PURPOSE = "image-updater"
Manifest = dict[str, Any]


# --------------------------------------------------------------------------- pure builders


def opted_in(services: Iterable[Service]) -> list[Service]:
    """The services that ask for registry-driven updates, sorted by name."""
    return sorted((s for s in services if s.image_updater.enabled), key=lambda s: s.name)


def image_updater_name(service: Service, settings: Settings) -> str:
    """The ImageUpdater object of a service: named like its Application, `<service>-<env>`."""
    return names.application_name(service.name, settings.environment)


def git_https_url(repo: str) -> str:
    """HTTPS clone URL of a repository: GitHub App credentials work over HTTPS only."""
    owner, name = split_repo(repo)
    return f"https://github.com/{owner}/{name}.git"


def write_back_target(service: Service, settings: Settings) -> str:
    """`helmvalues:/<path in the helm repo>`: the file promote.py edits, from the repository root."""
    return f"helmvalues:/{values_path_in_repo(service, settings)}"


def write_back_method(settings: Settings) -> str:
    """Git write-back with this environment's GitHub App Secret (namespace of the ImageUpdater)."""
    return f"git:secret:{settings.namespaces.argocd}/{GIT_SECRET_NAME}"


def update_settings(policy: ShaTagPolicy | SemverTagPolicy) -> dict[str, str]:
    """`commonUpdateSettings` of the service's image, from its tag policy (decision 0414)."""
    if isinstance(policy, SemverTagPolicy):
        return {"updateStrategy": SEMVER_STRATEGY}
    return {"updateStrategy": SHA_STRATEGY, "allowTags": f"regexp:{SHA_TAG_REGEXP}"}


def image_name(service: Service, repository_url: str) -> str:
    """The tracked image: the ECR repository, with the semver constraint when there is one."""
    policy = service.image_updater.tag_policy
    if isinstance(policy, SemverTagPolicy):
        return f"{repository_url}:{policy.constraint}"
    return repository_url


def image_updater_manifest(service: Service, settings: Settings, repository_url: str) -> Manifest:
    """The ImageUpdater object of one opted-in service (decision 0414)."""
    if not service.image_updater.enabled:
        raise ValueError(f"service {service.name!r} does not opt in to the image updater")
    application = names.application_name(service.name, settings.environment)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": image_updater_name(service, settings),
            "namespace": settings.namespaces.argocd,
            "labels": labels("image-updater", service=service.name, environment=settings.environment),
        },
        "spec": {
            "applicationRefs": [
                {
                    # The Application's exact name: no glob character can occur in it.
                    "namePattern": application,
                    "images": [
                        {
                            "alias": service.name,
                            "imageName": image_name(service, repository_url),
                            "commonUpdateSettings": update_settings(service.image_updater.tag_policy),
                            "manifestTargets": {
                                "helm": {"name": service.image_name_key, "tag": service.helm.image_tag_key}
                            },
                        }
                    ],
                    "writeBackConfig": {
                        "method": write_back_method(settings),
                        "gitConfig": {
                            "repository": git_https_url(service.helm.repo),
                            "branch": settings.helm_branch,
                            "writeBackTarget": write_back_target(service, settings),
                        },
                    },
                }
            ],
        },
    }


def read_policy(repository_arns: Sequence[str]) -> dict[str, Any]:
    """Inline policy of the image updater's role: log in, and read exactly these repositories."""
    if not repository_arns:
        raise ValueError("the image updater's role needs at least one repository")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "RegistryLogin", "Effect": "Allow", "Action": [LOGIN_ACTION], "Resource": "*"},
            {
                "Sid": "ReadOptedInRepositories",
                "Effect": "Allow",
                "Action": sorted(READ_ACTIONS),
                "Resource": sorted(set(repository_arns)),
            },
        ],
    }


def image_updater_trust_policy(settings: Settings, namespace: str) -> dict[str, Any]:
    """The builder roles' trust policy (Pod Identity or IRSA), for the image updater's ServiceAccount."""
    document = copy.deepcopy(
        trust_policy(settings.identity, settings.cluster.name, namespace, IMAGE_UPDATER_SERVICE_ACCOUNT)
    )
    for statement in document["Statement"]:
        statement["Sid"] = "IrsaImageUpdater" if isinstance(settings.identity, Irsa) else "EksPodIdentityImageUpdater"
    return document


def git_credentials_data(writer: HelmWriterSettings) -> dict[str, str]:
    """The non-secret half of the write-back Secret (the private key is added as a secret Output)."""
    return {GITHUB_APP_ID: str(writer.app_id), GITHUB_APP_INSTALLATION_ID: str(writer.installation_id)}


# --------------------------------------------------------------------------- components


@dataclass(frozen=True)
class ImageUpdaterAccessArgs:
    """The image updater's AWS identity and git credentials, for the opted-in services."""

    settings: Settings
    """The stack's settings: environment, identity mode, cluster, helm writer App."""
    repository_arns: Mapping[str, pulumi.Input[str]]
    """ECR repository ARN of each opted-in service (and of no other), by service name."""
    argocd_namespace: pulumi.Input[str]
    """The Argo CD namespace: the image updater's ServiceAccount and the git Secret."""
    writer_private_key: pulumi.Input[str]
    """This environment's GitHub App private key (config secret `helmWriterPrivateKey`)."""


class ImageUpdaterAccess(pulumi.ComponentResource):
    """IAM role (read the opted-in repositories), its binding to the ServiceAccount, and the git Secret."""

    role_arn: pulumi.Output[str]
    git_secret: k8s.core.v1.Secret
    """The write-back credentials: each ImageUpdater object waits for it."""
    git_secret_name: pulumi.Output[str]
    release: ImageUpdaterRelease
    """What `ArgoPlatformArgs.image_updater` takes: ServiceAccount annotations, what to wait for."""

    def __init__(self, name: str, args: ImageUpdaterAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ACCESS_TYPE, name, None, opts)
        settings = args.settings
        if not args.repository_arns:
            raise ValueError("ImageUpdaterAccess without opted-in services: create nothing instead")
        tags = {"component": ROLE_PURPOSE}

        role = aws.iam.Role(
            f"{name}-role",
            name=names.iam_role_name(settings.environment, "argocd", ROLE_PURPOSE),
            description=f"Argo CD Image Updater ({settings.environment}): read the opted-in ECR repositories",
            assume_role_policy=pulumi.Output.from_input(args.argocd_namespace).apply(
                lambda namespace: policy_json(image_updater_trust_policy(settings, namespace))
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        arns = [args.repository_arns[service] for service in sorted(args.repository_arns)]
        role_policy = aws.iam.RolePolicy(
            f"{name}-read-policy",
            name="read-opted-in-repositories",
            role=role.id,
            policy=pulumi.Output.all(*arns).apply(lambda values: policy_json(read_policy(list(values)))),
            opts=pulumi.ResourceOptions(parent=self),
        )

        annotations, association = bind_identity(
            self, name, settings.identity, cluster_name=settings.cluster.name,
            namespace=args.argocd_namespace, service_account=IMAGE_UPDATER_SERVICE_ACCOUNT,
            role=role, role_policy=role_policy, tags=tags,
        )
        waits: list[pulumi.Resource] = [role_policy, *association]

        git_secret = k8s.core.v1.Secret(
            f"{name}-git-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=GIT_SECRET_NAME,
                namespace=args.argocd_namespace,
                labels=labels("image-updater-git-credentials"),
            ),
            type="Opaque",
            string_data=git_credentials_data(settings.helm_writer)
            | {GITHUB_APP_PRIVATE_KEY: pulumi.Output.secret(args.writer_private_key)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        waits.append(git_secret)

        self.role_arn = role.arn
        self.git_secret = git_secret
        self.git_secret_name = git_secret.metadata.name
        self.release = ImageUpdaterRelease(service_account_annotations=annotations, depends_on=tuple(waits))
        self.register_outputs({"role_arn": self.role_arn, "git_secret_name": self.git_secret_name})


@dataclass(frozen=True)
class ImageUpdatersArgs:
    """The ImageUpdater objects of the opted-in services."""

    settings: Settings
    """The stack's settings: environment, helm branch, values file, Argo CD namespace."""
    services: tuple[Service, ...]
    """The opted-in services (`opted_in`); one object each."""
    repository_urls: Mapping[str, pulumi.Input[str]]
    """ECR repository URL of each service, by service name."""
    argocd_namespace: pulumi.Input[str]
    """The Argo CD namespace (the Namespace's Output, so the objects wait for it)."""
    depends_on: tuple[pulumi.Resource, ...]
    """`platform.depends_for("ImageUpdater")` (CRD and release) and the git Secret."""


class ImageUpdaters(pulumi.ComponentResource):
    """One ImageUpdater object per opted-in service, after the CRD and the image updater."""

    names: list[str]

    def __init__(self, name: str, args: ImageUpdatersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        settings = args.settings
        self.names = []
        for service in sorted(args.services, key=lambda s: s.name):
            # Built with a placeholder URL for the metadata; the spec is rebuilt from the real one.
            manifest = image_updater_manifest(service, settings, "")
            spec = pulumi.Output.from_input(args.repository_urls[service.name]).apply(
                _spec_of(service, settings)
            )
            metadata = manifest["metadata"]
            k8s.apiextensions.CustomResource(
                f"{name}-{service.name}",
                api_version=API_VERSION,
                kind=KIND,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=metadata["name"], namespace=args.argocd_namespace, labels=metadata["labels"]
                ),
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
            self.names.append(metadata["name"])
        self.register_outputs({"names": self.names})


def _spec_of(service: Service, settings: Settings) -> Callable[[str], dict[str, Any]]:
    """The ImageUpdater spec of `service` once its repository URL is known."""

    def spec(repository_url: str) -> dict[str, Any]:
        result: dict[str, Any] = image_updater_manifest(service, settings, repository_url)["spec"]
        return result

    return spec
