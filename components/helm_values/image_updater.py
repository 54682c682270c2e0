"""Helm values of the argocd-image-updater chart.

Owns: the image updater's values: its ServiceAccount name (the registry identity is
bound to it), the ECR login script and its credentials' lifetime, the AWS CLI cache
volume and the git identity of its write-back commits.

Does not own: the registry identity (`components.image_updater`,
`components.registry`), the ImageUpdater objects (`components.image_updater`).
"""

from __future__ import annotations

from components.config import AwsSettings, Settings
from components.helm_values.common import (
    Values,
    resources,
)

# --- Argo CD Image Updater ------------------------------------------------------------------

# The chart's ServiceAccount, named explicitly: the registry identity (Pod Identity
# association or IRSA trust) is bound to exactly this name in the Argo CD namespace.
IMAGE_UPDATER_SERVICE_ACCOUNT = "argocd-image-updater"
ECR_LOGIN_SCRIPT = "ecr-login.sh"
# ECR authorization tokens live 12 hours; the image updater runs the login script
# again (in-process) after this long, so no token outlives its validity and no
# refresh job or stored token exists.
ECR_CREDS_EXPIRE = "11h"
# The AWS CLI caches the credentials of an assumed role under ~/.aws/cli/cache; the
# chart's root filesystem is read-only (home is /app), so give it a writable one.
AWS_CLI_CACHE_VOLUME = "aws-cli-cache"
AWS_CLI_CACHE_PATH = "/app/.aws"
IMAGE_UPDATER_GIT_USER = "release-pipeline-image-updater"
IMAGE_UPDATER_GIT_EMAIL = "release-pipeline-image-updater@users.noreply.github.com"


def ecr_registry_host(aws: AwsSettings) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com` (`.amazonaws.com.cn` in the China regions)."""
    suffix = "amazonaws.com.cn" if aws.region.startswith("cn-") else "amazonaws.com"
    return f"{aws.account_id}.dkr.ecr.{aws.region}.{suffix}"


def ecr_login_script(aws: AwsSettings) -> str:
    """The `ext:` credentials script: the pod's own AWS identity (EKS Pod Identity or
    IRSA, through the AWS CLI's default credential chain) asks ECR for a token and
    prints `AWS:<token>` to the image updater on stdout: nothing is written to a
    file, an argument or a log. The AWS CLI is part of the image updater's image.
    Ref: https://argocd-image-updater.readthedocs.io/en/stable/configuration/registries/
    """
    # The token goes through a variable, not a pipe: a failed call then fails the
    # script (`set -e`) instead of decoding nothing into empty credentials.
    return (
        "#!/bin/sh\n"
        "set -eu\n"
        f"token=$(aws ecr get-authorization-token --region {aws.region} --output text "
        "--query 'authorizationData[0].authorizationToken')\n"
        "printf '%s' \"$token\" | base64 -d\n"
    )


def image_updater_values(settings: Settings) -> Values:
    """Values of the argocd-image-updater chart (only deployed when a service opts in).

    One replica (upstream advises against more); CRDs are Pulumi's; one registry,
    this stack's ECR, logged in to by `ecr_login_script` with the pod's own AWS
    identity, so there is no stored registry token and no 12-hour refresh job. The
    ServiceAccount gets its IRSA annotation from `components.image_updater` (an ARN
    is an Output); with Pod Identity it needs none. Git write-back credentials are
    named per ImageUpdater object (`git:secret:...`), not here.
    Ref: https://github.com/argoproj/argo-helm/tree/main/charts/argocd-image-updater
    """
    size = settings.sizes.image_updater
    host = ecr_registry_host(settings.aws)
    return {
        "crds": {"install": False, "keep": True},
        "replicaCount": size.replicas,
        "resources": resources(size),
        "serviceAccount": {"create": True, "name": IMAGE_UPDATER_SERVICE_ACCOUNT},
        "config": {
            "git.user": IMAGE_UPDATER_GIT_USER,
            "git.email": IMAGE_UPDATER_GIT_EMAIL,
            "log.level": "info",
            "registries": [
                {
                    "name": "ECR",
                    "api_url": f"https://{host}",
                    "prefix": host,
                    "ping": True,
                    "insecure": False,
                    "credentials": f"ext:/scripts/{ECR_LOGIN_SCRIPT}",
                    "credsexpire": ECR_CREDS_EXPIRE,
                }
            ],
        },
        "authScripts": {"enabled": True, "scripts": {ECR_LOGIN_SCRIPT: ecr_login_script(settings.aws)}},
        "volumes": [{"name": AWS_CLI_CACHE_VOLUME, "emptyDir": {}}],
        "volumeMounts": [{"name": AWS_CLI_CACHE_VOLUME, "mountPath": AWS_CLI_CACHE_PATH}],
        "metrics": {
            "enabled": settings.metrics.enabled,
            "serviceMonitor": {"enabled": settings.metrics.enabled and settings.metrics.service_monitor},
        },
    }
