"""Check out exactly one commit of a GitHub repository over SSH, shallow.

Step script of the release pipeline (docs/release-contract.md, section 4); runs in the
`release-tools` image as `python3 checkout.py`, configured by environment variables:

    REPO              owner/name on GitHub
    REVISION          full commit sha (40 lowercase hex)
    DEST              directory to check out into (created if missing)
    DEPTH             history depth to fetch, default 1 (2 for `changed.py`)
    SSH_KEY_FILE      read-only deploy key, default /etc/release-pipeline/ssh/ssh-privatekey
    KNOWN_HOSTS_FILE  pinned host keys, default `github_known_hosts` beside this script
    REMOTE_URL        replaces git@github.com:REPO.git (tests: a local bare repository)
    MAX_ATTEMPTS      fetches to try when the network or GitHub fails transiently, default 4 (1..10)
    BACKOFF_SECONDS   base of the exponential backoff (with jitter) between them, default 2 (0..60)

Result: the work tree at DEST, HEAD detached at REVISION. No output files.

Owns: `git init`, `git fetch --depth DEPTH origin REVISION`, a detached checkout, and the
deploy key's private copy (removed on every exit). Does not own: deciding what to run on
the tree (`changed.py`, the test and build steps).

Decisions: docs/decisions/0422-checkout-trusts-pinned-host-keys-and-one-key.md.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
from _common import GITHUB_REPO, StepError, commit_sha, ignore_signals, raise_on_signals
from _retry import Backoff, Deadline, git_transient, number, retry

DEFAULT_SSH_KEY_FILE = "/etc/release-pipeline/ssh/ssh-privatekey"
DEFAULT_KNOWN_HOSTS = Path(__file__).resolve().with_name("github_known_hosts")
MAX_DEPTH = 1000


def log(message: str) -> None:
    print(f"checkout: {message}", file=sys.stderr, flush=True)


def read_config(environ: dict[str, str]) -> dict[str, str | int | float]:
    """Validate the environment; raise StepError naming the first bad variable."""
    repo = environ.get("REPO", "")
    if not GITHUB_REPO.fullmatch(repo) or repo.split("/")[1] in (".", ".."):
        raise StepError(f"REPO must be owner/name, got {repo!r}")
    revision = commit_sha(environ)
    dest = environ.get("DEST", "")
    if not dest:
        raise StepError("DEST must name the directory to check out into")
    depth = int(number(environ, "DEPTH", 1, 1, MAX_DEPTH, integer=True))
    remote = environ.get("REMOTE_URL") or f"git@github.com:{repo}.git"
    return {
        "repo": repo,
        "revision": revision,
        "dest": str(Path(dest).absolute()),
        "depth": depth,
        "remote": remote,
        "ssh_key_file": environ.get("SSH_KEY_FILE") or DEFAULT_SSH_KEY_FILE,
        "known_hosts": environ.get("KNOWN_HOSTS_FILE") or str(DEFAULT_KNOWN_HOSTS),
        "attempts": int(number(environ, "MAX_ATTEMPTS", 4, 1, 10, integer=True)),
        "backoff": number(environ, "BACKOFF_SECONDS", 2, 0, 60),
    }


def uses_ssh(remote: str) -> bool:
    """True for git@host:path and ssh:// remotes (local paths and file:// need no key)."""
    return remote.startswith("ssh://") or bool(re.match(r"^[^/:]+@[^/:]+:", remote))


def private_key_copy(source: str, directory: str) -> str:
    """Copy the deploy key to a 0600 file in `directory` (itself 0700); return its path."""
    try:
        key = Path(source).read_bytes()
    except OSError as error:
        raise StepError(f"cannot read the deploy key file {source}: {error.strerror}") from None
    if not key.strip():
        raise StepError(f"the deploy key file {source} is empty")
    # OpenSSH rejects a private key whose last line lacks its newline.
    if not key.endswith(b"\n"):
        key += b"\n"
    path = os.path.join(directory, "deploy-key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return path


def ssh_command(key_path: str, known_hosts: str) -> str:
    """The GIT_SSH_COMMAND: only the pinned host keys, only the deploy key, never a prompt."""
    options = {
        "IdentitiesOnly": "yes",
        "IdentityAgent": "none",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": known_hosts,
        "GlobalKnownHostsFile": "/dev/null",
        "UpdateHostKeys": "no",
        "BatchMode": "yes",
        "ConnectTimeout": "30",
    }
    # -F /dev/null: no user or system ssh_config can loosen these options.
    arguments = ["-F", "/dev/null", "-i", key_path]
    for name, value in options.items():
        arguments += ["-o", f"{name}={value}"]
    return shlex.join(["ssh", *arguments])


class GitError(StepError):
    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def git(dest: str, *args: str, env: dict[str, str]) -> None:
    # safe.directory: DEST is often an emptyDir owned by root while the step runs as
    # uid 1000, and git refuses such a repository ("dubious ownership") without it.
    command = ["git", "-c", f"safe.directory={dest}", "-C", dest, *args]
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            check=False)
    sys.stderr.write(result.stderr)  # git's own words (no secret: the key is a file, the URL has none)
    if result.returncode != 0:
        raise GitError(f"`git {args[0]}` failed with exit code {result.returncode}", result.stderr)


def checkout(config: dict[str, str | int | float], key_dir: str) -> None:
    dest, revision, remote = str(config["dest"]), str(config["revision"]), str(config["remote"])
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if uses_ssh(remote):
        known_hosts = str(config["known_hosts"])
        if not os.path.isfile(known_hosts):
            raise StepError(f"KNOWN_HOSTS_FILE {known_hosts} does not exist")
        key_path = private_key_copy(str(config["ssh_key_file"]), key_dir)
        env["GIT_SSH_COMMAND"] = ssh_command(key_path, known_hosts)
    Path(dest).mkdir(parents=True, exist_ok=True)
    log(f"fetching {config['repo']} at {revision} (depth {config['depth']}) into {dest}")
    git(dest, "init", "--quiet", "--initial-branch=main", env=env)
    git(dest, "config", "remote.origin.url", remote, env=env)
    retry(
        lambda: git(dest, "fetch", "--quiet", "--no-tags", f"--depth={config['depth']}", "origin", revision, env=env),
        what="git fetch", backoff=Backoff(int(config["attempts"]), float(config["backoff"])), deadline=Deadline(None),
        transient=lambda error: 0.0 if isinstance(error, GitError) and git_transient(error.stderr) else None, log=log,
    )
    git(dest, "checkout", "--quiet", "--force", "--detach", revision, env=env)
    head = subprocess.run(
        ["git", "-c", f"safe.directory={dest}", "-C", dest, "rev-parse", "HEAD"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if head != revision:
        raise StepError(f"HEAD is {head or 'unknown'} after checkout, expected {revision}")
    log(f"checked out {revision}")


def main() -> int:
    raise_on_signals()
    key_dir = ""
    try:
        config = read_config(dict(os.environ))
        key_dir = tempfile.mkdtemp(prefix="checkout-ssh-")
        checkout(config, key_dir)
    except StepError as error:
        log(f"error: {error}")
        return 1
    finally:
        ignore_signals()  # a second signal must not cut the cleanup short
        if key_dir:
            shutil.rmtree(key_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
