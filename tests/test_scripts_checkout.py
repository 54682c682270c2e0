"""scripts/checkout.py, run for real as a subprocess against local bare repositories.

The SSH path is exercised with a stand-in `ssh` on PATH that records its arguments,
checks the key file's mode and then serves git-upload-pack from a local directory, so
the options the script gives ssh are checked without a network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import base_env, fake_ssh, git, run_script, ssh_calls

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "checkout.py"
KNOWN_HOSTS = ROOT / "scripts" / "github_known_hosts"
# A throwaway ed25519 key made for these tests; it grants nothing anywhere.
FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZS1rZXktZm9yLXRlc3Rz\n-----END OPENSSH PRIVATE KEY-----"


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[str]]:
    """A bare repository `acme/app.git` with three commits on main; returns (bare, shas oldest first)."""
    bare = tmp_path / "remote" / "acme" / "app.git"
    bare.mkdir(parents=True)
    git(bare, "init", "--quiet", "--bare", "--initial-branch=main")
    work = tmp_path / "author"
    git(tmp_path, "clone", "--quiet", str(bare), str(work))
    shas = []
    for n in range(3):
        (work / "version.txt").write_text(f"v{n}\n")
        git(work, "add", "version.txt")
        git(work, "commit", "--quiet", "-m", f"version {n}")
        shas.append(git(work, "rev-parse", "HEAD"))
    git(work, "push", "--quiet", "origin", "HEAD:main")
    return bare, shas


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = base_env(tmp_path) | {"GIT_CONFIG_NOSYSTEM": "1"}
    return run_script("checkout", {**base, **env})


def test_checks_out_exactly_the_revision_detached_and_shallow(tmp_path, source):
    bare, shas = source
    dest = tmp_path / "workspace"
    result = run(tmp_path, REPO="acme/app", REVISION=shas[1], DEST=str(dest), REMOTE_URL=str(bare))
    assert result.returncode == 0, result.stderr
    assert git(dest, "rev-parse", "HEAD") == shas[1]
    assert (dest / "version.txt").read_text() == "v1\n"
    assert subprocess.run(["git", "-C", str(dest), "symbolic-ref", "-q", "HEAD"], check=False).returncode != 0
    assert git(dest, "rev-parse", "--is-shallow-repository") == "true"
    assert git(dest, "rev-list", "--count", "HEAD") == "1"
    assert git(dest, "tag") == ""


def test_depth_two_brings_the_parent(tmp_path, source):
    bare, shas = source
    dest = tmp_path / "workspace"
    result = run(tmp_path, REPO="acme/app", REVISION=shas[2], DEST=str(dest), DEPTH="2", REMOTE_URL=str(bare))
    assert result.returncode == 0, result.stderr
    assert git(dest, "rev-list", "HEAD").split() == [shas[2], shas[1]]


def test_works_in_a_directory_owned_by_someone_else(tmp_path, source):
    """An emptyDir is root-owned while the step runs as uid 1000: git must not refuse it."""
    bare, shas = source
    dest = tmp_path / "workspace"
    # git's test switch makes every repository look foreign, the source too: trust that one
    # (in the global config of the step's HOME; the checkout itself must cope alone).
    (tmp_path / ".gitconfig").write_text(f"[safe]\n\tdirectory = {bare}\n")
    result = run(
        tmp_path,
        REPO="acme/app",
        REVISION=shas[0],
        DEST=str(dest),
        REMOTE_URL=str(bare),
        GIT_TEST_ASSUME_DIFFERENT_OWNER="1",
    )
    assert result.returncode == 0, result.stderr
    assert (dest / "version.txt").read_text() == "v0\n"


@pytest.mark.parametrize(
    "revision",
    ["", "HEAD", "main", "abc123", "A" * 40, "0" * 39, "0" * 41, "--upload-pack=touch /tmp/x", "0" * 40 + "\n"],
)
def test_refuses_a_malformed_revision(tmp_path, source, revision):
    bare, _ = source
    dest = tmp_path / "workspace"
    result = run(tmp_path, REPO="acme/app", REVISION=revision, DEST=str(dest), REMOTE_URL=str(bare))
    assert result.returncode != 0
    assert "REVISION" in result.stderr
    assert not dest.exists()


@pytest.mark.parametrize("repo", ["", "acme", "acme/app/extra", "../app", "acme/..", "-acme/app", "acme/app name"])
def test_refuses_a_malformed_repo(tmp_path, source, repo):
    bare, shas = source
    result = run(tmp_path, REPO=repo, REVISION=shas[0], DEST=str(tmp_path / "w"), REMOTE_URL=str(bare))
    assert result.returncode != 0
    assert "REPO" in result.stderr


def test_unknown_revision_fails(tmp_path, source):
    bare, _ = source
    result = run(tmp_path, REPO="acme/app", REVISION="1" * 40, DEST=str(tmp_path / "w"), REMOTE_URL=str(bare))
    assert result.returncode != 0
    assert "git fetch" in result.stderr


def test_ssh_transport_uses_the_pinned_host_keys_and_a_private_key_copy(tmp_path, source):
    bare, shas = source
    bin_dir = tmp_path / "bin"
    fake_ssh(bin_dir, bare.parent.parent)
    key_file = tmp_path / "mounted" / "ssh-privatekey"
    key_file.parent.mkdir()
    key_file.write_text(FAKE_KEY)  # no trailing newline, group/world readable like a mounted Secret
    key_file.chmod(0o644)

    dest = tmp_path / "workspace"
    result = run(
        tmp_path,
        REPO="acme/app",
        REVISION=shas[2],
        DEST=str(dest),
        SSH_KEY_FILE=str(key_file),
        PATH=f"{bin_dir}:{os.environ['PATH']}",
    )
    assert result.returncode == 0, result.stderr
    assert git(dest, "rev-parse", "HEAD") == shas[2]

    [call] = ssh_calls(bin_dir)
    args = call["args"]
    assert "git@github.com" in args
    assert "git-upload-pack 'acme/app.git'" in args[-1]
    options = {args[i + 1] for i, a in enumerate(args) if a == "-o"}
    assert {
        "StrictHostKeyChecking=yes",
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        "GlobalKnownHostsFile=/dev/null",
    } <= options
    assert f"UserKnownHostsFile={KNOWN_HOSTS}" in options
    assert args[args.index("-F") + 1] == "/dev/null"
    key_copy = args[args.index("-i") + 1]
    assert call["key_mode"] == 0o600
    assert call["key_text"] == FAKE_KEY + "\n"
    assert key_copy != str(key_file)
    assert not Path(key_copy).exists(), "the key copy is removed after the checkout"
    assert "ZmFrZS1rZXk" not in result.stdout + result.stderr


def test_missing_deploy_key_fails_clearly(tmp_path, source):
    _, shas = source
    result = run(
        tmp_path, REPO="acme/app", REVISION=shas[0], DEST=str(tmp_path / "w"), SSH_KEY_FILE=str(tmp_path / "absent")
    )
    assert result.returncode != 0
    assert "deploy key" in result.stderr


def test_known_hosts_file_pins_githubs_three_keys():
    lines = [line.split() for line in KNOWN_HOSTS.read_text().splitlines() if line and not line.startswith("#")]
    assert [(host, kind) for host, kind, _ in lines] == [
        ("github.com", "ssh-ed25519"),
        ("github.com", "ecdsa-sha2-nistp256"),
        ("github.com", "ssh-rsa"),
    ]
    fingerprints = subprocess.run(["ssh-keygen", "-lf", str(KNOWN_HOSTS)], capture_output=True, text=True, check=True)
    for published in (
        "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
        "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
    ):
        assert published in fingerprints.stdout
    assert stat.S_ISREG(KNOWN_HOSTS.stat().st_mode)


def test_openssh_accepts_the_options(tmp_path):
    """`ssh -G` (no connection) prints the effective configuration the script's command gives."""
    spec = importlib.util.spec_from_file_location("checkout", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["checkout"] = module
    spec.loader.exec_module(module)
    key = tmp_path / "key"
    key.write_text(FAKE_KEY + "\n")
    key.chmod(0o600)
    command = shlex.split(module.ssh_command(str(key), str(KNOWN_HOSTS)))
    result = subprocess.run([command[0], "-G", *command[1:], "git@github.com"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    effective = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition(" ")
        effective.setdefault(name, []).append(value)
    assert effective["stricthostkeychecking"] == ["true"]
    assert effective["identitiesonly"] == ["yes"]
    assert effective["identityfile"] == [str(key)]
    assert effective["userknownhostsfile"] == [str(KNOWN_HOSTS)]
    assert effective["globalknownhostsfile"] == ["/dev/null"]
    assert effective["batchmode"] == ["yes"]


def ssh_setup(tmp_path: Path, source: tuple[Path, list[str]], **fake: object) -> tuple[Path, dict[str, str]]:
    bare, shas = source
    bin_dir = tmp_path / "bin"
    fake_ssh(bin_dir, bare.parent.parent, **fake)  # type: ignore[arg-type]
    key_file = tmp_path / "mounted" / "ssh-privatekey"
    key_file.parent.mkdir()
    key_file.write_text(FAKE_KEY)
    (tmp_path / "tmp").mkdir()
    env = base_env(tmp_path) | {
        "GIT_CONFIG_NOSYSTEM": "1", "REPO": "acme/app", "REVISION": shas[2], "DEST": str(tmp_path / "workspace"),
        "SSH_KEY_FILE": str(key_file), "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path / "tmp"),
        "BACKOFF_SECONDS": "0.05",
    }
    return bin_dir, env


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_fetch_removes_the_key_copy(tmp_path, source, signum):
    """The Workflow is stopped while ssh hangs: the private key copy must not stay in TMPDIR."""
    bin_dir, env = ssh_setup(tmp_path, source, hang=True)
    process = subprocess.Popen([sys.executable, str(SCRIPT)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    calls: list[dict] = []
    try:
        deadline = time.monotonic() + 30
        while not (calls := ssh_calls(bin_dir)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls, "ssh was never called"
        key = Path(calls[0]["key"])
        assert key.exists() and key.is_relative_to(tmp_path / "tmp")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
        for call in calls:  # the hanging stand-in this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(call["pid"], signal.SIGKILL)
    assert process.returncode == 1
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert not key.exists()
    assert list((tmp_path / "tmp").iterdir()) == [], "nothing of the key is left"


def test_a_transient_ssh_failure_is_retried(tmp_path, source):
    bin_dir, env = ssh_setup(tmp_path, source, fail_first=2)
    result = run_script("checkout", env)
    assert result.returncode == 0, result.stderr
    assert len(ssh_calls(bin_dir)) == 3
    assert "trying again" in result.stderr
    assert git(tmp_path / "workspace", "rev-parse", "HEAD") == source[1][2]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_refusal_is_not_retried(tmp_path, source):
    bin_dir, env = ssh_setup(tmp_path, source)
    result = run_script("checkout", env | {"REVISION": "1" * 40})
    assert result.returncode == 1
    assert len(ssh_calls(bin_dir)) == 1
    assert "trying again" not in result.stderr


@pytest.mark.parametrize(("name", "value"), [("DEPTH", "1.5"), ("DEPTH", "0"), ("MAX_ATTEMPTS", "0"),
                                             ("MAX_ATTEMPTS", "two"), ("BACKOFF_SECONDS", "-1")])
def test_refuses_bad_settings(tmp_path, source, name, value):
    bare, shas = source
    result = run(tmp_path, REPO="acme/app", REVISION=shas[0], DEST=str(tmp_path / "w"), REMOTE_URL=str(bare),
                 **{name: value})
    assert result.returncode == 1
    assert name in result.stderr
    assert "Traceback" not in result.stderr
