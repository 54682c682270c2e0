"""The checks of the policy pack: docs/security-model.md, "Invariants" as pure functions over one resource.

Owns: one function per policy, `check(resource_type, inputs, options, context)` ->
list of violation messages (empty when the resource complies), and `CHECKS`, the table
`policy_pack.py` registers with Pulumi. The inputs are what the engine hands a policy
(camelCase keys, secrets unwrapped, nothing Pulumi-specific) and what the offline
render writes to `resources.json`, so the same functions run in `pulumi preview` and
in the tests over every rendered stack. `Context` carries the little a check needs from
the stack's settings (the build namespace, the pinned BuildKit image, the ECR cache tag).

Does not own: the Pulumi wiring (`policy_pack.py`), the program's builders (nothing
here imports `components`: the pack judges the program, it does not share its code).

Values that are not known yet (Outputs of resources still to be created, during a
preview) arrive as `UNKNOWN`. A check never reports a violation it cannot see: an
unknown value is checked when it is known, at `pulumi up`, where the engine runs the
same policies on the resolved inputs before it creates anything.

Messages name the field (a path into the inputs) and what is allowed; they never
repeat the value of a field that may hold a credential.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml


class _Unknown:
    """A value the engine does not know yet (a preview of a resource to be created)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

# The stack settings a check needs, with the program's defaults (components.config).
PROJECT = "release-pipeline"
SETTINGS_KEY = "settings"
DEFAULT_BUILD_NAMESPACE = "argo-build"
DEFAULT_CACHE_TAG = "buildcache"
# The pinned BuildKit tool image (components.versions.BUILDKIT_ECR; a test keeps the two equal).
BUILDKIT_IMAGE_NAME = "buildkit-ecr"
BUILDKIT_IMAGE_VERSION = "1.0.0"


@dataclass(frozen=True)
class Context:
    """What the checks need from the stack: where, and with which image, BuildKit may run.

    `buildkit_image` None means no container anywhere gets the BuildKit relaxations
    (fail closed when the stack's settings cannot be read).
    """

    build_namespace: str = DEFAULT_BUILD_NAMESPACE
    buildkit_image: str | None = None
    cache_tag: str = DEFAULT_CACHE_TAG


def context_from_config(config: Mapping[str, str], project: str = PROJECT) -> Context:
    """The Context of a stack from its config as the engine passes it (`PULUMI_CONFIG`).

    `config` maps `<project>:<key>` to the value as a string; the structured
    `<project>:settings` object arrives as JSON text.
    """
    raw = config.get(f"{project}:{SETTINGS_KEY}")
    try:
        settings = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        return Context()
    namespaces = settings.get("namespaces") or {}
    tool_images = settings.get("toolImages") or {}
    ecr = settings.get("ecr") or {}
    registry = tool_images.get("registry") if isinstance(tool_images, dict) else None
    build = namespaces.get("build") if isinstance(namespaces, dict) else None
    cache_tag = ecr.get("cacheTag") if isinstance(ecr, dict) else None
    return Context(
        build_namespace=build if isinstance(build, str) and build else DEFAULT_BUILD_NAMESPACE,
        buildkit_image=(
            f"{registry}/{BUILDKIT_IMAGE_NAME}:{BUILDKIT_IMAGE_VERSION}"
            if isinstance(registry, str) and registry
            else None
        ),
        cache_tag=cache_tag if isinstance(cache_tag, str) and cache_tag else DEFAULT_CACHE_TAG,
    )


Inputs = Mapping[str, Any]
Options = Mapping[str, Any]
CheckFn = Callable[[str, Inputs, Options, Context], list[str]]


# ------------------------------------------------------------------------ helpers


def _known(value: Any) -> bool:
    return value is not UNKNOWN


def _truthy(value: Any) -> bool:
    """True for `true`, `"true"`, `"1"`, `1` (Helm values and GitHub's API use all of them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    if isinstance(value, int | float):
        return value != 0
    return False


def _is_number(value: Any) -> bool:
    """An int or a float (the engine sends every number as a float), never a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _falsy(value: Any) -> bool:
    """True only for an explicit false (`false`, `"false"`, `"0"`)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value.strip().lower() in ("false", "0", "no", "off")
    if isinstance(value, int | float):
        return value == 0
    return False


def _get(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]...; None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _one_or_list(value: Any) -> list[Any]:
    """An IAM policy element that may be one string or a list of them."""
    return [value] if isinstance(value, str) else _list(value)


def _allow_statements(inputs: Inputs, field: str) -> tuple[list[tuple[str, Mapping[str, Any]]], list[str]]:
    """The Allow statements of the IAM-style policy document in `inputs[field]` (JSON text or
    object), each with where it sits; or the problem that it cannot be read."""
    document = inputs.get(field)
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return [], [f"{field}: not valid JSON, cannot be checked"]
    if not isinstance(document, Mapping):
        return [], []
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, Mapping) else _list(statements)
    return [
        (f"{field}.Statement[{index}]", statement)
        for index, statement in enumerate(statements)
        if isinstance(statement, Mapping) and statement.get("Effect") == "Allow"
    ], []


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$-]*", key):
        key = json.dumps(key)
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a tree of mappings and lists, the root included, depth first."""
    yield path, value
    if isinstance(value, Mapping):
        for key in value:
            yield from _walk(value[key], _join(path, str(key)))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, item in enumerate(value):
            yield from _walk(item, _join(path, index))


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    for where, item in _walk(value, path):
        if isinstance(item, str):
            yield where, item


def _kind(resource_type: str) -> str:
    """`kubernetes:argoproj.io/v1alpha1:WorkflowTemplate` -> `WorkflowTemplate`."""
    return resource_type.rsplit(":", 1)[-1]


CRD_TYPES = frozenset(
    {
        "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
        "kubernetes:apiextensions.k8s.io/v1beta1:CustomResourceDefinition",
    }
)


