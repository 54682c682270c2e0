"""Newest-wins releases (opt-in): a newer release of a service stops the older ones.

Owns the two steps the release template gains with `newestWins` (per service) or
`release.newestWins` (per stack): `supersede`, right after the change check, stops the
older releases of the service in the environment that have not started `promote`; and
`newest-check`, right before `promote`, stops this release when a newer one has already
claimed the environment. Both run `scripts/supersede.py` as the release account. Also
the annotation through which the stopped release's notice learns who stopped it.

Does not own: where the steps sit in the DAG and the release's deadline (`release`), the
decision which Workflows to stop (`scripts/supersede.py`), the release account's
permission to stop them (`components.access`), the `release_superseded` metric
(`metrics`).

Decisions: docs/decisions/0347-newest-wins-releases.md.
"""

from __future__ import annotations

from hera.workflows import models as m

from components import names
from components.config import Service, Settings
from components.workflows.pods import (
    SCRIPTS_MOUNT,
    TMP_MOUNT,
    env_vars,
    mounts_of,
    output_parameter,
    pod_template,
    tool_env,
    tools_container,
)

SUPERSEDE = "supersede"
# Set by supersede.py on a release it stops (the newer release's name); declared empty in
# `workflowMetadata` so `{{workflow.annotations.<name>}}` is a known global (Argo
# re-reads the Workflow's annotations on every operation, so the exit handler sees the patch).
SUPERSEDED_BY_ANNOTATION = "release-pipeline/superseded-by"
NEWEST_CHECK = "newest-check"


def superseded_by_env(service: Service, settings: Settings) -> list[m.EnvVar]:
    """Newest-wins only: the newer release that stopped this one (empty when none)."""
    if not service.newest_wins_in(settings):
        return []
    return env_vars([("SUPERSEDED_BY", f"{{{{workflow.annotations.{SUPERSEDED_BY_ANNOTATION}}}}}")])


def supersede_template(name: str, service: Service, settings: Settings, config_map: str) -> m.Template:
    """`supersede` (stop older releases) or `newest-check` (stop this one if a newer one claimed)."""
    guard = name == NEWEST_CHECK
    env = tool_env(
        ("MODE", "guard" if guard else "supersede"),
        ("SERVICE", service.name),
        ("ENVIRONMENT", settings.environment),
        ("RELEASE_TEMPLATE", names.release_template_name(service.name)),
        ("WORKFLOW_NAME", "{{workflow.name}}"),
        ("WORKFLOWS_NAMESPACE", settings.namespaces.workflows),
        ("BUILD_NAMESPACE", settings.namespaces.build),
    )
    outputs = [output_parameter("stopped")]
    if guard:
        outputs.append(output_parameter("superseded"))
    return pod_template(
        name, settings, config_map,
        container=tools_container(settings, "supersede.py", env, mounts_of(SCRIPTS_MOUNT, TMP_MOUNT)),
        # The release account's token: list and stop this service's releases.
        automount_service_account_token=True,
        outputs=m.Outputs(parameters=outputs),
    )
