"""Release and build WorkflowTemplates: the pure builders, the scripts ConfigMap, and the rendered stacks.

Builder tests use the dev stack's settings and small services files written here, one
feature on or off at a time (sub-path, tests, skipped tests, build args, Dockerfile
path, Slack channel). The security rules (docs/security-model.md) are checked by walking
every built template. `argo lint --offline` and the session's kube-apiserver judge them
(tests/upstream_support.py).
Whole-stack tests use the
`render_stack` fixture: the real program, rendered offline.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import names
from components import workflows as wf
from components.config import STACKS, Service, Settings, load_services, load_stack_settings, parse_services
from components.verify.lint import sensor_workflows
from components.versions import BUILDKIT_ECR, RELEASE_TOOLS
from tests.conftest import SERVICES_FILE, run_render_cli
from tests.upstream_support import argo_lint, beyond_argo_lint, lint_each

PROJECT_DIR = Path(__file__).resolve().parents[1]
REPO_URL = "111111111111.dkr.ecr.us-east-1.amazonaws.com/dev/datacollect-vbsiv"
REPO_NAME = "dev/datacollect-vbsiv"
CONFIG_MAP = "release-pipeline-scripts-0123456789"
PAYLOAD_REF = re.compile(r"\{\{\s*=?[^}]*\b(?:workflow\.parameters|inputs\.parameters)[.\[]['\"]?"
                         r"(pr-number|pr-title|author|repository|trigger)\b")

BASE = """
  - name: {name}
    repo: Appen/{repo}
    imageRepository: {name}
    namespace: team
    project: team
    helm: {{repo: Appen-International/team-helm, path: app/{name}}}
"""
TESTS = """    tests:
      image: python:3.12.8-slim-bookworm
      command: ["python", "-m", "pytest", "-q"]
