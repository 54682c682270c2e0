"""The release WorkflowTemplate `<service>-release` (workflows namespace) and its DAG.

Owns the template the Sensor starts on a merge (contract section 2): the change check,
the unit tests, the `build` step that creates the child build Workflow in the build
namespace and waits for it, `promote` (under one mutex per helm repository and branch),
`verify`, and the Slack notice on exit; the order of the steps, including those the
optional features add (`newest_wins`, `slack_threads`) and the metrics they carry
(`metrics`); the release Workflow's own deadline.

Does not own: the pod building blocks (`pods`), the retries and step deadlines
(`timing`), the build template (`build`), the step scripts (`scripts/`), the release
account and its permissions (`components.access`), the Sensor (`components.sensors`).

Decisions: docs/decisions/0340-checkout-per-step-no-shared-volume.md,
docs/decisions/0341-image-build-as-a-child-workflow.md,
docs/decisions/0342-kubernetes-tokens-only-where-a-step-needs-the-api.md,
docs/decisions/0346-step-and-workflow-deadlines.md,
docs/decisions/0347-newest-wins-releases.md, docs/decisions/0349-one-slack-thread-per-release.md,
docs/decisions/0100-payload-base64-from-the-sensor.md.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

import yaml
from hera.workflows import models as m

from components import helm_values as hv
from components import names
from components.config import Service, Settings
from components.workflows.metrics import STAGES, release_workflow_metrics, stage_metrics
from components.workflows.newest_wins import (
    NEWEST_CHECK,
    SUPERSEDE,
    SUPERSEDED_BY_ANNOTATION,
    supersede_template,
    superseded_by_env,
)
from components.workflows.pods import (
    APP_KEY_DIR,
    ARGO_API_VERSION,
    PARAMETERS,
    PIPELINE,
    REVISION,
    SCRIPTS_MOUNT,
    SLACK_SECRET_NAME,
    SLACK_TOKEN_KEY,
    TMP,
    TMP_MOUNT,
    WORKSPACE,
    WORKSPACE_MOUNT,
    Manifest,
    checkout_container,
    checkout_volumes,
    dump_template,
    encoded_env,
    env_vars,
    labels,
    literal,
    mounts_of,
    no_token,
    output_parameter,
    pod_security,
    pod_template,
    resources,
    restricted_container,
    secret_env,
    secret_volume,
    slack_channel,
    spec_defaults,
    template_metadata,
    tool_env,
    tools_container,
    with_secrets,
    workflow_parameter,
    workflow_url,
)
from components.workflows.slack_threads import ANNOUNCE, SLACK_STAGE, STAGE_NOTICES, slack_thread_template
from components.workflows.timing import (
    MARGIN_SECONDS,
    attempts_seconds,
    build_step_seconds,
    step_seconds,
    verify_seconds,
)


def release_workflow_seconds(service: Service, settings: Settings) -> int:
    """The release Workflow's deadline: its sequential steps' deadlines, with retries, plus a margin."""
    step = step_seconds(settings)
    steps = [("build", build_step_seconds(settings)), ("promote", step), ("verify", verify_seconds(settings))]
    if service.newest_wins_in(settings):
        steps += [(SUPERSEDE, step), (NEWEST_CHECK, step)]
    if service.slack_threads_in(settings):
        steps += [(ANNOUNCE, step)] + [(SLACK_STAGE, step)] * len(STAGE_NOTICES)
    if service.path:
        steps.append(("changed", step))
    if runs_tests(service):
        steps.append(("tests", step))
    return sum(attempts_seconds(name, seconds) for name, seconds in steps) + MARGIN_SECONDS


def runs_tests(service: Service) -> bool:
    return service.tests is not None and not service.tests.skip


def values_file(service: Service, settings: Settings) -> str:
    """The values file `promote.py` edits, relative to the helm repository's root."""
    return posixpath.join(service.helm.path, service.helm.values_file or settings.values_file)