def _is_kubernetes(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:")


def _is_workload_data(resource_type: str) -> bool:
    """Whether the generic walkers apply: anything but a CRD, whose OpenAPI schema names
    every pod field (`hostPath`, `podSpecPatch`, ...) as a property without setting it."""
    return resource_type not in CRD_TYPES


ARGO_API = "kubernetes:argoproj.io/"
WORKFLOW_KINDS = frozenset({"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})


def _is_argo(resource_type: str, kinds: frozenset[str]) -> bool:
    return resource_type.startswith(ARGO_API) and _kind(resource_type) in kinds


def _embedded_manifests(inputs: Inputs) -> Iterator[tuple[str, Any]]:
    """Kubernetes objects written as YAML text inside an object: Argo `resource.manifest`.

    Yields (path, parsed document), or (path, the text) when it is not parseable YAML,
    so a check can still scan the text.
    """
    for path, value in _walk(inputs):
        if not isinstance(value, Mapping):
            continue
        text = value.get("manifest")
        if not isinstance(text, str):
            continue
        where = _join(path, "manifest")
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            yield where, text
            continue
        for index, document in enumerate(documents):
            yield (where if len(documents) == 1 else f"{where}<document {index}>"), document


# ----------------------------------------------------------------- restricted pods

# Volume types the `restricted` Pod Security Standard admits.
RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
DIND_IMAGE = re.compile(r"(^|[/:._-])dind($|[/:._-])", re.IGNORECASE)
DOCKER_SOCKET = "docker.sock"
BUILDKIT_EXCEPTION = (
    "only the BuildKit container ({image}) of a WorkflowTemplate in the build namespace "
    "{namespace!r} may set seccomp/AppArmor Unconfined and allowPrivilegeEscalation"
)


def _exception_text(context: Context) -> str:
    image = (
        f"image {context.buildkit_image}"
        if context.buildkit_image
        else "none here: the stack's settings name no toolImages.registry"
    )
    return BUILDKIT_EXCEPTION.format(image=image, namespace=context.build_namespace)


def _buildkit_exception_applies(
    resource_type: str, inputs: Inputs, container: Mapping[str, Any], context: Context
) -> bool | None:
    """Whether `container` is the build WorkflowTemplate's BuildKit container.

    None when it cannot be told yet (the namespace or the image is an unknown value).
    """
    if _kind(resource_type) != "WorkflowTemplate" or not resource_type.startswith(ARGO_API):
        return False
    if context.buildkit_image is None:
        return False
    namespace = _get(inputs, "metadata", "namespace")
    image = container.get("image")
    if not _known(namespace) or not _known(image):
        return None
    return namespace == context.build_namespace and image == context.buildkit_image


def _pod_security(
    resource_type: str, inputs: Any, context: Context, root: str = "", top: Inputs | None = None
) -> list[str]:
    top = inputs if top is None else top
    found: list[str] = []
    exception = _exception_text(context)

    def relaxation(where: str, what: str, owner: Mapping[str, Any] | None) -> None:
        # `owner` is the container whose securityContext holds the field (None: pod level).
        if owner is not None and isinstance(top, Mapping):
            applies = _buildkit_exception_applies(resource_type, top, owner, context)
            if applies is None or applies:
                return
        found.append(f"{where}: {what} is not allowed: {exception}")

    for path, value in _walk(inputs, root):
        if isinstance(value, str) and DOCKER_SOCKET in value:
            found.append(f"{path}: refers to the Docker socket ({DOCKER_SOCKET}): no docker-in-docker or host Docker")
        if not isinstance(value, Mapping):
            continue
        image = value.get("image")
        if isinstance(image, str) and DIND_IMAGE.search(image):
            found.append(f"{_join(path, 'image')}: docker-in-docker image {image!r} is not allowed")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if value.get(key) is True:
                found.append(f"{_join(path, key)}: host namespaces are not allowed")
        if "hostPath" in value and value.get("hostPath") is not None:
            found.append(f"{_join(path, 'hostPath')}: hostPath volumes are not allowed")
        host_port = value.get("hostPort")
        if _is_number(host_port) and host_port != 0:
            found.append(f"{_join(path, 'hostPort')}: host ports are not allowed")
        if "podSpecPatch" in value and value.get("podSpecPatch") not in (None, ""):
            found.append(
                f"{_join(path, 'podSpecPatch')}: not allowed: it sets pod fields past this policy; "
                "set them on the template itself"
            )
        for volume_path, volume in _volumes(value, path):
            extra = sorted(set(volume) - RESTRICTED_VOLUME_TYPES - {"name", "hostPath"})
            if extra:
                found.append(
                    f"{volume_path}: volume type {', '.join(extra)} is not allowed "
                    f"(restricted allows {', '.join(sorted(RESTRICTED_VOLUME_TYPES))})"
                )
        annotations = value.get("annotations")
        if isinstance(annotations, Mapping):
            for key, text in annotations.items():
                if not isinstance(text, str) or text.strip().lower() != "unconfined":
                    continue
                if key.startswith(APPARMOR_ANNOTATION):
                    owner = _container_named(top, key[len(APPARMOR_ANNOTATION):])
                    relaxation(_join(_join(path, "annotations"), key), "AppArmor unconfined", owner)
                elif key.startswith("seccomp.security.alpha.kubernetes.io/"):
                    found.append(f"{_join(_join(path, 'annotations'), key)}: seccomp unconfined is not allowed")
        context_value = value.get("securityContext")
        if isinstance(context_value, Mapping):
            owner = value if "image" in value else None
            found += _security_context(context_value, _join(path, "securityContext"), owner, relaxation)
    return found


def _volumes(value: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, volume in enumerate(_list(value.get("volumes"))):
        if isinstance(volume, Mapping) and "name" in volume and "mountPath" not in volume:
            yield _join(_join(path, "volumes"), index), volume


def _container_named(top: Any, name: str) -> Mapping[str, Any] | None:
    for _, value in _walk(top):
        if isinstance(value, Mapping) and value.get("name") == name and "image" in value:
            return value
    return None


def _security_context(
    sc: Mapping[str, Any],
    where: str,
    owner: Mapping[str, Any] | None,
    relaxation: Callable[[str, str, Mapping[str, Any] | None], None],
) -> list[str]:
    found: list[str] = []
    if sc.get("privileged") is True:
        found.append(f"{_join(where, 'privileged')}: privileged containers are not allowed anywhere")
    if sc.get("allowPrivilegeEscalation") is True:
        relaxation(_join(where, "allowPrivilegeEscalation"), "allowPrivilegeEscalation: true", owner)
    for profile in ("seccompProfile", "appArmorProfile"):
        kind = _get(sc, profile, "type")
        if isinstance(kind, str) and kind.lower() == "unconfined":
            relaxation(_join(_join(where, profile), "type"), f"{profile} Unconfined", owner)
        elif isinstance(kind, str) and kind == "Localhost" and profile == "seccompProfile":
            found.append(f"{_join(_join(where, profile), 'type')}: Localhost profiles are not allowed (RuntimeDefault)")
    added = [c for c in _list(_get(sc, "capabilities", "add")) if c != "NET_BIND_SERVICE"]
    if added:
        found.append(
            f"{_join(_join(where, 'capabilities'), 'add')}: adding capabilities ({', '.join(map(str, added))}) "
            "is not allowed (restricted allows only NET_BIND_SERVICE)"
        )
    if sc.get("runAsNonRoot") is False:
        found.append(f"{_join(where, 'runAsNonRoot')}: false is not allowed: pods run as non-root")
    run_as_user = sc.get("runAsUser")
    if _is_number(run_as_user) and run_as_user == 0:
        found.append(f"{_join(where, 'runAsUser')}: uid 0 is not allowed: pods run as non-root")
    if sc.get("procMount") not in (None, "Default") and _known(sc.get("procMount")):
        found.append(f"{_join(where, 'procMount')}: only Default is allowed")
    if _get(sc, "windowsOptions", "hostProcess") is True:
        found.append(f"{_join(_join(where, 'windowsOptions'), 'hostProcess')}: host processes are not allowed")
    return found


def check_restricted_pods(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No privileged pod, docker-in-docker, host path or namespace; `restricted` but for BuildKit.

    Looks at every pod-shaped part of any Kubernetes object (Deployments, Workflow
    templates, Sensor and EventSource pod templates, Helm values, the Workflows an Argo
    `resource` step creates), not at a list of known paths, so a new kind is covered too.
    """
    if not _is_kubernetes(resource_type) or not _is_workload_data(resource_type):
        return []
    found = _pod_security(resource_type, inputs, context)
    for where, document in _embedded_manifests(inputs):
        if isinstance(document, str):
            for pattern, what in (
                (r"privileged:\s*true", "a privileged container"),
                (r"hostPath:", "a hostPath volume"),
                (r"host(Network|PID|IPC):\s*true", "a host namespace"),
            ):
                if re.search(pattern, document):
                    found.append(f"{where}: the (unparseable) manifest asks for {what}: not allowed")
        else:
            # A Workflow a step creates gets no BuildKit exception: it must refer to the
            # build WorkflowTemplate (workflowTemplateRef), which carries it.
            found += _pod_security("kubernetes:argoproj.io/v1alpha1:Workflow", document, context, where, {})
    return list(dict.fromkeys(found))


# ---------------------------------------------------------- package installs

PACKAGE_INSTALL = [
    (re.compile(r"\bapk\b(\s+-{1,2}[\w-]+)*\s+add\b"), "apk add"),
    (re.compile(r"\bapt(-get)?\b(\s+-{1,2}[\w=-]+)*\s+install\b"), "apt-get install"),
    (re.compile(r"\b(yum|dnf|microdnf|zypper)\b(\s+-{1,2}[\w=-]+)*\s+install\b"), "yum/dnf install"),
    (re.compile(r"\bpip3?\b(\s+-{1,2}[\w=-]+)*\s+install\b"), "pip install"),
    (re.compile(r"\b(npm|pnpm)\b(\s+-{1,2}[\w=-]+)*\s+(install|i|ci|add)\b"), "npm install"),
    (re.compile(r"\byarn\b(\s+-{1,2}[\w=-]+)*\s+(add|install|global\s+add)\b"), "yarn add"),
    (re.compile(r"\bgem\b(\s+-{1,2}[\w=-]+)*\s+install\b"), "gem install"),
    (re.compile(r"\b(curl|wget)\b[^|;&\n]*\|\s*(sudo\s+)?(env\s+)?(ba|da|z|k)?sh\b"), "curl ... | sh"),
    (re.compile(r"\b(curl|wget)\b[^|;&\n]*\|\s*(sudo\s+)?python3?\b"), "curl ... | python"),
]
COMMAND_KEYS = ("command", "args", "source")


def _command_texts(inputs: Any, root: str = "") -> Iterator[tuple[str, str]]:
    for path, value in _walk(inputs, root):
        if not isinstance(value, Mapping):
            continue
        for key in COMMAND_KEYS:
            item = value.get(key)
            if isinstance(item, str):
                yield _join(path, key), item
            elif isinstance(item, Sequence) and item and all(isinstance(i, str) for i in item):
                yield _join(path, key), " ".join(item)


def check_no_package_installs(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No package manager or `curl | sh` in a command, args or script source: images are prebuilt."""
    if not _is_kubernetes(resource_type) or not _is_workload_data(resource_type):
        return []
    texts = list(_command_texts(inputs))
    for where, document in _embedded_manifests(inputs):
        if not isinstance(document, str):
            texts += list(_command_texts(document, where))
    found = []
    for where, text in texts:
        for pattern, what in PACKAGE_INSTALL:
            if pattern.search(text):
                found.append(f"{where}: installs packages at run time ({what}): build them into the image instead")
                break
    return found


# ------------------------------------------------------- credentials and TLS

URL_CREDENTIALS = [
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@:]*:[^/\s@]*@", re.IGNORECASE), "user:password@ in a URL"),
    (re.compile(r"x-access-token:", re.IGNORECASE), "an x-access-token: credential"),
    (re.compile(r"\boauth2:[^\s/]", re.IGNORECASE), "an oauth2: credential"),
    (
        re.compile(
            r"[?&](access_token|token|private_token|api_key|apikey|password|passwd|client_secret|secret)=[^&\s]",
            re.IGNORECASE,
        ),
        "a credential in a query string",
    ),
]
INSECURE_KEYS = frozenset(
    {"insecure", "insecureSsl", "insecure_ssl", "insecureSkipVerify", "insecureSkipTlsVerify", "insecure_skip_verify"}
)


def check_no_credentials_in_urls(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No credential in a URL or a URL-like string, in any input of any resource."""
    if not _is_workload_data(resource_type):
        return []
    found = []
    for where, text in _strings(inputs):
        for pattern, what in URL_CREDENTIALS:
            if pattern.search(text):
                # Never repeat the value: it holds the credential.
                found.append(f"{where}: contains {what}: pass credentials in a Secret or header, never in a URL")
                break
    return found


def check_no_insecure_tls(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No `insecure`, `insecureSsl` or `insecureSkipVerify` set to true, in any resource."""
    if not _is_workload_data(resource_type):
        return []
    found = []
    for path, value in _walk(inputs):
        if not isinstance(value, Mapping):
            continue
        for key, item in value.items():
            if str(key).rsplit(".", 1)[-1] in INSECURE_KEYS and _truthy(item):
                found.append(f"{_join(path, str(key))}: TLS verification may not be turned off (must be false)")
    return found


# ------------------------------------------------------------------- webhooks

GITHUB_WEBHOOK_TYPES = frozenset(
    {"github:index/repositoryWebhook:RepositoryWebhook", "github:index/organizationWebhook:OrganizationWebhook"}
)
# EventSource event types that receive webhooks, and the field holding their secret.
EVENT_SOURCE_SECRET_FIELDS = {
    "github": "webhookSecret",
    "gitlab": "secretToken",
    "bitbucketserver": "webhookSecret",
    "webhook": "authSecret",
}


def _present(value: Any) -> bool:
    return value is UNKNOWN or (value is not None and value != "" and value != {})


def check_webhooks_have_secrets(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """Every GitHub webhook has a secret and TLS; every webhook EventSource event verifies it."""
    found = []
    if resource_type in GITHUB_WEBHOOK_TYPES:
        configuration = inputs.get("configuration")
        if configuration is UNKNOWN:
            return []
        if not isinstance(configuration, Mapping) or not _present(configuration.get("secret")):
            found.append("configuration.secret: missing: every webhook is HMAC-signed with its own secret")
        url = _get(configuration, "url")
        if isinstance(url, str) and not url.lower().startswith("https://"):
            found.append("configuration.url: must be https:// (the EventSource is behind TLS)")
        return found
    if not _is_argo(resource_type, frozenset({"EventSource"})):
        return []
    spec = inputs.get("spec")
    if not isinstance(spec, Mapping):
        return []
    for source, secret_field in sorted(EVENT_SOURCE_SECRET_FIELDS.items()):
        events = spec.get(source)
        if not isinstance(events, Mapping):
            continue
        for name, event in events.items():
            where = _join(_join("spec", source), str(name))
            if not isinstance(event, Mapping):
                continue
            if not _present(event.get(secret_field)):
                found.append(f"{where}.{secret_field}: missing: the EventSource must verify every delivery")
            if _truthy(event.get("insecure")):
                found.append(f"{where}.insecure: must not be true in any environment")
            if source == "github" and _present(event.get("apiToken")):
                found.append(
                    f"{where}.apiToken: not allowed: Pulumi owns the webhooks, the EventSource holds no GitHub token"
                )
    return found


# ------------------------------------------------------------------------ ECR

ECR_REPOSITORY = "aws:ecr/repository:Repository"
ECR_ENCRYPTION = frozenset({"AES256", "KMS", "KMS_DSSE"})


def check_ecr_repository(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """ECR: immutable tags (only the cache tag may move), scan on push, encryption configured."""
    if resource_type != ECR_REPOSITORY:
        return []
    found = []
    mutability = inputs.get("imageTagMutability")
    filters = _list(inputs.get("imageTagMutabilityExclusionFilters"))
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        names = [_get(f, "filter") for f in filters]
        if any(n is UNKNOWN for n in names):
            pass
        elif len(filters) != 1 or names[0] != context.cache_tag:
            found.append(
                "imageTagMutabilityExclusionFilters: only the build cache tag may be mutable: exactly one "
                f"filter {context.cache_tag!r}, no wildcard (found {len(filters)} filter(s))"
            )
    elif mutability != "IMMUTABLE" and _known(mutability):
        shown = "unset (MUTABLE)" if mutability is None else repr(mutability)
        found.append(
            f"imageTagMutability: {shown}: must be IMMUTABLE, or IMMUTABLE_WITH_EXCLUSION for the cache tag only"
        )
    scan = _get(inputs, "imageScanningConfiguration", "scanOnPush")
    if scan is not True and _known(scan) and _known(inputs.get("imageScanningConfiguration")):
        found.append("imageScanningConfiguration.scanOnPush: must be true")
    encryption = inputs.get("encryptionConfigurations")
    if _known(encryption):
        types = [_get(e, "encryptionType") for e in _list(encryption)]
        if not types or not all(t is UNKNOWN or t in ECR_ENCRYPTION for t in types):
            found.append(
                f"encryptionConfigurations: must be set, encryptionType one of {', '.join(sorted(ECR_ENCRYPTION))}"
            )
    return found


ECR_RESOURCE_POLICY_TYPES = frozenset(
    {"aws:ecr/repositoryPolicy:RepositoryPolicy", "aws:ecr/registryPolicy:RegistryPolicy"}
)


def _principals(principal: Any) -> Iterator[str]:
    """Every principal string of a statement's `Principal` ("*", or {"AWS": [...], ...})."""
    if isinstance(principal, str):
        yield principal
    elif isinstance(principal, Mapping):
        for value in principal.values():
            yield from (v for v in _one_or_list(value) if isinstance(v, str))


def check_ecr_grants(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """ECR repository and registry policies grant named principals named actions: no `*` principal."""
    if resource_type not in ECR_RESOURCE_POLICY_TYPES:
        return []
    statements, found = _allow_statements(inputs, "policy")
    for where, statement in statements:
        if "NotPrincipal" in statement or "NotAction" in statement:
            found.append(f"{where}: NotPrincipal/NotAction grant everyone or everything else: name them")
        wild = [p for p in _principals(statement.get("Principal")) if "*" in p]
        if wild:
            found.append(f"{where}.Principal: '*' would let any AWS account in: name the accounts or roles")
        actions = _one_or_list(statement.get("Action"))
        wild_actions = [a for a in actions if isinstance(a, str) and "*" in a]
        if wild_actions:
            found.append(f"{where}.Action: {', '.join(wild_actions)}: wildcards are not allowed")
    return found


# ------------------------------------------------------------------ retention

ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
CONFIG_FILE_TYPES = frozenset({"kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml:ConfigFile"})


def _is_retained_kind(resource_type: str, inputs: Inputs) -> bool:
    if resource_type in (ECR_REPOSITORY, ROLLOUT) or resource_type in CRD_TYPES:
        return True
    if resource_type in CONFIG_FILE_TYPES:
        file = inputs.get("file")
        return isinstance(file, str) and "crd" in file.lower()
    return False


def check_retained(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """ECR repositories, Argo CRDs and Rollouts survive `pulumi destroy` and a service's removal.

    Retained with `retain_on_delete`, never `protect` (which makes `pulumi destroy`
    fail). The engine does not show policies `retain_on_delete` (pulumi-policy 1.21:
    `PolicyResourceOptions` has protect, ignore_changes, delete_before_replace,
    aliases, custom_timeouts, additional_secret_outputs, parent), so under Pulumi this
    checks what it can see: `protect` off and the ECR repository's `forceDelete` off
    (AWS then refuses to delete a repository that holds images). The offline render
    records `retain_on_delete`; where `options` has it, it must be true.
    """
    if not _is_retained_kind(resource_type, inputs):
        return []
    found = []
    if options.get("protect") is True:
        found.append(
            "options.protect: must be false: retain on delete instead, so `pulumi destroy` succeeds and keeps it"
        )
    if "retain_on_delete" in options and options.get("retain_on_delete") is not True:
        found.append("options.retain_on_delete: must be true: this resource holds data and must survive a delete")
    if resource_type == ECR_REPOSITORY and _truthy(inputs.get("forceDelete")):
        found.append("forceDelete: must be false: deleting a repository must never delete its images")
    return found


# ----------------------------------------------------------------------- RBAC

RBAC_ROLE = re.compile(r"^kubernetes:rbac\.authorization\.k8s\.io/[^:]+:(Cluster)?Role(Patch)?$")


def check_no_wildcard_rbac(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No `*` in a Role's or ClusterRole's verbs, resources, apiGroups or nonResourceURLs."""
    if not RBAC_ROLE.match(resource_type):
        return []
    found = []
    for index, rule in enumerate(_list(inputs.get("rules"))):
        if not isinstance(rule, Mapping):
            continue
        for field in ("verbs", "resources", "apiGroups", "nonResourceURLs"):
            wild = [v for v in _list(rule.get(field)) if isinstance(v, str) and "*" in v]
            if wild:
                found.append(f"rules[{index}].{field}: {', '.join(wild)}: wildcards are not allowed; name each one")
    return found


IAM_POLICY_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
# Actions AWS only grants on Resource "*".
IAM_STAR_RESOURCE_ACTIONS = frozenset({"ecr:GetAuthorizationToken"})


def check_least_privilege_iam(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """IAM policies name their actions and resources: no `*` action, `*` resource only for login."""
    field = IAM_POLICY_TYPES.get(resource_type)
    if field is None:
        return []
    statements, found = _allow_statements(inputs, field)
    for where, statement in statements:
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{where}: NotAction/NotResource grant everything else: name the actions and resources")
        actions = _one_or_list(statement.get("Action"))
        resources = _one_or_list(statement.get("Resource"))
        wild = [a for a in actions if isinstance(a, str) and "*" in a]
        if wild:
            found.append(f"{where}.Action: {', '.join(wild)}: wildcards are not allowed")
        if "*" in resources and not set(actions) <= IAM_STAR_RESOURCE_ACTIONS:
            found.append(
                f"{where}.Resource: '*' is allowed only for {', '.join(sorted(IAM_STAR_RESOURCE_ACTIONS))}"
            )
    return found


# ---------------------------------------------------------------- AppProjects


def check_scoped_app_projects(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """An AppProject names its repositories and destinations and may create no cluster-scoped object."""
    if not _is_argo(resource_type, frozenset({"AppProject"})):
        return []
    spec = inputs.get("spec")
    if not isinstance(spec, Mapping):
        return []
    found = []
    for index, repo in enumerate(_list(spec.get("sourceRepos"))):
        if isinstance(repo, str) and "*" in repo:
            found.append(f"spec.sourceRepos[{index}]: {repo!r}: wildcards are not allowed; list the repositories")
    for index, namespace in enumerate(_list(spec.get("sourceNamespaces"))):
        if isinstance(namespace, str) and "*" in namespace:
            found.append(f"spec.sourceNamespaces[{index}]: {namespace!r}: wildcards are not allowed")
    for index, destination in enumerate(_list(spec.get("destinations"))):
        if not isinstance(destination, Mapping):
            continue
        for field in ("namespace", "server", "name"):
            value = destination.get(field)
            if isinstance(value, str) and "*" in value:
                found.append(f"spec.destinations[{index}].{field}: {value!r}: wildcards are not allowed")
    whitelist = spec.get("clusterResourceWhitelist")
    if _known(whitelist) and _list(whitelist):
        found.append("spec.clusterResourceWhitelist: must be empty: teams deploy no cluster-scoped objects")
    return found


# -------------------------------------------------------------- anonymous UIs

HELM_RELEASE_TYPES = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"})


def _chart_name(inputs: Inputs) -> str:
    chart = inputs.get("chart")
    return chart.rstrip("/").rsplit("/", 1)[-1] if isinstance(chart, str) else ""


def _args(value: Any) -> list[str]:
    return [a for a in _list(value) if isinstance(a, str)]


def check_no_anonymous_uis(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """Argo CD without anonymous access or admin user; Argo Workflows without `server` auth;
    the Rollouts dashboard (no login of its own) not exposed."""
    if resource_type not in HELM_RELEASE_TYPES:
        return []
    values = inputs.get("values")
    if not isinstance(values, Mapping):
        return []
    chart = _chart_name(inputs)
    found = []
    if chart == "argo-cd":
        cm = _get(values, "configs", "cm") or {}
        if _truthy(_get(cm, "users.anonymous.enabled")):
            found.append('values.configs.cm["users.anonymous.enabled"]: must be "false": no anonymous access')
        admin = _get(cm, "admin.enabled")
        if _known(admin) and not _falsy(admin):
            found.append(
                'values.configs.cm["admin.enabled"]: must be "false" (the chart enables the local admin by default)'
            )
        if _truthy(_get(values, "configs", "params", "server.disable.auth")):
            found.append('values.configs.params["server.disable.auth"]: must not be true')
        if "--disable-auth" in _args(_get(values, "server", "extraArgs")):
            found.append("values.server.extraArgs: --disable-auth is not allowed")
    elif chart == "argo-workflows":
        modes = _args(_get(values, "server", "authModes"))
        if "server" in modes or _get(values, "server", "authMode") == "server":
            found.append(
                "values.server.authModes: 'server' lets anyone use the server's own ServiceAccount: use sso"
            )
        extra = _args(_get(values, "server", "extraArgs"))
        joined = " ".join(extra)
        if re.search(r"--auth-mode(=|\s+)server\b", joined):
            found.append("values.server.extraArgs: --auth-mode=server is not allowed: use sso")
    elif chart == "argo-rollouts":
        if _truthy(_get(values, "dashboard", "ingress", "enabled")):
            found.append("values.dashboard.ingress.enabled: the Rollouts dashboard has no login: no Ingress")
        service_type = _get(values, "dashboard", "service", "type")
        if service_type in ("LoadBalancer", "NodePort"):
            found.append(f"values.dashboard.service.type: {service_type} exposes a dashboard without login")
    return found


# ---------------------------------------------------- payload through env only

PAYLOAD_PARAMETERS = frozenset({"pr-title", "author", "pr-number", "repository", "trigger"})
# Free text the Sensor carries as `b64:` + base64 (components.sensors.Encoded; a test keeps them equal):
# only ever the whole value of an environment variable named `*_B64`.
ENCODED_PARAMETERS = frozenset({"pr-title", "author", "repository"})
ENCODED_ENV_SUFFIX = "_B64"
ENCODED_SENSOR_TEMPLATE = re.compile(r"^b64:\{\{ \.Input\.[A-Za-z0-9_.]+ \| toString \| b64enc \}\}$")
_WHOLE_TAG = re.compile(r"^\{\{\s*(workflow|inputs)\.parameters\.[A-Za-z0-9_-]+\s*\}\}$")
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _refs(expression: str, scope: str) -> set[str]:
    """Parameter names `expression` (the inside of one `{{...}}`) takes from `scope`."""
    names = set(re.findall(rf"{scope}\.parameters\.([A-Za-z0-9_-]+)", expression))
    names |= set(re.findall(rf"{scope}\.parameters\[\s*['\"]([^'\"]+)['\"]\s*\]", expression))
    return names


def _whole_set(expression: str, scope: str) -> bool:
    """`{{workflow.parameters.json}}`, `{{inputs.parameters}}`: every parameter at once."""
    text = expression.strip().lstrip("=").strip()
    return text in (f"{scope}.parameters", f"{scope}.parameters.json")


def _taints(text: str, tainted_inputs: set[str], roots: frozenset[str] = PAYLOAD_PARAMETERS) -> list[str]:
    """The payload references among the `{{...}}` tags of `text` (empty when there are none)."""
    found: list[str] = []
    for match in _TAG.finditer(text):
        inner = match.group(1)
        found += [f"workflow.parameters.{n}" for n in sorted(_refs(inner, "workflow") & roots)]
        found += [f"inputs.parameters.{n}" for n in sorted(_refs(inner, "inputs") & tainted_inputs)]
        for scope in ("workflow", "inputs"):
            if _whole_set(inner, scope):
                found.append(f"{scope}.parameters (all of them)")
    return list(dict.fromkeys(found))


def _is_env_value(path: str) -> bool:
    return re.search(r"\.env\[\d+\]\.value$", path) is not None


def _is_parameter_value(path: str) -> bool:
    return re.search(r"\.parameters\[\d+\]\.(value|default)$", path) is not None


def check_payload_only_through_env(
    resource_type: str, inputs: Inputs, options: Options, context: Context
) -> list[str]:
    """Payload parameters reach a step only as an `env[].value`, never by `{{...}}` in its source.

    `{{workflow.parameters.<pr-title|author|pr-number|repository|trigger>}}` may stand in
    an `env[].value`; it may also be passed on as a parameter's value (arguments or
    inputs), which makes that parameter payload too: `{{inputs.parameters.<it>}}` is then
    held to the same rule. Anywhere else (script source, command, args, a `when`, a
    manifest, a label) it is a violation.

    The Sensor sends pr-title, author and repository base64-encoded (docs/decisions/0100):
    in a Workflow kind such a parameter may only be the whole value of a `*_B64` variable,
    and a variable from a Secret must come after every env value Argo fills in
    (Kubernetes expands `$(NAME)` with earlier variables only). In a Sensor, an encoded
    argument must come from the encoding `dataTemplate`, and an argument taken plain by
    `dataKey` must be on a path a string filter of its dependency holds to a shape.
    """
    if not _is_argo(resource_type, WORKFLOW_KINDS | frozenset({"Sensor"})):
        return []
    strings = list(_strings(inputs))
    tainted = _tainted(inputs, strings, PAYLOAD_PARAMETERS)
    found = []
    if _is_argo(resource_type, WORKFLOW_KINDS):
        found += _env_order_and_encoding(inputs, _tainted(inputs, strings, ENCODED_PARAMETERS))
    else:
        found += _sensor_encodes_payload(inputs)
    for path, text in strings:
        if _is_env_value(path) or _is_parameter_value(path) or not _taints(text, tainted):
            continue
        refs = ", ".join(_taints(text, tainted))
        found.append(
            f"{path}: substitutes {refs} (payload text: pr-title, author, pr-number, repository, trigger) "
            "with {{...}}: pass it only as an env[].value and quote it in the script"
        )
    return found


def _tainted(inputs: Inputs, strings: list[tuple[str, str]], roots: frozenset[str]) -> set[str]:
    """Parameters that carry one of `roots`, by name, to a fixed point (names, not templates:
    a name tainted anywhere is held to the rule everywhere, which errs on the safe side)."""
    tainted: set[str] = set()
    while True:
        before = len(tainted)
        for path, text in strings:
            if _is_parameter_value(path) and _taints(text, tainted, roots):
                owner = _get_path(inputs, path.rsplit(".", 1)[0])
                name = _get(owner, "name")
                if isinstance(name, str):
                    tainted.add(name)
        if len(tainted) == before:
            return tainted


def _env_lists(value: Any, path: str = "") -> Iterator[tuple[str, list[Any]]]:
    for where, item in _walk(value, path):
        if where.endswith(".env") and isinstance(item, list):
            yield where, item


def _env_order_and_encoding(inputs: Inputs, encoded: set[str]) -> list[str]:
    """Encoded payload only as the whole value of a `*_B64` variable; Secrets after every
    value Argo fills in (Kubernetes expands `$(NAME)` only with variables defined earlier)."""
    found = []
    for path, env in _env_lists(inputs):
        last_substituted = None
        for i, var in enumerate(env):
            name, value = _get(var, "name"), _get(var, "value")
            if isinstance(value, str) and "{{" in value:
                last_substituted = (i, name)
            if not isinstance(value, str):
                continue
            refs = _taints(value, encoded, ENCODED_PARAMETERS)
            if refs and not (_WHOLE_TAG.match(value) and isinstance(name, str) and name.endswith(ENCODED_ENV_SUFFIX)):
                found.append(
                    f"{path}[{i}]: {name} takes {', '.join(refs)}, which the Sensor sends base64-encoded: it must be "
                    f"the whole value of a variable named *{ENCODED_ENV_SUFFIX}, which the script decodes"
                )
        if last_substituted is None:
            continue
        for i, var in enumerate(env[:last_substituted[0]]):
            if _get(var, "valueFrom", "secretKeyRef") is not None:
                found.append(
                    f"{path}[{i}]: {_get(var, 'name')} comes from a Secret before {path}[{last_substituted[0]}] "
                    f"({last_substituted[1]}), whose value Argo fills in at run time: Kubernetes expands $(NAME) "
                    "with the variables defined earlier, so Secrets go last (or in a volume)"
                )
    return found


def _sensor_encodes_payload(inputs: Inputs) -> list[str]:
    """A Sensor's k8s trigger: an encoded argument comes from the encoding `dataTemplate`; an
    argument taken plain by `dataKey` is held to a shape by a string filter on that path."""
    found = []
    filtered: dict[Any, set[Any]] = {}
    for dependency in _list(_get(inputs, "spec", "dependencies")):
        filtered[_get(dependency, "name")] = {
            _get(f, "path") for f in _list(_get(dependency, "filters", "data")) if _get(f, "type") == "string"}
    for t, trigger in enumerate(_list(_get(inputs, "spec", "triggers"))):
        k8s = _get(trigger, "template", "k8s")
        arguments = [_get(p, "name") for p in _list(_get(k8s, "source", "resource", "spec", "arguments", "parameters"))]
        for i, parameter in enumerate(_list(_get(k8s, "parameters"))):
            dest = _get(parameter, "dest")
            match = re.fullmatch(r"spec\.arguments\.parameters\.(\d+)\.value", dest) if isinstance(dest, str) else None
            if match is None or int(match.group(1)) >= len(arguments):
                continue
            argument, src = arguments[int(match.group(1))], _get(parameter, "src")
            where = f"spec.triggers[{t}].template.k8s.parameters[{i}].src"
            key, template = _get(src, "dataKey"), _get(src, "dataTemplate")
            if argument in ENCODED_PARAMETERS and not (
                    key is None and isinstance(template, str) and ENCODED_SENSOR_TEMPLATE.match(template)):
                found.append(f"{where}: argument {argument} is payload text: carry it as "
                             "b64:{{ .Input.<path> | toString | b64enc }}, not plain")
            elif key is not None and key not in filtered.get(_get(src, "dependencyName"), set()):
                found.append(f"{where}: argument {argument} is taken plain from {key}, which no string filter of "
                             "its dependency holds to a shape: filter it, or carry it encoded")
    return found


def _get_path(data: Any, path: str) -> Any:
    for key in re.findall(r'\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.\[\]]+)', path):
        index, quoted, plain = key
        if index:
            items = _list(data)
            data = items[int(index)] if int(index) < len(items) else None
        else:
            data = _get(data, json.loads(f'"{quoted}"') if quoted else plain)
    return data


# ------------------------------------------------------------ GitOps writes

DEPLOY_KEY = "github:index/repositoryDeployKey:RepositoryDeployKey"
RULESET_TYPES = frozenset(
    {"github:index/repositoryRuleset:RepositoryRuleset", "github:index/organizationRuleset:OrganizationRuleset"}
)
ONE_BRANCH = re.compile(r"^refs/heads/[^*?\[\]~\s]+$")


def check_gitops_writes_scoped(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No write deploy key; a branch ruleset lets one GitHub App push to one branch only."""
    found = []
    if resource_type == DEPLOY_KEY:
        read_only = inputs.get("readOnly")
        if read_only is not True and _known(read_only):
            found.append(
                "readOnly: must be true: a deploy key cannot be limited to a branch, so writes go through "
                "one GitHub App per environment"
            )
        return found
    if resource_type not in RULESET_TYPES:
        return []
    actors = _list(inputs.get("bypassActors"))
    integrations = [a for a in actors if _get(a, "actorType") == "Integration"]
    if len(integrations) > 1:
        found.append(
            f"bypassActors: {len(integrations)} Integrations: only this environment's GitHub App may bypass "
            "the ruleset of its branch"
        )
    if inputs.get("target") not in ("branch", None, UNKNOWN):
        found.append(f"target: {inputs.get('target')!r}: must be 'branch'")
    enforcement = inputs.get("enforcement")
    if _known(enforcement) and enforcement != "active":
        found.append(f"enforcement: {enforcement!r}: must be 'active', or other environments' Apps can push")
    includes = _get(inputs, "conditions", "refName", "includes")
    if _known(includes):
        names = _list(includes)
        if len(names) != 1 or not (isinstance(names[0], str) and ONE_BRANCH.match(names[0])):
            found.append(
                "conditions.refName.includes: must be exactly one 'refs/heads/<branch>' (no pattern, "
                f"~ALL or ~DEFAULT_BRANCH); found {names!r}"
            )
    return found


# ---------------------------------------------------------------------- table


@dataclass(frozen=True)
class Check:
    """One policy of the pack: its name, what it enforces, and the function."""

    name: str
    description: str
    check: CheckFn


CHECKS: tuple[Check, ...] = (
    Check(
        "restricted-pods",
        "No privileged or docker-in-docker pod, hostPath, host namespace or port; pods stay `restricted`, "
        "except seccomp/AppArmor Unconfined and allowPrivilegeEscalation on the build WorkflowTemplate's "
        "BuildKit container in the build namespace.",
        check_restricted_pods,
    ),
    Check(
        "no-runtime-package-installs",
        "No apk/apt-get/yum/pip/npm installs or `curl | sh` in a step's command, args or script: images are "
        "prebuilt.",
        check_no_package_installs,
    ),
    Check(
        "no-credentials-in-urls",
        "No credential in a URL (user:token@, x-access-token:, oauth2:, ?token=) in any input.",
        check_no_credentials_in_urls,
    ),
    Check(
        "no-insecure-tls",
        "No insecure, insecureSsl or insecureSkipVerify set to true.",
        check_no_insecure_tls,
    ),
    Check(
        "webhooks-have-secrets",
        "Every GitHub webhook has a secret and an https URL; every webhook EventSource event verifies its "
        "secret, is not insecure and holds no GitHub API token.",
        check_webhooks_have_secrets,
    ),
    Check(
        "ecr-immutable-scanned-encrypted",
        "ECR repositories: immutable tags (only the cache tag excluded), scan on push, encryption configured.",
        check_ecr_repository,
    ),
    Check(
        "ecr-grants-name-principals",
        "ECR repository and registry policies: every Allow names its principals (no `*`, no NotPrincipal) "
        "and its actions (no wildcard).",
        check_ecr_grants,
    ),
    Check(
        "retained-on-delete",
        "ECR repositories, Argo CRDs and Rollouts are never `protect`ed (destroy must succeed) and ECR "
        "repositories never force-deleted; retain_on_delete where the engine shows it.",
        check_retained,
    ),
    Check(
        "no-wildcard-rbac",
        "No `*` in a Role's or ClusterRole's verbs, resources, apiGroups or nonResourceURLs.",
        check_no_wildcard_rbac,
    ),
    Check(
        "least-privilege-iam",
        "IAM policies: no wildcard actions, Resource `*` only for ecr:GetAuthorizationToken.",
        check_least_privilege_iam,
    ),
    Check(
        "scoped-app-projects",
        "Argo CD AppProjects: no `*` in sourceRepos, sourceNamespaces or destinations; no "
        "clusterResourceWhitelist.",
        check_scoped_app_projects,
    ),
    Check(
        "no-anonymous-uis",
        "Argo CD without anonymous access and with the admin user disabled; Argo Workflows without the "
        "`server` auth mode; the Rollouts dashboard not exposed.",
        check_no_anonymous_uis,
    ),
    Check(
        "payload-only-through-env",
        "Payload parameters (pr-title, author, pr-number, repository, trigger) reach steps only as "
        "env[].value, never by {{...}} in a script, command, args or expression; the Sensor sends pr-title, "
        "author and repository base64-encoded, only ever the whole value of a *_B64 variable; a plain "
        "argument is filtered to a shape; Secrets come after every substituted env value.",
        check_payload_only_through_env,
    ),
    Check(
        "gitops-writes-scoped",
        "No write deploy key on any repository; a branch ruleset lets at most one GitHub App bypass it, "
        "on exactly one refs/heads/<branch>, enforced.",
        check_gitops_writes_scoped,
    ),
)


def violations(
    resource_type: str, inputs: Inputs, options: Options | None = None, context: Context | None = None
) -> dict[str, list[str]]:
    """Every policy's violations for one resource: {policy name: messages}, only the non-empty ones."""
    result = {}
    for check in CHECKS:
        messages = check.check(resource_type, inputs, options or {}, context or Context())
        if messages:
            result[check.name] = messages
    return result
