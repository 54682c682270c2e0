"""Names of things in Kubernetes, AWS and GitHub, made and checked in one place.

Owns: the naming rules (DNS-1123 labels and subdomains, IAM's 64 characters, ECR's
repository names) and the functions that derive every physical name from stable keys
(service name, environment, role). Does not own: logical Pulumi names (those are
`f"{service}-{role}"` at the call site).
"""

from __future__ import annotations

import hashlib
import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_SUBDOMAIN_MAX = 253
# GitHub: owner is alphanumerics and single hyphens; a repository name is
# alphanumerics, '-', '_' and '.', but never "." or "..".
GITHUB_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9_.-]{1,100}$")
# ECR: lowercase segments separated by '/', each of [a-z0-9] with single '.', '_' or '-'.
ECR_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
ECR_REPOSITORY_MAX = 256
IAM_NAME_MAX = 64


def is_dns1123_label(value: str) -> bool:
    """True for a valid Kubernetes label-style name (namespaces, services, ...)."""
    return len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value: str) -> bool:
    """True for a valid Kubernetes object name of most kinds."""
    return len(value) <= DNS1123_SUBDOMAIN_MAX and bool(DNS1123_SUBDOMAIN.match(value))


def check_k8s_name(value: str, *, label: bool = True) -> str:
    """Return `value` if it is a valid Kubernetes name, else raise ValueError."""
    ok = is_dns1123_label(value) if label else is_dns1123_subdomain(value)
    if not ok:
        kind = "DNS-1123 label" if label else "DNS-1123 subdomain"
        raise ValueError(f"{value!r} is not a valid {kind}")
    return value


def bounded(name: str, limit: int, *, separator: str = "-") -> str:
    """`name` itself if it fits in `limit`, else a prefix plus a stable 8-hex hash.

    Keeps names unique and deterministic when a long service name meets a length
    limit (IAM's 64, Kubernetes' 63), instead of failing at deploy time.
    """
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = name[: limit - len(digest) - len(separator)].rstrip("-_.")
    return f"{head}{separator}{digest}"


def ecr_repository_name(prefix: str, image_repository: str) -> str:
    """ECR repository of one service in one stack: `<prefix>/<image repository>`.

    The prefix (by default the environment name) keeps the four stacks from colliding
    when they share one AWS account.
    """
    return f"{prefix}/{image_repository}" if prefix else image_repository


def iam_role_name(environment: str, service: str, role: str) -> str:
    """IAM role name within IAM's 64 characters, unique per environment and service."""
    return bounded(f"release-pipeline-{environment}-{service}-{role}", IAM_NAME_MAX)


def repo_slug(repo: str) -> str:
    """`Owner/Repo_Name` -> `owner-repo-name`: a DNS-1123 label for one repository.

    Used for event names, webhook endpoints and Secret names, so services that share a
    repository share these too.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", repo.lower()).strip("-")
    return bounded(slug, 40)


# ------------------------------------------------------------------------------
# Names one component gives an object and another refers to. Kept here, together,
# so a Role's resourceNames, a Sensor's trigger and a WorkflowTemplate's secret
# references cannot drift from the objects they name.

SENSOR_SERVICE_ACCOUNT = "sensor-workflows"  # events namespace: creates release Workflows
EXECUTOR_SERVICE_ACCOUNT = "workflow-executor"  # workflows and build namespaces: executor only
GIT_SHA_LENGTH = 40


def application_name(service: str, environment: str) -> str:
    """Argo CD Application of a service in an environment: `<service>-<env>`."""
    return check_k8s_name(f"{service}-{environment}", label=False)


def rollout_name(service: str) -> str:
    """The service's Rollout, in the service's namespace: the service name."""
    return service


def app_project_name(team: str) -> str:
    """AppProject of a team: the `project` of its services, as services.yaml names it."""
    return check_k8s_name(team)


def release_service_account_name(service: str) -> str:
    """ServiceAccount of a service's release Workflow (workflows namespace)."""
    return check_k8s_name(bounded(f"release-{service}", DNS1123_LABEL_MAX))


def builder_service_account_name(service: str) -> str:
    """ServiceAccount of a service's image build (build namespace), bound to its push role."""
    return check_k8s_name(bounded(f"builder-{service}", DNS1123_LABEL_MAX))


def deploy_key_secret_name(repo: str) -> str:
    """Secret with the read-only checkout key of a source repository."""
    return check_k8s_name(f"source-{repo_slug(repo)}", label=False)


def argocd_secret_name(repo: str) -> str:
    """Argo CD repository Secret (read-only key) of a helm repository."""
    return check_k8s_name(f"repo-{repo_slug(repo)}", label=False)


def writer_secret_name(repo: str) -> str:
    """Secret with this environment's GitHub App credentials for a helm repository."""
    return check_k8s_name(f"helm-writer-{repo_slug(repo)}", label=False)


def release_template_name(service: str) -> str:
    """WorkflowTemplate of a service's release (workflows namespace)."""
    return check_k8s_name(bounded(f"{service}-release", DNS1123_LABEL_MAX))


def build_template_name(service: str) -> str:
    """WorkflowTemplate of a service's image build (build namespace)."""
    return check_k8s_name(bounded(f"{service}-build", DNS1123_LABEL_MAX))


def workflow_name_prefix(service: str, environment: str) -> str:
    """`<service>-<env>-`, bounded so that the prefix plus a full git sha is a DNS-1123 label.

    The release Workflow is named prefix + merge commit sha: deterministic, so a
    redelivered webhook (or the same commit seen as PR and as push) hits
    AlreadyExists instead of starting a second build.
    """
    return bounded(f"{service}-{environment}", DNS1123_LABEL_MAX - GIT_SHA_LENGTH - 1) + "-"


def workflow_name(service: str, environment: str, sha: str) -> str:
    """The release Workflow of one commit of one service in one environment."""
    return check_k8s_name(workflow_name_prefix(service, environment) + sha)
