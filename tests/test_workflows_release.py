"""The release WorkflowTemplate (components/workflows/release.py): its DAG, the build step
and its child Workflow, promote's mutex, and what each release step is given.

Built from the dev stack's settings and small services files (tests/workflows_support.py),
one feature on or off at a time (sub-path, tests, skipped tests, Slack channel).
"""

from __future__ import annotations

import re

import pytest
import yaml

from components import names
from components import workflows as wf
from tests.workflows_support import (
    TESTS,
    _build,
    _env,
    _release,
    _service,
    _settings,
    _tasks,
    _templates,
    _variants,
)

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


# ----------------------------------------------------------- the unit tests' environment


def test_tests_env_may_set_home_and_ci_which_replace_the_defaults() -> None:
    # One entry per name: Kubernetes refuses an env list with a name twice.
    def tests_env(extra: str) -> list[tuple[str, str]]:
        env = _templates(_release(_service(tests=False, extra=TESTS + extra)))["tests"]["container"]["env"]
        return [(e["name"], e["value"]) for e in env]

    assert tests_env("") == [("HOME", "/tmp"), ("CI", "true")]
    assert tests_env("      env: {CI: '1', HOME: /workspace, GOPATH: /tmp/go, A: x}\n") == [
        ("HOME", "/workspace"), ("CI", "1"), ("A", "x"), ("GOPATH", "/tmp/go")]
