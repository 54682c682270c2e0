"""``python -m components check`` and the automation that runs it.

Owns:
- the check command as users meet it (a subprocess from the repository root): exit 0
  with one summary line for good files; exit 2 with every problem, one per line as
  ``FILE:LINE: WHERE: FIELD: MESSAGE``, for a bad services file, a bad stack file,
  a cross-stack conflict or an empty file; never a traceback; no Pulumi imported;
- the GitHub Actions workflows and the pre-commit hook: valid YAML, valid Actions
  syntax (actionlint, built by `make tools`), every action pinned to an exact version, and
  every command they run exists in this repository;
- the render-diff comment script (``.github/scripts/render_diff_comment.py``).

Each bad-input test starts from a copy of the real project files and breaks one
thing, so the expected line is found in the broken text rather than hard-coded.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import build_parser, main
from components.config import STACKS
from tests.conftest import ROOT, copy_project

WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPTS = ROOT / ".github" / "scripts"
PRE_COMMIT = ROOT / ".pre-commit-config.yaml"


def run_check(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The check command as a subprocess; asserts it never shows a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "components", "check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's stack files with the tests' services file, to break one at a time."""
    return copy_project(tmp_path / "project")


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` in ``path`` by ``new``; return the 1-based line where ``new`` starts."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")
    return text.count("\n", 0, at) + 1


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def problems(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stdout.splitlines()


# --- good input -------------------------------------------------------------------


def test_the_repository_files_are_valid_and_say_so_in_one_line():
    proc = run_check()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(problems(proc)) == 1
    assert re.fullmatch(
        r"OK: services\.yaml \(\d+ services?\) and 4 stacks \(dev, sandbox, integration, live\) are valid",
        proc.stdout.strip(),
    )
    assert proc.stderr == ""


def test_the_check_imports_neither_pulumi_nor_the_render_engine():
    # What keeps it fast enough for a pre-commit hook: only components.config and
    # its small helpers are imported on this path.
    code = (
        "import sys\n"
        "from components.cli import main\n"
        "code = main(['check'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws', 'pulumi_kubernetes',"
        " 'grpc', 'hera') or m.startswith('components.render'))\n"
        "print(code, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr


def test_services_option_checks_another_file(project: Path):
    other = project / "other-services.yaml"
    other.write_text("services: []\n", encoding="utf-8")
    proc = run_check("--services", str(other))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith(f"OK: {other} (0 services) and 4 stacks")


def test_project_dir_option_reads_the_stack_files_there(project: Path):
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 0, proc.stdout
    assert f"OK: {project / 'services.yaml'} " in proc.stdout


# --- each kind of problem, with its line -----------------------------------------


def test_a_bad_service_field_is_reported_at_its_line(project: Path):
    services = project / "services.yaml"
    line = edit(services, "    namespace: datacollect\n", "    namespace: Data_Collect\n")
    name = yaml.safe_load(services.read_text())["services"][0]["name"]
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    assert problems(proc) == [
        f"{services}:{line}: service {name!r}: namespace: must be a DNS-1123 label: lowercase letters, "
        "digits and '-', starting and ending with a letter or digit, at most 63 characters"
    ]


def test_an_unknown_service_field_is_reported_at_its_line(project: Path):
    services = project / "services.yaml"
    line = edit(services, "    namespace: datacollect\n", "    namespace: datacollect\n    colour: blue\n") + 1
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    [problem] = problems(proc)
    assert problem.startswith(f"{services}:{line}: service ")
    assert problem.endswith(": colour: unknown field")


def test_a_bad_stack_file_is_reported_at_its_line(project: Path):
    stack = project / "Pulumi.integration.yaml"
    line = line_of(stack, "region:")
    edit(stack, "region: us-east-1", "region: nowhere")
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    [problem] = problems(proc)
    assert problem == f"{stack}:{line}: settings: aws.region: must be an AWS region name, like us-east-1 or " \
        "eu-west-2, not 'nowhere'"


def test_a_stack_file_for_the_wrong_environment_is_reported(project: Path):
    stack = project / "Pulumi.live.yaml"
    line = edit(stack, "environment: live", "environment: dev")
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    assert f"{stack}:{line}: settings: environment: is 'dev' in the file of stack 'live'" in problems(proc)


def test_two_stacks_on_one_cluster_point_at_the_second_stacks_cluster(project: Path):
    sandbox = project / "Pulumi.sandbox.yaml"
    dev = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())["config"]["release-pipeline:settings"]
    settings = yaml.safe_load(sandbox.read_text())["config"]["release-pipeline:settings"]
    assert settings["aws"] == dev["aws"], "the fixture expects dev and sandbox in one account and region"
    edit(sandbox, f"name: {settings['cluster']['name']}", f"name: {dev['cluster']['name']}")
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    [problem] = problems(proc)
    line = line_of(sandbox, "cluster:")
    assert problem.startswith(f"{sandbox}:{line}: settings: cluster: same cluster as stack 'dev'")


def test_a_cross_stack_problem_points_at_its_line_where_the_settings_key_is_bare(project: Path):
    # Pulumi reads `settings:` as `release-pipeline:settings`; the line is found either way.
    sandbox = project / "Pulumi.sandbox.yaml"
    dev = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())["config"]["release-pipeline:settings"]
    cluster = yaml.safe_load(sandbox.read_text())["config"]["release-pipeline:settings"]["cluster"]["name"]
    edit(sandbox, "  release-pipeline:settings:", "  settings:")
    edit(sandbox, f"name: {cluster}", f"name: {dev['cluster']['name']}")
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    [problem] = problems(proc)
    assert problem.startswith(f"{sandbox}:{line_of(sandbox, 'cluster:')}: settings: cluster: same cluster as stack")


def test_a_platform_namespace_in_services_points_at_the_services_namespace(project: Path):
    services = project / "services.yaml"
    line = edit(services, "    namespace: datacollect\n", "    namespace: argo\n")
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    lines = problems(proc)
    assert len(lines) == len(STACKS)  # once per stack that deploys the service
    assert all(p.startswith(f"{services}:{line}: service ") and ": namespace: 'argo' is a platform namespace" in p
               for p in lines)


def test_an_empty_services_file_is_refused(project: Path):
    empty = project / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    proc = run_check("--services", str(empty))
    assert proc.returncode == 2
    assert problems(proc) == [f"{empty}:1: (top level): the file is empty"]


def test_a_missing_services_file_is_a_problem_not_a_crash(project: Path):
    proc = run_check("--services", str(project / "nope.yaml"))
    assert proc.returncode == 2
    assert problems(proc) == [f"{project / 'nope.yaml'}: services file: cannot read: No such file or directory"]


def test_problems_in_several_files_are_reported_at_once(project: Path):
    services = project / "services.yaml"
    service_line = edit(services, "    namespace: datacollect\n", "    namespace: Data_Collect\n")
    dev, live = project / "Pulumi.dev.yaml", project / "Pulumi.live.yaml"
    dev_line = edit(dev, "region: us-east-1", "region: nowhere")
    live_line = edit(live, "environment: live", "environment: sandbox")
    proc = run_check("--project-dir", str(project))
    assert proc.returncode == 2
    found = problems(proc)
    assert [p.split(": ")[0] for p in found] == [
        f"{dev}:{dev_line}", f"{live}:{live_line}", f"{services}:{service_line}",
    ]
    assert proc.stderr.strip() == "3 problem(s) in 3 file(s)"


def test_paths_under_the_working_directory_are_shown_relative(project: Path, monkeypatch, capsys):
    line = edit(project / "services.yaml", "    namespace: datacollect\n", "    namespace: Data_Collect\n")
    monkeypatch.chdir(project)
    assert main(["check", "--project-dir", "."]) == 2
    assert capsys.readouterr().out.startswith(f"services.yaml:{line}: service 'vbsiv': namespace: ")


def test_github_format_adds_an_annotation_per_problem(project: Path):
    services = project / "services.yaml"
    line = edit(services, "    namespace: datacollect\n", "    namespace: Data_Collect\n")
    proc = run_check("--project-dir", str(project), "--format", "github")
    assert proc.returncode == 2
    text, annotation = problems(proc)
    assert text.startswith(f"{services}:{line}: ")
    assert re.fullmatch(
        rf"::error file={re.escape(str(services).replace(':', '%3A'))},line={line},"
        r"title=service 'vbsiv'%3A namespace::must be a DNS-1123 label.*",
        annotation,
    ), annotation


# --- failures of the command itself ----------------------------------------------


def test_an_internal_error_exits_1_with_one_line_and_no_traceback(capsys):
    def broken(stacks, services_path, project_dir):
        raise RuntimeError("validator bug")

    assert main(["check"], validator=broken) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "internal error while checking: RuntimeError: validator bug\n"


def test_problems_from_an_injected_validator_are_printed_as_they_are(capsys):
    assert main(["check"], validator=lambda *_: ["one", "two"]) == 2
    assert capsys.readouterr().out == "one\ntwo\n"


def test_a_bad_option_is_a_usage_error_not_a_traceback():
    proc = run_check("--stack", "dev")
    assert proc.returncode == 2
    assert "unrecognized arguments: --stack dev" in proc.stderr


# --- GitHub Actions workflows ------------------------------------------------------
#
# Pinning rule: every action from another repository is pinned to a full commit SHA
# followed by the release it is (`@<40 hex> # vX.Y.Z`), or, where no SHA could be
# verified, to a full release tag (`@vX.Y.Z`). Never a branch, never a bare major or
# major.minor tag (`@v4`, `@v4.2`), which move.

