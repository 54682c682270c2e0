"""The stack's side of a check: `Context`, from the config the engine passes the pack.

Owns: `Context` (the build namespace, the pinned BuildKit image, the ECR cache tag),
`context_from_config` (from the `<project>:settings` object of `PULUMI_CONFIG`), and the
program's names and defaults it needs (`PROJECT`, `SETTINGS_KEY`, the BuildKit image's
name and version): copies, not imports (a test keeps them equal to the program's).
Does not own: reading the engine's environment (`policy_pack.stack_context`), the checks.

Decisions: docs/decisions/0380-policy-checks-are-pure-functions.md,
docs/decisions/0384-the-buildkit-exception-is-one-container.md (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

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
