"""ECR for image_exists.py and reuse_image.py: their inputs, the client, ECR's errors as StepError.

Not a step: imported by the scripts beside it. Credentials come from the pod's
identity through boto3's default chain (EKS Pod Identity or IRSA); nothing here
reads or logs one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import boto3
from _common import StepError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# ECR's repository name pattern (same as components/names.py).
ECR_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
REGION = re.compile(r"^[a-z]{2,4}(?:-[a-z]+)+-\d+$")


def repository(environ: Mapping[str, str], name: str) -> str:
    """The ECR repository *name* (not its URL) in `name`, or StepError naming the variable."""
    value = environ.get(name, "")
    if not ECR_REPOSITORY.fullmatch(value) or len(value) > 256 or ".dkr.ecr." in value:
        raise StepError(f"{name} must be an ECR repository name (not its URL), got {value!r}")
    return value


def region(environ: Mapping[str, str]) -> str:
    """AWS_REGION, or StepError."""
    value = environ.get("AWS_REGION", "")
    if not REGION.fullmatch(value):
        raise StepError(f"AWS_REGION must be an AWS region, got {value!r}")
    return value


def client(region_name: str, read_timeout: int) -> Any:
    """An ECR client. Standard retry mode backs off on throttling and transient errors;
    AWS_MAX_ATTEMPTS in the environment, when set, takes precedence (botocore reads it itself)."""
    config = Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=read_timeout)
    try:
        return boto3.client("ecr", region_name=region_name, config=config)
    except BotoCoreError as error:
        raise StepError(f"cannot create an ECR client: {error}") from None


def error_code(error: ClientError) -> str:
    """ECR's error code, e.g. ImageNotFoundException."""
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def failure(what: str, error: ClientError | BotoCoreError) -> StepError:
    """`ECR <what> failed: <code>: <message>` (or botocore's own text): the error to raise."""
    if isinstance(error, ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return StepError(f"ECR {what} failed: {error_code(error)}: {message}")
    return StepError(f"ECR {what} failed: {error}")
