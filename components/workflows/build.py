"""The build WorkflowTemplate `<service>-build` (build namespace): image check, then rootless BuildKit.

Owns the template the release's `build` step starts as a child Workflow (contract
section 3): `image-exists` asks ECR whether the commit's image is there; with the stack
setting `promoteFrom`, `reuse` copies the upstream image by digest; otherwise `buildkit`
builds the service's Dockerfile with rootless BuildKit and pushes `<repository>:<revision>`
and a registry layer cache. It runs as the service's builder account (its AWS identity
only), every pod without a Kubernetes token.

Does not own: the child Workflow the release creates from it (`release`), the ECR
repositories, the builder account and where to reuse from (`components.registry`), the
build namespace's admission of BuildKit (`components.namespaces`), the images
(`components.versions`).

Decisions: docs/decisions/0341-image-build-as-a-child-workflow.md,
docs/decisions/0345-rootless-buildkit-with-a-registry-cache.md,
docs/decisions/0344-pod-security-contexts.md,
docs/decisions/0343-services-yaml-strings-are-literal-in-pods.md.
"""

from __future__ import annotations

import posixpath

from hera.workflows import models as m

from components import names
from components.config import Service, Settings
from components.registry import promote_source
from components.versions import BUILDKIT_ECR
from components.workflows.pods import (
    ARGO_API_VERSION,
    BUILDKIT_STATE,
    REVISION,
    SCRIPTS_MOUNT,
    TMP_MOUNT,
    WORKSPACE,
    WORKSPACE_MOUNT,
    Manifest,
    buildkit_container_security,
    checkout_container,
    checkout_volumes,
    dump_template,
    empty_dir_volume,
    env_vars,
    labels,
    literal,
    mounts_of,
    output_parameter,
    pod_template,
    resources,
    spec_defaults,
    template_metadata,
    tool_env,
    tools_container,
    workflow_parameter,
)
from components.workflows.timing import build_workflow_seconds


def buildctl_args(service: Service, repository_url: str, cache_tag: str) -> list[str]:
    """`buildctl build` arguments: sub-path, Dockerfile, build args, push and registry cache."""
    directory = posixpath.join(WORKSPACE, service.path) if service.path else WORKSPACE
    context = posixpath.normpath(posixpath.join(directory, service.build.context))
    dockerfile_dir = posixpath.normpath(posixpath.join(directory, posixpath.dirname(service.build.dockerfile)))
    cache = f"{repository_url}:{cache_tag}"
    args = [
        "build",
        "--frontend", "dockerfile.v0",
        "--local", f"context={context}",
        "--local", f"dockerfile={dockerfile_dir}",
        "--opt", f"filename={posixpath.basename(service.build.dockerfile)}",
    ]
    for key in sorted(service.build.args):
        # The value reaches buildctl through Kubernetes' own $(VAR) expansion: one
        # argument, never a shell word.
        args += ["--opt", f"build-arg:{key}=$({build_arg_env(key)})"]
    args += [
        "--output", f"type=image,name={repository_url}:{workflow_parameter(REVISION)},push=true",
        "--export-cache",
        f"type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true",
        "--import-cache", f"type=registry,ref={cache}",
    ]
    return args


def build_arg_env(key: str) -> str:
    return f"BUILD_ARG_{key}"


def _image_exists_template(settings: Settings, config_map: str, repository_name: str) -> m.Template:
    return pod_template(
        "image-exists", settings, config_map,
        container=tools_container(
            settings, "image_exists.py",
            tool_env(("REPOSITORY", repository_name), ("REVISION", workflow_parameter(REVISION)),
                     ("AWS_REGION", settings.aws.region)),
            mounts_of(SCRIPTS_MOUNT, TMP_MOUNT),
        ),
        outputs=m.Outputs(parameters=[output_parameter("exists")]),
    )


