"""The branch map, the stack-file keys the program reads, and "did you mean" (components.config_keys)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import (
    STACKS,
    ConfigError,
    load_stack_settings,
    own_stack_file_problems,
    parse_services,
    settings_from_pulumi_config,
)
from components.config_keys import BRANCH_MAP, READ_KEYS, SECRETS, did_you_mean
from tests.conftest import ROOT, copy_project
from tests.samples import VBSIV


def run_check(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components", "check", "--project-dir", str(project)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def edit(path: Path, old: str, new: str) -> int:
    """Replace the one ``old`` in ``path``; the 1-based line where it was."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def branch_line(stack: str) -> str:
    return next(line for line in (ROOT / f"Pulumi.{stack}.yaml").read_text().splitlines()
                if line.startswith("    branch: "))


def problems(project: Path, stack: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack_settings(project, stack)
    return [str(p) for p in caught.value.problems]


# ------------------------------------------------------------------------ the branch map


def test_the_branch_map_is_the_documented_one() -> None:
    assert dict(BRANCH_MAP) == {"dev": "development", "sandbox": "sandbox", "integration": "release", "live": "main"}
    for doc in (ROOT / "docs" / "architecture.md", ROOT / "README.md"):
        text = doc.read_text(encoding="utf-8")
        for stack, branch in BRANCH_MAP.items():
            row = rf"^\| `{stack}` \| `{branch}` \|$|^\| `{branch}` \| `{stack}` \|$"
            assert re.search(row, text, re.M), f"{doc.name}: no row for {stack} -> {branch}"


@pytest.mark.parametrize("stack", STACKS)
def test_each_shipped_stack_releases_from_its_branch_in_the_map(stack: str) -> None:
    assert load_stack_settings(ROOT, stack).branch == BRANCH_MAP[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_a_stack_file_without_branch_takes_the_maps(tmp_path: Path, stack: str) -> None:
    project = copy_project(tmp_path)
    edit(project / f"Pulumi.{stack}.yaml", branch_line(stack) + "\n", "")
    assert load_stack_settings(project, stack).branch == BRANCH_MAP[stack]


def test_another_branch_is_refused_naming_both_branches(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.dev.yaml"
    line = edit(path, branch_line("dev"), "    branch: feature-x")
    [problem] = problems(project, "dev")
    assert problem.startswith(f"{path}:{line}: settings: branch: 'feature-x' is not dev's branch in the branch map "
                              "('development'); ")
    assert "branchDeparture: deliberate" in problem
    proc = run_check(project)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    assert f"Pulumi.dev.yaml:{line}: settings: branch: 'feature-x' is not dev's branch" in proc.stdout


def test_pulumi_up_refuses_another_branch_too() -> None:
    settings = load_stack_settings(ROOT, "live").model_dump(by_alias=True, exclude_none=True)
    with pytest.raises(ConfigError) as caught:
        settings_from_pulumi_config(settings | {"branch": "hotfix"}, "live")
    assert "'hotfix' is not live's branch in the branch map ('main')" in str(caught.value.problems[0])
    deliberate = settings_from_pulumi_config(settings | {"branch": "hotfix", "branchDeparture": "deliberate"}, "live")
    assert deliberate.branch == "hotfix"


def test_a_deliberate_departure_passes_with_a_notice_naming_both_branches(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    departed = "    branch: staging\n    branchDeparture: deliberate"
    edit(project / "Pulumi.sandbox.yaml", branch_line("sandbox"), departed)
    assert load_stack_settings(project, "sandbox").branch == "staging"
    proc = run_check(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notices = [line for line in proc.stdout.splitlines() if line.startswith("notice: ")]
    assert notices == [
        f"notice: {project / 'Pulumi.sandbox.yaml'}: stack 'sandbox' releases from branch 'staging', not 'sandbox' "
        "of the branch map (branchDeparture: deliberate)"
    ]


def test_the_shipped_stacks_print_no_notice() -> None:
    proc = run_check(ROOT)
    assert proc.returncode == 0 and "notice:" not in proc.stdout


def test_a_departure_setting_on_the_maps_branch_is_refused(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.live.yaml"
    line = edit(path, branch_line("live"), branch_line("live") + "\n    branchDeparture: deliberate") + 1
    assert problems(project, "live") == [
        f"{path}:{line}: settings: branchDeparture: is set, but 'main' is live's branch in the branch map: "
        "remove `branchDeparture`"
    ]


def test_branch_departure_takes_only_deliberate(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    edit(project / "Pulumi.dev.yaml", branch_line("dev"), "    branch: x\n    branchDeparture: yes-please")
    [problem] = problems(project, "dev")
    assert "branchDeparture: Input should be 'deliberate'" in problem


# --------------------------------------------------------------- keys of a stack file


KEYS_AT = "  release-pipeline:settings:\n"


@pytest.mark.parametrize(("key", "suggested"), [
    ("release-pipeline:githubtoken", "githubToken"),
    ("release-pipeline:slackTokn", "slackToken"),
    ("slackTokn", "slackToken"),  # a bare key is the project's
    ("release-pipeline:setting", "settings"),
])
def test_an_unknown_key_of_the_program_is_an_error_with_a_suggestion(tmp_path: Path, key: str, suggested: str) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.dev.yaml"
    line = edit(path, KEYS_AT, f"  {key}: x\n" + KEYS_AT)
    expected = (f"{path}:{line}: settings: {key}: unknown key (did you mean {suggested!r}?): the program reads only "
                + ", ".join(f"release-pipeline:{k}" for k in READ_KEYS))
    assert problems(project, "dev") == [expected]
    # `pulumi up` refuses it too (its own stack file, __main__.py), and check says where.
    assert [str(p) for p in own_stack_file_problems(project, "dev")] == [expected]
    proc = run_check(project)
    assert proc.returncode == 2 and f"Pulumi.dev.yaml:{line}: settings: {key}: unknown key" in proc.stdout


def test_an_unknown_key_with_nothing_close_is_still_refused(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    edit(project / "Pulumi.dev.yaml", KEYS_AT, "  release-pipeline:colour: red\n" + KEYS_AT)
    [problem] = problems(project, "dev")
    assert ": release-pipeline:colour: unknown key: the program reads only " in problem


def test_keys_of_other_namespaces_are_the_providers(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    edit(project / "Pulumi.dev.yaml", KEYS_AT, "  aws:region: us-east-1\n  kubernetes:context: x\n" + KEYS_AT)
    assert load_stack_settings(project, "dev").environment == "dev"


def test_every_key_listed_is_one_the_program_reads() -> None:
    program = (ROOT / "__main__.py").read_text(encoding="utf-8")
    assert set(re.findall(r'config\.require_secret\("(\w+)"\)', program)) == set(SECRETS)
    assert "config.require(SETTINGS_KEY)" in program
    assert set(READ_KEYS) == {"settings", *SECRETS}


# ------------------------------------------------------------------ unknown fields


def services_with(**fields: object) -> str:
    import yaml

    return yaml.safe_dump({"services": [VBSIV | fields]}, sort_keys=False)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"imageRepo": "x"}, "imageRepo: unknown field (did you mean 'imageRepository'?)"),
    ({"helm": {**VBSIV["helm"], "valueFile": "v.yaml"}}, "helm.valueFile: unknown field (did you mean 'valuesFile'?)"),
    ({"rollout": {"scaledown": "never"}}, "rollout.scaledown: unknown field (did you mean 'scaleDown'?)"),
    ({"canary": {"dev": [{"setWieght": 10}]}}, "canary.dev.0.setWieght: unknown field (did you mean 'setWeight'?)"),
    ({"colour": "red"}, "colour: unknown field"),
])
def test_unknown_service_fields_suggest_the_close_one(fields: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_services(services_with(**fields), "services.yaml")
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.endswith(f"service 'vbsiv': {expected}"), problem


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    helmBranch: ", "    helmBrnch: x\n    helmBranch: ", "helmBrnch: unknown field (did you mean 'helmBranch'?)"),
    ("  release-pipeline:settings:\n", "  release-pipeline:settings:\n    sizes: {sensor: {replica: 2}}\n",
     "sizes.sensor.replica: unknown field (did you mean 'replicas'?)"),
    ("    identity:\n", "    identity: {mode: irsa, oidcProviderArm: x}\n    x-identity:\n",
     "identity.irsa.oidcProviderArm: unknown field (did you mean 'oidcProviderArn'?)"),
])
def test_unknown_settings_fields_suggest_the_close_one(tmp_path: Path, old: str, new: str, expected: str) -> None:
    project = copy_project(tmp_path)
    path = project / "Pulumi.dev.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert any(p.endswith(f"settings: {expected}") for p in problems(project, "dev")), problems(project, "dev")


def test_did_you_mean_ignores_case_and_stays_quiet_when_nothing_is_close() -> None:
    assert did_you_mean("GITHUBTOKEN", READ_KEYS) == " (did you mean 'githubToken'?)"
    assert did_you_mean("colour", ["rollout", "repo"]) == ""
    assert did_you_mean("x", []) == ""
