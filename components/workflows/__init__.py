"""The release and build WorkflowTemplates of each service, and what their pods mount.

Owns, per service and stack (docs/release-contract.md, sections 2 and 3), the release
WorkflowTemplate `<service>-release` (workflows namespace: change check -> unit tests ->
image build as a child Workflow -> promote -> verify, and the Slack notice on exit) and
the build WorkflowTemplate `<service>-build` (build namespace: image check -> rootless
BuildKit build and push); once per stack, the step scripts ConfigMap in both namespaces
and the notify step's Slack token Secret.

Modules: `pods` (pod and container building blocks), `timing` (retries, deadlines),
`release`, `build`, one module per optional feature (`newest_wins`, `slack_threads`, `metrics`),
`scripts` (the ConfigMap) and `component` (`ReleaseWorkflows`, the only one that touches
Pulumi; the others are pure builders). This package re-exports what the program and the
tests import from `components.workflows`.

Does not own: the ServiceAccounts and Roles the pods run as (`components.access`, the
builder account `components.registry`), the checkout-key and helm-writer Secrets
(`components.github_access`), the scripts (`scripts/`), the images
(`components.versions`), the Sensor (`components.sensors`), the Argo Workflows
controller's settings (`components.helm_values`).

Decisions: docs/decisions/0351-templates-built-with-hera-models.md; each module links
those it implements (docs/decisions/0340 to 0350, 0100, 0102).
"""

from __future__ import annotations

from components.workflows.build import build_template, buildctl_args
from components.workflows.component import ReleaseWorkflows, ReleaseWorkflowsArgs
from components.workflows.metrics import METRIC_HELP
from components.workflows.newest_wins import NEWEST_CHECK, SUPERSEDE
from components.workflows.pods import (
    ENCODED_ENV_SUFFIX,
    ENCODED_PARAMETERS,
    OUTPUT_DIR,
    PAYLOAD_PARAMETERS,
    SCRIPT_FILE_MODE,
    SCRIPTS_DIR,
    SLACK_SECRET_NAME,
    SLACK_TOKEN_KEY,
    STEP_UID,
)
from components.workflows.release import (
    child_build_workflow,
    exit_handler,
    mutex_name,
    release_template,
    release_workflow_seconds,
)
from components.workflows.scripts import (
    SCRIPTS_CONFIG_MAP_PREFIX,
    ScriptsError,
    read_scripts,
    scripts_config_map,
    scripts_config_map_name,
)
from components.workflows.slack_threads import ANNOUNCE, SLACK_STAGE, THREAD_OUTPUT
from components.workflows.timing import MARGIN_SECONDS, attempts_seconds, retry_strategy, step_seconds

__all__ = [
    "ANNOUNCE",
    "ENCODED_ENV_SUFFIX",
    "ENCODED_PARAMETERS",
    "MARGIN_SECONDS",
    "METRIC_HELP",
    "NEWEST_CHECK",
    "OUTPUT_DIR",
    "PAYLOAD_PARAMETERS",
    "SCRIPTS_CONFIG_MAP_PREFIX",
    "SCRIPTS_DIR",
    "SCRIPT_FILE_MODE",
    "SLACK_SECRET_NAME",
    "SLACK_STAGE",
    "SLACK_TOKEN_KEY",
    "STEP_UID",
    "SUPERSEDE",
    "THREAD_OUTPUT",
    "ReleaseWorkflows",
    "ReleaseWorkflowsArgs",
    "ScriptsError",
    "attempts_seconds",
    "build_template",
    "buildctl_args",
    "child_build_workflow",
    "exit_handler",
    "mutex_name",
    "read_scripts",
    "release_template",
    "release_workflow_seconds",
    "retry_strategy",
    "scripts_config_map",
    "scripts_config_map_name",
    "step_seconds",
]