PINNED_SHA = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
PINNED_TAG = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@v\d+\.\d+\.\d+$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)\s*(?:#\s*(?P<comment>.*))?$")


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def steps_of(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in workflow["jobs"].items() for step in job.get("steps", [])]


def run_lines(workflow: dict[str, Any]) -> list[str]:
    """Every shell command line of every `run:` (continuation lines joined)."""
    lines = []
    for _, step in steps_of(workflow):
        text = re.sub(r"\\\n\s*", " ", step.get("run", ""))
        lines += [line.strip() for line in text.splitlines() if line.strip()]
    return lines


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+):(?!=)", text, re.M)}


def test_the_workflows_are_yaml_with_triggers_and_jobs():
    names = {p.name for p in workflow_files()}
    assert {"pull-request.yml", "deploy.yml", "pulumi-up.yml"} <= names
    for path in workflow_files():
        workflow = load(path)
        assert workflow.get("name") and workflow.get("on") and workflow.get("jobs"), path.name


def test_actionlint_accepts_the_workflows():
    from components.toolchain import ToolMissing, tool_path

    try:
        exe = tool_path("actionlint")  # built by `make tools`, which `make test` runs first
    except ToolMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI builds the tools before the tests: {exc}")
        pytest.skip(f"{exc}; without it only the checks below run")
    proc = subprocess.run(
        [exe, "-no-color", *(str(p.relative_to(ROOT)) for p in workflow_files())],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_action_is_pinned_to_an_exact_version():
    refs: dict[str, set[str]] = {}
    for path in workflow_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = USES_LINE.match(line)
            if not match:
                continue
            ref, comment = match["ref"], (match["comment"] or "").strip()
            where = f"{path.name}:{number}: {ref}"
            if ref.startswith("./"):
                assert (ROOT / ref).is_file(), f"{where}: no such local workflow or action"
                continue
            assert not ref.startswith("docker://"), f"{where}: container actions are not used here"
            if PINNED_SHA.match(ref):
                assert re.fullmatch(r"v\d+\.\d+\.\d+", comment), f"{where}: say which release the SHA is (# vX.Y.Z)"
            else:
                assert PINNED_TAG.match(ref), f"{where}: pin to a full commit SHA or a full vX.Y.Z tag"
            refs.setdefault(ref.split("@")[0], set()).add(f"{ref} {comment}".strip())
    assert refs, "no actions found"
    for action, pins in refs.items():
        assert len(pins) == 1, f"{action} is pinned differently in different places: {sorted(pins)}"


def test_the_commands_the_workflows_run_exist():
    targets = makefile_targets()
    parser = build_parser()
    seen: set[str] = set()
    for path in workflow_files():
        for line in run_lines(load(path)):
            for command in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                try:
                    words = shlex.split(command)
                except ValueError:
                    continue
                if words[:1] == ["make"]:
                    rest = iter(words[1:])
                    for word in rest:
                        if word in ("-C", "-f"):
                            next(rest)
                        elif not word.startswith("-") and "=" not in word:
                            assert word in targets, f"{path.name}: `{command}`: no target {word!r} in the Makefile"
                            seen.add(f"make {word}")
                at = words.index("components") if "components" in words else 0
                if at and words[at - 1] == "-m":
                    args = words[at + 1:]
                    parser.parse_args(args)  # exits (fails the test) on an unknown command or option
                    seen.add(f"python -m components {args[0]}")
                for word in words:
                    if ".github/scripts/" in word:
                        script = ROOT / word[word.index(".github/scripts/"):]
                        assert script.is_file(), f"{path.name}: `{command}`: {script} does not exist"
    assert {"make test", "make render", "make setup", "python -m components check"} <= seen


def test_the_test_job_runs_exactly_the_readme_command():
    assert "make test" in (ROOT / "README.md").read_text(encoding="utf-8")
    for name, job in [("pull-request.yml", "test"), ("deploy.yml", "test")]:
        runs = [step.get("run") for step in load(WORKFLOWS / name)["jobs"][job]["steps"]]
        assert runs[-1] == "make test", f"{name} job {job}: last step should be `make test`, not {runs[-1]!r}"


def test_the_pulumi_cli_is_the_version_of_the_pinned_sdk():
    pin = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    assert pin, "requirements.txt pins no pulumi"
    versions = [
        str(step["with"].get("pulumi-version"))
        for path in workflow_files()
        for _, step in steps_of(load(path))
        if step.get("uses", "").startswith("pulumi/actions@")
    ]
    assert versions and set(versions) == {pin.group(1)}


def test_permissions_are_least_privilege():
    for path in workflow_files():
        workflow = load(path)
        assert workflow.get("permissions") == {"contents": "read"}, f"{path.name}: top-level permissions"
        for job_id, job in workflow["jobs"].items():
            permissions = job.get("permissions", {})
            steps = job.get("steps", [])
            uses = [step.get("uses", "") for step in steps]
            if permissions.get("pull-requests") == "write":
                # The one writer runs none of the pull request's code.
                assert (path.name, job_id) == ("pull-request.yml", "comment")
                assert not any(u.startswith("actions/checkout@") for u in uses)
                assert not any("run" in step for step in steps)
            if permissions.get("id-token") == "write":
                assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses) or (
                    job.get("uses") == "./.github/workflows/pulumi-up.yml"
                ), f"{path.name} job {job_id} asks for an OIDC token it does not use"
            assert set(permissions.values()) <= {"read", "write"}
            for step in steps:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, (
                        f"{path.name} job {job_id}: checkout leaves the token in .git/config"
                    )


