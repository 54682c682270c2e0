"""Newest-wins releases (components/workflows/newest_wins.py): the two steps, where they sit,
what they run as, the superseded-by annotation, and the rendered stack's permissions.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from components import names
from components import workflows as wf
from tests.upstream_support import beyond_argo_lint, lint_each
from tests.workflows_support import (
    _env,
    _release,
    _service,
    _settings,
    _tasks,
    _templates,
    _variants,
    _with,
    lint,
    payload_outside_env,
    walk,
)

# ------------------------------------------------------------------- newest-wins


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


# ------------------------------------------------------------------ rendered stack


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
