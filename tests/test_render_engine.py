"""The offline render (docs/architecture.md, "The offline render"): engine, recording monitor, files, CLI.

Most tests render a small throwaway project written into tmp_path, so they pin the
render's contract without depending on the real program; the last ones run the
real program through the shared ``render_stack`` fixture.
"""

from __future__ import annotations

import gc
import importlib
import json
import operator
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import main
from components.render import (
    PLACEHOLDER,
    PROJECT_DIR,
    RenderError,
    engine,
    load_stack_config,
    read_stack,
    render_stack_isolated,
)
from components.render.output import REDACTED, SECRET_SIG, SIG_KEY, extract_manifests, redact


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


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def rendered_dir(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "out"
    assert run(project, out) == 0
    return out


@pytest.fixture(scope="module")
def rendered(rendered_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return read_stack(rendered_dir / "dev")


# --- resources.json ------------------------------------------------------------


def test_resources_json_has_the_documented_shape(rendered):
    resources, _ = rendered
    assert resources, "nothing recorded"
    for res in resources:
        assert set(res) == {"type", "name", "parent", "inputs", "options"}, res
        assert set(res["options"]) == {"protect", "retain_on_delete", "depends_on", "ignore_changes"}
        assert isinstance(res["options"]["protect"], bool)
        assert isinstance(res["options"]["retain_on_delete"], bool)
        assert all(isinstance(d, str) for d in res["options"]["depends_on"])
        assert all(isinstance(p, str) for p in res["options"]["ignore_changes"])
        assert res["parent"] is None or isinstance(res["parent"], str)
    types = {r["type"] for r in resources}
    assert "pulumi:pulumi:Stack" not in types
    # Providers are listed like any resource, with their inputs.
    provider = by_name(resources, "aws")
    assert provider["type"] == "pulumi:providers:aws"
    assert provider["inputs"]["region"] == "eu-west-1"


def test_options_come_from_the_real_requests(rendered):
    resources, _ = rendered
    repo = by_name(resources, "api-repository")
    assert repo["options"] == {
        "protect": True,
        "retain_on_delete": True,
        "depends_on": [],
        "ignore_changes": ["tags", "imageScanningConfiguration"],
    }
    secret = by_name(resources, "webhook")
    assert "platform-ns" in secret["options"]["depends_on"]
    assert secret["options"]["protect"] is False
    assert secret["options"]["retain_on_delete"] is False
    # depends_on on a component expands to its children, as the SDK sends it.
    bus = by_name(resources, "eventbus")
    assert {"eventbus-crd", "platform-ns"} <= set(bus["options"]["depends_on"])
    # retainOnDelete left unset on a child is inherited from its parent, as the
    # engine does; protect too.
    assert by_name(resources, "platform-ns")["options"]["retain_on_delete"] is True
    assert by_name(resources, "platform")["options"]["retain_on_delete"] is True


def test_parent_is_a_logical_name_or_null(rendered):
    resources, _ = rendered
    assert by_name(resources, "platform-ns")["parent"] == "platform"
    assert by_name(resources, "platform")["parent"] is None  # the Stack counts as none
    assert by_name(resources, "api-repository")["parent"] is None


def test_a_secret_inside_a_map_is_redacted_at_its_own_position(rendered):
    resources, _ = rendered
    values = by_name(resources, "argo-cd")["inputs"]["values"]
    assert values == {"notifications": {"slackToken": REDACTED, "channel": "#releases"}, "plain": "visible"}


def test_stock_mock_monitor_would_turn_the_whole_map_secret(project, tmp_path):
    """What RenderMonitor fixes: the stock monitor hands new_resource a wholly secret map."""
    script = textwrap.dedent(
        f"""
        import json, os, runpy, sys
        from pathlib import Path
        import pulumi
        from pulumi.runtime.mocks import MockMonitor, Mocks
        from pulumi.runtime.stack import run_pulumi_func
        from pulumi.runtime.sync_await import _sync_await
        from components.render.engine import load_stack_config

        project = Path({str(project)!r})
        seen = {{}}

        class Recording(Mocks):
            def new_resource(self, args):
                seen[args.name] = args.inputs
                return args.name + "-id", dict(args.inputs, result="x")
            def call(self, args):
                return {{}}

        config, secret_keys = load_stack_config("dev", project, secret_keys=())
        pulumi.runtime.set_all_config(config, secret_keys)
        mocks = Recording()
        pulumi.runtime.set_mocks(mocks, project="release-pipeline", stack="dev", preview=False,
                                 monitor=MockMonitor(mocks))
        os.chdir(project)
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(project / "__main__.py"), run_name="__main__")))
        print(json.dumps(seen["argo-cd"]["values"]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, check=False, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    stock_values = json.loads(proc.stdout.strip().splitlines()[-1])
    # One secret value made the entire map a secret: "plain" would be hidden too.
    assert stock_values.get(SIG_KEY) == SECRET_SIG
    assert redact(stock_values) == {
        "notifications": {"slackToken": REDACTED, "channel": REDACTED},
        "plain": REDACTED,
    }


def test_secret_wrapping_a_whole_map_keeps_its_keys(rendered):
    _, manifests = rendered
    secret = manifest(manifests, "Secret", "webhook")
    assert secret["stringData"] == {"hmac": REDACTED, "token": REDACTED}
    assert "data" not in secret


def test_generated_password_is_secret_and_so_is_what_is_built_from_it(rendered):
    _, manifests = rendered
    facts = manifest(manifests, "ConfigMap", "facts")["data"]
    # additionalSecretOutputs ("result") is honoured, and secretness flows through apply.
    assert facts["derivedFromPassword"] == REDACTED
    # The mocked password has the requested length (seen only after an explicit unsecret).
    assert facts["passwordLength"] == "24"
    # tls.PrivateKey: the private key is secret, the public key plausible and readable.
    assert facts["privateKey"] == REDACTED
    assert facts["publicKey"].startswith("ssh-ed25519 AAAA")


def test_mocked_outputs_are_plausible(rendered):
    _, manifests = rendered
    facts = manifest(manifests, "ConfigMap", "facts")["data"]
    # Region and account come from the aws provider's registration.
    assert facts["repositoryUrl"] == "222233334444.dkr.ecr.eu-west-1.amazonaws.com/dev/api"
    assert facts["repositoryArn"] == "arn:aws:ecr:eu-west-1:222233334444:repository/dev/api"
    assert facts["account"] == "222233334444"


def test_secure_config_gets_a_secret_placeholder(rendered):
    resources, manifests = rendered
    facts = manifest(manifests, "ConfigMap", "facts")["data"]
    assert facts["slackTokenSeenByProgram"] == PLACEHOLDER
    assert by_name(resources, "webhook")["inputs"]["stringData"]["token"] == REDACTED
    assert "v1:c2VjcmV0" not in json.dumps(resources)


def test_load_stack_config_encodes_like_the_cli_and_fills_secret_keys(project):
    config, secret_keys = load_stack_config("dev", project, secret_keys=("githubToken", "slackToken"))
    assert json.loads(config["release-pipeline:settings"])["branch"] == "development"
    assert config["aws:region"] == "eu-west-1"
    assert config["release-pipeline:slackToken"] == PLACEHOLDER
    # A secret key the stack file does not set still gets the placeholder, as a secret.
    assert config["release-pipeline:githubToken"] == PLACEHOLDER
    assert set(secret_keys) == {"release-pipeline:slackToken", "release-pipeline:githubToken"}


def test_project_secret_keys_missing_from_the_stack_file_get_the_placeholder(project):
    config_module = pytest.importorskip("components.config")
    config, secret_keys = load_stack_config("dev", project)
    for key in config_module.SECRET_CONFIG_KEYS:
        assert config[f"release-pipeline:{key}"] == PLACEHOLDER
        assert f"release-pipeline:{key}" in secret_keys


# --- manifests.yaml --------------------------------------------------------------


def test_manifests_hold_the_programs_own_objects_in_a_stable_order(rendered):
    _, manifests = rendered
    kinds = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert kinds[0] == ("Namespace", "argo")
    assert kinds[1] == ("CustomResourceDefinition", "eventbus.argoproj.io")
    # The Helm release is not an object of its own: it expands at deploy time.
    assert not any(m.get("chart") for m in manifests)
    assert ("EventBus", "default") in kinds
    rest = manifests[2:]
    keys = [(m["apiVersion"], m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]) for m in rest]
    assert keys == sorted(keys)
    bus = manifest(manifests, "EventBus", "default")
    assert bus == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": "default", "namespace": "argo"},
        "spec": {"jetstream": {"replicas": 3}},
    }


def test_manifest_order_is_independent_of_registration_order():
    def res(kind: str, name: str, namespace: str | None = None, api: str = "v1") -> dict[str, Any]:
        meta = {"name": name, **({"namespace": namespace} if namespace else {})}
        return {"type": f"kubernetes:core/v1:{kind}", "inputs": {"apiVersion": api, "kind": kind, "metadata": meta}}

    resources = [
        res("ConfigMap", "b", "x"),
        {"type": "kubernetes:helm.sh/v3:Release", "inputs": {"chart": "argo-cd"}},
        {"type": "kubernetes:yaml/v2:ConfigFile", "inputs": {"file": "https://example.com/crds.yaml"}},
        res("CustomResourceDefinition", "z.example.com", api="apiextensions.k8s.io/v1"),
        res("ConfigMap", "a", "x"),
        res("Namespace", "x"),
        {"type": "pulumi:providers:kubernetes", "inputs": {}},
    ]
    expected = ["Namespace/x", "CustomResourceDefinition/z.example.com", "ConfigMap/a", "ConfigMap/b"]
    for order in (resources, list(reversed(resources))):
        assert [f"{m['kind']}/{m['metadata']['name']}" for m in extract_manifests(order)] == expected


# --- determinism and parallel stacks -------------------------------------------------


def test_output_is_byte_identical_across_runs(project, rendered_dir, tmp_path):
    again = tmp_path / "again"
    assert run(project, again) == 0
    for name in ("resources.json", "manifests.yaml"):
        assert (rendered_dir / "dev" / name).read_bytes() == (again / "dev" / name).read_bytes(), name


def test_rendering_again_replaces_the_stack_directory(project, tmp_path):
    out = tmp_path / "out"
    (out / "dev").mkdir(parents=True)
    (out / "dev" / "stale.txt").write_text("from an older render\n")
    assert run(project, out) == 0
    assert sorted(p.name for p in (out / "dev").iterdir()) == ["manifests.yaml", "resources.json", "review"]


def test_all_stacks_render_in_parallel_each_in_its_own_process(tmp_path):
    project = write_project(tmp_path / "project", stacks=tuple(BRANCHES))
    out = tmp_path / "out"
    assert run(project, out, "all", "--jobs", "4") == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(BRANCHES)
    for stack, branch in BRANCHES.items():
        _, manifests = read_stack(out / stack)
        facts = manifest(manifests, "ConfigMap", "facts")["data"]
        assert facts["stack"] == stack
        assert facts["branch"] == branch  # its own Pulumi.<stack>.yaml
        assert facts["runsInThisProcess"] == "1"  # no SDK state shared with another stack


# --- failures: exit 2, nothing written, no traceback --------------------------------


def test_bad_stack_config_exits_2_and_writes_nothing(tmp_path, capfd):
    project = write_project(tmp_path / "project")
    (project / "Pulumi.dev.yaml").write_text("config: [unclosed\n")
    out = tmp_path / "out"
    assert run(project, out) == 2
    err = capfd.readouterr().err
    assert "Pulumi.dev.yaml" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_empty_services_file_exits_2(tmp_path, capfd):
    project = write_project(tmp_path / "project")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert run(project, tmp_path / "out", "dev", "--services", str(empty)) == 2
    err = capfd.readouterr().err
    assert "empty" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_run_error_in_the_program_exits_2_with_its_message(tmp_path, capfd):
    program = PROGRAM + textwrap.dedent(
        """
        if pulumi.get_stack() == "live":
            raise pulumi.RunError("invalid configuration:\\nservices.yaml:3: service 'api': repo: missing")
        """
    )
    project = write_project(tmp_path / "project", program, stacks=tuple(BRANCHES))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier render\n")
    assert run(project, out, "all") == 2
    err = capfd.readouterr().err
    assert "live: services.yaml:3: service 'api': repo: missing" in err
    assert "Traceback" not in err
    # All or nothing: the stacks that did render are not written either.
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_run_error_inside_an_apply_exits_2(tmp_path, capfd):
    program = PROGRAM + textwrap.dedent(
        """
        def refuse(_):
            raise pulumi.RunError("no good")

        hmac.result.apply(refuse)
        """
    )
    project = write_project(tmp_path / "project", program)
    assert run(project, tmp_path / "out") == 2
    err = capfd.readouterr().err
    assert "dev: no good" in err and "Traceback" not in err


def test_a_bug_in_the_program_is_an_internal_failure(tmp_path, capfd):
    project = write_project(tmp_path / "project", PROGRAM + "{}['missing']\n")
    assert run(project, tmp_path / "out") == 1
    assert "KeyError" in capfd.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_an_output_path_that_cannot_be_a_directory_is_refused_before_rendering(tmp_path, capfd, where):
    taken = tmp_path / "taken"
    taken.write_text("not a directory\n")
    out = taken if where == "file" else taken / "sub"
    # No validator and no program run: refused before either.
    project = write_project(tmp_path / "project", "raise SystemExit('the program must not run')\n")
    assert main(["render", "--stack", "dev", "--out", str(out), "--project-dir", str(project)],
                validator=lambda *_: pytest.fail("validated before refusing --out")) == 2
    err = capfd.readouterr().err
    assert err.startswith(f"render: --out {out}: ") and "not a directory" in err and "Traceback" not in err
    assert taken.read_text() == "not a directory\n"


@pytest.mark.parametrize("jobs", ["0", "-3", "5"])
def test_jobs_out_of_range_is_refused(tmp_path, capfd, jobs):
    project = write_project(tmp_path / "project")
    assert run(project, tmp_path / "out", "dev", "--jobs", jobs) == 2
    assert capfd.readouterr().err == f"render: --jobs {jobs}: give 1 to 4 parallel stack processes\n"
    assert not (tmp_path / "out").exists()


def test_a_validator_that_crashes_is_one_line_not_a_traceback(tmp_path, capfd):
    def crash(*_: object) -> list[str]:
        raise RuntimeError("validator bug")

    project = write_project(tmp_path / "project")
    assert main(["render", "--stack", "dev", "--out", str(tmp_path / "out"), "--project-dir", str(project)],
                validator=crash) == 1
    assert capfd.readouterr().err == "internal error while validating: RuntimeError: validator bug\n"
    assert not (tmp_path / "out").exists()


def test_cli_subprocess_reports_problems_without_traceback(tmp_path):
    # The real entry point, with the project's own validation.
    services = tmp_path / "services.yaml"
    services.write_text("")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "components",
            "render",
            "--stack",
            "dev",
            "--out",
            str(tmp_path / "out"),
            "--services",
            str(services),
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


# --- stack transforms --------------------------------------------------------------


def test_a_registered_stack_transform_is_recorded(tmp_path):
    program = PROGRAM.replace(
        "cfg = pulumi.Config()",
        textwrap.dedent(
            """
            def add_label(args):
                return None

            def legacy_label(args):
                return None

            pulumi.runtime.register_resource_transform(add_label)
            pulumi.runtime.register_stack_transformation(legacy_label)
            cfg = pulumi.Config()
            """
        ),
    )
    result = render_stack_isolated("dev", write_project(tmp_path / "with", program))
    assert any("add_label" in t for t in result.stack_transforms), result.stack_transforms
    assert any("legacy_label" in t for t in result.stack_transforms), result.stack_transforms
    baseline = render_stack_isolated("dev", write_project(tmp_path / "without"))
    assert baseline.stack_transforms == []


def test_isolated_render_raises_render_error(tmp_path):
    project = write_project(tmp_path / "project", 'import pulumi\nraise pulumi.RunError("stop here")\n')
    with pytest.raises(RenderError) as err:
        render_stack_isolated("dev", project)
    assert err.value.problems == ["dev: stop here"]


DUPLICATE = """
import pulumi_kubernetes as k8s

k8s.core.v1.ConfigMap("same", metadata={"name": "a"}, data={"n": "1"})
k8s.core.v1.ConfigMap("other", metadata={"name": "b"})
k8s.core.v1.ConfigMap("same", metadata={"name": "c"}, data={"n": "2"})
"""


def test_a_second_resource_with_the_same_urn_fails_the_render(tmp_path):
    # The engine refuses it at `pulumi up`; kept, the second would silently replace
    # the first in the render.
    project = write_project(tmp_path / "project", DUPLICATE)
    with pytest.raises(RenderError) as err:
        render_stack_isolated("dev", project)
    [problem] = err.value.problems
    assert problem.startswith("dev: Duplicate resource URN 'urn:pulumi:dev::")
    assert problem.endswith("kubernetes:core/v1:ConfigMap::same'; try giving it a unique name")


# --- the mock engine, tuned for one process per stack ----------------------------------

PROGRAM_FACTS = """\
import gc
import sys
import threading

import pulumi
import pulumi_kubernetes as k8s

first = k8s.core.v1.ConfigMap("first", metadata={"name": "first"}, data={"a": "b"})
k8s.core.v1.ConfigMap(
    "engine-facts",
    metadata={"name": "engine-facts"},
    data={
        # Read once the first registration has come back from the monitor.
        "threads": first.id.apply(lambda _: str(threading.active_count())),
        "cyclicGc": first.id.apply(lambda _: str(gc.isenabled())),
        # Set in the fork server this process was forked from (components/render/warm.py).
        "serverExitsAtOnce": str(getattr(sys.modules.get("components.render.warm"), "FAST_EXIT", None)),
        "frozenByServer": str(gc.get_freeze_count() > 0),
    },
)
"""


def test_monitor_calls_run_on_the_programs_own_thread(tmp_path):
    # The SDK sends each RPC to a thread pool; the render's monitor is in-process,
    # so the calls run inline and no pool thread is ever started.
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["threads"] == "1"


def test_the_program_runs_with_the_cyclic_collector_paused(tmp_path):
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["cyclicGc"] == "False"


def test_the_fork_server_imports_with_the_collector_off_and_freezes_what_it_imported(tmp_path):
    # A stack's process inherits the server's imports in the permanent generation, which
    # no collection scans; the server's own collector is back on.
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["frozenByServer"] == "True"
    assert gc.get_freeze_count() == 0  # this process imported warm.py too, outside a fork server


STACK_PROCESS = """
import gc, sys
from components.render import engine
result = engine._render_worker("dev", sys.argv[1], None, sys.argv[2])
print(result.status, gc.isenabled())
"""


def test_a_stack_process_keeps_the_collector_off_after_its_render(tmp_path):
    # Turned back on, the collector scanned every object the render made at the next
    # allocation (the result's hand-back): about a second per stack at 100 services,
    # while the pool waited to start the next stack. The process ends right after.
    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    proc = subprocess.run([sys.executable, "-c", STACK_PROCESS, str(project), str(tmp_path / "out")],
                          cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["ok", "False"]
    assert (tmp_path / "out" / "resources.json").is_file()


def test_only_the_fork_server_leaves_without_its_teardown(tmp_path):
    # The stack's process was forked from the server, which registered the immediate
    # exit; this process (pytest) imported the same module and must not have.
    from components.render import warm

    project = write_project(tmp_path / "project", PROGRAM_FACTS)
    result = render_stack_isolated("dev", project)
    assert manifest(result.manifests, "ConfigMap", "engine-facts")["data"]["serverExitsAtOnce"] == "True"
    assert warm.FAST_EXIT is False


def test_inline_executor_runs_at_once_and_hands_back_errors():
    executor = engine._InlineExecutor()
    done = executor.submit(threading.get_ident)
    assert done.done() and done.result() == threading.get_ident()
    failed = executor.submit(operator.truediv, 1, 0)
    assert isinstance(failed.exception(), ZeroDivisionError)


def test_cyclic_gc_pause_restores_the_collectors_state():
    assert gc.isenabled()
    with engine._cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with engine._cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # was off before: stays off
    finally:
        gc.enable()


def test_source_positions_are_skipped_only_where_the_sdk_has_the_hook():
    from pulumi.runtime.proto import source_pb2

    def capture() -> source_pb2.StackTrace:
        return source_pb2.StackTrace(frames=[source_pb2.StackFrame()])

    sdk = types.SimpleNamespace(_get_stack_trace=capture)
    engine._skip_source_positions(sdk)
    assert sdk._get_stack_trace() == source_pb2.StackTrace()
    other = types.SimpleNamespace()
    engine._skip_source_positions(other)
    assert not hasattr(other, "_get_stack_trace")


def test_struct_conversion_matches_protobufs_own_with_integers_restored():
    from google.protobuf import json_format, struct_pb2

    from components.render.mocks import _struct_to_py
    from components.render.output import normalize_numbers

    value = {
        "name": "vbsiv", "replicas": 3, "weight": 2.5, "enabled": True, "off": False, "none": None,
        "ports": [{"port": 8080, "name": "http"}, [], {}], "nested": {"deep": {"list": [1, 1.5, "x", None]}},
        "empty": "", "big": 2**40,
    }
    message = struct_pb2.Struct()
    message.update(value)
    assert _struct_to_py(message) == normalize_numbers(json_format.MessageToDict(message)) == value
    assert isinstance(_struct_to_py(message)["replicas"], int)


def test_has_markers_finds_every_marker_the_monitor_rewrites_at_any_depth():
    from components.render.output import ASSET_SIG, RESOURCE_SIG, UNKNOWN, has_markers, secret

    plain = {"a": [1, {"b": "c"}, None], "d": {"e": True}}
    assert not has_markers(plain)
    for marker in (secret("s"), {SIG_KEY: RESOURCE_SIG, "urn": "u"}, {SIG_KEY: ASSET_SIG, "path": "p"}, UNKNOWN):
        assert has_markers({"a": [1, {"b": marker}]})
        assert has_markers([marker])


TRICKY = {
    "text": "\x00\x1b\x7f\u2028é😀\"\\/\t\n\r\b\f",
    "floats": [0.1, 2.5, 100.0, -0.0, 1e16, 1.5e300, 0.0001],
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1],
    "empty": {"map": {}, "list": []},
    "null": None, "flags": [True, False],
    "keys": {"b": 1, "a": 2, "B": 3, "_": 4, "é": 5},
}


@pytest.mark.parametrize(
    "extra",
    [{}, {"small": 1e-05}, {"nan": float("nan")}, {"inf": float("-inf")}, {"huge": 2**64}, {"low": -(2**63) - 1}],
    ids=["fast", "small-float", "nan", "infinity", "beyond-u64", "below-i64"],
)
def test_resources_json_is_exactly_what_the_standard_encoder_writes(extra):
    from components.render.output import dump_resources

    resources = [TRICKY | extra, {"type": "t", "name": "n"}]
    expected = json.dumps(resources, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert dump_resources(iter(resources)) == expected


def test_orjson_is_used_only_where_it_writes_what_json_writes():
    from components.render.output import _orjson_writes_as_json

    assert _orjson_writes_as_json([TRICKY])
    for value in (1e-05, -3e-07, float("nan"), float("inf"), 2**64, -(2**63) - 1):
        assert not _orjson_writes_as_json({"a": [{"b": value}]})


def test_manifests_spell_out_shared_values_and_quote_what_would_change_type():
    from components.render.output import dump_manifests

    labels = {"app": "x", "tier": "true"}
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": labels},
                "spec": {"selector": labels},
                "data": {k: k for k in ("true", "8080", "1.5", "null", "~", "yes", "0o17", "2026-11-26", "x")}}
    text = dump_manifests([manifest])
    assert "&" not in text and "*" not in text  # no anchors or aliases for the shared labels
    # What the dumper wrote before it memoised and dropped aliases: libyaml's, with the
    # block-string representer, on the same values with no object twice.
    from components.render import output

    class Before(output._SafeDumper):
        pass

    Before.add_representer(str, output._represent_str)
    unshared = json.loads(json.dumps(manifest))
    reference = yaml.dump_all([unshared], Dumper=Before, sort_keys=True,
                              default_flow_style=False, explicit_start=True, allow_unicode=True, width=120)
    assert text == reference == dump_manifests([manifest])  # and again with the resolver's memo warm
    assert yaml.safe_load(text) == manifest


def test_manifests_quote_the_one_letter_booleans_of_yaml_1_1():
    # PyYAML writes `y` and `n` plain; go-yaml v2 (kubectl) would read them as booleans.
    from components.render.output import dump_manifests

    letters = ("y", "Y", "n", "N")
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"},
                "data": {**{k: k for k in letters}, "word": "ny", "script": "y\nn"}}
    text = dump_manifests([manifest])
    for letter in letters:
        assert f"  '{letter}': '{letter}'\n" in text
    assert "name: 'n'\n" in text and "  word: ny\n" in text and "    y\n    n\n" in text
    assert yaml.safe_load(text) == manifest


def test_a_component_that_fails_to_import_is_reported_by_its_stack(tmp_path):
    # The fork server survives a module it cannot preload; the stack's process meets the
    # failure itself and the render reports it with its traceback (no dead server, no
    # EOFError from the pool).
    repo = tmp_path / "repo"
    shutil.copytree(PROJECT_DIR, repo, ignore=shutil.ignore_patterns(
        ".git", ".venv", "out", "tests", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"))
    with (repo / "components" / "slack_relay.py").open("a", encoding="utf-8") as module:
        module.write("\nraise RuntimeError('broken on purpose')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([sys.executable, "-m", "components", "render", "--stack", "dev", "--out",
                           str(tmp_path / "out")], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("internal error while rendering:\ndev: Traceback")
    assert "RuntimeError: broken on purpose" in proc.stderr and "EOFError" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_every_preloaded_module_exists():
    # The fork server ignores a module it cannot import: a stale name would quietly
    # bring back the imports in every stack's process.
    for name in engine._PRELOAD:
        importlib.import_module(name)


WARM_RENDER = """
import json, sys
from pathlib import Path
import components.render.warm
from components.render.engine import render_stack_in_process
before = set(sys.modules)
render_stack_in_process(sys.argv[1], Path(sys.argv[2]))
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_the_warm_module_loads_every_sdk_and_component_module_the_program_uses(stack):
    # What a stack's process still imports after the fork server's preload is paid
    # once per stack again: the program uses a module components/render/warm.py misses.
    proc = subprocess.run([sys.executable, "-c", WARM_RENDER, stack, str(PROJECT_DIR)], cwd=PROJECT_DIR,
                          capture_output=True, text=True, check=True)
    imported = json.loads(proc.stdout.splitlines()[-1])
    ours = ("pulumi", "pulumi_aws", "pulumi_github", "pulumi_kubernetes", "pulumi_random", "pulumi_tls",
            "components", "hera", "pydantic")
    assert [m for m in imported if m.split(".")[0] in ours] == []


def test_stack_processes_report_their_peak_memory(tmp_path):
    project = write_project(tmp_path / "project")
    results = engine.render(["dev"], tmp_path / "out", project, project / "services.yaml")
    # A process with the Pulumi SDK imported holds tens of MiB.
    assert [r.stack for r in results] == ["dev"] and results[0].peak_rss_kib > 20 * 1024


# --- the real program ----------------------------------------------------------------


def test_real_program_registers_no_stack_transform():
    # Transforms do not run under mocks (pulumi/pulumi#17090): the render would lie.
    assert render_stack_isolated("dev", PROJECT_DIR).stack_transforms == []


def test_real_dev_stack_renders_through_the_shared_fixture(render_stack):
    resources, manifests = render_stack("dev")
    assert resources and all(set(r) == {"type", "name", "parent", "inputs", "options"} for r in resources)
    assert all({"apiVersion", "kind", "metadata"} <= set(m) for m in manifests)
    assert yaml.safe_dump(manifests)  # plain data all the way down
