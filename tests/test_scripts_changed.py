"""scripts/changed.py after scripts/checkout.py (depth 2), as the release Workflow runs them.

A monorepo with two services; commits that touch one, the other, and merge commits
whose first parent is the branch before the merge.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fakes import base_env, git, run_script

ROOT = Path(__file__).resolve().parent.parent
CHECKOUT = ROOT / "scripts" / "checkout.py"
CHANGED = ROOT / "scripts" / "changed.py"


def commit(work: Path, path: str, content: str, message: str) -> str:
    file = work / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(content)
    git(work, "add", path)
    git(work, "commit", "--quiet", "-m", message)
    return git(work, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Bare repo and named commits:

    root        services/api + services/web (root commit)
    web         changes services/web only
    api         changes services/api only
    merge_api   merge of a branch that changed services/api, while main changed services/web
    merge_web   merge of a branch that changed services/web only
    """
    tmp = tmp_path_factory.mktemp("monorepo")
    bare = tmp / "mono.git"
    git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp / "work"
    git(tmp, "clone", "--quiet", str(bare), str(work))
    shas = {}
    (work / "services" / "api").mkdir(parents=True)
    (work / "services" / "api" / "app.py").write_text("v0\n")
    shas["root"] = commit(work, "services/web/index.html", "v0\n", "two services")
    shas["web"] = commit(work, "services/web/index.html", "v1\n", "web: v1")
    shas["api"] = commit(work, "services/api/app.py", "v1\n", "api: v1")
    git(work, "switch", "--quiet", "-c", "feature-api")
    commit(work, "services/api/app.py", "v2\n", "api: v2")
    git(work, "switch", "--quiet", "main")
    commit(work, "services/web/index.html", "v2\n", "web: v2 on main meanwhile")
    git(work, "merge", "--quiet", "--no-ff", "-m", "Merge pull request #7 from feature-api", "feature-api")
    shas["merge_api"] = git(work, "rev-parse", "HEAD")
    git(work, "switch", "--quiet", "-c", "feature-web")
    commit(work, "services/web/index.html", "v3\n", "web: v3")
    git(work, "switch", "--quiet", "main")
    commit(work, "README.md", "readme\n", "docs")
    git(work, "merge", "--quiet", "--no-ff", "-m", "Merge pull request #8 from feature-web", "feature-web")
    shas["merge_web"] = git(work, "rev-parse", "HEAD")
    git(work, "push", "--quiet", "origin", "main", "feature-api", "feature-web")
    return bare, shas


def run(script: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = base_env(tmp_path) | {"GIT_CONFIG_NOSYSTEM": "1", "OUTPUT_DIR": str(tmp_path / "outputs")}
    return run_script(script.stem, {**base, **env})


def changed(tmp_path: Path, bare: Path, revision: str, service_path: str, depth: str = "2") -> str:
    dest = tmp_path / "workspace"
    fetched = run(
        CHECKOUT, tmp_path, REPO="acme/mono", REVISION=revision, DEST=str(dest), DEPTH=depth, REMOTE_URL=str(bare)
    )
    assert fetched.returncode == 0, fetched.stderr
    result = run(CHANGED, tmp_path, DEST=str(dest), REVISION=revision, SERVICE_PATH=service_path)
    assert result.returncode == 0, result.stderr
    return (tmp_path / "outputs" / "changed").read_text()


@pytest.mark.parametrize(
    ("commit_name", "service_path", "expected"),
    [
        ("web", "services/web", "true"),
        ("web", "services/api", "false"),
        ("api", "services/api", "true"),
        ("api", "services/api/", "true"),
        ("api", "services/web", "false"),
        ("api", "services/ap", "false"),  # a prefix of a directory name is not that directory
        # merge commits: compared with the first parent, the branch before the merge
        ("merge_api", "services/api", "true"),
        ("merge_api", "services/web", "false"),
        ("merge_web", "services/web", "true"),
        ("merge_web", "services/api", "false"),
        # no parent to compare with: always "true"
        ("root", "services/api", "true"),
    ],
)
def test_changed_against_the_first_parent(tmp_path, monorepo, commit_name, service_path, expected):
    bare, shas = monorepo
    assert changed(tmp_path, bare, shas[commit_name], service_path) == expected


def test_a_depth_one_checkout_has_no_parent_so_it_counts_as_changed(tmp_path, monorepo):
    bare, shas = monorepo
    assert changed(tmp_path, bare, shas["web"], "services/api", depth="1") == "true"


def test_pathspec_magic_is_taken_literally(tmp_path, monorepo):
    bare, shas = monorepo
    assert changed(tmp_path, bare, shas["web"], ":(exclude)services/api") == "false"


@pytest.mark.parametrize("service_path", ["../services/api", "/services/api", "services/../../etc"])
def test_refuses_a_path_outside_the_repository(tmp_path, monorepo, service_path):
    bare, shas = monorepo
    dest = tmp_path / "workspace"
    run(CHECKOUT, tmp_path, REPO="acme/mono", REVISION=shas["web"], DEST=str(dest), DEPTH="2", REMOTE_URL=str(bare))
    result = run(CHANGED, tmp_path, DEST=str(dest), REVISION=shas["web"], SERVICE_PATH=service_path)
    assert result.returncode != 0
    assert "SERVICE_PATH" in result.stderr
    assert not (tmp_path / "outputs" / "changed").exists()


def test_refuses_a_malformed_revision(tmp_path):
    result = run(CHANGED, tmp_path, DEST=str(tmp_path), REVISION="HEAD", SERVICE_PATH="services/api")
    assert result.returncode != 0
    assert "REVISION" in result.stderr
