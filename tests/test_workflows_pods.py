"""What every step pod is made of (components/workflows/pods.py), checked by walking every
built release and build template: securityContexts (docs/security-model.md), resources,
images, payload only in environment values, tokens and Secrets.
"""

from __future__ import annotations

import copy
import re

import yaml

from components import names
from components import workflows as wf
from components.versions import BUILDKIT_ECR, RELEASE_TOOLS
from tests.workflows_support import (
    TESTS,
    _all_containers,
    _build,
    _env,
    _pod_templates,
    _release,
    _service,
    _settings,
    _templates,
    _variants,
    payload_outside_env,
    walk,
)

# ------------------------------------------------------------------ security contexts


def test_only_the_buildkit_container_is_unconfined() -> None:
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            for template_name, container in _all_containers(manifest):
                context = container["securityContext"]
                if template_name == "buildkit" and "name" not in container:  # the main container
                    continue
                assert context == {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "privileged": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                }, (template_name, container.get("name", "main"))


def test_buildkit_gets_exactly_what_rootless_buildkit_needs() -> None:
    template = _templates(_build())["buildkit"]
    container = template["container"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": True,  # setuid newuidmap/newgidmap
        "appArmorProfile": {"type": "Unconfined"},
        "privileged": False,
        "readOnlyRootFilesystem": False,
        "runAsGroup": 1000,
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "Unconfined"},
    }
    assert "capabilities" not in container["securityContext"]  # nothing added
    assert _env(container)["BUILDKITD_FLAGS"] == "--oci-worker-no-process-sandbox"
    assert {"mountPath": "/home/user/.local/share/buildkit", "name": "buildkit"} in container["volumeMounts"]
    assert {"name": "buildkit", "emptyDir": {}} in template["volumes"]
    assert container["command"] == ["buildctl-daemonless.sh"]
    assert container["args"][0] == "build"


def test_every_pod_runs_as_non_root_with_runtime_default_seccomp() -> None:
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            for template in _pod_templates(manifest):
                assert template["securityContext"] == {
                    "fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "runAsUser": 1000,
                    "seccompProfile": {"type": "RuntimeDefault"},
                }, template["name"]


def test_nothing_privileged_no_host_path_no_docker_socket_anywhere() -> None:
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            for path, value in walk(manifest):
                assert not path.endswith(".privileged") or value is False, path
                assert not path.endswith(".hostPath"), path
                assert not re.search(r"\.host(Network|PID|IPC)$", path), path
                assert not path.endswith(".capabilities.add"), path
                if isinstance(value, str):
                    assert "docker.sock" not in value and "dind" not in value, path
            child = yaml.safe_load(_templates(_release(service))["build"]["resource"]["manifest"])
            assert not any(p.endswith(".hostPath") for p, _ in walk(child))


def test_every_container_with_a_read_only_root_has_tmp_and_home_there() -> None:
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            for template_name, container in _all_containers(manifest):
                if not container["securityContext"]["readOnlyRootFilesystem"]:
                    continue
                assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"], template_name
                assert _env(container)["HOME"] == "/tmp", template_name


# ------------------------------------------------------------------ resources, clean-up


def test_every_container_has_requests_and_limits() -> None:
    settings = _settings()
    for service in _variants():
        for manifest in (_release(service, settings), _build(service, settings)):
            for template_name, container in _all_containers(manifest):
                resources = container["resources"]
                for kind in ("requests", "limits"):
                    assert set(resources[kind]) == {"cpu", "memory"}, (template_name, kind)
    tests = _templates(_release())["tests"]["container"]["resources"]
    assert tests["limits"] == settings.sizes.unit_tests.resources.limits.model_dump()
    build = _templates(_build())["buildkit"]["container"]["resources"]
    assert build["requests"] == settings.sizes.image_build.resources.requests.model_dump()


def test_workflows_clean_up_after_themselves() -> None:
    for manifest in (_release(), _build()):
        spec = manifest["spec"]
        assert spec["podGC"] == {"strategy": "OnPodSuccess"}
        assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0
        assert spec["ttlStrategy"]["secondsAfterFailure"] >= spec["ttlStrategy"]["secondsAfterSuccess"]


# ------------------------------------------------------------------------ images


def test_images_are_pinned_tool_images_and_the_services_test_image() -> None:
    settings = _settings()
    tools = RELEASE_TOOLS.ref(settings.tool_images.registry)
    buildkit = BUILDKIT_ECR.ref(settings.tool_images.registry)
    for service in _variants():
        for manifest in (_release(service, settings), _build(service, settings)):
            for template_name, container in _all_containers(manifest):
                image = container["image"]
                assert not image.endswith(":latest") and re.search(r":[\w.-]+$|@sha256:", image), image
                if template_name == "tests" and "name" not in container:
                    assert service.tests is not None and image == service.tests.image
                elif template_name == "buildkit" and "name" not in container:
                    assert image == buildkit
                else:
                    assert image == tools, template_name
    assert tools.endswith(f"/release-tools:{RELEASE_TOOLS.version}")
    assert buildkit.endswith(f"/buildkit-ecr:{BUILDKIT_ECR.version}")


def test_no_package_install_at_run_time() -> None:
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            for _, container in _all_containers(manifest):
                words = " ".join([*container.get("command", []), *container.get("args", [])])
                assert not re.search(r"\b(pip|apt-get|apk|yum|npm)\b", words), words


# ------------------------------------------------------------------ payload and tokens


