"""The release and build WorkflowTemplates of each service, and what their pods mount.

Owns, per service and stack (docs/release-contract.md, sections 2 and 3):
- the release WorkflowTemplate `<service>-release` (workflows namespace): the DAG
  change check -> unit tests -> image build (a child Workflow) -> promote -> verify,
  and the Slack notice on exit;
- the build WorkflowTemplate `<service>-build` (build namespace): image check ->
  rootless BuildKit build and push to the service's ECR repository;
and, once per stack:
- the step scripts ConfigMap in each of the two namespaces, named after a hash of the
  files in `scripts/` (read at Pulumi time; the scripts stay files in the project and
  are tested as files);
- the Slack token Secret of the notify step (workflows namespace; the platform's Slack
  Secrets live in the Argo CD and Rollouts namespaces, and a pod mounts only Secrets of
  its own namespace).

Pure builders (`release_template`, `build_template`, `scripts_config_map`) take the
service, the stack's settings and a few names and return plain dicts, built with
hera's pydantic models of Argo Workflows (v4.0.6 has no field these templates need
that the models lack); `ReleaseWorkflows` registers them.

Does not own: the ServiceAccounts and Roles the pods run as (`components.access`;
the builder account is `components.registry`'s), the checkout-key and helm-writer
Secrets (`components.github_access`), the scripts themselves (`scripts/`), the images
(`components.versions`), the Sensor that starts the release Workflow
(`components.sensors`), the Argo Workflows controller settings
(`components.helm_values`: Strict template referencing, the executor's
securityContext and resources).

Decisions
---------
How the source reaches the steps: every step that needs the work tree clones it
itself, shallow, at the one commit (`checkout.py` as an init container into an
emptyDir at /workspace: depth 2 for the change check, depth 1 for the unit tests and
the build). There is no shared volume: a ReadWriteOnce volume (EBS) would pin every
pod of a release to one node's availability zone and serialise releases behind
volume attach/detach, and a ReadWriteMany one (EFS) is another system to run. No
artifact repository either (no bucket, no credentials for one). A clone of one commit
is seconds; the commit is immutable, so every step sees the same bytes.

The image build is a child Workflow: Argo creates every pod of a Workflow in the
Workflow's own namespace, and only the build namespace admits rootless BuildKit
(seccomp and AppArmor `Unconfined`, privilege escalation for its setuid
`newuidmap`). So the release's `build` task is a `resource` template that creates a
Workflow from `<service>-build` in the build namespace (`generateName`, so a retried
release can start a new one; argument `revision` only) and waits for its phase.
That pod runs as the release account with its token, which may create and get
Workflows in the build namespace and nothing more there (`components.access`); a
Workflow in another namespace cannot carry an owner reference, so the child has its
own TTL and pod GC.

Who holds a Kubernetes token: every template sets `automountServiceAccountToken:
false` and `executor.serviceAccountName: workflow-executor` (the `wait` container's
own, minimal account), except the two steps that need the API as the release
account: `build` (creates the child Workflow) and `verify` (Argo CD Application,
Rollout, Deployment). Those two set no executor account: the main container of a
`resource` step *is* the executor, and it must act as the release account. Team code
(unit tests, the Dockerfile's RUN lines) never holds a token.

Payload text (docs/decisions/0100-payload-base64-from-the-sensor.md): the Sensor
passes `pr-title`, `author` and `repository` as `b64:` + base64, and they reach a step
only as the whole value of an environment variable named `<NAME>_B64`, which the script
decodes (`scripts/_common.py` `payload_text`). Base64 holds no `$(`, `{{` or control
character, so neither Kubernetes' `$(VAR)` expansion nor Argo's `{{...}}` substitution
(which runs again over substituted text) can change it. `revision` (40 hex) and
`pr-number` (digits), which the Sensor's filters hold to their shape, stay plain; only
`revision` is also used in arguments and in the child Workflow's manifest. Secrets
given as environment variables come after every other variable of their container:
Kubernetes expands `$(NAME)` only with variables defined earlier in the list.
Strings from services.yaml that end up in a command, an
argument or an environment variable (test command, build args, Slack channel) are
refused by config validation when they hold `{{` (Argo would substitute into them)
and have `$` doubled here (Kubernetes expands `$(VAR)` in command, args and env values).

Security contexts: every pod runs as uid/gid 1000 (BuildKit's rootless image is
built for 1000, and the checkout init container shares its work tree with the main
container, so one owner keeps git and test tools out of ownership trouble), with
`runAsNonRoot`, seccomp `RuntimeDefault` and `fsGroup` 1000 (the deploy key is
mounted 0400 and group-readable through fsGroup; `checkout.py` copies it to a private
0600 file, as ssh requires). Every container: no privilege escalation, all
capabilities dropped, read-only root filesystem with an emptyDir at /tmp (HOME=/tmp
for the tools). The one exception is the BuildKit container: seccomp and AppArmor
`Unconfined` (rootlesskit creates user and mount namespaces), privilege escalation
allowed and the default capabilities kept (`newuidmap`/`newgidmap` are setuid and need
CAP_SETUID/CAP_SETGID in the bounding set), a writable root filesystem (buildkitd and
rootlesskit keep runtime state under $XDG_RUNTIME_DIR and /tmp), and
`--oci-worker-no-process-sandbox`; still uid 1000, `runAsNonRoot`, not privileged,
no hostPath, no docker socket.

BuildKit: `buildctl-daemonless.sh` starts a private buildkitd for the one build
(state in an emptyDir), logs in to ECR through docker-credential-ecr-login (baked into
the `buildkit-ecr` image, credentials from the pod's identity; its cache disabled so
nothing is written to disk), pushes `<repository>:<revision>` and a registry layer
cache `<repository>:<cacheTag>` (`mode=max`, `image-manifest=true` so ECR stores it
as an ordinary image, `ignore-error=true` so a cache failure never fails a release).
buildctl adds no attestation manifests unless asked (buildx does by default), so a
release adds one image to the repository, plus the one cache image the lifecycle
policy keeps; both count towards `ecr.keepImages`.

Retries (docs/decisions/0102-retry-transient-steps.md): a step that talks to a network
and is safe to run again has a bounded `retryStrategy` (`RETRIES`: at most 2 retries,
backoff 15 s then 30 s); the unit tests have none (a failed test is not transient), nor
has the release's `build` step (a retry would start the whole child build again; the
child's own steps retry), verify retries only when its pod is lost (`OnError`: verify.py
retries API errors itself, and its own failure is the rollout's verdict).

Timeouts: each pod's `activeDeadlineSeconds` is `release.stepTimeoutMinutes` (verify:
`release.verifyTimeoutMinutes` plus a margin, if longer); the build Workflow's is its
steps' plus a margin, and the release's `build` step waits that long plus a margin;
each Workflow's own deadline is the sum of its sequential steps, each counted once per
attempt its retryStrategy allows plus the backoff, plus a margin. The exit handler runs
even after the Workflow's deadline (Argo exempts it).

Newest-wins releases (opt-in: `newestWins` per service, `release.newestWins` per stack)
------------------------------------------------------------------------------------
Several merges in a row each start a release; without this option they all build,
test and promote one after another, and each promote briefly deploys a commit that
is already out of date. With it, a newer release of the same service in the same
environment stops the older ones that have not started `promote` yet:
- `supersede` (the DAG's first task after the change check, so a merge that does not
  touch the service's path stops nothing): `supersede.py` lists this service's
  release Workflows in this environment (labels `release-pipeline/service` and
  `release-pipeline/environment`, set by the Sensor; only those of this template)
  and sets `spec.shutdown: Stop` on every one that is older (creationTimestamp, then
  name), still Pending or Running, not already shut down and has no `promote` node
  yet; and on their child build Workflows in the build namespace (found by the label
  `release-pipeline/release-workflow` the build step puts on them), which would
  otherwise keep building. `Stop`, not `Terminate`, so the stopped release's exit
  handler still posts its Slack notice (status Failed, the Workflow's message says it
  was stopped). Stopped, not queued: a queue would still deploy every commit.
- `newest-check` (right before `promote`): the same script in guard mode stops its
  own release (and writes `superseded=true`, so `promote` and `verify` are skipped
  whatever the timing of the stop) when a newer release of the service has already
  claimed the environment (its `supersede` node Running or Succeeded, and the
  release not Failed or Error). It covers the older release that was already past
  the newer one's `supersede` list, and a newer release whose own supersede failed.
  A newer release that is still in its change check has not claimed anything: if it
  turns out not to touch the service, the older one must still deploy.
- Promotion stays serialised by the promote mutex; a release that is already in
  `promote` is never stopped by a newer one (the helm push is atomic, and the newer
  release promotes after it, under the same mutex, so the newest commit ends up
  deployed either way).
Which Workflows to stop is a pure function of Workflow objects (`supersede.py`:
`to_stop`, `newer_claim`), tested with real Workflow-shaped objects in several
orderings; the script is tested against a fake Kubernetes API. The two steps run as
the release account with its token (list/get/patch `workflows` in both namespaces,
`components.access`) and count what they stopped in the `release_superseded` metric.

Release metrics (opt-in: `metrics.releaseMetrics` per stack)
------------------------------------------------------------
Argo Workflows' own custom metrics, served by the controller on its metrics port
(`controller.metricsConfig`, `components.helm_values`) with the prefix
`argo_workflows_`; labels only from Pulumi config (service, environment, stage) and
Argo's status enums, never payload text (a PR title in a label would be both a
cardinality explosion and an injection into every dashboard):
- `release_outcomes{service,environment,status}` (counter; Workflow level, on
  completion; `status` Succeeded, Failed or Error; a stopped release is Failed);
- `release_stage_duration_seconds{service,environment,stage,status}` (histogram; each
  step: change check, tests, build, promote, verify, and the newest-wins steps);
- `release_lead_time_seconds{service,environment}` (histogram; when `verify` succeeds:
  `{{workflow.duration}}`, from the Workflow's start, which the Sensor creates when
  GitHub delivers the merge (seconds after it), to the Application Synced with the
  Rollout Healthy or paused at its first gate);
- `release_last_timestamp_seconds{service,environment,status}` (gauge; the start
  time of the latest release that ended with `status`), for time to restore;
- `release_superseded{service,environment}` (counter; releases stopped by newest-wins).
The four DORA measures, in PromQL (dashboards/release-pipeline.json):
- deployment frequency: `sum by (service) (increase(argo_workflows_release_outcomes{
  environment="live",status="Succeeded"}[1d]))`;
- lead time for changes: `histogram_quantile(0.5, sum by (le) (rate(
  argo_workflows_release_lead_time_seconds_bucket{environment="live"}[7d])))`;
- change failure rate: failed or errored releases, minus the superseded ones, over all
  finished releases minus the superseded ones;
- time to restore: per service, the latest success's start minus the latest failure's
  start, when the success is the later one (`release_last_timestamp_seconds`).
Counters live in the controller's memory (no `metricsTTL`): a controller restart
resets them, which `increase()`/`rate()` handle.

One Slack thread per release (opt-in: `slack.threads` per stack, `slackThreads` per service)
-----------------------------------------------------------------------------------------
`announce` (after the change check) posts the parent message and records the thread on
the service's Application and Rollout (scripts/slack_thread.py says why there); a
`<stage>-notice` after tests, build and promote replies in the thread and updates the
parent's state table; the exit handler runs the same script (`finish`) for the result,
with verify's status as the `synced` line. Argo refuses `continueOn` beside `depends`,
so the task after a Slack step depends on every one of its ends: nothing Slack does
stops or fails a release (the script exits 0 as well). The notices are in the chain,
not beside it, because a failed leaf task would fail the release; each costs one
short pod. These pods hold the release account's token (annotate the Application and
the Rollout) and run only the pipeline's script.

Ref: https://argo-workflows.readthedocs.io/en/latest/metrics/
Ref: https://argo-workflows.readthedocs.io/en/latest/walk-through/dag/
Ref: https://argo-workflows.readthedocs.io/en/latest/workflow-templates/
Ref: https://argo-workflows.readthedocs.io/en/latest/walk-through/kubernetes-resources/
Ref: https://argo-workflows.readthedocs.io/en/latest/synchronization/
Ref: https://argo-workflows.readthedocs.io/en/latest/service-accounts/
Ref: https://github.com/moby/buildkit/blob/master/docs/rootless.md
Ref: https://github.com/moby/buildkit/tree/master/examples/kubernetes (job.rootless.yaml)
Ref: https://github.com/awslabs/amazon-ecr-credential-helper
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from hera.workflows import models as m

from components import helm_values as hv
from components import names
from components.config import Service, Settings
from components.workflows.build import build_template, buildctl_args
from components.workflows.metrics import METRIC_HELP, STAGES, release_workflow_metrics, stage_metrics
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
    ENCODED_ENV_SUFFIX,
    ENCODED_PARAMETERS,
    OUTPUT_DIR,
    PARAMETERS,
    PAYLOAD_PARAMETERS,
    PIPELINE,
    REVISION,
    SCRIPT_FILE_MODE,
    SCRIPTS_DIR,
    SCRIPTS_MOUNT,
    SLACK_SECRET_NAME,
    SLACK_TOKEN_KEY,
    STEP_UID,
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
from components.workflows.scripts import (
    SCRIPTS_CONFIG_MAP_PREFIX,
    SCRIPTS_PROJECT_DIR,
    ScriptsError,
    read_scripts,
    scripts_config_map,
    scripts_config_map_name,
)
from components.workflows.slack_threads import (
    ANNOUNCE,
    SLACK_STAGE,
    STAGE_NOTICES,
    THREAD_OUTPUT,
    slack_thread_template,
)
from components.workflows.timing import (
    MARGIN_SECONDS,
    attempts_seconds,
    build_step_seconds,
    retry_strategy,
    step_seconds,
    verify_seconds,
)

# What callers and tests import from `components.workflows`.
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

TYPE = "release-pipeline:components:ReleaseWorkflows"


# ------------------------------------------------------------------ small pieces


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


# ---------------------------------------------------------------- release template


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


# ---------------------------------------------------------------------- component


@dataclass(frozen=True)
class ReleaseWorkflowsArgs:
    """What the release and build WorkflowTemplates of a stack are made from."""

    settings: Settings
    """The stack's settings: namespaces, hostnames, helm branch, timeouts, sizes, tool images."""
    services: tuple[Service, ...]
    """This environment's services (`ServicesFile.for_environment`)."""
    namespaces: Mapping[str, pulumi.Input[str]]
    """Platform namespace role -> name, as `Namespaces.platform` gives it (`workflows`,
    `build`): objects in a namespace wait for it."""
    repository_urls: Mapping[str, pulumi.Input[str]]
    """Service -> its ECR repository URL (`ServiceRegistry.repository_url`)."""
    repository_names: Mapping[str, pulumi.Input[str]]
    """Service -> its ECR repository name (`ServiceRegistry.repository_name`)."""
    slack_token: pulumi.Input[str]
    """Slack bot token (config secret `slackToken`): a secret Output."""
    argo_depends_on: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """Argo kind -> what a custom resource of that kind waits for; `WorkflowTemplate`
    (its CRD and the Argo Workflows release) is the one used here."""
    scripts_dir: Path = SCRIPTS_PROJECT_DIR
    """The step scripts, shipped as they are."""


