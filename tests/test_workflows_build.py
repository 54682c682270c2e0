"""The build WorkflowTemplate (components/workflows/build.py): the image check, BuildKit's
arguments and ECR login, and reusing the upstream image with `promoteFrom`.
"""

from __future__ import annotations

from typing import Any

import yaml

from components import names
from components import workflows as wf
from components.config import STACKS, Settings
from tests.upstream_support import beyond_argo_lint, lint_each
from tests.workflows_support import (
    REPO_NAME,
    REPO_URL,
    _build,
    _containers,
    _env,
    _service,
    _settings,
    _tasks,
    _templates,
    _variants,
)

# ----------------------------------------------------------------------- the DAG


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


# -------------------------------------------------------------- what each script gets


def test_image_exists_gets_the_repository_name_and_region() -> None:
    settings = _settings()
    env = _env(_templates(_build(settings=settings))["image-exists"]["container"])
    assert env["REPOSITORY"] == REPO_NAME
    assert env["AWS_REGION"] == settings.aws.region
    assert env["REVISION"] == "{{workflow.parameters.revision}}"


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
