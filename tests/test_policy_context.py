"""The stack's context (`policy/release_policies/context.py`) and the values the pack copies.

- the names and values the pack shares with the program are the program's;
- each stack's `Context`, read from its config as the engine passes it, agrees with the
  program's settings; without settings no container gets the BuildKit exception.
"""

from __future__ import annotations

import pytest

from components import sensors, workflows
from components.config import PROJECT, SETTINGS_KEY, STACKS, load_stack_settings
from components.versions import BUILDKIT_ECR
from tests.conftest import ROOT
from tests.policy_support import pulumi_config, rp


def test_pack_constants_are_the_programs() -> None:
    assert (rp.PROJECT, rp.SETTINGS_KEY) == (PROJECT, SETTINGS_KEY)
    assert rp.ENCODED_PARAMETERS == set(sensors.ENCODED_ARGUMENTS) == set(workflows.ENCODED_PARAMETERS)
    assert set(workflows.PAYLOAD_PARAMETERS) == rp.PAYLOAD_PARAMETERS
    assert rp.ENCODED_ENV_SUFFIX == workflows.ENCODED_ENV_SUFFIX
    for source in sensors.PR_ARGUMENTS.values():
        if isinstance(source, sensors.Encoded):
            assert rp.ENCODED_SENSOR_TEMPLATE.match(source.template)
    assert (BUILDKIT_ECR.name, BUILDKIT_ECR.version) == (rp.BUILDKIT_IMAGE_NAME, rp.BUILDKIT_IMAGE_VERSION)


@pytest.mark.parametrize("stack", STACKS)
def test_context_from_stack_config_agrees_with_the_program(stack: str) -> None:
    settings = load_stack_settings(ROOT, stack)
    context = rp.context_from_config(pulumi_config(stack))
    assert context == rp.Context(
        build_namespace=settings.namespaces.build,
        buildkit_image=BUILDKIT_ECR.ref(settings.tool_images.registry),
        cache_tag=settings.ecr.cache_tag,
    )


def test_context_fails_closed_without_settings() -> None:
    assert rp.context_from_config({}).buildkit_image is None
    assert rp.context_from_config({"release-pipeline:settings": "not json"}).buildkit_image is None
