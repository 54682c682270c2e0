"""One Slack thread per release (opt-in): a parent message, a reply per stage, the result.

Owns the steps the release template gains with `slack.threads` (per stack) or
`slackThreads` (per service): `announce` after the change check posts the parent message
and records the thread, a `<stage>-notice` (template `slack-stage`) after tests, build
and promote replies and updates the parent's state table, and the exit handler's
`notify` runs the same script in mode `finish` for the result. All run
`scripts/slack_thread.py` as the release account (it annotates the Application and the
Rollout).

Does not own: where the steps sit in the DAG and how a Slack step's failure is kept
from failing the release (`release.release_dag`), the message text and the Slack API
(`scripts/slack_thread.py`), the plain notice without threads (`release`).

Decisions: docs/decisions/0349-one-slack-thread-per-release.md.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

from components import helm_values as hv
from components import names
from components.config import Service, Settings
from components.workflows.newest_wins import superseded_by_env
from components.workflows.pods import (
    REVISION,
    SCRIPTS_MOUNT,
    SLACK_SECRET_NAME,
    SLACK_TOKEN_KEY,
    TMP_MOUNT,
    encoded_env,
    env_vars,
    literal,
    mounts_of,
    output_parameter,
    pod_template,
    secret_env,
    slack_channel,
    tool_env,
    tools_container,
    with_secrets,
    workflow_parameter,
    workflow_url,
)

ANNOUNCE = "announce"
SLACK_STAGE = "slack-stage"
THREAD_OUTPUT = "slack-thread"  # announce's output, global: `<channel id>/<ts>`
# Main task -> (its notice task, the state table's line, the line's value).
STAGE_NOTICES: tuple[tuple[str, str, str], ...] = (
    ("tests", "tests", "passed"),
    ("build", "image", "pushed"),
    ("promote", "promoted", "pushed {{tasks.promote.outputs.parameters.revision}}"),
)


def slack_thread_template(mode: str, service: Service, settings: Settings, config_map: str) -> m.Template:
    """`slack_thread.py` as `announce`, `slack-stage` or the exit handler's `notify` (mode `finish`)."""
    application = names.application_name(service.name, settings.environment)
    env = tool_env(
        ("MODE", mode),
        ("CHANNEL", literal(slack_channel(service, settings))),
        ("SERVICE", service.name),
        ("ENVIRONMENT", settings.environment),
        ("REVISION", workflow_parameter(REVISION)),
        ("PR_NUMBER", workflow_parameter("pr-number")),
        encoded_env("PR_TITLE", "pr-title"),
        encoded_env("AUTHOR", "author"),
        ("WORKFLOW_URL", workflow_url(settings)),
        ("ARGOCD_URL", hv.argocd_app_url(settings, application)),
        ("APPLICATION", application),
        ("APPLICATION_NAMESPACE", settings.namespaces.argocd),
        ("ROLLOUT", names.rollout_name(service.name)),
        ("ROLLOUT_NAMESPACE", service.namespace),
    )
    if mode != "announce":
        # Unsubstituted when announce opened no thread: the script then sees no thread.
        env += env_vars([("THREAD", f"{{{{workflow.outputs.parameters.{THREAD_OUTPUT}}}}}")])
    if mode == "stage":
        env += env_vars([("STAGE", "{{inputs.parameters.stage}}"), ("STATE", "{{inputs.parameters.state}}")])
    if mode == "finish":
        env += env_vars([("STATUS", "{{workflow.status}}"),
                         ("VERIFY_STATUS", "{{workflow.outputs.parameters.verify-status}}")])
        env += superseded_by_env(service, settings)
    env = with_secrets(env, secret_env("SLACK_TOKEN", SLACK_SECRET_NAME, SLACK_TOKEN_KEY))
    fields: dict[str, Any] = {}
    if mode == "announce":
        thread = output_parameter("thread")
        thread.global_name = THREAD_OUTPUT
        fields["outputs"] = m.Outputs(parameters=[thread])
    if mode == "stage":
        fields["inputs"] = m.Inputs(parameters=[m.Parameter(name="stage"), m.Parameter(name="state")])
    return pod_template(
        {"announce": ANNOUNCE, "stage": SLACK_STAGE, "finish": "notify"}[mode], settings, config_map,
        container=tools_container(settings, "slack_thread.py", env, mounts_of(SCRIPTS_MOUNT, TMP_MOUNT)),
        # The release account's token: record the thread on its Application and Rollout.
        automount_service_account_token=True,
        **fields,
    )
