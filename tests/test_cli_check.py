"""``python -m components check`` and the automation that runs it.

Owns:
- the check command as users meet it (a subprocess from the repository root): exit 0
  with one summary line for good files; exit 2 with every problem, one per line as
  ``FILE:LINE: WHERE: FIELD: MESSAGE``, for a bad services file, a bad stack file,
  a cross-stack conflict or an empty file; never a traceback; no Pulumi imported;
- the GitHub Actions workflows and the pre-commit hook: valid YAML, valid Actions
  syntax (actionlint, when installed), every action pinned to an exact version, and
  every command they run exists in this repository;
- the render-diff comment script (``.github/scripts/render_diff_comment.py``).

Each bad-input test starts from a copy of the real project files and breaks one
thing, so the expected line is found in the broken text rather than hard-coded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.cli import main
from components.config import STACKS
from tests.conftest import ROOT

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
    """A copy of the project's services.yaml and stack files, to break one at a time."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ["services.yaml", *(f"Pulumi.{stack}.yaml" for stack in STACKS)]:
        shutil.copy(ROOT / name, root / name)
    return root


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
    assert problem.startswith(f"{stack}:{line}: settings: aws.region: String should match pattern")


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