"""


def _service(extra: str = "", *, tests: bool = True, name: str = "svc", repo: str = "svc",
             helm: str | None = None) -> Service:
    base = BASE.format(name=name, repo=repo)
    if helm is not None:
        base = re.sub(r"(?m)^    helm: .*$", f"    helm: {helm}", base)
    text = "services:\n" + base + (TESTS if tests else "") + extra
    (service,) = parse_services(text, "services.yaml").services
    return service


def _settings(stack: str = "dev") -> Settings:
    return load_stack_settings(PROJECT_DIR, stack)


def _release(service: Service | None = None, settings: Settings | None = None) -> dict[str, Any]:
    return wf.release_template(service or _service(), settings or _settings(), CONFIG_MAP)


def _build(service: Service | None = None, settings: Settings | None = None) -> dict[str, Any]:
    return wf.build_template(service or _service(), settings or _settings(), CONFIG_MAP, REPO_URL, REPO_NAME)


def _variants() -> list[Service]:
    """Every optional feature on and off."""
    return [
        _service(),
        _service(tests=False),
        _service(TESTS.replace("      command", "      skip: true\n      command"), tests=False),
        _service("    path: services/svc\n"),
        _service("    path: services/svc\n", tests=False),
        _service("    build: {dockerfile: docker/app.Dockerfile, context: ., args: {A: '1', B: 'x $(HOME) $$'}}\n"),
        _service("    slackChannel: '#team-svc'\n"),
    ]


def _templates(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


def _tasks(manifest: dict[str, Any], dag: str) -> list[dict[str, Any]]:
    return _templates(manifest)[dag]["dag"]["tasks"]


def _containers(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from template.get("initContainers", [])
    if "container" in template:
        yield template["container"]


def _all_containers(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for template in manifest["spec"]["templates"]:
        for container in _containers(template):
            yield template["name"], container


def _pod_templates(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in manifest["spec"]["templates"] if "container" in t or "resource" in t]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every node, paths like `.spec.templates[3].container.env[0].value`."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")


def payload_outside_env(manifest: dict[str, Any]) -> list[str]:
    """Paths where a payload parameter is referenced anywhere but an `env[].value`."""
    found = []
    for path, value in walk(manifest):
        if isinstance(value, str) and PAYLOAD_REF.search(value) and not re.search(r"\.env\[\d+\]\.value$", path):
            found.append(path)
    return found


# --------------------------------------------------------------------------- DAG


@pytest.mark.parametrize(
    ("extra", "tests", "expected"),
    [
        ("", True, ["tests", "build", "promote", "verify"]),
        ("", False, ["build", "promote", "verify"]),
        ("    path: services/svc\n", True, ["changed", "tests", "build", "promote", "verify"]),
        ("    path: services/svc\n", False, ["changed", "build", "promote", "verify"]),
    ],
)
def test_release_dag_is_a_chain_of_the_steps_the_service_needs(extra: str, tests: bool, expected: list[str]) -> None:
    manifest = _release(_service(extra, tests=tests))
    tasks = _tasks(manifest, "release")
    assert [t["name"] for t in tasks] == expected
    assert [t["template"] for t in tasks] == expected
    assert [t.get("depends") for t in tasks] == [None, *expected[:-1]]
    assert manifest["spec"]["entrypoint"] == "release"
    assert manifest["spec"]["onExit"] == "exit-handler"
    # Each task's template exists, and no template is unused.
    templates = set(_templates(manifest))
    assert templates == {"release", "exit-handler", "notify", *expected}


def test_skipped_tests_are_not_in_the_dag() -> None:
    manifest = _release(_service(TESTS.replace("      command", "      skip: true\n      command"), tests=False))
    assert [t["name"] for t in _tasks(manifest, "release")] == ["build", "promote", "verify"]
    assert "tests" not in _templates(manifest)


def test_with_a_sub_path_every_step_after_the_change_check_runs_only_on_a_change() -> None:
    tasks = _tasks(_release(_service("    path: services/svc\n")), "release")
    assert "when" not in tasks[0]
    for task in tasks[1:]:
        assert task["when"] == "{{tasks.changed.outputs.parameters.changed}} == true", task["name"]


def test_without_a_sub_path_nothing_is_conditional() -> None:
    for task in _tasks(_release(_service()), "release"):
        assert "when" not in task


def test_verify_gets_the_pushed_helm_commit_and_exports_its_status() -> None:
    manifest = _release()
    (verify,) = [t for t in _tasks(manifest, "release") if t["name"] == "verify"]
    assert verify["arguments"]["parameters"] == [
        {"name": "helm-revision", "value": "{{tasks.promote.outputs.parameters.revision}}"}
    ]
    template = _templates(manifest)["verify"]
    assert _env(template["container"])["HELM_REVISION"] == "{{inputs.parameters.helm-revision}}"
    assert template["outputs"]["parameters"] == [
        {"name": "status", "globalName": "verify-status", "valueFrom": {"path": "/tmp/outputs/status"}}
    ]
    assert _templates(manifest)["promote"]["outputs"]["parameters"] == [
        {"name": "revision", "valueFrom": {"path": "/tmp/outputs/revision"}}
    ]


def test_notify_runs_on_exit_and_never_fails_the_release() -> None:
    handler = _templates(_release())["exit-handler"]
    (task,) = handler["dag"]["tasks"]
    assert task["template"] == "notify"
    assert task["continueOn"] == {"failed": True, "error": True}


def test_build_dag_skips_the_build_when_the_image_exists() -> None:
    manifest = _build()
    assert manifest["spec"]["entrypoint"] == "build-image"
    tasks = _tasks(manifest, "build-image")
    assert [(t["name"], t["template"], t.get("depends")) for t in tasks] == [
        ("image-exists", "image-exists", None), ("build", "buildkit", "image-exists"),
    ]
    assert tasks[1]["when"] == "{{tasks.image-exists.outputs.parameters.exists}} == false"
    assert _templates(manifest)["image-exists"]["outputs"]["parameters"] == [
        {"name": "exists", "valueFrom": {"path": "/tmp/outputs/exists"}}
    ]


def test_workflow_arguments_are_the_sensors_six_and_the_builds_one() -> None:
    release = _release()["spec"]["arguments"]["parameters"]
    assert [p["name"] for p in release] == ["revision", "pr-number", "pr-title", "author", "repository", "trigger"]
    assert all(set(p) == {"name"} for p in release)  # all required: the Sensor passes every one
    assert _build()["spec"]["arguments"]["parameters"] == [{"name": "revision"}]


# ------------------------------------------------------------------- the build step


def test_the_build_step_creates_the_child_workflow_in_the_build_namespace() -> None:
    settings = _settings()
    service = _service()
    template = _templates(_release(service, settings))["build"]
    resource = template["resource"]
    assert resource["action"] == "create"
    assert resource["successCondition"] == "status.phase == Succeeded"
    assert resource["failureCondition"] == "status.phase in (Failed,Error)"
    assert "setOwnerReference" not in resource  # a cross-namespace owner reference is impossible
    child = yaml.safe_load(resource["manifest"])
    assert child == wf.child_build_workflow(service, settings)
    assert child["kind"] == "Workflow"
    assert child["metadata"]["namespace"] == settings.namespaces.build
    assert child["metadata"]["generateName"] == "svc-build-"
    assert "name" not in child["metadata"]
    assert child["spec"] == {
        "workflowTemplateRef": {"name": names.build_template_name("svc")},
        "arguments": {"parameters": [{"name": "revision", "value": "{{workflow.parameters.revision}}"}]},
    }
    # The release account acts here, with its own token (no executor account).
    assert template["automountServiceAccountToken"] is True
    assert "executor" not in template
    assert template["outputs"]["parameters"] == [
        {"name": "workflow", "valueFrom": {"jsonPath": "{.metadata.name}"}}
    ]


def test_a_long_service_name_still_gives_a_valid_child_name_prefix() -> None:
    service = _service(name="s" * 63)
    prefix = wf.child_build_workflow(service, _settings())["metadata"]["generateName"]
    assert len(prefix) + 5 <= names.DNS1123_LABEL_MAX  # the API server appends 5 characters
    assert names.is_dns1123_label(prefix + "abcde")


# ----------------------------------------------------------------------------- mutex


def test_only_promote_holds_a_mutex_one_per_helm_repo_and_branch() -> None:
    settings = _settings()
    for service in _variants():
        manifest = _release(service, settings)
        held = {t["name"]: t["synchronization"] for t in manifest["spec"]["templates"] if "synchronization" in t}
        assert held == {"promote": {"mutexes": [{"name": "helm-appen-international-team-helm-development"}]}}
        assert "synchronization" not in manifest["spec"]
        assert "synchronization" not in _build(service, settings)["spec"]
        assert not any("synchronization" in t for t in _build(service, settings)["spec"]["templates"])


def test_mutex_names_are_sanitised_and_differ_by_repo_and_branch() -> None:
    a = wf.mutex_name("Appen-International/Team_Helm.v2", "release/2024.1")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", a) and len(a) <= 63
    assert a != wf.mutex_name("Appen-International/Team_Helm.v2", "main")
    assert a != wf.mutex_name("Appen-International/other", "release/2024.1")
    assert len(wf.mutex_name("a/" + "x" * 100, "b" * 200)) <= 63


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


# ---------------------------------------------------------------- resources, deadlines


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


def test_every_pod_and_workflow_has_a_deadline() -> None:
    settings = _settings()
    step = settings.release.step_timeout_minutes * 60
    for service in _variants():
        release, build = _release(service, settings), _build(service, settings)
        for manifest in (release, build):
            assert manifest["spec"]["activeDeadlineSeconds"] > 0
            for template in _pod_templates(manifest):
                assert template["activeDeadlineSeconds"] >= step, template["name"]
        templates = _templates(release)
        assert templates["verify"]["activeDeadlineSeconds"] > settings.release.verify_timeout_minutes * 60
        # The build step outlasts the child Workflow, which outlasts its own steps.
        assert templates["build"]["activeDeadlineSeconds"] > build["spec"]["activeDeadlineSeconds"]
        assert build["spec"]["activeDeadlineSeconds"] >= sum(
            t["activeDeadlineSeconds"] for t in _pod_templates(build)
        )
        # The release outlasts its steps one after the other.
        assert release["spec"]["activeDeadlineSeconds"] >= sum(
            templates[t["name"]]["activeDeadlineSeconds"] for t in _tasks(release, "release")
        )


def _go_seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([sm])", duration)
    assert match, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def _with_retries(template: dict[str, Any]) -> int:
    """A step's worst case as Argo runs it: every attempt's deadline and every backoff wait."""
    retry = template.get("retryStrategy")
    deadline = int(template["activeDeadlineSeconds"])
    if retry is None:
        return deadline
    limit, backoff = int(retry["limit"]), retry["backoff"]
    waits = sum(_go_seconds(backoff["duration"]) * int(backoff["factor"]) ** i for i in range(limit))
    return (1 + limit) * deadline + waits


# Steps that talk to a network and may run again; the unit tests are the team's code.
RETRIED = {"changed", "promote", "verify", "notify", "announce", "slack-stage", "supersede",
           "newest-check", "image-exists", "reuse", "buildkit"}


def test_network_steps_retry_with_backoff_and_the_unit_tests_never() -> None:
    settings = _threads(_settings())
    seen = set()
    for service in _variants():
        service = service.model_copy(update={"newest_wins": True})
        for manifest in (_release(service, settings), _build(service, settings)):
            for template in manifest["spec"]["templates"]:
                retry = template.get("retryStrategy")
                if "dag" in template:
                    assert retry is None, template["name"]
                    continue
                seen.add(template["name"])
                if template["name"] not in RETRIED:
                    assert template["name"] in {"tests", "build"} and retry is None, template["name"]
                    continue
                assert retry is not None, template["name"]
                assert 1 <= int(retry["limit"]) <= 2, template["name"]
                assert _go_seconds(retry["backoff"]["duration"]) >= 10 and int(retry["backoff"]["factor"]) >= 2
                assert retry["retryPolicy"] in {"Always", "OnError"}
    assert seen == (RETRIED | {"tests", "build"}) - {"reuse"}  # reuse needs `promoteFrom`: the same table
    assert wf.retry_strategy("reuse") is not None
    templates = _templates(_release(_service("    path: services/svc\n")))
    # The build step would start the whole child again: the child's own steps retry.
    assert "retryStrategy" not in templates["build"]
    assert _templates(_build())["buildkit"]["retryStrategy"]["limit"] == 1
    # verify.py retries the API itself; its failure is the rollout's verdict: only a lost pod reruns it.
    assert templates["verify"]["retryStrategy"]["retryPolicy"] == "OnError"
    # The checkout runs as an init container: OnFailure would not retry it.
    assert templates["changed"]["retryStrategy"]["retryPolicy"] == "Always"


def test_deadlines_count_every_retry() -> None:
    settings = _threads(_settings())
    for service in _variants():
        service = service.model_copy(update={"newest_wins": True})
        release, build = _release(service, settings), _build(service, settings)
        templates = _templates(release)
        assert build["spec"]["activeDeadlineSeconds"] >= sum(_with_retries(t) for t in _pod_templates(build))
        assert templates["build"]["activeDeadlineSeconds"] > build["spec"]["activeDeadlineSeconds"]
        assert release["spec"]["activeDeadlineSeconds"] >= sum(
            _with_retries(templates[t["template"]]) for t in _tasks(release, "release"))


def test_deadlines_follow_the_settings() -> None:
    settings = _settings()
    slow = settings.model_copy(update={"release": settings.release.model_copy(
        update={"step_timeout_minutes": 10, "verify_timeout_minutes": 120})})
    templates = _templates(_release(settings=slow))
    assert templates["promote"]["activeDeadlineSeconds"] == 600
    assert templates["verify"]["activeDeadlineSeconds"] == 120 * 60 + wf.MARGIN_SECONDS
    assert _env(templates["verify"]["container"])["TIMEOUT_SECONDS"] == str(120 * 60)


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


# -------------------------------------------------------------- what each script gets


def test_checkout_gets_repo_revision_and_depth_from_config_not_payload() -> None:
    service = _service("    path: services/svc\n")
    templates = _templates(_release(service))
    depths = {name: _env(templates[name]["initContainers"][0])["DEPTH"] for name in ("changed", "tests")}
    assert depths == {"changed": "2", "tests": "1"}
    env = _env(_templates(_build(service))["buildkit"]["initContainers"][0])
    assert env["DEPTH"] == "1"
    assert env["REPO"] == "Appen/svc"
    assert env["REVISION"] == "{{workflow.parameters.revision}}"
    assert env["DEST"] == "/workspace"
    assert env["SSH_KEY_FILE"] == "/etc/release-pipeline/ssh/ssh-privatekey"
    assert _env(templates["changed"]["container"])["SERVICE_PATH"] == "services/svc"


def test_promote_gets_the_contract_environment() -> None:
    settings = _settings()
    service = _service(helm="{repo: Appen-International/team-helm, path: app/svc, valuesFile: v/dev.yaml,"
                            " imageTagKey: app.image.tag}")
    env = _env(_templates(_release(service, settings))["promote"]["container"])
    assert env["HELM_REPO"] == "Appen-International/team-helm"
    assert env["BRANCH"] == settings.helm_branch
    assert env["VALUES_FILE"] == "app/svc/v/dev.yaml"
    assert env["KEY"] == "app.image.tag"
    assert env["REVISION"] == "{{workflow.parameters.revision}}"
    assert env["SERVICE"] == "svc" and env["ENVIRONMENT"] == "dev"
    assert env["SOURCE_REPO"] == "Appen/svc"
    default = _env(_templates(_release(_service(), settings))["promote"]["container"])
    assert default["VALUES_FILE"] == f"app/svc/{settings.values_file}"


def test_verify_gets_the_contract_environment() -> None:
    settings = _settings()
    service = _service("    rollout: {deployment: svc-web}\n")
    env = _env(_templates(_release(service, settings))["verify"]["container"])
    assert env["APPLICATION"] == names.application_name("svc", "dev")
    assert env["APPLICATION_NAMESPACE"] == settings.namespaces.argocd
    assert env["ROLLOUT"] == names.rollout_name("svc")
    assert env["DEPLOYMENT"] == "svc-web"
    assert env["SERVICE_NAMESPACE"] == "team"
    assert env["TIMEOUT_SECONDS"] == str(settings.release.verify_timeout_minutes * 60)
    assert env["IMAGE_TAG"] == "{{workflow.parameters.revision}}"


def test_notify_gets_channel_status_and_links() -> None:
    settings = _settings()
    env = _env(_templates(_release(_service(), settings))["notify"]["container"])
    assert env["CHANNEL"] == settings.slack.channel.removeprefix("#")
    assert env["STATUS"] == "{{workflow.status}}"
    assert env["VERIFY_STATUS"] == "{{workflow.outputs.parameters.verify-status}}"
    assert env["WORKFLOW_URL"] == (
        f"https://{settings.hostnames.workflows}/workflows/{settings.namespaces.workflows}/{{{{workflow.name}}}}"
    )
    assert env["ARGOCD_URL"] == (
        f"https://{settings.hostnames.argocd}/applications/{settings.namespaces.argocd}/svc-dev"
    )
    own = _env(_templates(_release(_service("    slackChannel: '#team-svc'\n"), settings))["notify"]["container"])
    assert own["CHANNEL"] == "team-svc"


def test_image_exists_gets_the_repository_name_and_region() -> None:
    settings = _settings()
    env = _env(_templates(_build(settings=settings))["image-exists"]["container"])
    assert env["REPOSITORY"] == REPO_NAME
    assert env["AWS_REGION"] == settings.aws.region
    assert env["REVISION"] == "{{workflow.parameters.revision}}"


def test_every_script_a_step_runs_exists_and_reads_its_outputs_from_tmp() -> None:
    scripts = set(wf.read_scripts(PROJECT_DIR / "scripts"))
    for service in _variants():
        for manifest in (_release(service), _build(service)):
            for _, container in _all_containers(manifest):
                command = container.get("command", [])
                if command[:1] == ["python3"]:
                    assert command[1].startswith(wf.SCRIPTS_DIR + "/")
                    assert command[1].rsplit("/", 1)[1] in scripts
                    assert _env(container)["OUTPUT_DIR"] == "/tmp/outputs"
            for template in manifest["spec"]["templates"]:
                for output in template.get("outputs", {}).get("parameters", []):
                    path = output["valueFrom"].get("path")
                    assert path is None or path.startswith("/tmp/outputs/")


# ------------------------------------------------------------------------- BuildKit


def test_buildctl_builds_the_service_directory_and_pushes_the_sha_with_a_registry_cache() -> None:
    settings = _settings()
    args = wf.buildctl_args(_service("    path: services/svc\n"), REPO_URL, settings.ecr.cache_tag)
    pairs = dict(zip(args[1::2], args[2::2], strict=False))
    assert args[0] == "build"
    assert pairs["--frontend"] == "dockerfile.v0"
    assert "--local" in args and "context=/workspace/services/svc" in args
    assert "dockerfile=/workspace/services/svc" in args
    assert "filename=Dockerfile" in args
    cache = f"{REPO_URL}:{settings.ecr.cache_tag}"
    assert pairs["--output"] == f"type=image,name={REPO_URL}:{{{{workflow.parameters.revision}}}},push=true"
    assert pairs["--export-cache"] == (
        f"type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"
    )
    assert pairs["--import-cache"] == f"type=registry,ref={cache}"
    assert not any("attest" in a for a in args)  # buildctl adds no attestation manifests


def test_buildctl_takes_dockerfile_context_and_build_args_from_services_yaml() -> None:
    service = _service("    path: services/svc\n"
                       "    build: {dockerfile: docker/app.Dockerfile, context: app, args: {B: '2', A: '1'}}\n")
    args = wf.buildctl_args(service, REPO_URL, "buildcache")
    assert "context=/workspace/services/svc/app" in args
    assert "dockerfile=/workspace/services/svc/docker" in args
    assert "filename=app.Dockerfile" in args
    build_args = [a for a in args if a.startswith("build-arg:")]
    assert build_args == ["build-arg:A=$(BUILD_ARG_A)", "build-arg:B=$(BUILD_ARG_B)"]
    env = _env(_templates(_build(service))["buildkit"]["container"])
    assert env["BUILD_ARG_A"] == "1" and env["BUILD_ARG_B"] == "2"
    assert not any(a.startswith("build-arg:") for a in wf.buildctl_args(_service(), REPO_URL, "buildcache"))


def test_ecr_login_uses_the_pods_identity_and_caches_nothing() -> None:
    build = _build()
    env = _env(_templates(build)["buildkit"]["container"])
    assert env["AWS_ECR_DISABLE_CACHE"] == "true"
    assert not any("AWS_SECRET" in k or "AWS_ACCESS" in k for k in env)
    assert build["spec"]["serviceAccountName"] == names.builder_service_account_name("svc")


# -------------------------------------------------------------------------- scripts


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def test_scripts_config_map_holds_every_script_but_tests_and_caches(tmp_path: Path) -> None:
    _write(tmp_path, {
        "checkout.py": "print('checkout')\n", "github_known_hosts": "github.com ssh-ed25519 AAAA\n",
        "tests/test_checkout.py": "x", "__pycache__/checkout.cpython-311.pyc": "x", "test_local.py": "x",
        "conftest.py": "x", ".hidden": "x",
    })
    files = wf.read_scripts(tmp_path)
    assert files == {"checkout.py": "print('checkout')\n", "github_known_hosts": "github.com ssh-ed25519 AAAA\n"}
    manifest = wf.scripts_config_map(files, "argo")
    assert manifest["data"] == files
    assert manifest["immutable"] is True
    assert manifest["metadata"]["namespace"] == "argo"
    name = manifest["metadata"]["name"]
    assert re.fullmatch(r"release-pipeline-scripts-[0-9a-f]{10}", name)
    assert wf.scripts_config_map_name(files) == name
    assert wf.scripts_config_map_name({**files, "checkout.py": "print(1)\n"}) != name
    assert wf.scripts_config_map_name({"a": "bc"}) != wf.scripts_config_map_name({"ab": "c"})


def test_scripts_that_cannot_ship_are_refused(tmp_path: Path) -> None:
    with pytest.raises(wf.ScriptsError, match="missing"):
        wf.read_scripts(tmp_path / "nope")
    with pytest.raises(wf.ScriptsError, match="no scripts"):
        wf.read_scripts(tmp_path)
    _write(tmp_path / "nested", {"lib/helper.py": "x"})
    with pytest.raises(wf.ScriptsError, match="flat"):
        wf.read_scripts(tmp_path / "nested")


def test_the_projects_scripts_ship_and_are_what_the_steps_mount() -> None:
    files = wf.read_scripts(PROJECT_DIR / "scripts")
    assert {"checkout.py", "github_known_hosts"} <= set(files)
    name = wf.scripts_config_map_name(files)
    volume = {"name": "scripts", "configMap": {"name": name, "defaultMode": 0o444}}
    release = wf.release_template(_service(), _settings(), name)
    for template in _pod_templates(release):
        if "container" in template:
            assert volume in template["volumes"], template["name"]


# ---------------------------------------------------------------- lint and schemas


def lint(obj: dict[str, Any], templates: Iterable[dict[str, Any]] = ()) -> list[str]:
    """`argo lint --offline` (Argo Workflows' own validation) on `obj`, with the templates it references."""
    done = argo_lint([obj, *templates])
    return [] if done.returncode == 0 else [line for line in (done.stdout + done.stderr).splitlines() if line]


def test_every_built_template_lints_clean() -> None:
    templates = []
    for stack in STACKS:
        settings = _settings(stack)
        for service in _variants():
            templates += [_release(service, settings), _build(service, settings)]
    assert lint_each(templates) == []
    assert [p for t in templates for p in beyond_argo_lint(t)] == []
    for service in _variants():
        # The child the release creates is a valid Workflow of the build template.
        settings = _settings()
        build = _build(service, settings)
        child = wf.child_build_workflow(service, settings)
        child["metadata"]["name"] = child["metadata"].pop("generateName") + "x"
        child["spec"]["arguments"]["parameters"][0]["value"] = "0" * 40
        assert lint(child, [build]) == []
        assert beyond_argo_lint(child, [build]) == []


def test_every_built_object_validates_against_the_upstream_schemas(upstream_judge: Any) -> None:
    files = wf.read_scripts(PROJECT_DIR / "scripts")
    objects = [wf.scripts_config_map(files, "argo")]
    for service in _variants():
        objects += [_release(service), _build(service)]
        child = yaml.safe_load(_templates(_release(service))["build"]["resource"]["manifest"])
        child["metadata"]["labels"] = {k: "x" if "{{" in v else v for k, v in child["metadata"]["labels"].items()}
        objects.append(child)
    assert upstream_judge.errors(objects) == []


# ------------------------------------------------------------------- rendered stacks


def _mine(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m.get("kind") == "WorkflowTemplate"
            or (m.get("kind") == "ConfigMap" and m["metadata"]["name"].startswith(wf.SCRIPTS_CONFIG_MAP_PREFIX))
            or (m.get("kind") == "Secret" and m["metadata"]["name"] == wf.SLACK_SECRET_NAME)]


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_stack_has_both_templates_per_service_the_scripts_and_the_slack_token(
    render_stack: Any, stack: str
) -> None:
    settings = _settings(stack)
    services = load_services(SERVICES_FILE).for_environment(stack)
    resources, manifests = render_stack(stack)
    templates = {(m["metadata"]["namespace"], m["metadata"]["name"]): m
                 for m in manifests if m["kind"] == "WorkflowTemplate"}
    expected = {(settings.namespaces.workflows, names.release_template_name(s.name)) for s in services} | {
        (settings.namespaces.build, names.build_template_name(s.name)) for s in services
    }
    assert expected <= set(templates)
    files = wf.read_scripts(PROJECT_DIR / "scripts")
    config_maps = [m for m in manifests if m["kind"] == "ConfigMap"
                   and m["metadata"]["name"] == wf.scripts_config_map_name(files)]
    assert sorted(m["metadata"]["namespace"] for m in config_maps) == sorted(
        [settings.namespaces.workflows, settings.namespaces.build]
    )
    assert all(m["data"] == files for m in config_maps)
    (slack,) = [m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == wf.SLACK_SECRET_NAME]
    assert slack["metadata"]["namespace"] == settings.namespaces.workflows
    assert slack["stringData"] in ("[secret]", {"slack-token": "[secret]"})
    by_name = {r["name"]: r for r in resources}
    for service in services:
        for kind in ("release", "build"):
            record = by_name[f"release-workflows-{service.name}-{kind}"]
            assert record["parent"] == "release-workflows"
            assert {"crds-argo-workflows-workflowtemplates", "platform-argo-workflows"} <= set(
                record["options"]["depends_on"]
            )
        build = templates[(settings.namespaces.build, names.build_template_name(service.name))]
        args = " ".join(_templates(build)["buildkit"]["container"]["args"])
        url = f"{settings.aws.account_id}.dkr.ecr.{settings.aws.region}.amazonaws.com/" + names.ecr_repository_name(
            settings.ecr_prefix, service.image_repository
        )
        assert f"name={url}:{{{{workflow.parameters.revision}}}}" in args
    for name in ("release-workflows-scripts-workflows", "release-workflows-scripts-build"):
        assert by_name[name]["options"]["retain_on_delete"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_templates_keep_payload_in_env(render_stack: Any, stack: str) -> None:
    """Linting and validating the rendered templates (and the Workflows the Sensors create
    against them) is `python -m components verify`'s: tests/test_verify_cli.py, every stack."""
    _, manifests = render_stack(stack)
    templates = [m for m in _mine(manifests) if m["kind"] == "WorkflowTemplate"]
    assert templates
    for template in templates:
        assert payload_outside_env(template) == [], template["metadata"]["name"]
        assert beyond_argo_lint(template) == [], template["metadata"]["name"]
    # The Workflows the Sensors create pass only arguments these templates declare.
    for label, workflow in sensor_workflows(manifests):
        assert beyond_argo_lint(workflow, templates) == [], label


OPTIONAL = """services:
  - name: skipper
    repo: Appen/skipper
    imageRepository: skipper
    namespace: team
    project: team
    slackChannel: "#skipper-releases"
    helm: {repo: Appen-International/team-helm, path: app/skipper}
    tests:
      image: python:3.12.8-slim-bookworm
      command: ["python", "-m", "pytest"]
      skip: true
  - name: mono
    repo: Appen/mono
    path: services/mono
    imageRepository: mono
    namespace: team
    project: team
    helm: {repo: Appen-International/team-helm, path: app/mono}
    build:
      dockerfile: build/Dockerfile
      args: {VERSION: "1.2", GREETING: "cost $5"}
"""


def test_rendered_optional_features_on_and_off(render_stack: Any, upstream_judge: Any) -> None:
    settings = _settings()
    _, manifests = render_stack("dev", OPTIONAL)
    mine = _mine(manifests)
    templates = {m["metadata"]["name"]: m for m in mine if m["kind"] == "WorkflowTemplate"}
    assert set(templates) == {"skipper-release", "skipper-build", "mono-release", "mono-build"}
    skipper, mono = templates["skipper-release"], templates["mono-release"]
    # Tests skipped, no sub-path, own Slack channel.
    assert [t["name"] for t in _tasks(skipper, "release")] == ["build", "promote", "verify"]
    assert _env(_templates(skipper)["notify"]["container"])["CHANNEL"] == "skipper-releases"
    # Sub-path without tests, default channel, build args and a Dockerfile elsewhere.
    assert [t["name"] for t in _tasks(mono, "release")] == ["changed", "build", "promote", "verify"]
    assert _env(_templates(mono)["notify"]["container"])["CHANNEL"] == settings.slack.channel.removeprefix("#")
    buildkit = _templates(templates["mono-build"])["buildkit"]["container"]
    assert "dockerfile=/workspace/services/mono/build" in buildkit["args"]
    assert "context=/workspace/services/mono" in buildkit["args"]
    assert _env(buildkit)["BUILD_ARG_GREETING"] == "cost $$5"
    assert "build-arg:VERSION=$(BUILD_ARG_VERSION)" in buildkit["args"]
    assert not any(a.startswith("build-arg:") for a in _templates(templates["skipper-build"])["buildkit"]
                   ["container"]["args"])
    for template in templates.values():
        assert payload_outside_env(template) == []
        assert beyond_argo_lint(template) == []
    assert lint_each(templates.values()) == []
    assert upstream_judge.errors(mine) == []


def test_a_services_file_with_a_template_tag_in_a_command_is_refused_before_anything_renders(
    tmp_path: Path,
) -> None:
    services = tmp_path / "services.yaml"
    services.write_text(OPTIONAL.replace('["python", "-m", "pytest"]',
                                         '["sh", "-c", "echo {{workflow.parameters.pr-title}}"]'), encoding="utf-8")
    out = tmp_path / "out"
    proc = run_render_cli("--stack", "dev", "--out", str(out), "--services", str(services))
    assert proc.returncode == 2
    assert "tests.command.2: must not contain '{{'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "dev" / "manifests.yaml").exists()


def test_tests_env_from_services_yaml_reaches_only_the_test_container(render_stack) -> None:  # type: ignore[no-untyped-def]
    _, manifests = render_stack("dev")
    [template] = [m for m in manifests if m["kind"] == "WorkflowTemplate"
                  and m["metadata"]["name"] == "labeling-api-release"]
    tests = next(t for t in template["spec"]["templates"] if t["name"] == "tests")
    env = {e["name"]: e["value"] for e in tests["container"]["env"]}
    assert env["GOPATH"] == "/tmp/go" and env["GOCACHE"] == "/tmp/go-cache"
    others = [t for t in template["spec"]["templates"] if t["name"] != "tests" and "container" in t]
    assert all("GOPATH" not in {e["name"] for e in t["container"].get("env", [])} for t in others)


# ------------------------------------------------------------------- newest-wins


def _with(settings: Settings, *, newest_wins: bool | None = None, release_metrics: bool | None = None) -> Settings:
    update: dict[str, Any] = {}
    if newest_wins is not None:
        update["release"] = settings.release.model_copy(update={"newest_wins": newest_wins})
    if release_metrics is not None:
        update["metrics"] = settings.metrics.model_copy(update={"release_metrics": release_metrics})
    return settings.model_copy(update=update)


def _all_variants(settings: Settings) -> Iterator[tuple[Service, Settings]]:
    """Every service variant with each of the two options off and on."""
    for service in _variants():
        for newest, metrics in ((False, False), (True, False), (False, True), (True, True)):
            yield service, _with(settings, newest_wins=newest, release_metrics=metrics)


def test_both_options_are_off_by_default_and_leave_the_template_as_it_was() -> None:
    settings = _settings()
    assert settings.release.newest_wins is False and settings.metrics.release_metrics is False
    for service in _variants():
        assert service.newest_wins is None and not service.newest_wins_in(settings)
        manifest = _release(service, settings)
        assert manifest == _release(service, _with(settings, newest_wins=False, release_metrics=False))
        assert not any(path.endswith(".metrics") for path, _ in walk(manifest))
        assert {wf.SUPERSEDE, wf.NEWEST_CHECK}.isdisjoint(_templates(manifest))
        assert "supersede.py" not in str(manifest)


@pytest.mark.parametrize(
    ("extra", "tests", "expected"),
    [
        ("", True, ["supersede", "tests", "build", "newest-check", "promote", "verify"]),
        ("", False, ["supersede", "build", "newest-check", "promote", "verify"]),
        ("    path: services/svc\n", True,
         ["changed", "supersede", "tests", "build", "newest-check", "promote", "verify"]),
    ],
)
def test_newest_wins_supersedes_first_and_checks_again_right_before_promote(
    extra: str, tests: bool, expected: list[str]
) -> None:
    manifest = _release(_service(extra, tests=tests), _with(_settings(), newest_wins=True))
    tasks = _tasks(manifest, "release")
    assert [t["name"] for t in tasks] == expected
    assert [t.get("depends") for t in tasks] == [None, *expected[:-1]]
    by_name = {t["name"]: t for t in tasks}
    changed = "{{tasks.changed.outputs.parameters.changed}} == true"
    not_superseded = "{{tasks.newest-check.outputs.parameters.superseded}} == false"
    for name in ("promote", "verify"):
        assert by_name[name]["when"] == (f"{changed} && {not_superseded}" if extra else not_superseded)
    # A merge that does not touch the service's path supersedes nothing.
    for name in ("supersede", "newest-check"):
        assert by_name[name].get("when") == (changed if extra else None)


def test_the_service_setting_overrides_the_stack_setting() -> None:
    on, off = _settings(), _with(_settings(), newest_wins=True)
    assert wf.SUPERSEDE in _templates(_release(_service("    newestWins: true\n"), on))
    assert wf.SUPERSEDE not in _templates(_release(_service("    newestWins: false\n"), off))
    assert wf.SUPERSEDE in _templates(_release(_service(), off))


def test_newest_wins_steps_run_the_script_as_the_release_account() -> None:
    settings = _with(_settings(), newest_wins=True)
    templates = _templates(_release(_service(), settings))
    for name, mode in ((wf.SUPERSEDE, "supersede"), (wf.NEWEST_CHECK, "guard")):
        template = templates[name]
        container = template["container"]
        assert container["command"] == ["python3", f"{wf.SCRIPTS_DIR}/supersede.py"]
        env = _env(container)
        assert env["MODE"] == mode
        assert env["SERVICE"] == "svc" and env["ENVIRONMENT"] == "dev"
        assert env["RELEASE_TEMPLATE"] == names.release_template_name("svc")
        assert env["WORKFLOW_NAME"] == "{{workflow.name}}"
        assert env["WORKFLOWS_NAMESPACE"] == settings.namespaces.workflows
        assert env["BUILD_NAMESPACE"] == settings.namespaces.build
        assert template["automountServiceAccountToken"] is True and "executor" not in template
        assert "synchronization" not in template  # only promote holds the mutex
    outputs = {n: [p["name"] for p in templates[n]["outputs"]["parameters"]] for n in (wf.SUPERSEDE, wf.NEWEST_CHECK)}
    assert outputs == {wf.SUPERSEDE: ["stopped"], wf.NEWEST_CHECK: ["stopped", "superseded"]}
    # The build step labels its child with the release's name: what supersede.py stops.
    child = yaml.safe_load(templates["build"]["resource"]["manifest"])
    assert child["metadata"]["labels"]["release-pipeline/release-workflow"] == "{{workflow.name}}"


SUPERSEDED_BY_TAG = "{{workflow.annotations.release-pipeline/superseded-by}}"


@pytest.mark.parametrize("threads", ["", "    slackThreads: true\n"])
def test_only_with_newest_wins_notify_learns_which_release_superseded_this_one(threads: str) -> None:
    settings = _settings()
    off = _release(_service(threads), _with(settings, newest_wins=False))
    on = _release(_service(threads), _with(settings, newest_wins=True))
    # Off: byte-identical to a template built without the option, no annotation anywhere.
    assert off == _release(_service(threads), settings)
    assert "SUPERSEDED_BY" not in str(off) and "superseded-by" not in str(off)
    assert "workflowMetadata" not in off["spec"]
    env = _env(_templates(on)["notify"]["container"])
    assert env["SUPERSEDED_BY"] == SUPERSEDED_BY_TAG
    # Declared (empty) so the exit handler's reference is a known global; supersede.py sets it.
    assert on["spec"]["workflowMetadata"] == {"annotations": {"release-pipeline/superseded-by": ""}}
    # Only the notify step gets it.
    for name, template in _templates(on).items():
        if name != "notify":
            assert "SUPERSEDED_BY" not in str(template) and SUPERSEDED_BY_TAG not in str(template), name


def test_the_superseded_by_reference_lints_clean_and_keeps_payload_in_env() -> None:
    for threads in ("", "    slackThreads: true\n"):
        release = _release(_service(threads), _with(_settings(), newest_wins=True))
        assert lint(release) == []
        assert payload_outside_env(release) == []
        # Without the declaration the linter refuses the reference: the declaration is what makes it known.
        undeclared = copy.deepcopy(release)
        del undeclared["spec"]["workflowMetadata"]
        assert lint(undeclared) != []


def test_newest_wins_steps_count_in_the_release_deadline() -> None:
    settings = _settings()
    on = _with(settings, newest_wins=True)
    release = _release(_service(), on)
    templates = _templates(release)
    assert release["spec"]["activeDeadlineSeconds"] >= sum(
        templates[t["name"]]["activeDeadlineSeconds"] for t in _tasks(release, "release")
    )
    assert release["spec"]["activeDeadlineSeconds"] > _release(_service(), settings)["spec"]["activeDeadlineSeconds"]


# ---------------------------------------------------------------- release metrics


METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
ALLOWED_LABEL_VALUES = re.compile(r"^(svc|dev|changed|tests|build|promote|verify|supersede|newest-check"
                                  r"|\{\{status\}\}|\{\{workflow\.status\}\})$")


def _metrics(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, metric) for every Prometheus metric in the template."""
    found = [("spec", p) for p in manifest["spec"].get("metrics", {}).get("prometheus", [])]
    for template in manifest["spec"]["templates"]:
        found += [(template["name"], p) for p in template.get("metrics", {}).get("prometheus", [])]
    return found


def test_release_metrics_outcome_stage_durations_lead_time_and_supersede_counts() -> None:
    settings = _with(_settings(), newest_wins=True, release_metrics=True)
    manifest = _release(_service("    path: services/svc\n"), settings)
    metrics = _metrics(manifest)
    by_where: dict[str, set[str]] = {}
    for where, metric in metrics:
        by_where.setdefault(where, set()).add(metric["name"])
    assert by_where == {
        "spec": {"release_outcomes", "release_last_timestamp_seconds"},
        "changed": {"release_stage_duration_seconds"},
        "tests": {"release_stage_duration_seconds"},
        "build": {"release_stage_duration_seconds"},
        "promote": {"release_stage_duration_seconds"},
        "verify": {"release_stage_duration_seconds", "release_lead_time_seconds"},
        "supersede": {"release_stage_duration_seconds", "release_superseded"},
        "newest-check": {"release_stage_duration_seconds", "release_superseded"},
    }
    spec = {m["name"]: m for m in manifest["spec"]["metrics"]["prometheus"]}
    assert spec["release_outcomes"]["counter"] == {"value": "1"}
    assert spec["release_outcomes"]["labels"] == [
        {"key": "service", "value": "svc"}, {"key": "environment", "value": "dev"},
        {"key": "status", "value": "{{workflow.status}}"},
    ]
    assert spec["release_last_timestamp_seconds"]["gauge"] == {"value": "{{workflow.creationTimestamp.s}}",
                                                               "realtime": False}
    verify = {m["name"]: m for m in _templates(manifest)["verify"]["metrics"]["prometheus"]}
    lead = verify["release_lead_time_seconds"]
    assert lead["histogram"]["value"] == "{{workflow.duration}}"
    assert lead["when"] == "{{status}} == Succeeded"
    stage = verify["release_stage_duration_seconds"]
    assert stage["histogram"]["value"] == "{{duration}}"
    assert {"key": "stage", "value": "verify"} in stage["labels"]
    superseded = {m["name"]: m for m in _templates(manifest)["supersede"]["metrics"]["prometheus"]}
    assert superseded["release_superseded"]["counter"] == {"value": "{{outputs.parameters.stopped}}"}
    # The exit handler and notify are not stages.
    assert "metrics" not in _templates(manifest)["notify"]


def test_metric_names_help_and_buckets_are_consistent_and_labels_carry_no_payload() -> None:
    """Argo refuses a metric whose help or buckets differ between emitters; labels are config or enums only."""
    seen: dict[str, tuple[str, Any, list[str]]] = {}
    for service, settings in _all_variants(_settings()):
        for where, metric in _metrics(_release(service, settings)):
            assert METRIC_NAME.match(metric["name"]), metric["name"]
            assert metric["help"] == wf.METRIC_HELP[metric["name"]]
            buckets = metric.get("histogram", {}).get("buckets")
            keys = [label["key"] for label in metric["labels"]]
            first = seen.setdefault(metric["name"], (metric["help"], buckets, keys))
            assert first == (metric["help"], buckets, keys), (where, metric["name"])
            for label in metric["labels"]:
                assert ALLOWED_LABEL_VALUES.match(label["value"]), (where, label)
    assert set(seen) == set(wf.METRIC_HELP)
    for service, settings in _all_variants(_settings()):
        assert payload_outside_env(_release(service, settings)) == []


def test_release_metrics_are_refused_without_the_controllers_metrics(tmp_path: Path) -> None:
    from components.config import ConfigError, parse_settings
    data = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]["release-pipeline:settings"]
    data["metrics"] = {"enabled": False, "releaseMetrics": True}
    with pytest.raises(ConfigError, match="releaseMetrics"):
        parse_settings(data, "Pulumi.dev.yaml")


def test_every_template_with_the_options_lints_clean_and_validates(upstream_judge: Any) -> None:
    objects = []
    for stack in STACKS:
        for service, settings in _all_variants(_settings(stack)):
            release = _release(service, settings)
            assert payload_outside_env(release) == []
            objects.append(release)
    assert lint_each(objects) == []
    assert [p for t in objects for p in beyond_argo_lint(t)] == []
    assert upstream_judge.errors(objects) == []


NEWEST = """services:
  - name: mono
    repo: Appen/mono
    path: services/mono
    imageRepository: mono
    namespace: team
    project: team
    newestWins: true
    helm: {repo: Appen-International/team-helm, path: app/mono}
  - name: plain
    repo: Appen/plain
    imageRepository: plain
    namespace: team
    project: team
    helm: {repo: Appen-International/team-helm, path: app/plain}
"""


def test_rendered_newest_wins_service_lints_validates_and_its_account_may_stop_releases(
        render_stack: Any, upstream_judge: Any) -> None:
    settings = _settings()
    _, manifests = render_stack("dev", NEWEST)
    templates = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "WorkflowTemplate"}
    mono, plain = templates["mono-release"], templates["plain-release"]
    assert [t["name"] for t in _tasks(mono, "release")] == [
        "changed", "supersede", "build", "newest-check", "promote", "verify"]
    assert [t["name"] for t in _tasks(plain, "release")] == ["build", "promote", "verify"]
    for template in (mono, plain):
        assert payload_outside_env(template) == []
    assert lint_each([mono, plain]) == []
    assert beyond_argo_lint(mono) == beyond_argo_lint(plain) == []
    assert upstream_judge.errors(list(templates.values())) == []
    # What each release account may do on Workflows per namespace: the rules of every
    # Role bound to it there (its own and the shared ones, components.access).
    roles = {(m["metadata"]["namespace"], m["metadata"]["name"]): m["rules"] for m in manifests if m["kind"] == "Role"}
    verbs: dict[tuple[str, str], set[str]] = {}
    for binding in (m for m in manifests if m["kind"] == "RoleBinding"):
        namespace = binding["metadata"]["namespace"]
        for subject in binding["subjects"]:
            granted = verbs.setdefault((namespace, subject["name"]), set())
            for rule in roles[(namespace, binding["roleRef"]["name"])]:
                if "workflows" in rule["resources"]:
                    assert rule["apiGroups"] == ["argoproj.io"] and "resourceNames" not in rule
                    granted |= set(rule["verbs"])
    ns = settings.namespaces
    mono, plain = (names.release_service_account_name(s) for s in ("mono", "plain"))
    assert verbs[(ns.workflows, mono)] == {"get", "list", "patch"}
    assert verbs[(ns.workflows, plain)] == set()
    assert verbs[(ns.build, mono)] == {"create", "get", "list", "patch"}
    assert verbs[(ns.build, plain)] == {"create", "get"}


def test_the_dashboard_is_valid_json_and_queries_only_the_metrics_the_templates_emit() -> None:
    import json
    dashboard = json.loads((PROJECT_DIR / "dashboards" / "release-pipeline.json").read_text(encoding="utf-8"))
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for measure in ("deployment frequency", "lead time", "change failure rate", "time to restore", "stage duration"):
        assert measure in titles, measure
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_bucket$", "", name) for e in exprs for name in re.findall(r"argo_workflows_(\w+)", e)}
    assert used == set(wf.METRIC_HELP)  # every metric is shown, and nothing else is assumed
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


# ------------------------------------------------------- one Slack thread per release


def _threads(settings: Settings, on: bool = True) -> Settings:
    return settings.model_copy(update={"slack": settings.slack.model_copy(update={"threads": on})})


def test_slack_threads_are_off_by_default_and_leave_the_template_as_it_was() -> None:
    settings = _settings()
    assert settings.slack.threads is False
    for service in _variants():
        assert service.slack_threads is None and not service.slack_threads_in(settings)
        manifest = _release(service, settings)
        assert manifest == _release(service, _threads(settings, False))
        assert "slack_thread.py" not in str(manifest) and wf.ANNOUNCE not in _templates(manifest)
        assert _templates(manifest)["notify"]["container"]["command"][-1].endswith("/notify.py")


ANY_END = "{0}.Succeeded || {0}.Skipped || {0}.Failed || {0}.Errored"


@pytest.mark.parametrize(
    ("extra", "tests", "chain"),
    [
        ("", True, ["announce", "tests", "tests-notice", "build", "build-notice", "promote", "promote-notice",
                    "verify"]),
        ("", False, ["announce", "build", "build-notice", "promote", "promote-notice", "verify"]),
        ("    path: services/svc\n", True, ["changed", "announce", "tests", "tests-notice", "build", "build-notice",
                                          "promote", "promote-notice", "verify"]),
    ],
)
def test_announce_opens_the_thread_first_and_a_notice_follows_each_stage(
    extra: str, tests: bool, chain: list[str]
) -> None:
    manifest = _release(_service(extra, tests=tests), _threads(_settings()))
    tasks = _tasks(manifest, "release")
    assert [t["name"] for t in tasks] == chain
    by_name = {t["name"]: t for t in tasks}
    changed = "{{tasks.changed.outputs.parameters.changed}} == true"
    assert by_name["announce"].get("when") == (changed if extra else None)
    assert by_name["announce"].get("depends") == ("changed.Succeeded" if extra else None)
    expected = {"tests": ("tests", "passed"), "build": ("image", "pushed"),
                "promote": ("promoted", "pushed {{tasks.promote.outputs.parameters.revision}}")}
    for before, task in zip(chain, tasks[1:], strict=False):
        if before == "announce" or before.endswith("-notice"):
            # Whatever the Slack step's end, the chain goes on (Argo allows no continueOn beside depends).
            assert task["depends"] == ANY_END.format(before), task["name"]
        elif task["name"].endswith("-notice") or task["name"] == "announce":
            assert task["depends"] == f"{before}.Succeeded", task["name"]
        else:
            assert by_name[task["name"]]["depends"] == before
        if task["name"].endswith("-notice"):
            assert task["template"] == wf.SLACK_STAGE and "continueOn" not in task
            assert {p["name"]: p["value"] for p in task["arguments"]["parameters"]} == dict(
                zip(("stage", "state"), expected[task["name"].removesuffix("-notice")], strict=True))
    assert not any("continueOn" in t for t in tasks)


def test_the_thread_steps_run_slack_thread_py_as_the_release_account() -> None:
    settings = _threads(_settings())
    templates = _templates(_release(_service(), settings))
    assert wf.exit_handler().model_dump(by_alias=True, exclude_none=True)["dag"]["tasks"][0]["template"] == "notify"
    for name, mode in ((wf.ANNOUNCE, "announce"), (wf.SLACK_STAGE, "stage"), ("notify", "finish")):
        template = templates[name]
        container = template["container"]
        assert container["command"] == ["python3", f"{wf.SCRIPTS_DIR}/slack_thread.py"]
        env = _env(container)
        assert env["MODE"] == mode
        assert env["SLACK_TOKEN"] == {"secretKeyRef": {"name": wf.SLACK_SECRET_NAME, "key": wf.SLACK_TOKEN_KEY}}
        assert env["APPLICATION"] == "svc-dev" and env["APPLICATION_NAMESPACE"] == settings.namespaces.argocd
        assert env["ROLLOUT"] == "svc" and env["ROLLOUT_NAMESPACE"] == "team"
        assert env["PR_TITLE_B64"] == "{{workflow.parameters.pr-title}}"
        assert list(env)[-1] == "SLACK_TOKEN"  # after everything it could be expanded into
        assert ("THREAD" in env) is (mode != "announce")
        assert template["automountServiceAccountToken"] is True and "executor" not in template
    assert templates[wf.ANNOUNCE]["outputs"]["parameters"] == [
        {"name": "thread", "valueFrom": {"path": f"{wf.OUTPUT_DIR}/thread"}, "globalName": wf.THREAD_OUTPUT}]
    assert _env(templates[wf.SLACK_STAGE]["container"])["THREAD"] == "{{workflow.outputs.parameters.slack-thread}}"
    assert _env(templates["notify"]["container"])["STATUS"] == "{{workflow.status}}"


def test_the_service_setting_overrides_the_stack_slack_threads_setting() -> None:
    off, on = _settings(), _threads(_settings())
    assert wf.ANNOUNCE in _templates(_release(_service("    slackThreads: true\n"), off))
    assert wf.ANNOUNCE not in _templates(_release(_service("    slackThreads: false\n"), on))


def test_announce_and_the_notices_count_in_the_release_deadline() -> None:
    settings = _settings()
    assert wf.release_workflow_seconds(_service(), _threads(settings)) == (
        wf.release_workflow_seconds(_service(), settings) + 4 * wf.attempts_seconds(wf.SLACK_STAGE,
                                                                                   wf.step_seconds(settings)))


def test_templates_with_slack_threads_lint_clean_validate_and_keep_payload_in_env(upstream_judge: Any) -> None:
    objects = []
    for stack in STACKS:
        for service, settings in _all_variants(_threads(_settings(stack))):
            release = _release(service, settings)
            assert payload_outside_env(release) == []
            objects.append(release)
    assert lint_each(objects) == []
    assert [p for t in objects for p in beyond_argo_lint(t)] == []
    assert upstream_judge.errors(objects) == []


# ------------------------------------------------------- build once, promote many


def _promoting(stack: str = "live", **promote_from: str) -> Settings:
    settings = _settings(stack)
    data = settings.model_dump(by_alias=True, exclude_none=True)
    data["promoteFrom"] = {"environment": "integration", **promote_from}
    return Settings.model_validate(data)


def test_without_promote_from_the_build_template_is_unchanged() -> None:
    for stack in STACKS:
        settings = _settings(stack)
        assert settings.promote_from is None
        manifest = _build(settings=settings)
        assert [t["name"] for t in manifest["spec"]["templates"]] == ["build-image", "image-exists", "buildkit"]
        assert "reuse_image.py" not in str(manifest)
        # The same bytes as a template built with the setting explicitly absent.
        explicit = Settings.model_validate({**settings.model_dump(by_alias=True, exclude_none=True),
                                            "promoteFrom": None})
        assert yaml.safe_dump(_build(settings=explicit)) == yaml.safe_dump(manifest)


def test_promote_from_reuses_the_upstream_image_before_buildkit() -> None:
    manifest = _build(settings=_promoting())
    tasks = _tasks(manifest, "build-image")
    assert [(t["name"], t["template"], t.get("depends"), t.get("when")) for t in tasks] == [
        ("image-exists", "image-exists", None, None),
        ("reuse", "reuse", "image-exists", "{{tasks.image-exists.outputs.parameters.exists}} == false"),
        # Omitted (never evaluated) when reuse was skipped because the image exists.
        ("build", "buildkit", "reuse.Succeeded", "{{tasks.reuse.outputs.parameters.reused}} == false"),
    ]
    reuse = _templates(manifest)["reuse"]
    (container,) = _containers(reuse)
    assert container["command"][-1].endswith("/reuse_image.py")
    env = _env(container)
    assert env["SOURCE_REPOSITORY"] == "integration/svc"  # same account and region: upstream directly
    assert env["REPOSITORY"] == REPO_NAME
    assert env["REVISION"] == "{{workflow.parameters.revision}}"
    assert env["AWS_REGION"] == "us-east-1"
    assert reuse["outputs"]["parameters"] == [{"name": "reused", "valueFrom": {"path": "/tmp/outputs/reused"}}]


def test_promote_from_another_account_reads_the_pull_through_cache() -> None:
    manifest = _build(settings=_promoting(accountId="111111111111"))
    (container,) = _containers(_templates(manifest)["reuse"])
    assert _env(container)["SOURCE_REPOSITORY"] == "promoted/svc"


def test_a_service_not_deployed_upstream_builds_as_before() -> None:
    service = _service("    environments: [live]\n")
    manifest = _build(service, _promoting())
    assert [t["name"] for t in manifest["spec"]["templates"]] == ["build-image", "image-exists", "buildkit"]


def test_promoting_build_templates_lint_clean_and_validate(upstream_judge: Any) -> None:
    builds = [_build(service, settings) for settings in (_promoting(), _promoting(accountId="111111111111"),
                                                          _promoting(region="eu-west-1")) for service in _variants()]
    assert lint_each(builds) == []
    assert [p for b in builds for p in beyond_argo_lint(b)] == []
    assert upstream_judge.errors(builds) == []


def test_tests_env_may_set_home_and_ci_which_replace_the_defaults() -> None:
    # One entry per name: Kubernetes refuses an env list with a name twice.
    def tests_env(extra: str) -> list[tuple[str, str]]:
        env = _templates(_release(_service(tests=False, extra=TESTS + extra)))["tests"]["container"]["env"]
        return [(e["name"], e["value"]) for e in env]

    assert tests_env("") == [("HOME", "/tmp"), ("CI", "true")]
    assert tests_env("      env: {CI: '1', HOME: /workspace, GOPATH: /tmp/go, A: x}\n") == [
        ("HOME", "/workspace"), ("CI", "1"), ("A", "x"), ("GOPATH", "/tmp/go")]
