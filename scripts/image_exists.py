"""Is the image for this commit already in ECR? Output `exists` = "true" / "false".

Step script of the build Workflow (docs/release-contract.md, sections 3 and 4); runs in
the `release-tools` image as `python3 image_exists.py`:

    REPOSITORY  ECR repository name (not the URL), e.g. dev/checkout
    REVISION    full commit sha (40 lowercase hex): the image tag
    AWS_REGION  region of the repository
    OUTPUT_DIR  where outputs go, default /tmp/outputs

Output: `$OUTPUT_DIR/exists`.

Credentials come from the pod's identity through boto3's default chain (EKS Pod
Identity or IRSA); this script never reads or logs one. Three answers only: the tag is
there ("true"), ECR says ImageNotFoundException ("false"), or anything else - no such
repository, access denied, throttling that outlasted the retries - which fails the
step, so a broken permission never silently rebuilds nor silently skips a build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
import _ecr
from _common import StepError, commit_sha, write_output

READ_TIMEOUT_SECONDS = 30


def log(message: str) -> None:
    print(f"image_exists: {message}", file=sys.stderr, flush=True)


def image_exists(client: object, repository: str, tag: str) -> bool:
    """True if `repository:tag` exists; False only on ImageNotFoundException; else StepError."""
    try:
        response = client.describe_images(  # type: ignore[attr-defined]
            repositoryName=repository, imageIds=[{"imageTag": tag}]
        )
    except ClientError as error:
        if _ecr.error_code(error) == "ImageNotFoundException":
            return False
        raise _ecr.failure(f"DescribeImages on {repository}", error) from None
    except BotoCoreError as error:
        raise _ecr.failure(f"DescribeImages on {repository}", error) from None
    if not response.get("imageDetails"):
        raise StepError(f"ECR DescribeImages on {repository} answered without an error and without the image")
    return True


def main() -> int:
    try:
        repository = _ecr.repository(os.environ, "REPOSITORY")
        revision = commit_sha(os.environ)
        client = _ecr.client(_ecr.region(os.environ), READ_TIMEOUT_SECONDS)
        exists = image_exists(client, repository, revision)
        log(f"{repository}:{revision} {'exists' if exists else 'does not exist'}")
        write_output("exists", "true" if exists else "false")
    except StepError as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
