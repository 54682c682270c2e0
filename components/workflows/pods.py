"""Pod and container building blocks shared by the release and build WorkflowTemplates.

Owns what every step pod is made of: the Workflow's arguments and which of them are
payload text, the paths inside the pods, the uid the pods run as, the securityContexts
(`restricted` and rootless BuildKit's relaxations of it), volumes and mounts, the
release-tools container, the checkout init container, the pod template (deadline,
retries, volumes) and who holds a Kubernetes token; the Slack token Secret's name, the
labels and the WorkflowTemplate defaults (pod GC, TTL).

Does not own: the templates' steps (`release`, `build` and the optional features), the
retries and deadlines themselves (`timing`), the images (`components.versions`), the
accounts the pods run as (`components.access`).

Decisions: docs/decisions/0100-payload-base64-from-the-sensor.md,
docs/decisions/0340-checkout-per-step-no-shared-volume.md,
docs/decisions/0342-kubernetes-tokens-only-where-a-step-needs-the-api.md,
docs/decisions/0343-services-yaml-strings-are-literal-in-pods.md,
docs/decisions/0344-pod-security-contexts.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hera.workflows import models as m

from components import helm_values as hv
from components import names
from components.config import Service, Settings, Size
from components.versions import RELEASE_TOOLS
from components.workflows.timing import retry_strategy, step_seconds

PIPELINE = "release-pipeline"
ARGO_API_VERSION = "argoproj.io/v1alpha1"

# --- the Workflow's arguments (the Sensor passes all six, as strings) -------------------
REVISION = "revision"
PARAMETERS: tuple[str, ...] = ("revision", "pr-number", "pr-title", "author", "repository", "trigger")
# Attacker-controlled text: only ever an environment variable's value.
PAYLOAD_PARAMETERS: tuple[str, ...] = tuple(p for p in PARAMETERS if p != REVISION)
# Carried as `b64:` + base64 by the Sensor: only the whole value of a `<NAME>_B64` variable.
ENCODED_PARAMETERS: tuple[str, ...] = ("pr-title", "author", "repository")
ENCODED_ENV_SUFFIX = "_B64"

# --- paths inside the pods -------------------------------------------------------------
SCRIPTS_DIR = "/opt/release-pipeline/scripts"
WORKSPACE = "/workspace"
TMP = "/tmp"
OUTPUT_DIR = "/tmp/outputs"
SSH_KEY_DIR = "/etc/release-pipeline/ssh"
APP_KEY_DIR = "/etc/release-pipeline/github-app"
BUILDKIT_STATE = "/home/user/.local/share/buildkit"

# --- who the pods run as ----------------------------------------------------------------
STEP_UID = 1000  # docs/decisions/0344-pod-security-contexts.md
SECRET_FILE_MODE = 0o400
SCRIPT_FILE_MODE = 0o444

# --- time -----------------------------------------------------------------------------
TTL_AFTER_SUCCESS_SECONDS = 24 * 3600  # long enough to read yesterday's logs in the UI
TTL_AFTER_FAILURE_SECONDS = 7 * 24 * 3600  # a week to investigate a failed release

# --- the Slack token Secret (notify and the Slack thread steps read it) ----------------
SLACK_SECRET_NAME = "release-notify-slack"
SLACK_TOKEN_KEY = hv.SLACK_TOKEN_KEY

Manifest = dict[str, Any]


def labels(component: str, service: str | None = None) -> dict[str, str]:
    result = {"app.kubernetes.io/managed-by": PIPELINE, "app.kubernetes.io/component": component}
    if service is not None:
        result[f"{PIPELINE}/service"] = service
    return result


def workflow_parameter(name: str) -> str:
    return f"{{{{workflow.parameters.{name}}}}}"


def literal(value: str) -> str:
    """A string Kubernetes passes through unchanged: `$(VAR)` expansion undone by `$$`."""
    return value.replace("$", "$$")


def slack_channel(service: Service, settings: Settings) -> str:
    return hv.slack_channel(service.slack_channel or settings.slack.channel)


def workflow_url(settings: Settings) -> str:
    return f"https://{settings.hostnames.workflows}/workflows/{settings.namespaces.workflows}/{{{{workflow.name}}}}"


def env_vars(items: Iterable[tuple[str, str]]) -> list[m.EnvVar]:
    return [m.EnvVar(name=key, value=value) for key, value in items]


def encoded_env(name: str, parameter: str) -> tuple[str, str]:
    """`<NAME>_B64` = an encoded payload parameter, whole (docs/decisions/0100-payload-base64-from-the-sensor.md)."""
    assert parameter in ENCODED_PARAMETERS, parameter
    return f"{name}{ENCODED_ENV_SUFFIX}", workflow_parameter(parameter)


def with_secrets(env: list[m.EnvVar], *secrets: m.EnvVar) -> list[m.EnvVar]:
    """`env`, then the secrets: `$(NAME)` in a value expands only names defined before it."""
    return [*env, *secrets]


def secret_env(name: str, secret: str, key: str) -> m.EnvVar:
    return m.EnvVar(
        name=name,
        value_from=m.EnvVarSource(secret_key_ref=m.SecretKeySelector(name=secret, key=key)),
    )


def resources(size: Size) -> m.ResourceRequirements:
    amounts = size.resources
    return m.ResourceRequirements(
        requests={"cpu": m.Quantity(amounts.requests.cpu), "memory": m.Quantity(amounts.requests.memory)},
        limits={"cpu": m.Quantity(amounts.limits.cpu), "memory": m.Quantity(amounts.limits.memory)},
    )


def restricted_container() -> m.SecurityContext:
    """The `restricted` Pod Security Standard, and a read-only root filesystem."""
    return m.SecurityContext(
        allow_privilege_escalation=False,
        capabilities=m.Capabilities(drop=["ALL"]),
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def buildkit_container_security() -> m.SecurityContext:
    """Rootless BuildKit: exactly its relaxations of `restricted` (docs/decisions/0344-pod-security-contexts.md)."""
    return m.SecurityContext(
        # newuidmap/newgidmap are setuid: no_new_privs would stop them mapping uids.
        allow_privilege_escalation=True,
        app_armor_profile=m.AppArmorProfile(type="Unconfined"),
        privileged=False,
        read_only_root_filesystem=False,
        run_as_group=STEP_UID,
        run_as_non_root=True,
        run_as_user=STEP_UID,
        seccomp_profile=m.SeccompProfile(type="Unconfined"),
    )


def pod_security() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        fs_group=STEP_UID,
        run_as_group=STEP_UID,
        run_as_non_root=True,
        run_as_user=STEP_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def empty_dir_volume(name: str) -> m.Volume:
    return m.Volume(name=name, empty_dir=m.EmptyDirVolumeSource())


def _scripts_volume(config_map: str) -> m.Volume:
    return m.Volume(
        name="scripts",
        config_map=m.ConfigMapVolumeSource(name=config_map, default_mode=SCRIPT_FILE_MODE),
    )


def secret_volume(name: str, secret: str, key: str) -> m.Volume:
    """One key of a Secret as a file, owner-read-only (group-readable through fsGroup)."""
    return m.Volume(
        name=name,
        secret=m.SecretVolumeSource(
            secret_name=secret,
            default_mode=SECRET_FILE_MODE,
            items=[m.KeyToPath(key=key, path=key)],
        ),
    )


def _mount(name: str, path: str, *, read_only: bool = False) -> m.VolumeMount:
    return m.VolumeMount(name=name, mount_path=path, read_only=read_only or None)


SCRIPTS_MOUNT = ("scripts", SCRIPTS_DIR, True)
TMP_MOUNT = ("tmp", TMP, False)
WORKSPACE_MOUNT = ("workspace", WORKSPACE, False)


def mounts_of(*specs: tuple[str, str, bool]) -> list[m.VolumeMount]:
    return [_mount(name, path, read_only=ro) for name, path, ro in specs]


def _script_command(script: str) -> list[str]:
    return ["python3", f"{SCRIPTS_DIR}/{script}"]


def tool_env(*items: tuple[str, str]) -> list[m.EnvVar]:
    """Environment of a release-tools step: its inputs, then where it may write."""
    return env_vars([*items, ("HOME", TMP), ("OUTPUT_DIR", OUTPUT_DIR)])


def tools_container(settings: Settings, script: str, env: list[m.EnvVar],
                    mounts: list[m.VolumeMount]) -> m.Container:
    return m.Container(
        image=RELEASE_TOOLS.ref(settings.tool_images.registry),
        command=_script_command(script),
        env=env,
        volume_mounts=mounts,
        resources=resources(settings.sizes.workflow_step),
        security_context=restricted_container(),
    )


def checkout_container(service: Service, settings: Settings, depth: int) -> m.UserContainer:
    """Init container: the service's repository at the revision, into /workspace."""
    return m.UserContainer(
        name="checkout",
        image=RELEASE_TOOLS.ref(settings.tool_images.registry),
        command=_script_command("checkout.py"),
        env=tool_env(
            ("REPO", service.repo),
            ("REVISION", workflow_parameter(REVISION)),
            ("DEST", WORKSPACE),
            ("DEPTH", str(depth)),
            ("SSH_KEY_FILE", f"{SSH_KEY_DIR}/ssh-privatekey"),
        ),
        volume_mounts=mounts_of(SCRIPTS_MOUNT, TMP_MOUNT, WORKSPACE_MOUNT, ("ssh-key", SSH_KEY_DIR, True)),
        resources=resources(settings.sizes.workflow_step),
        security_context=restricted_container(),
    )