def mutex_name(helm_repo: str, branch: str) -> str:
    """One Workflow mutex per helm repository and branch (promote's push)."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"helm-{names.repo_slug(helm_repo)}-{branch}".lower()).strip("-")
    return names.bounded(slug, names.DNS1123_LABEL_MAX)


def _changed_template(service: Service, settings: Settings, config_map: str) -> m.Template:
    return pod_template(
        "changed", settings, config_map,
        volumes=checkout_volumes(service),
        init_containers=[checkout_container(service, settings, depth=2)],
        container=tools_container(
            settings, "changed.py",
            tool_env(("DEST", WORKSPACE), ("REVISION", workflow_parameter(REVISION)),
                     ("SERVICE_PATH", service.path)),
            mounts_of(SCRIPTS_MOUNT, TMP_MOUNT, WORKSPACE_MOUNT),
        ),
        outputs=m.Outputs(parameters=[output_parameter("changed")]),
        **no_token(),
    )


def _tests_env(own: Mapping[str, str]) -> list[tuple[str, str]]:
    """HOME and CI, then the service's `tests.env` in name order; the service's value of
    HOME or CI replaces the default (one entry per name: Kubernetes refuses two)."""
    defaults = {"HOME": TMP, "CI": "true"}
    mine = {key: literal(value) for key, value in own.items()}
    return [(key, mine.get(key, value)) for key, value in defaults.items()] + sorted(
        (key, value) for key, value in mine.items() if key not in defaults
    )


def _tests_template(service: Service, settings: Settings, config_map: str) -> m.Template:
    assert service.tests is not None
    return pod_template(
        "tests", settings, config_map,
        volumes=checkout_volumes(service),
        init_containers=[checkout_container(service, settings, depth=1)],
        # The team's own image and command, in its directory; no token, no secret.
        container=m.Container(
            image=service.tests.image,
            command=[literal(part) for part in service.tests.command],
            working_dir=posixpath.join(WORKSPACE, service.path) if service.path else WORKSPACE,
            env=env_vars(_tests_env(service.tests.env)),
            volume_mounts=mounts_of(TMP_MOUNT, WORKSPACE_MOUNT),
            resources=resources(settings.sizes.unit_tests),
            security_context=restricted_container(),
        ),
        **no_token(),
    )


def child_build_workflow(service: Service, settings: Settings) -> Manifest:
    """The Workflow the release's `build` step creates in the build namespace."""
    return {
        "apiVersion": ARGO_API_VERSION,
        "kind": "Workflow",
        "metadata": {
            # A fresh name per attempt: a retried release starts a new build (which then
            # finds the image, if the first one pushed it).
            "generateName": names.bounded(f"{service.name}-build", names.DNS1123_LABEL_MAX - 6) + "-",
            "namespace": settings.namespaces.build,
            "labels": labels("build-workflow", service.name) | {
                f"{PIPELINE}/environment": settings.environment,
                f"{PIPELINE}/release-workflow": "{{workflow.name}}",
                f"{PIPELINE}/revision": workflow_parameter(REVISION),
            },
        },
        # Nothing but the reference and the revision: Strict template referencing
        # accepts no more, and the child runs as the build template says.
        "spec": {
            "workflowTemplateRef": {"name": names.build_template_name(service.name)},
            "arguments": {"parameters": [{"name": REVISION, "value": workflow_parameter(REVISION)}]},
        },
    }


def _build_step_template(service: Service, settings: Settings) -> m.Template:
    return m.Template(
        name="build",
        active_deadline_seconds=m.IntOrString(build_step_seconds(settings)),
        security_context=pod_security(),
        # The main container is argoexec itself, acting as the pod's account (the
        # release account): it must hold that token, and no executor account is set.
        automount_service_account_token=True,
        resource=m.ResourceTemplate(
            action="create",
            manifest=yaml.safe_dump(child_build_workflow(service, settings), sort_keys=False),
            success_condition="status.phase == Succeeded",
            failure_condition="status.phase in (Failed,Error)",
        ),
        outputs=m.Outputs(parameters=[
            m.Parameter(name="workflow", value_from=m.ValueFrom(json_path="{.metadata.name}")),
        ]),
    )


def _promote_template(service: Service, settings: Settings, config_map: str) -> m.Template:
    writer = names.writer_secret_name(service.helm.repo)
    env = tool_env(
        ("HELM_REPO", service.helm.repo),
        ("BRANCH", settings.helm_branch),
        ("VALUES_FILE", values_file(service, settings)),
        ("KEY", service.helm.image_tag_key),
        ("REVISION", workflow_parameter(REVISION)),
        ("SERVICE", service.name),
        ("ENVIRONMENT", settings.environment),
        ("PR_NUMBER", workflow_parameter("pr-number")),
        ("SOURCE_REPO", service.repo),
        ("PRIVATE_KEY_FILE", f"{APP_KEY_DIR}/private-key"),
    )
    env = with_secrets(env, secret_env("APP_ID", writer, "app-id"),
                       secret_env("INSTALLATION_ID", writer, "installation-id"))
    return pod_template(
        "promote", settings, config_map,
        volumes=[secret_volume("github-app", writer, "private-key")],
        container=tools_container(
            settings, "promote.py", env,
            mounts_of(SCRIPTS_MOUNT, TMP_MOUNT, ("github-app", APP_KEY_DIR, True)),
        ),
        # Only the push is serialised: one release at a time per helm repo and branch.
        synchronization=m.Synchronization(
            mutexes=[m.Mutex(name=mutex_name(service.helm.repo, settings.helm_branch))]
        ),
        outputs=m.Outputs(parameters=[output_parameter("revision")]),
        **no_token(),
    )


