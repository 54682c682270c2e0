"""Namespaces: Pod Security levels (pure builder)."""

from __future__ import annotations

from components.config import Namespaces as NamespaceNames
from components.namespaces import namespace_manifest, platform_levels


def test_only_the_build_namespace_is_not_restricted() -> None:
    levels = platform_levels(NamespaceNames())
    relaxed = {role for role, (_, level) in levels.items() if level != "restricted"}
    assert relaxed == {"build"}
    assert set(levels) == {"events", "workflows", "argocd", "rollouts", "build"}


def test_namespace_names_come_from_settings() -> None:
    levels = platform_levels(NamespaceNames(workflows="wf", build="builds"))
    assert levels["workflows"][0] == "wf"
    assert levels["build"][0] == "builds"


def test_namespace_manifest_enforces_audits_and_warns_at_its_level() -> None:
    labels = namespace_manifest("datacollect", "restricted", "service")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
