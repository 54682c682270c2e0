"""Every built release and build template, and the child build Workflow, judged by upstream:
`argo lint --offline` and the session's kube-apiserver (tests/upstream_support.py).
"""

from __future__ import annotations

from typing import Any

import yaml

from components import workflows as wf
from components.config import STACKS
from tests.upstream_support import beyond_argo_lint, lint_each
from tests.workflows_support import (
    PROJECT_DIR,
    _build,
    _release,
    _settings,
    _templates,
    _variants,
    lint,
)


def test_every_built_template_lints_clean() -> None:
    templates = []
    for stack in STACKS:
        settings = _settings(stack)
        for service in _variants():
            templates += [_release(service, settings), _build(service, settings)]
    assert lint_each(templates) == []
    assert [p for t in templates for p in beyond_argo_lint(t)] == []
    for service in _variants():
        # The child the release creates is a valid Workflow of the build template.
        settings = _settings()
        build = _build(service, settings)
        child = wf.child_build_workflow(service, settings)
        child["metadata"]["name"] = child["metadata"].pop("generateName") + "x"
        child["spec"]["arguments"]["parameters"][0]["value"] = "0" * 40
        assert lint(child, [build]) == []
        assert beyond_argo_lint(child, [build]) == []


def test_every_built_object_validates_against_the_upstream_schemas(upstream_judge: Any) -> None:
    files = wf.read_scripts(PROJECT_DIR / "scripts")
    objects = [wf.scripts_config_map(files, "argo")]
    for service in _variants():
        objects += [_release(service), _build(service)]
        child = yaml.safe_load(_templates(_release(service))["build"]["resource"]["manifest"])
        child["metadata"]["labels"] = {k: "x" if "{{" in v else v for k, v in child["metadata"]["labels"].items()}
        objects.append(child)
    assert upstream_judge.errors(objects) == []