def _verify_template(service: Service, settings: Settings, config_map: str) -> m.Template:
    env = tool_env(
        ("APPLICATION", names.application_name(service.name, settings.environment)),
        ("APPLICATION_NAMESPACE", settings.namespaces.argocd),
        ("ROLLOUT", names.rollout_name(service.name)),
        ("DEPLOYMENT", service.deployment),
        ("SERVICE_NAMESPACE", service.namespace),
        ("HELM_REVISION", "{{inputs.parameters.helm-revision}}"),
        ("IMAGE_TAG", workflow_parameter(REVISION)),
        ("TIMEOUT_SECONDS", str(settings.release.verify_timeout_minutes * 60)),
    )
    status = output_parameter("status")
    status.global_name = "verify-status"
    return pod_template(
        "verify", settings, config_map,
        deadline=verify_seconds(settings),
        inputs=m.Inputs(parameters=[m.Parameter(name="helm-revision")]),
        container=tools_container(settings, "verify.py", env, mounts_of(SCRIPTS_MOUNT, TMP_MOUNT)),
        # The release account's token, for this step (and its executor) alone.
        automount_service_account_token=True,
        outputs=m.Outputs(parameters=[status]),
    )


def _notify_template(service: Service, settings: Settings, config_map: str) -> m.Template:
    env = tool_env(
        ("CHANNEL", literal(slack_channel(service, settings))),
        ("STATUS", "{{workflow.status}}"),
        ("SERVICE", service.name),
        ("ENVIRONMENT", settings.environment),
        ("REVISION", workflow_parameter(REVISION)),
        ("PR_NUMBER", workflow_parameter("pr-number")),
        encoded_env("PR_TITLE", "pr-title"),
        encoded_env("AUTHOR", "author"),
        # Set when verify ran; otherwise Argo leaves the tag as it is, and notify.py
        # treats anything but "paused" alike.
        ("VERIFY_STATUS", "{{workflow.outputs.parameters.verify-status}}"),
        ("WORKFLOW_URL", workflow_url(settings)),
        ("ARGOCD_URL", hv.argocd_app_url(settings, names.application_name(service.name, settings.environment))),
    )
    env += superseded_by_env(service, settings)
    env = with_secrets(env, secret_env("SLACK_TOKEN", SLACK_SECRET_NAME, SLACK_TOKEN_KEY))
    return pod_template(
        "notify", settings, config_map,
        container=tools_container(settings, "notify.py", env, mounts_of(SCRIPTS_MOUNT, TMP_MOUNT)),
        **no_token(),
    )