def test_payload_parameters_appear_only_as_environment_values() -> None:
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            assert payload_outside_env(manifest) == []
    # They do reach the steps that report them.
    notify = _env(_templates(_release())["notify"]["container"])
    assert notify["PR_TITLE_B64"] == "{{workflow.parameters.pr-title}}"
    assert notify["AUTHOR_B64"] == "{{workflow.parameters.author}}"
    assert "PR_TITLE" not in notify and "AUTHOR" not in notify
    assert notify["PR_NUMBER"] == "{{workflow.parameters.pr-number}}"
    assert _env(_templates(_release())["promote"]["container"])["PR_NUMBER"] == "{{workflow.parameters.pr-number}}"


def test_the_payload_check_catches_a_reference_in_args_a_script_or_the_child() -> None:
    manifest = _release()
    for where in ("args", "command"):
        bad = copy.deepcopy(manifest)
        _templates(bad)["promote"]["container"][where] = ["echo", "{{workflow.parameters.pr-title}}"]
        assert payload_outside_env(bad)
    bad = copy.deepcopy(manifest)
    resource = _templates(bad)["build"]["resource"]
    resource["manifest"] += "# {{ workflow.parameters.author }}\n"
    assert payload_outside_env(bad)
    bad = copy.deepcopy(manifest)
    _templates(bad)["notify"]["container"]["env"].append(
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "{{workflow.parameters.trigger}}", "key": "k"}}}
    )
    assert payload_outside_env(bad)
    bad = copy.deepcopy(manifest)
    _templates(bad)["verify"]["container"]["workingDir"] = "{{=workflow.parameters['repository']}}"
    assert payload_outside_env(bad)


def test_revision_is_the_only_parameter_in_args_and_the_child_manifest() -> None:
    service = _service("    build: {args: {A: '1'}}\n")
    args = " ".join(_templates(_build(service))["buildkit"]["container"]["args"])
    assert set(re.findall(r"\{\{([^}]*)\}\}", args)) == {"workflow.parameters.revision"}
    manifest = _templates(_release(service))["build"]["resource"]["manifest"]
    assert set(re.findall(r"\{\{([^}]*)\}\}", manifest)) == {"workflow.parameters.revision", "workflow.name"}


def test_services_yaml_strings_keep_their_dollars_from_kubernetes_expansion() -> None:
    service = _service('    build: {args: {B: "x $(HOME) $$"}}\n'
                       + TESTS.replace('"-q"', '"$(HOME)"'), tests=False)
    tests = _templates(_release(service))["tests"]["container"]
    assert tests["command"] == ["python", "-m", "pytest", "$$(HOME)"]
    build = _templates(_build(service))["buildkit"]["container"]
    assert _env(build)["BUILD_ARG_B"] == "x $$(HOME) $$$$"
    assert "build-arg:B=$(BUILD_ARG_B)" in build["args"]


def test_team_code_holds_no_kubernetes_token_and_no_secret() -> None:
    manifest = _release(_service("    path: services/svc\n"))
    templates = _templates(manifest)
    assert manifest["spec"]["automountServiceAccountToken"] is False
    assert manifest["spec"]["serviceAccountName"] == names.release_service_account_name("svc")
    for name in ("changed", "tests", "promote", "notify"):
        assert templates[name]["automountServiceAccountToken"] is False, name
        assert templates[name]["executor"] == {"serviceAccountName": names.EXECUTOR_SERVICE_ACCOUNT}, name
    for name in ("build", "verify"):  # the two steps that act as the release account
        assert templates[name]["automountServiceAccountToken"] is True, name
        assert "executor" not in templates[name], name
    tests = templates["tests"]["container"]
    assert not any("valueFrom" in e for e in tests["env"])
    assert {m["name"] for m in tests["volumeMounts"]} == {"tmp", "workspace"}
    assert tests["workingDir"] == "/workspace/services/svc"
    assert _templates(_release())["tests"]["container"]["workingDir"] == "/workspace"
    build = _build()["spec"]
    assert build["automountServiceAccountToken"] is False
    assert build["executor"] == {"serviceAccountName": names.EXECUTOR_SERVICE_ACCOUNT}
    assert build["serviceAccountName"] == names.builder_service_account_name("svc")
    assert not any("automountServiceAccountToken" in t for t in build["templates"])


def test_secrets_are_referenced_by_name_never_by_value() -> None:
    service = _service()
    manifest = _release(service)
    templates = _templates(manifest)
    key = {"name": "ssh-key", "secret": {"secretName": names.deploy_key_secret_name(service.repo),
                                         "defaultMode": 0o400,
                                         "items": [{"key": "ssh-privatekey", "path": "ssh-privatekey"}]}}
    assert key in templates["tests"]["volumes"]
    assert key in _templates(_build(service))["buildkit"]["volumes"]
    writer = names.writer_secret_name(service.helm.repo)
    assert {"name": "github-app", "secret": {"secretName": writer, "defaultMode": 0o400,
                                             "items": [{"key": "private-key", "path": "private-key"}]}} \
        in templates["promote"]["volumes"]
    promote = _env(templates["promote"]["container"])
    assert promote["PRIVATE_KEY_FILE"] == "/etc/release-pipeline/github-app/private-key"
    assert promote["APP_ID"] == {"secretKeyRef": {"name": writer, "key": "app-id"}}
    assert promote["INSTALLATION_ID"] == {"secretKeyRef": {"name": writer, "key": "installation-id"}}
    assert _env(templates["notify"]["container"])["SLACK_TOKEN"] == {
        "secretKeyRef": {"name": wf.SLACK_SECRET_NAME, "key": "slack-token"}
    }
    # Secrets reach pods only as those volumes and references.
    for m in (manifest, _build(service)):
        for path, value in walk(m):
            if isinstance(value, str):
                assert not re.search(r"PRIVATE KEY|xox[abp]-|ghs_|AKIA", value), path
            if path.endswith(".secret"):
                assert set(value) == {"secretName", "defaultMode", "items"}, path
