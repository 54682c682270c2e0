"""docs/adding-a-service.md, followed to the letter: each example entry of the doc, pasted into a
copy of the project, passes the check, renders in every stack and holds to the invariants.

The examples are read from the doc itself, so the test follows the doc as it changes:
- the entry under "The smallest entry" (a whole file: ``services:`` and one item);
- the first entry under "One example per option" (one item, every common option);
- each further snippet there (fields of an entry, indented as in one): pasted under the
  smallest entry, one at a time, as a person adding that option would.
A doc example whose name the tests' services file already has replaces that service, so
each case adds a service the project does not have yet.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import STACKS
from components.render.output import read_stack
from tests.conftest import ROOT, SERVICES_FILE, copy_project, run_render_cli

DOC = ROOT / "docs" / "adding-a-service.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)


def section(markdown: str, heading: str) -> str:
    """The text of the ``## heading`` section, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"{DOC.name} has no section '## {heading}'"
    return match.group(1)


def doc_examples() -> dict[str, str]:
    """``{case: text pasted at the end of services.yaml}``, from the doc's yaml blocks."""
    text = DOC.read_text(encoding="utf-8")
    [smallest, *_] = BLOCK.findall(section(text, "The smallest entry"))
    assert smallest.startswith("services:\n"), "the smallest entry is shown as a whole services file"
    smallest_entry = smallest.removeprefix("services:\n")
    full, *snippets = BLOCK.findall(section(text, "One example per option"))
    assert full.startswith("  - name: "), "the first example per option is one entry of the list"
    cases = {"the smallest entry": smallest_entry, "the example with every common option": full}
    for number, snippet in enumerate(snippets, start=1):
        assert snippet.startswith("    "), f"snippet {number} is not fields of an entry: {snippet!r}"
        first_key = snippet.split(":", 1)[0].strip()
        cases[f"option {number} ({first_key})"] = smallest_entry + snippet
    return cases


EXAMPLES = doc_examples()


def added_names(entry_text: str) -> list[str]:
    return [item["name"] for item in yaml.safe_load("services:\n" + entry_text)["services"]]


class IndentedDumper(yaml.SafeDumper):
    """Indents a list under its key (``services:\n  - name: ...``), as services.yaml and the doc do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def project_with(root: Path, entry_text: str) -> Path:
    """A copy of the project whose services.yaml gets the doc's entry pasted at its end."""
    project = copy_project(root, "Pulumi.yaml", "__main__.py")
    names = set(added_names(entry_text))
    data = yaml.safe_load(SERVICES_FILE.read_text(encoding="utf-8"))
    data["services"] = [s for s in data["services"] if s["name"] not in names]
    base = yaml.dump(data, Dumper=IndentedDumper, sort_keys=False)  # list items at two spaces, as in the doc
    (project / "services.yaml").write_text(base + entry_text, encoding="utf-8")
    return project


def environments_of(entry_text: str, name: str) -> list[str]:
    [entry] = [s for s in yaml.safe_load("services:\n" + entry_text)["services"] if s["name"] == name]
    return list(entry.get("environments", STACKS))


def test_the_doc_has_examples_to_follow() -> None:
    assert "the smallest entry" in EXAMPLES and "the example with every common option" in EXAMPLES
    assert len(EXAMPLES) >= 3, "no option snippets found under 'One example per option'"


@pytest.mark.parametrize("case", sorted(EXAMPLES))
def test_a_service_added_as_the_doc_says_passes_check_render_and_invariants(tmp_path: Path, case: str,
                                                                             upstream_judge: Any) -> None:
    entry = EXAMPLES[case]
    project = project_with(tmp_path / "project", entry)
    check = subprocess.run(
        [sys.executable, "-m", "components", "check", "--project-dir", str(project)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert check.returncode == 0, f"{case}: check failed:\n{check.stdout}{check.stderr}"
    out = tmp_path / "out"
    render = run_render_cli("--stack", "all", "--out", str(out), "--project-dir", str(project))
    assert render.returncode == 0, f"{case}: render failed:\n{render.stderr}"
    assert "Traceback" not in render.stdout + render.stderr
    [name] = added_names(entry)
    for stack in STACKS:
        resources, manifests = read_stack(out / stack)
        assert_invariants(stack, resources, manifests, upstream_judge)
        kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
        mine = {("Sensor", name), ("WorkflowTemplate", f"{name}-release"), ("WorkflowTemplate", f"{name}-build"),
                ("Application", f"{name}-{stack}"), ("Rollout", name)}
        if stack in environments_of(entry, name):
            assert mine <= kinds, f"{case}: {stack}: missing {sorted(mine - kinds)}"
        else:
            assert not mine & kinds, f"{case}: {stack}: the service is not deployed there"


def assert_invariants(stack: str, resources: list[dict[str, Any]], manifests: list[dict[str, Any]],
                      judge: Any) -> None:
    """The render-based checks of the suite that are cheap: schemas, policy pack, secrets, retention."""
    from tests.policy_support import pulumi_config, rp

    errors = judge.errors(manifests)  # the session's kube-apiserver and argo-events-check
    assert errors == [], f"{stack}: {errors[:10]}"
    context = rp.context_from_config(pulumi_config(stack))
    violations = {
        f"{r['type']} {r['name']}": v
        for r in resources
        if (v := rp.violations(r["type"], r["inputs"], r["options"], context))
    }
    assert violations == {}, stack
    text = json.dumps(resources) + json.dumps(manifests)
    assert "PRIVATE KEY" not in text and "offline-placeholder" not in text, stack
    for r in resources:
        service_namespace = r["type"] == "kubernetes:core/v1:Namespace" and r["name"].startswith("namespaces-service-")
        if r["type"] == "aws:ecr/repository:Repository" or service_namespace:
            assert r["options"]["retain_on_delete"] is True and r["options"]["protect"] is False, r["name"]


# The project's services.yaml is the teams' file: a test may check that it is valid, never what it lists.
READS_THE_PROJECTS_SERVICES = re.compile(r'(ROOT|PROJECT_DIR|parent|parents\[1\])\s*/\s*"services\.yaml"')
MAY_READ_IT = {"test_config_services.py", "test_config_rules.py", "test_worked_example.py"}  # only to check rules on it


def test_no_test_depends_on_what_the_projects_services_file_lists() -> None:
    readers = sorted(
        f"{path.name}:{number}"
        for path in (ROOT / "tests").glob("*.py")
        if path.name not in MAY_READ_IT
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if READS_THE_PROJECTS_SERVICES.search(line)
    )
    assert readers == [], "use tests.conftest.SERVICES_FILE (the tests' own services file) instead"
