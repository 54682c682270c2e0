"""The offline render (docs/architecture.md, "The offline render"): engine, recording, files, CLI.

Most tests render a small throwaway project written into tmp_path, so they pin the
render's contract without depending on the real program; the last ones run the
real program through the shared ``render_stack`` fixture. The process model and the
warm module: tests/test_render_process.py; encodings: tests/test_render_encoding.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import main
from components.render import (
    PLACEHOLDER,
    PROJECT_DIR,
    RenderError,
    load_stack_config,
    read_stack,
    render_stack_isolated,
)
from components.render.output import REDACTED, SECRET_SIG, SIG_KEY, extract_manifests, redact
from tests.render_support import (
    BRANCHES,
    PROGRAM,
    by_name,
    manifest,
    run,
    write_project,
)


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


# --- the real program ----------------------------------------------------------------


def test_real_program_registers_no_stack_transform():
    # Transforms do not run under mocks (pulumi/pulumi#17090): the render would lie.
    assert render_stack_isolated("dev", PROJECT_DIR).stack_transforms == []


def test_real_dev_stack_renders_through_the_shared_fixture(render_stack):
    resources, manifests = render_stack("dev")
    assert resources and all(set(r) == {"type", "name", "parent", "inputs", "options"} for r in resources)
    assert all({"apiVersion", "kind", "metadata"} <= set(m) for m in manifests)
    assert yaml.safe_dump(manifests)  # plain data all the way down