def _buildkit_template(service: Service, settings: Settings, config_map: str,
                       repository_url: str) -> m.Template:
    env = env_vars([
        ("BUILDKITD_FLAGS", "--oci-worker-no-process-sandbox"),
        ("AWS_REGION", settings.aws.region),
        # docker-credential-ecr-login: no credentials cache on disk.
        ("AWS_ECR_DISABLE_CACHE", "true"),
    ])
    env += env_vars((build_arg_env(k), literal(v)) for k, v in sorted(service.build.args.items()))
    return pod_template(
        "buildkit", settings, config_map,
        volumes=[*checkout_volumes(service), empty_dir_volume("buildkit")],
        init_containers=[checkout_container(service, settings, depth=1)],
        container=m.Container(
            image=BUILDKIT_ECR.ref(settings.tool_images.registry),
            command=["buildctl-daemonless.sh"],
            args=buildctl_args(service, repository_url, settings.ecr.cache_tag),
            env=env,
            volume_mounts=mounts_of(WORKSPACE_MOUNT, ("buildkit", BUILDKIT_STATE, False)),
            resources=resources(settings.sizes.image_build),
            security_context=buildkit_container_security(),
        ),
    )


def _reuse_template(settings: Settings, config_map: str, repository_name: str,
                    source_repository: str) -> m.Template:
    return pod_template(
        "reuse", settings, config_map,
        container=tools_container(
            settings, "reuse_image.py",
            tool_env(("SOURCE_REPOSITORY", source_repository), ("REPOSITORY", repository_name),
                     ("REVISION", workflow_parameter(REVISION)), ("AWS_REGION", settings.aws.region)),
            mounts_of(SCRIPTS_MOUNT, TMP_MOUNT),
        ),
        outputs=m.Outputs(parameters=[output_parameter("reused")]),
    )


def build_dag(*, reuse: bool = False) -> m.Template:
    """image-exists -> build; with `promoteFrom`: image-exists -> reuse -> build.

    With reuse, `build` depends on `reuse.Succeeded`: when the image already exists,
    `reuse` is skipped and `build` is omitted without its `when` being evaluated, so no
    expression ever refers to the output of a task that did not run.
    """
    if not reuse:
        return m.Template(name="build-image", dag=m.DAGTemplate(tasks=[
            m.DAGTask(name="image-exists", template="image-exists"),
            m.DAGTask(name="build", template="buildkit", depends="image-exists",
                      when="{{tasks.image-exists.outputs.parameters.exists}} == false"),
        ]))
    return m.Template(name="build-image", dag=m.DAGTemplate(tasks=[
        m.DAGTask(name="image-exists", template="image-exists"),
        m.DAGTask(name="reuse", template="reuse", depends="image-exists",
                  when="{{tasks.image-exists.outputs.parameters.exists}} == false"),
        m.DAGTask(name="build", template="buildkit", depends="reuse.Succeeded",
                  when="{{tasks.reuse.outputs.parameters.reused}} == false"),
    ]))


def build_template(service: Service, settings: Settings, scripts_config_map: str,
                   repository_url: str, repository_name: str) -> Manifest:
    """The build WorkflowTemplate of one service (contract section 3), as a plain dict.

    `repository_url` is the ECR repository's URL (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`),
    `repository_name` its name (what `image_exists.py` asks ECR about). With the stack
    setting `promoteFrom` (and the service deployed upstream), a `reuse` step copies the
    upstream image of the commit by digest before BuildKit is considered
    (`components.registry.PromoteSource` says from where).
    """
    source = promote_source(settings, service)
    reuse = [] if source is None else [
        _reuse_template(settings, scripts_config_map, repository_name, source.repository)]
    template = m.WorkflowTemplate(
        api_version=ARGO_API_VERSION,
        kind="WorkflowTemplate",
        metadata=template_metadata(names.build_template_name(service.name), settings.namespaces.build,
                                   "build-workflow", service.name),
        spec=m.WorkflowSpec(
            entrypoint="build-image",
            arguments=m.Arguments(parameters=[m.Parameter(name=REVISION)]),
            service_account_name=names.builder_service_account_name(service.name),
            # The builder account carries only the AWS identity (Pod Identity / IRSA
            # inject their own credentials); the wait container has its own account.
            automount_service_account_token=False,
            executor=m.ExecutorConfig(service_account_name=names.EXECUTOR_SERVICE_ACCOUNT),
            active_deadline_seconds=build_workflow_seconds(settings),
            pod_metadata=m.Metadata(labels=labels("build-workflow", service.name)),
            templates=[
                build_dag(reuse=source is not None),
                _image_exists_template(settings, scripts_config_map, repository_name),
                *reuse,
                _buildkit_template(service, settings, scripts_config_map, repository_url),
            ],
            **spec_defaults(),
        ),
    )
    return dump_template(template)
