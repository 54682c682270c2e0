"""How long each step and Workflow may take: bounded retries and deadlines.

Owns the `retryStrategy` of every pod template (`RETRIES`, `NOT_RETRIED`), what a step
costs with its retries (`attempts_seconds`) and the deadlines derived from the stack's
settings: a step's, verify's, the build Workflow's and the release's `build` step's.

Does not own: the release Workflow's own deadline (`release.release_workflow_seconds`,
which counts the optional steps), the settings themselves (`components.config`).

Decisions: docs/decisions/0102-retry-transient-steps.md,
docs/decisions/0346-step-and-workflow-deadlines.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from hera.workflows import models as m

from components.config import Settings

MARGIN_SECONDS = 300


@dataclass(frozen=True)
class Retry:
    """A step's bounded `retryStrategy`: `limit` retries when Argo's `policy` says so."""

    limit: int
    policy: str  # Always (the step failed or errored) | OnError (Argo or the pod failed, not the script)


RETRY_BACKOFF_SECONDS = 15
RETRY_BACKOFF_FACTOR = 2
# Template name -> its retries. A pod template not listed here is in NOT_RETRIED.
RETRIES: dict[str, Retry] = {
    "changed": Retry(2, "Always"),  # the checkout (init container) clones from GitHub
    "promote": Retry(2, "Always"),  # GitHub App token, clone and push; a rerun is idempotent
    "verify": Retry(1, "OnError"),  # a lost pod; verify.py retries the API and its failure is the verdict
    "notify": Retry(2, "Always"),  # Slack; the script exits 0, so only a lost pod retries
    "announce": Retry(2, "Always"),
    "slack-stage": Retry(2, "Always"),
    "supersede": Retry(2, "Always"),  # Kubernetes API; listing and stopping again is harmless
    "newest-check": Retry(2, "Always"),
    "image-exists": Retry(2, "Always"),  # ECR API
    "reuse": Retry(2, "Always"),  # ECR API; copying an image by digest again is harmless
    "buildkit": Retry(1, "Always"),  # checkout, base images, push to ECR; a build is long: once
}
# Step templates that are not retried: a failed unit test is the team's code failing; the
# `build` step would start the whole child build again, whose own steps already retry.
NOT_RETRIED = frozenset({"tests", "build"})


def retry_strategy(template: str) -> m.RetryStrategy | None:
    retry = RETRIES.get(template)
    if retry is None:
        return None
    return m.RetryStrategy(
        limit=m.IntOrString(retry.limit),
        retry_policy=retry.policy,
        backoff=m.Backoff(duration=f"{RETRY_BACKOFF_SECONDS}s", factor=m.IntOrString(RETRY_BACKOFF_FACTOR)),
    )


def attempts_seconds(template: str, seconds: int) -> int:
    """How long a step may take with its retries: every attempt's deadline and every backoff."""
    limit = RETRIES[template].limit if template in RETRIES else 0
    backoff = sum(RETRY_BACKOFF_SECONDS * RETRY_BACKOFF_FACTOR ** i for i in range(limit))
    return (1 + limit) * seconds + backoff


def step_seconds(settings: Settings) -> int:
    return settings.release.step_timeout_minutes * 60


def verify_seconds(settings: Settings) -> int:
    """The verify pod's deadline: the script's own timeout plus a margin, at least a step's."""
    return max(step_seconds(settings), settings.release.verify_timeout_minutes * 60 + MARGIN_SECONDS)


def build_workflow_seconds(settings: Settings) -> int:
    """The build Workflow's deadline: image check, reuse and build, one after the other, with retries."""
    step = step_seconds(settings)
    return sum(attempts_seconds(t, step) for t in ("image-exists", "reuse", "buildkit")) + MARGIN_SECONDS


def build_step_seconds(settings: Settings) -> int:
    """How long the release's `build` step waits for its child Workflow."""
    return build_workflow_seconds(settings) + MARGIN_SECONDS
