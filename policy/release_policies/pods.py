"""Pods: `restricted-pods` and `no-runtime-package-installs`.

Owns: the checks over every pod-shaped part of a Kubernetes object, the Workflows an
Argo `resource` step creates (its `manifest` text) included: no privileged container,
docker-in-docker, Docker socket, hostPath, host namespace or host port, no
`podSpecPatch`; the `restricted` Pod Security Standard but for the BuildKit exception;
and no package manager or `curl | sh` in a command, args or script source.
Does not own: the walkers (`inputs`), where and with which image BuildKit may run
(`context.Context`).

Decisions: docs/decisions/0383-pod-checks-walk-every-pod-shaped-part.md,
docs/decisions/0384-the-buildkit-exception-is-one-container.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import yaml

from release_policies.context import Context
from release_policies.inputs import (
    ARGO_API,
    Inputs,
    Options,
    as_list,
    get_in,
    is_kubernetes,
    is_number,
    is_workload_data,
    join_path,
    kind_of,
    known,
    walk,
)


def _embedded_manifests(inputs: Inputs) -> Iterator[tuple[str, Any]]:
    """Kubernetes objects written as YAML text inside an object: Argo `resource.manifest`.

    Yields (path, parsed document), or (path, the text) when it is not parseable YAML,
    so a check can still scan the text.
    """
    for path, value in walk(inputs):
        if not isinstance(value, Mapping):
            continue
        text = value.get("manifest")
        if not isinstance(text, str):
            continue
        where = join_path(path, "manifest")
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            yield where, text
            continue
        for index, document in enumerate(documents):
            yield (where if len(documents) == 1 else f"{where}<document {index}>"), document


# ----------------------------------------------------------- restricted pods


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
    if kind_of(resource_type) != "WorkflowTemplate" or not resource_type.startswith(ARGO_API):
        return False
    if context.buildkit_image is None:
        return False
    namespace = get_in(inputs, "metadata", "namespace")
    image = container.get("image")
    if not known(namespace) or not known(image):
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

    for path, value in walk(inputs, root):
        if isinstance(value, str) and DOCKER_SOCKET in value:
            found.append(f"{path}: refers to the Docker socket ({DOCKER_SOCKET}): no docker-in-docker or host Docker")
        if not isinstance(value, Mapping):
            continue
        image = value.get("image")
        if isinstance(image, str) and DIND_IMAGE.search(image):
            found.append(f"{join_path(path, 'image')}: docker-in-docker image {image!r} is not allowed")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if value.get(key) is True:
                found.append(f"{join_path(path, key)}: host namespaces are not allowed")
        if "hostPath" in value and value.get("hostPath") is not None:
            found.append(f"{join_path(path, 'hostPath')}: hostPath volumes are not allowed")
        host_port = value.get("hostPort")
        if is_number(host_port) and host_port != 0:
            found.append(f"{join_path(path, 'hostPort')}: host ports are not allowed")
        if "podSpecPatch" in value and value.get("podSpecPatch") not in (None, ""):
            found.append(
                f"{join_path(path, 'podSpecPatch')}: not allowed: it sets pod fields past this policy; "
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
                    relaxation(join_path(join_path(path, "annotations"), key), "AppArmor unconfined", owner)
                elif key.startswith("seccomp.security.alpha.kubernetes.io/"):
                    found.append(f"{join_path(join_path(path, 'annotations'), key)}: seccomp unconfined is not allowed")
        context_value = value.get("securityContext")
        if isinstance(context_value, Mapping):
            owner = value if "image" in value else None
            found += _security_context(context_value, join_path(path, "securityContext"), owner, relaxation)
    return found


def _volumes(value: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, volume in enumerate(as_list(value.get("volumes"))):
        if isinstance(volume, Mapping) and "name" in volume and "mountPath" not in volume:
            yield join_path(join_path(path, "volumes"), index), volume


def _container_named(top: Any, name: str) -> Mapping[str, Any] | None:
    for _, value in walk(top):
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
        found.append(f"{join_path(where, 'privileged')}: privileged containers are not allowed anywhere")
    if sc.get("allowPrivilegeEscalation") is True:
        relaxation(join_path(where, "allowPrivilegeEscalation"), "allowPrivilegeEscalation: true", owner)
    for profile in ("seccompProfile", "appArmorProfile"):
        kind = get_in(sc, profile, "type")
        if isinstance(kind, str) and kind.lower() == "unconfined":
            relaxation(join_path(join_path(where, profile), "type"), f"{profile} Unconfined", owner)
        elif isinstance(kind, str) and kind == "Localhost" and profile == "seccompProfile":
            found.append(
                f"{join_path(join_path(where, profile), 'type')}: Localhost profiles are not allowed (RuntimeDefault)"
            )
    added = [c for c in as_list(get_in(sc, "capabilities", "add")) if c != "NET_BIND_SERVICE"]
    if added:
        found.append(
            f"{join_path(join_path(where, 'capabilities'), 'add')}: adding capabilities ({', '.join(map(str, added))}) "
            "is not allowed (restricted allows only NET_BIND_SERVICE)"
        )
    if sc.get("runAsNonRoot") is False:
        found.append(f"{join_path(where, 'runAsNonRoot')}: false is not allowed: pods run as non-root")
    run_as_user = sc.get("runAsUser")
    if is_number(run_as_user) and run_as_user == 0:
        found.append(f"{join_path(where, 'runAsUser')}: uid 0 is not allowed: pods run as non-root")
    if sc.get("procMount") not in (None, "Default") and known(sc.get("procMount")):
        found.append(f"{join_path(where, 'procMount')}: only Default is allowed")
    if get_in(sc, "windowsOptions", "hostProcess") is True:
        found.append(f"{join_path(join_path(where, 'windowsOptions'), 'hostProcess')}: host processes are not allowed")
    return found


def check_restricted_pods(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No privileged pod, docker-in-docker, host path or namespace; `restricted` but for BuildKit.

    Looks at every pod-shaped part of any Kubernetes object (Deployments, Workflow
    templates, Sensor and EventSource pod templates, Helm values, the Workflows an Argo
    `resource` step creates): docs/decisions/0383-pod-checks-walk-every-pod-shaped-part.md.
    """
    if not is_kubernetes(resource_type) or not is_workload_data(resource_type):
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
    for path, value in walk(inputs, root):
        if not isinstance(value, Mapping):
            continue
        for key in COMMAND_KEYS:
            item = value.get(key)
            if isinstance(item, str):
                yield join_path(path, key), item
            elif isinstance(item, Sequence) and item and all(isinstance(i, str) for i in item):
                yield join_path(path, key), " ".join(item)


def check_no_package_installs(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """No package manager or `curl | sh` in a command, args or script source: images are prebuilt."""
    if not is_kubernetes(resource_type) or not is_workload_data(resource_type):
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
