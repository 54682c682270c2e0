"""Shared by the offline render's tests: a small throwaway project (its program, stack
files and services), the CLI run against it, and lookups in what it rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components.cli import main


def basic_problems(stacks: list[str], services_path: Path, project_dir: Path) -> list[str]:
    """What the render needs of a throwaway project: readable stack and services files.

    The throwaway projects here have no `release-pipeline:settings`, so the real
    validator (`components.config.validate_all`) would refuse them; the render's own
    behaviour is what these tests are about.
    """
    from components.render.engine import RenderError, load_stack_config

    problems: list[str] = []
    for stack in stacks:
        try:
            load_stack_config(stack, project_dir, secret_keys=())
        except RenderError as exc:
            problems.extend(exc.problems)
    text = services_path.read_text(encoding="utf-8") if services_path.is_file() else ""
    if not text.strip():
        problems.append(f"{services_path}: file is empty or missing")
    else:
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problems.append(f"{services_path}: not valid YAML: {' '.join(str(exc).split())}")
    return problems


PULUMI_YAML = "name: release-pipeline\nruntime: python\n"

STACK_CONFIG = """\
config:
  aws:region: eu-west-1
  release-pipeline:settings:
    region: eu-west-1
    account: "222233334444"
    branch: {branch}
  release-pipeline:slackToken:
    secure: v1:c2VjcmV0IG5vdCBkZWNyeXB0YWJsZSBvZmZsaW5l
"""

BRANCHES = {"dev": "development", "sandbox": "sandbox", "integration": "release", "live": "main"}

# A program that exercises every part of the contract. Names follow the project
# style (stable keys, explicit metadata.name).
PROGRAM = """\
import builtins

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls

cfg = pulumi.Config()
settings = cfg.require_object("settings")
slack = cfg.require_secret("slackToken")

# Counts programs run in this interpreter: 1 in every stack when each stack
# has a process of its own.
builtins._render_runs = getattr(builtins, "_render_runs", 0) + 1


class Platform(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("release-pipeline:components:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": "argo"}, opts=child)
        self.register_outputs({})


aws_provider = aws.Provider("aws", region=settings["region"], allowed_account_ids=[settings["account"]])
platform = Platform("platform", opts=pulumi.ResourceOptions(retain_on_delete=True))
crd = k8s.apiextensions.v1.CustomResourceDefinition(
    "eventbus-crd",
    metadata={"name": "eventbus.argoproj.io"},
    spec={
        "group": "argoproj.io",
        "names": {"kind": "EventBus", "plural": "eventbus"},
        "scope": "Namespaced",
        "versions": [{"name": "v1alpha1", "served": True, "storage": True}],
    },
    opts=pulumi.ResourceOptions(retain_on_delete=True),
)
k8s.apiextensions.CustomResource(
    "eventbus",
    api_version="argoproj.io/v1alpha1",
    kind="EventBus",
    metadata={"name": "default", "namespace": "argo"},
    spec={"jetstream": {"replicas": 3}},
    opts=pulumi.ResourceOptions(depends_on=[crd, platform]),
)
repo = aws.ecr.Repository(
    "api-repository",
    name="dev/api",
    opts=pulumi.ResourceOptions(
        provider=aws_provider,
        protect=True,
        retain_on_delete=True,
        ignore_changes=["tags", "imageScanningConfiguration"],
    ),
)
hmac = random.RandomPassword("webhook-hmac", length=24, special=False)
key = tls.PrivateKey("deploy-key", algorithm="ED25519")
k8s.helm.v3.Release(
    "argo-cd",
    name="argo-cd",
    chart="argo-cd",
    version="1.0.0",
    values={"notifications": {"slackToken": slack, "channel": "#releases"}, "plain": "visible"},
)
k8s.core.v1.Secret(
    "webhook",
    metadata={"name": "webhook", "namespace": "argo"},
    string_data={"hmac": hmac.result, "token": slack},
    opts=pulumi.ResourceOptions(depends_on=[platform.ns]),
)
caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=aws_provider))
k8s.core.v1.ConfigMap(
    "facts",
    metadata={"name": "facts", "namespace": "argo"},
    data={
        "repositoryUrl": repo.repository_url,
        "repositoryArn": repo.arn,
        "account": caller.account_id,
        "derivedFromPassword": hmac.result.apply(lambda p: "prefix-" + p),
        "passwordLength": pulumi.Output.unsecret(hmac.result).apply(lambda p: str(len(p))),
        "slackTokenSeenByProgram": pulumi.Output.unsecret(slack),
        "publicKey": key.public_key_openssh,
        "privateKey": key.private_key_pem,
        "stack": pulumi.get_stack(),
        "branch": settings["branch"],
        "runsInThisProcess": str(builtins._render_runs),
    },
)
"""


def write_project(root: Path, program: str = PROGRAM, stacks: tuple[str, ...] = ("dev",)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text(PULUMI_YAML)
    (root / "__main__.py").write_text(program)
    (root / "services.yaml").write_text("services: []\n")
    for stack in stacks:
        (root / f"Pulumi.{stack}.yaml").write_text(STACK_CONFIG.format(branch=BRANCHES[stack]))
    return root


def run(project: Path, out: Path, stack: str = "dev", *extra: str) -> int:
    """The CLI in-process (each stack still renders in a spawned process)."""
    argv = ["render", "--stack", stack, "--out", str(out), "--project-dir", str(project), *extra]
    return main(argv, validator=basic_problems)


def by_name(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    matches = [r for r in resources if r["name"] == name]
    assert len(matches) == 1, f"expected one resource named {name!r}, found {len(matches)}"
    return matches[0]


def manifest(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]
