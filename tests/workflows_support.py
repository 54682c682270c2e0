"""Shared by the tests of components/workflows/: small services files, the dev stack's
settings, builders of the two templates, and walkers over what they build.

Builder tests use the dev stack's settings and small services files written here, one
feature on or off at a time. `walk` is also the manifest walker of
tests/test_payload_paths.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from components import workflows as wf
from components.config import Service, Settings, load_stack_settings, parse_services
from tests.upstream_support import argo_lint

PROJECT_DIR = Path(__file__).resolve().parents[1]
REPO_URL = "111111111111.dkr.ecr.us-east-1.amazonaws.com/dev/datacollect-vbsiv"
REPO_NAME = "dev/datacollect-vbsiv"
CONFIG_MAP = "release-pipeline-scripts-0123456789"
PAYLOAD_REF = re.compile(r"\{\{\s*=?[^}]*\b(?:workflow\.parameters|inputs\.parameters)[.\[]['\"]?"
                         r"(pr-number|pr-title|author|repository|trigger)\b")

BASE = """
  - name: {name}
    repo: Appen/{repo}
    imageRepository: {name}
    namespace: team
    project: team
    helm: {{repo: Appen-International/team-helm, path: app/{name}}}
"""
TESTS = """    tests:
      image: python:3.12.8-slim-bookworm
      command: ["python", "-m", "pytest", "-q"]
"""


def _service(extra: str = "", *, tests: bool = True, name: str = "svc", repo: str = "svc",
             helm: str | None = None) -> Service:
    base = BASE.format(name=name, repo=repo)
    if helm is not None:
        base = re.sub(r"(?m)^    helm: .*$", f"    helm: {helm}", base)
    text = "services:\n" + base + (TESTS if tests else "") + extra
    (service,) = parse_services(text, "services.yaml").services
    return service


def _settings(stack: str = "dev") -> Settings:
    return load_stack_settings(PROJECT_DIR, stack)


def _release(service: Service | None = None, settings: Settings | None = None) -> dict[str, Any]:
    return wf.release_template(service or _service(), settings or _settings(), CONFIG_MAP)


def _build(service: Service | None = None, settings: Settings | None = None) -> dict[str, Any]:
    return wf.build_template(service or _service(), settings or _settings(), CONFIG_MAP, REPO_URL, REPO_NAME)


def _variants() -> list[Service]:
    """Every optional feature on and off."""
    return [
        _service(),
        _service(tests=False),
        _service(TESTS.replace("      command", "      skip: true\n      command"), tests=False),
        _service("    path: services/svc\n"),
        _service("    path: services/svc\n", tests=False),
        _service("    build: {dockerfile: docker/app.Dockerfile, context: ., args: {A: '1', B: 'x $(HOME) $$'}}\n"),
        _service("    slackChannel: '#team-svc'\n"),
    ]


def _templates(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


def _tasks(manifest: dict[str, Any], dag: str) -> list[dict[str, Any]]:
    return _templates(manifest)[dag]["dag"]["tasks"]


def _containers(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from template.get("initContainers", [])
    if "container" in template:
        yield template["container"]


def _all_containers(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for template in manifest["spec"]["templates"]:
        for container in _containers(template):
            yield template["name"], container


def _pod_templates(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in manifest["spec"]["templates"] if "container" in t or "resource" in t]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every node, paths like `.spec.templates[3].container.env[0].value`."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")


def payload_outside_env(manifest: dict[str, Any]) -> list[str]:
    """Paths where a payload parameter is referenced anywhere but an `env[].value`."""
    found = []
    for path, value in walk(manifest):
        if isinstance(value, str) and PAYLOAD_REF.search(value) and not re.search(r"\.env\[\d+\]\.value$", path):
            found.append(path)
    return found


def lint(obj: dict[str, Any], templates: Iterable[dict[str, Any]] = ()) -> list[str]:
    """`argo lint --offline` (Argo Workflows' own validation) on `obj`, with the templates it references."""
    done = argo_lint([obj, *templates])
    return [] if done.returncode == 0 else [line for line in (done.stdout + done.stderr).splitlines() if line]


def _with(settings: Settings, *, newest_wins: bool | None = None, release_metrics: bool | None = None) -> Settings:
    update: dict[str, Any] = {}
    if newest_wins is not None:
        update["release"] = settings.release.model_copy(update={"newest_wins": newest_wins})
    if release_metrics is not None:
        update["metrics"] = settings.metrics.model_copy(update={"release_metrics": release_metrics})
    return settings.model_copy(update=update)


def _all_variants(settings: Settings) -> Iterator[tuple[Service, Settings]]:
    """Every service variant with each of the two options off and on."""
    for service in _variants():
        for newest, metrics in ((False, False), (True, False), (False, True), (True, True)):
            yield service, _with(settings, newest_wins=newest, release_metrics=metrics)


def _threads(settings: Settings, on: bool = True) -> Settings:
    return settings.model_copy(update={"slack": settings.slack.model_copy(update={"threads": on})})