def release_dag(service: Service, *, newest_wins: bool = False, slack_threads: bool = False) -> m.Template:
    """changed? -> announce? -> supersede? -> tests? -> build -> newest-check? -> promote -> verify.

    With a sub-path, all after `changed` run only if it is true; with newest-wins,
    `promote` and `verify` run only if `newest-check` found no newer release. With
    Slack threads, `announce` opens the thread and a notice follows tests, build and
    promote (verify's line comes with the exit handler's result); whatever a Slack step's
    end, the chain goes on. Argo refuses `continueOn` beside `depends`, so the next task
    depends on every end of the Slack step instead: its failure is then handled and
    fails nothing. The notices sit in the chain rather than beside it: a failed leaf
    task would fail the release, and the thread's replies stay in order.
    """
    when = "{{tasks.changed.outputs.parameters.changed}} == true" if service.path else None
    tasks: list[m.DAGTask] = []
    previous: str | None = None

    def add(name: str, template: str | None = None, **fields: Any) -> None:
        nonlocal previous
        tasks.append(m.DAGTask(name=name, template=template or name, depends=previous, **fields))
        previous = name

    def slack_step(name: str, template: str, **fields: Any) -> None:
        nonlocal previous
        if previous is not None:
            previous = f"{previous}.Succeeded"  # a notice only after its stage succeeded
        add(name, template, **fields)
        previous = " || ".join(f"{name}.{end}" for end in ("Succeeded", "Skipped", "Failed", "Errored"))

    notices = {task: (stage, value) for task, stage, value in STAGE_NOTICES} if slack_threads else {}

    def stage(name: str, **fields: Any) -> None:
        add(name, **fields)
        if name in notices:
            value = notices[name]
            slack_step(f"{name}-notice", SLACK_STAGE, arguments=m.Arguments(parameters=[
                m.Parameter(name="stage", value=value[0]), m.Parameter(name="state", value=value[1])]))

    if service.path:
        add("changed")
    if slack_threads:
        slack_step(ANNOUNCE, ANNOUNCE, when=when)
    if newest_wins:
        add(SUPERSEDE, when=when)
    if runs_tests(service):
        stage("tests", when=when)
    stage("build", when=when)
    if newest_wins:
        add(NEWEST_CHECK, when=when)
        newest = f"{{{{tasks.{NEWEST_CHECK}.outputs.parameters.superseded}}}} == false"
        when = f"{when} && {newest}" if when else newest
    stage("promote", when=when)
    add("verify", when=when, arguments=m.Arguments(parameters=[
        m.Parameter(name="helm-revision", value="{{tasks.promote.outputs.parameters.revision}}"),
    ]))
    return m.Template(name="release", dag=m.DAGTemplate(tasks=tasks))


def exit_handler() -> m.Template:
    """onExit: notify, whose failure never fails the release (notify.py exits 0 as well)."""
    return m.Template(name="exit-handler", dag=m.DAGTemplate(tasks=[
        m.DAGTask(name="notify", template="notify", continue_on=m.ContinueOn(failed=True, error=True)),
    ]))


def release_template(service: Service, settings: Settings, scripts_config_map: str) -> Manifest:
    """The release WorkflowTemplate of one service (contract section 2), as a plain dict.

    Newest-wins (`newestWins`) adds two steps; release metrics (`metrics.releaseMetrics`)
    add `metrics` to the spec and the step templates. With both off the template is
    exactly what it was before either existed.
    """
    newest_wins = service.newest_wins_in(settings)
    slack_threads = service.slack_threads_in(settings)
    templates = [release_dag(service, newest_wins=newest_wins, slack_threads=slack_threads), exit_handler()]
    if service.path:
        templates.append(_changed_template(service, settings, scripts_config_map))
    if runs_tests(service):
        templates.append(_tests_template(service, settings, scripts_config_map))
    templates += [
        _build_step_template(service, settings),
        _promote_template(service, settings, scripts_config_map),
        _verify_template(service, settings, scripts_config_map),
        (slack_thread_template("finish", service, settings, scripts_config_map) if slack_threads
         else _notify_template(service, settings, scripts_config_map)),
    ]
    if slack_threads:
        templates += [
            slack_thread_template("announce", service, settings, scripts_config_map),
            slack_thread_template("stage", service, settings, scripts_config_map),
        ]
    if newest_wins:
        templates += [
            supersede_template(SUPERSEDE, service, settings, scripts_config_map),
            supersede_template(NEWEST_CHECK, service, settings, scripts_config_map),
        ]
    workflow_metrics = None
    if settings.metrics.release_metrics:
        for step in templates:
            if step.name in STAGES:
                step.metrics = stage_metrics(step.name, service, settings)
        workflow_metrics = release_workflow_metrics(service, settings)
    template = m.WorkflowTemplate(
        api_version=ARGO_API_VERSION,
        kind="WorkflowTemplate",
        metadata=template_metadata(names.release_template_name(service.name), settings.namespaces.workflows,
                                   "release-workflow", service.name),
        spec=m.WorkflowSpec(
            entrypoint="release",
            on_exit="exit-handler",
            arguments=m.Arguments(parameters=[m.Parameter(name=p) for p in PARAMETERS]),
            service_account_name=names.release_service_account_name(service.name),
            automount_service_account_token=False,
            active_deadline_seconds=release_workflow_seconds(service, settings),
            pod_metadata=m.Metadata(labels=labels("release-workflow", service.name)),
            templates=templates,
            metrics=workflow_metrics,
            workflow_metadata=(m.WorkflowMetadata(annotations={SUPERSEDED_BY_ANNOTATION: ""}) if newest_wins
                               else None),
            **spec_defaults(),
        ),
    )
    return dump_template(template)