class ReleaseWorkflows(pulumi.ComponentResource):
    """Per service, the release and build WorkflowTemplates; the scripts ConfigMaps and Slack Secret."""

    release_templates: dict[str, str]
    """Service -> its release WorkflowTemplate (workflows namespace), what the Sensor references."""
    build_templates: dict[str, str]
    """Service -> its build WorkflowTemplate (build namespace)."""
    scripts_config_map: str
    """Name of the scripts ConfigMap (the same in both namespaces)."""

    def __init__(self, name: str, args: ReleaseWorkflowsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        settings = args.settings
        services = tuple(sorted(args.services, key=lambda s: s.name))
        try:
            files = read_scripts(args.scripts_dir)
        except (OSError, ScriptsError) as err:
            # RunError ends the program with this message and no Python traceback.
            raise pulumi.RunError(f"invalid project: {err}") from None
        super().__init__(TYPE, name, None, opts)

        argo_depends = list(args.argo_depends_on.get("WorkflowTemplate", ()))
        config_map_name = scripts_config_map_name(files)
        config_maps = {
            role: self._config_map(f"{name}-scripts-{role}",
                                   scripts_config_map(files, getattr(settings.namespaces, role)),
                                   args.namespaces[role])
            for role in ("build", "workflows")
        }
        slack = k8s.core.v1.Secret(
            f"{name}-slack-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SLACK_SECRET_NAME, namespace=args.namespaces["workflows"], labels=labels("notify"),
            ),
            type="Opaque",
            string_data={SLACK_TOKEN_KEY: pulumi.Output.secret(args.slack_token)},
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.release_templates = {}
        self.build_templates = {}
        for service in services:
            release = release_template(service, settings, config_map_name)
            self._template(f"{name}-{service.name}-release", release, args.namespaces["workflows"],
                           release["spec"], [*argo_depends, config_maps["workflows"], slack])
            self.release_templates[service.name] = release["metadata"]["name"]

            def build_spec(values: list[Any], service: Service = service) -> Manifest:
                url, repository = values
                return build_template(service, settings, config_map_name, url, repository)["spec"]

            # The spec waits for the repository's URL and name; the metadata does not.
            spec = pulumi.Output.all(args.repository_urls[service.name],
                                     args.repository_names[service.name]).apply(build_spec)
            build_metadata = template_metadata(names.build_template_name(service.name), settings.namespaces.build,
                                       "build-workflow", service.name).model_dump(by_alias=True, exclude_none=True)
            self._template(f"{name}-{service.name}-build", {"metadata": build_metadata}, args.namespaces["build"],
                           spec, [*argo_depends, config_maps["build"]])
            self.build_templates[service.name] = build_metadata["name"]

        self.scripts_config_map = config_map_name
        self.register_outputs({
            "release_templates": self.release_templates,
            "build_templates": self.build_templates,
            "scripts_config_map": self.scripts_config_map,
        })

    def _config_map(self, logical: str, manifest: Manifest, namespace: pulumi.Input[str]) -> k8s.core.v1.ConfigMap:
        metadata = manifest["metadata"]
        return k8s.core.v1.ConfigMap(
            logical,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=metadata["name"], namespace=namespace, labels=metadata["labels"]),
            immutable=True,
            data=manifest["data"],
            # Running Workflows keep the template they started with, and with it the old
            # ConfigMap's name: a changed script must not delete the old one under them.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

    def _template(self, logical: str, manifest: Manifest, namespace: pulumi.Input[str],
                  spec: pulumi.Input[Manifest], depends_on: list[pulumi.Resource]) -> None:
        metadata = manifest["metadata"]
        k8s.apiextensions.CustomResource(
            logical,
            api_version=ARGO_API_VERSION,
            kind="WorkflowTemplate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=metadata["name"], namespace=namespace, labels=metadata["labels"]),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
