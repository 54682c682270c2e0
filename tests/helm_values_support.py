"""Shared by the Helm values tests: a stack's settings with changes, and the policy lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components import helm_values as hv
from components.config import Settings, load_stack_settings

ROOT = Path(__file__).resolve().parents[1]
CHARTS = ROOT / "upstream" / "charts"
PROJECTS = ("datacollect",)


def settings(stack: str = "dev", **changes: Any) -> Settings:
    base = load_stack_settings(ROOT, stack)
    return base.model_copy(update=changes) if changes else base


def nested(model: Any, **changes: Any) -> Any:
    return model.model_copy(update=changes)


def policy_lines(s: Settings, projects: tuple[str, ...] = PROJECTS) -> set[str]:
    return set(hv.argocd_policy_csv(s, projects).strip().splitlines())