def checkout_volumes(service: Service) -> list[m.Volume]:
    return [
        empty_dir_volume("workspace"),
        secret_volume("ssh-key", names.deploy_key_secret_name(service.repo), "ssh-privatekey"),
    ]


def output_parameter(name: str) -> m.Parameter:
    return m.Parameter(name=name, value_from=m.ValueFrom(path=f"{OUTPUT_DIR}/{name}"))


def no_token() -> dict[str, Any]:
    """Template fields of a pod whose containers hold no Kubernetes token.

    docs/decisions/0342-kubernetes-tokens-only-where-a-step-needs-the-api.md
    """
    return {
        "automount_service_account_token": False,
        "executor": m.ExecutorConfig(service_account_name=names.EXECUTOR_SERVICE_ACCOUNT),
    }


def pod_template(name: str, settings: Settings, config_map: str, *, deadline: int | None = None,
                 volumes: Sequence[m.Volume] = (), **fields: Any) -> m.Template:
    """A pod template: deadline, retries, pod securityContext, the scripts and /tmp volumes."""
    return m.Template(
        name=name,
        active_deadline_seconds=m.IntOrString(deadline or step_seconds(settings)),
        retry_strategy=retry_strategy(name),
        security_context=pod_security(),
        volumes=[_scripts_volume(config_map), empty_dir_volume("tmp"), *volumes],
        **fields,
    )


def template_metadata(name: str, namespace: str, component: str, service: str) -> m.ObjectMeta:
    return m.ObjectMeta(name=name, namespace=namespace, labels=labels(component, service))


def spec_defaults() -> dict[str, Any]:
    return {
        "pod_gc": m.PodGC(strategy="OnPodSuccess"),
        "ttl_strategy": m.TTLStrategy(
            seconds_after_success=TTL_AFTER_SUCCESS_SECONDS,
            seconds_after_failure=TTL_AFTER_FAILURE_SECONDS,
        ),
    }


def dump_template(template: m.WorkflowTemplate) -> Manifest:
    return template.model_dump(by_alias=True, exclude_none=True, mode="json")
