"""Names shared between components: valid, bounded, deterministic."""

from __future__ import annotations

import pytest

from components import names

LONG = "a" * 63


def test_workflow_name_is_prefix_plus_full_sha_within_63() -> None:
    sha = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
    assert names.workflow_name("vbsiv", "integration", sha) == f"vbsiv-integration-{sha}"
    long = names.workflow_name(LONG, "integration", sha)
    assert len(long) == 63 and long.endswith(sha) and names.is_dns1123_label(long)
    assert long != names.workflow_name(LONG[:-1] + "b", "integration", sha)


@pytest.mark.parametrize(
    "make",
    [
        names.release_service_account_name,
        names.builder_service_account_name,
        names.release_template_name,
        names.build_template_name,
    ],
)
def test_per_service_names_stay_labels_for_the_longest_service(make) -> None:  # type: ignore[no-untyped-def]
    assert names.is_dns1123_label(make(LONG))
    assert make(LONG) != make(LONG[:-1] + "b")


def test_repo_slug_is_a_label_and_stable() -> None:
    assert names.repo_slug("Appen/sid_verification_backend_api") == "appen-sid-verification-backend-api"
    assert names.is_dns1123_label(names.repo_slug("A" * 39 + "/" + "b" * 100))


def test_bounded_keeps_short_names() -> None:
    assert names.bounded("short", 10) == "short"
    assert len(names.bounded("x" * 100, 64)) == 64
