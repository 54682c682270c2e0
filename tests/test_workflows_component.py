"""`ReleaseWorkflows` (components/workflows/component.py) in the rendered stacks: both templates
per service, the scripts ConfigMaps and the Slack token Secret; optional services.yaml
features on and off. Uses the `render_stack` fixture: the real program, rendered offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import names
from components import workflows as wf
from components.config import STACKS, load_services
from components.verify.lint import sensor_workflows
from tests.conftest import SERVICES_FILE, run_render_cli
from tests.upstream_support import beyond_argo_lint, lint_each
from tests.workflows_support import (
    PROJECT_DIR,
    _env,
    _settings,
    _tasks,
    _templates,
    payload_outside_env,
)


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
