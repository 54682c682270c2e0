"""The review view of the offline render: OUT/<stack>/review/ (components.render.output).

Owns: which embedded documents get a file of their own (JSON objects and lists of
``REVIEW_MIN_JSON`` characters or more anywhere; multi-line strings outside Kubernetes
objects), their names (sanitised, collisions told apart), their text (JSON with indent 2
and sorted keys; text as it is), byte-identical output, and the promise that makes the
view worth having: one changed rule is one changed line.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from components.render.output import REVIEW_MIN_JSON, review_documents, write_stack
from tests.conftest import copy_project, run_render_cli

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "RegistryLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {"Sid": "Push", "Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:PutImage", "ecr:UploadLayerPart"],
         "Resource": ["arn:aws:ecr:us-east-1:111111111111:repository/dev/web"]},
    ],
}
CSV = "g, Acme:platform, role:admin\np, role:team-web, applications, get, web/*, allow\n"


def resource(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "name": name, "parent": None, "inputs": inputs, "options": {}}


def stack(policy: dict[str, Any] = POLICY, csv: str = CSV) -> list[dict[str, Any]]:
    return [
        resource("aws:iam/rolePolicy:RolePolicy", "web-push-policy", {"policy": json.dumps(policy), "role": "r"}),
        resource("kubernetes:helm.sh/v3:Release", "platform-argo-cd",
                 {"values": {"configs": {"rbac": {"policy.csv": csv}, "cm": {"url": "https://x"}}}}),
    ]


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_each_embedded_document_gets_a_file_named_after_its_resource_and_input():
    files = review_documents(stack())
    assert sorted(files) == ["platform-argo-cd.values.configs.rbac.policy.csv", "web-push-policy.policy.json"]
    assert json.loads(files["web-push-policy.policy.json"]) == POLICY
    assert files["web-push-policy.policy.json"].startswith('{\n  "Statement": [\n')
    assert files["platform-argo-cd.values.configs.rbac.policy.csv"] == CSV


def test_a_changed_action_is_one_changed_line_in_the_review_but_the_whole_policy_in_resources_json():
    changed = json.loads(json.dumps(POLICY))
    changed["Statement"][1]["Action"][1] = "ecr:PutImageTagMutability"
    before, after = review_documents(stack()), review_documents(stack(policy=changed))
    name = "web-push-policy.policy.json"
    assert changed_lines(before[name], after[name]) == [
        '-        "ecr:PutImage",', '+        "ecr:PutImageTagMutability",'
    ]
    # What the review view is for: in resources.json the policy is one escaped line.
    assert "\n" not in stack()[0]["inputs"]["policy"]


def test_a_new_rbac_rule_is_one_added_line():
    csv = CSV + "p, role:team-web, applications, sync, web/*, allow\n"
    name = "platform-argo-cd.values.configs.rbac.policy.csv"
    assert changed_lines(review_documents(stack())[name], review_documents(stack(csv=csv))[name]) == [
        "+p, role:team-web, applications, sync, web/*, allow"
    ]


def test_short_json_scalars_and_single_lines_stay_in_resources_json_only():
    short = json.dumps({"a": 1})
    assert len(short) < REVIEW_MIN_JSON
    files = review_documents([
        resource("pulumi:providers:aws", "aws", {"defaultTags": short, "count": "1" * 200, "one": "a line\n"}),
        resource("aws:x/y:Y", "y", {"notJson": "{" + "x" * 200}),
    ])
    assert files == {}


def test_multi_line_text_of_kubernetes_objects_is_left_to_manifests_yaml_but_their_json_is_not():
    annotation = json.dumps({"Type": "forward", "ForwardConfig": {"TargetGroups": [{"ServiceName": "web-canary"}]}})
    annotation += " " * (REVIEW_MIN_JSON - len(annotation))
    files = review_documents([resource("kubernetes:core/v1:ConfigMap", "scripts", {
        "data": {"run.py": "import sys\nprint(sys.argv)\n"},
        "metadata": {"annotations": {"alb.ingress.kubernetes.io/actions.web": annotation}},
    })])
    assert list(files) == ["scripts.metadata.annotations.alb.ingress.kubernetes.io_actions.web.json"]


def test_text_gets_the_extension_of_its_key_else_yaml_or_txt():
    files = review_documents([resource("kubernetes:helm.sh/v3:Release", "cd", {"values": {
        "dex.config": "connectors:\n- type: github\n",
        "message": "Deployed.\nSee the UI.\n",
        "run.sh": "set -eu\necho hi\n",
        "broken": "a: [\nb",
    }})])
    assert sorted(files) == ["cd.values.broken.txt", "cd.values.dex.config.yaml", "cd.values.message.txt",
                             "cd.values.run.sh"]
    assert files["cd.values.broken.txt"] == "a: [\nb\n"  # a newline is added at the end, nothing else


def test_hostile_names_cannot_leave_the_review_directory(tmp_path: Path):
    files = review_documents([resource("aws:x/y:Y", "../../etc/$(rm -rf ~)", {"../x": "{{a}}\n$(b)\n"})])
    [name] = files
    assert "/" not in name and name not in (".", "..")
    write_stack(tmp_path / "dev", [resource("aws:x/y:Y", "../../etc/passwd", {"../x": "{{a}}\n$(b)\n"})], [])
    assert [p.name for p in (tmp_path / "dev" / "review").iterdir()] == [".._.._etc_passwd..._x.txt"]
    assert (tmp_path / "dev" / "review" / ".._.._etc_passwd..._x.txt").read_text() == "{{a}}\n$(b)\n"


def test_two_resources_of_one_name_are_told_apart_by_type():
    files = review_documents([
        resource("aws:iam/role:Role", "web", {"policy": json.dumps(POLICY)}),
        resource("aws:iam/rolePolicy:RolePolicy", "web", {"policy": json.dumps(POLICY)}),
        resource("aws:iam/rolePolicy:RolePolicy", "web", {"policy": json.dumps(POLICY)}),
    ])
    assert sorted(files) == ["web.Role.policy.json", "web.RolePolicy.policy.json", "web.RolePolicy.policy.json.2"]


def test_a_very_long_name_is_cut_with_a_hash():
    files = review_documents([resource("aws:x/y:Y", "n" * 300, {"policy": json.dumps(POLICY)})])
    [name] = files
    assert len(name) <= 200


# --- the real render -------------------------------------------------------------------


def _render(project: Path, out: Path) -> Path:
    proc = run_render_cli("--stack", "dev", "--out", str(out), "--project-dir", str(project))
    assert proc.returncode == 0, proc.stderr
    return out / "dev" / "review"


def test_the_render_writes_the_review_view_byte_identically_and_a_setting_moves_one_line(tmp_path: Path):
    project = copy_project(tmp_path / "project", "Pulumi.yaml", "__main__.py")
    review = _render(project, tmp_path / "a")
    names = sorted(p.name for p in review.iterdir())
    for expected in (".policy.json", ".assumeRolePolicy.json", "-lifecycle.policy.json",
                     "platform-argo-cd.values.configs.rbac.policy.csv",
                     "platform-argo-cd.values.configs.cm.dex.config.yaml"):
        assert any(n.endswith(expected) for n in names), (expected, names)
    texts = "".join(p.read_text(encoding="utf-8") for p in review.iterdir())
    assert "PRIVATE KEY" not in texts and "offline-placeholder" not in texts  # made from the redacted inputs
    again = _render(project, tmp_path / "b")
    assert {p.name: p.read_bytes() for p in review.iterdir()} == {p.name: p.read_bytes() for p in again.iterdir()}

    # ECR keeps 150 images instead of 200: the one rule of each lifecycle policy that says so
    # changes its count and its description, each on a line of its own.
    stack_file = project / "Pulumi.dev.yaml"
    text = stack_file.read_text(encoding="utf-8")
    assert "    environment: dev\n" in text and "\n    ecr:" not in text
    settings = "    environment: dev\n    ecr:\n      keepImages: 150\n"
    stack_file.write_text(text.replace("    environment: dev\n", settings), encoding="utf-8")
    changed = _render(project, tmp_path / "c")
    differ = {p.name for p in review.iterdir() if p.read_text() != (changed / p.name).read_text()}
    assert differ and all(n.endswith("-lifecycle.policy.json") for n in differ), differ
    for name in differ:
        assert changed_lines((review / name).read_text(), (changed / name).read_text()) == [
            '-      "description": "Keep the last 200 images",',
            '+      "description": "Keep the last 150 images",',
            '-        "countNumber": 200,',
            '+        "countNumber": 150,',
        ]