def test_pull_requests_render_base_and_head_and_comment_once():
    workflow = load(WORKFLOWS / "pull-request.yml")
    assert "pull_request" in workflow["on"]
    render = workflow["jobs"]["render"]
    checkouts = [s for s in render["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    refs = [step.get("with", {}).get("ref") for step in checkouts]
    assert refs == [None, "${{ github.event.pull_request.base.sha }}"]
    script = workflow["jobs"]["comment"]["steps"][-1]["with"]["script"]
    assert "<!-- release-pipeline:render-diff -->" in script
    assert "updateComment" in script and "createComment" in script and "github.paginate" in script
    jobs = workflow["jobs"]
    for job in ("test", "check", "render", "comment"):  # superseded by a newer push
        assert jobs[job]["concurrency"]["cancel-in-progress"] is True
    assert jobs["preview"]["concurrency"]["cancel-in-progress"] is False  # never killed mid-run
    assert "${{ matrix.stack }}" in jobs["preview"]["concurrency"]["group"]


def test_deploys_go_dev_sandbox_integration_live_one_up_per_stack_at_a_time():
    workflow = load(WORKFLOWS / "deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    previous = "test"
    groups = set()
    for stack in STACKS:
        job = jobs[f"up-{stack}"]
        assert job["needs"] == previous
        assert job["uses"] == "./.github/workflows/pulumi-up.yml"
        assert job["with"] == {"stack": stack}
        assert job["secrets"] == "inherit"
        assert job["concurrency"]["cancel-in-progress"] is False
        groups.add(job["concurrency"]["group"])
        previous = f"up-{stack}"
    assert len(groups) == len(STACKS)
    up = load(WORKFLOWS / "pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"  # live's required reviewers apply
    [pulumi] = [s for s in up["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["stack-name"] == "${{ inputs.stack }}"


def test_preview_and_up_follow_the_same_steps():
    preview = load(WORKFLOWS / "pull-request.yml")["jobs"]["preview"]
    up = load(WORKFLOWS / "pulumi-up.yml")["jobs"]["up"]
    assert preview["strategy"]["matrix"]["stack"] == list(STACKS)

    def shape(job: dict[str, Any]) -> list[str]:
        return [step.get("uses", "").split("@")[0] or step.get("name") or step["run"] for step in job["steps"]]

    assert shape(preview) == shape(up)
    for job in (preview, up):
        gate, *rest = job["steps"]
        assert gate["id"] == "access"
        assert all(step["if"] == "steps.access.outputs.enabled == 'true'" for step in rest)


def run_gate(job: dict[str, Any], tmp_path: Path, **env: str) -> tuple[dict[str, str], str]:
    """Run a job's `access` step with bash as the runner would; return its outputs and summary."""
    if shutil.which("jq") is None or shutil.which("bash") is None:
        pytest.skip("bash and jq are needed to run the access step (GitHub's runners have both)")
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text(""), summary.write_text("")
    script = job["steps"][0]["run"]
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), **env},
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return outputs, summary.read_text()


@pytest.mark.parametrize(
    ("variables", "from_fork", "enabled", "role_or_reason"),
    [
        ({}, "false", "false", "neither AWS_PREVIEW_ROLE_ARN_LIVE nor AWS_PREVIEW_ROLE_ARN is set"),
        ({"AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::1:role/p"}, "false", "false", "PULUMI_BACKEND_URL is not set"),
        ({"AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::1:role/p", "PULUMI_BACKEND_URL": "s3://b"}, "true", "false",
         "pull requests from forks get no cloud credentials"),
        ({"AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::1:role/p", "PULUMI_BACKEND_URL": "s3://b"}, "false", "true",
         "arn:aws:iam::1:role/p"),
        ({"AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::1:role/p", "AWS_PREVIEW_ROLE_ARN_LIVE": "arn:aws:iam::2:role/l",
          "PULUMI_BACKEND_URL": "s3://b"}, "false", "true", "arn:aws:iam::2:role/l"),
        ({"AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::1:role/p", "AWS_PREVIEW_ROLE_ARN_LIVE": "off",
          "PULUMI_BACKEND_URL": "s3://b"}, "false", "false", "AWS_PREVIEW_ROLE_ARN_LIVE is 'off'"),
    ],
)
def test_preview_of_live_runs_only_with_cloud_access(tmp_path, variables, from_fork, enabled, role_or_reason):
    import json

    preview = load(WORKFLOWS / "pull-request.yml")["jobs"]["preview"]
    outputs, summary = run_gate(preview, tmp_path, STACK="live", VARS=json.dumps(variables), FROM_FORK=from_fork)
    assert outputs["enabled"] == enabled
    if enabled == "true":
        assert outputs["role"] == role_or_reason and outputs["backend"] == "s3://b"
        assert summary == ""
    else:
        assert "### pulumi preview live: skipped" in summary and role_or_reason in summary


@pytest.mark.parametrize(
    ("role", "backend", "enabled"),
    [
        ("", "s3://b", "false"),
        ("arn:aws:iam::2:role/deploy", "", "false"),
        ("arn:aws:iam::2:role/deploy", "s3://b", "true"),
    ],
)
def test_up_runs_only_with_cloud_access(tmp_path, role, backend, enabled):
    up = load(WORKFLOWS / "pulumi-up.yml")["jobs"]["up"]
    outputs, summary = run_gate(up, tmp_path, STACK="live", ROLE=role, BACKEND=backend)
    assert outputs == {"enabled": enabled}
    assert ("### pulumi up live: skipped" in summary) == (enabled == "false")


# --- pre-commit ------------------------------------------------------------------------


def test_the_pre_commit_hook_runs_the_check_on_the_files_it_reads():
    config = yaml.safe_load(PRE_COMMIT.read_text(encoding="utf-8"))
    [repo] = config["repos"]
    [hook] = repo["hooks"]
    assert repo["repo"] == "local" and hook["language"] == "system" and hook["pass_filenames"] is False
    exe, *args = shlex.split(hook["entry"])
    assert exe == ".venv/bin/python" and args[:2] == ["-m", "components"]
    assert build_parser().parse_args(args[2:]).command == "check"
    files = re.compile(hook["files"])
    for path in ["services.yaml", *(f"Pulumi.{s}.yaml" for s in STACKS), "components/config/services.py"]:
        assert files.search(path), path
    for path in ["Pulumi.yaml", "README.md", "tests/services.yaml", "components/cli.py"]:
        assert not files.search(path), path


# --- the render diff comment ------------------------------------------------------------


def comment_script() -> Any:
    spec = importlib.util.spec_from_file_location("render_diff_comment", SCRIPTS / "render_diff_comment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DIFF = """\
diff -ruN base/dev/manifests.yaml head/dev/manifests.yaml
--- base/dev/manifests.yaml\t2026-01-01 00:00:00.000000000 +0000
+++ head/dev/manifests.yaml\t2026-01-01 00:00:01.000000000 +0000
@@ -1,3 +1,3 @@
 kind: Workflow
--- a line that was removed
+image: python:3.12.9
diff -ruN base/live/resources.json head/live/resources.json
--- base/live/resources.json\t2026-01-01 00:00:00.000000000 +0000
+++ head/live/resources.json\t2026-01-01 00:00:01.000000000 +0000
@@ -1 +1,2 @@
+```not a fence```
+[]
"""


def build_comment(diff: str, **overrides: Any) -> str:
    kwargs = {"base_outcome": "success", "head_outcome": "success", "base_sha": "a" * 40, "head_sha": "b" * 40,
              "run_url": "https://example.invalid/run/1", **overrides}
    return comment_script().build(diff, **kwargs)


def test_the_comment_summarises_each_file_and_shows_the_diff_without_times():
    body = build_comment(DIFF)
    assert "| `dev/manifests.yaml` | 1 | 1 |" in body
    assert "| `live/resources.json` | 2 | 0 |" in body
    assert "2 file(s) changed, +3 −1 lines" in body
    assert "--- base/dev/manifests.yaml\n" in body and "2026-01-01" not in body
    assert "````diff\n" in body and body.rstrip().endswith("````\n</details>".rstrip())
    assert "truncated" not in body


def test_the_comment_says_when_nothing_changed():
    assert "No change in the rendered manifests or resources of any stack." in build_comment("")


def test_a_huge_diff_is_cut_at_a_line_with_a_note():
    big = DIFF + "".join(f"+line {i}\n" for i in range(20_000))
    body = build_comment(big, max_chars=10_000)
    assert len(body) <= 10_000
    assert "**Diff truncated:** showing " in body and "`render-diff` artifact" in body
    shown = body.split("````diff\n", 1)[1].split("````\n</details>", 1)[0]
    assert shown.endswith("\n") and all(line == "" or line[0] in "+- @d" for line in shown.split("\n"))


def test_the_comment_reports_renders_that_failed():
    body = build_comment(DIFF, head_outcome="failure")
    assert "`make render` failed on this pull request" in body and "```" not in body
    body = build_comment(DIFF, base_outcome="failure")
    assert "The base (aaaaaaaaaaaa) did not render" in body and "| `dev/manifests.yaml` |" in body


def test_the_comment_script_runs_as_the_workflow_calls_it(tmp_path):
    (tmp_path / "render.diff").write_text(DIFF, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "render_diff_comment.py"), "--diff", str(tmp_path / "render.diff"),
         "--out", str(tmp_path / "comment.md"), "--base-outcome", "success", "--head-outcome", "success",
         "--base-sha", "a" * 40, "--head-sha", "b" * 40, "--run-url", "https://example.invalid/run/1"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "comment.md").read_text(encoding="utf-8").startswith("### Offline render diff (`aaaaaaaaaaaa` →")
