"""Shared by the Access tests: the small services file (two teams, a shared namespace, a
team with two GitHub slugs), the dev stack's settings and lookups in the built manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.access import (
    access_manifests,
)
from components.config import RbacSettings, Service, Settings, load_stack_settings, parse_services

PROJECT_DIR = Path(__file__).resolve().parents[1]
WORKFLOW_TASK_RESULTS = {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                         "verbs": ["create", "patch"]}

SERVICES = """
services:
  - name: vbsiv
    repo: Appen/sid_verification_backend_api
    imageRepository: datacollect-vbsiv
    namespace: datacollect
    project: datacollect
    helm: {repo: Appen-International/datacollect-helm, path: app/vbsiv}
  - name: labeling-api
    repo: Appen/datacollect-platform
    path: services/labeling-api
    imageRepository: datacollect-labeling-api
    namespace: labeling
    project: datacollect
    helm: {repo: Appen-International/labeling-helm, path: app/labeling-api}
  - name: billing
    repo: Appen/billing
    imageRepository: billing
    namespace: datacollect
    project: payments
    helm: {repo: Appen-International/payments-helm, path: app/billing}
  - name: ledger
    repo: Appen/ledger
    imageRepository: ledger
    namespace: payments
    project: payments
    helm: {repo: Appen-International/payments-helm, path: app/ledger}
"""


def _settings(**rbac: Any) -> Settings:
    settings = load_stack_settings(PROJECT_DIR, "dev")
    return settings.model_copy(update={"rbac": RbacSettings(**rbac)}) if rbac else settings


def _services(text: str = SERVICES) -> list[Service]:
    return parse_services(text, "services.yaml").for_environment("dev")


def _manifests(settings: Settings | None = None, services: list[Service] | None = None) -> dict[str, Any]:
    return access_manifests(settings or _settings(), _services() if services is None else services)


def _of_kind(manifests: dict[str, Any], kind: str) -> dict[str, Any]:
    return {key: m for key, m in manifests.items() if m["kind"] == kind}


def _by_name(manifests: dict[str, Any], kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = [m for m in manifests.values()
             if m["kind"] == kind and m["metadata"]["name"] == name and m["metadata"]["namespace"] == namespace]
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]
