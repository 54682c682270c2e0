"""Set the service's image tag on this environment's branch of the helm (GitOps) repository.

Step script of the release Workflow (docs/release-contract.md, sections 2 and 4, where
its variables are listed: HELM_REPO, BRANCH, VALUES_FILE, KEY, REVISION, SERVICE,
ENVIRONMENT, PR_NUMBER, SOURCE_REPO, APP_ID, INSTALLATION_ID, PRIVATE_KEY_FILE,
GITHUB_API, MAX_ATTEMPTS, BACKOFF_SECONDS, TIMEOUT_SECONDS, REMOTE_URL (tests: a local
bare repository; then an empty APP_ID skips minting a token), OUTPUT_DIR); runs in the
`release-tools` image as `python3 promote.py`, under a Workflow mutex per helm
repository and branch.

Output: `$OUTPUT_DIR/revision`, the helm repository commit that carries the tag: the
one pushed, or the branch tip when the tag was already REVISION (idempotent rerun).

How: (a) mint a one-hour installation token scoped to the one repository with
`contents: write` only; (b) clone the branch at depth 1 over HTTPS, the token given by a
credential helper to exactly the remote's host (never in a URL, an argument or a log);
(c) set KEY with the structured edit of `_values.py`; (d) commit as
release-pipeline[bot]; (e) push with a lease on the commit the edit was made on. On a
refused push: fetch the new tip, reset to it, re-apply the edit, push again (at most
MAX_ATTEMPTS times, within TIMEOUT_SECONDS).

Decisions: docs/decisions/0121-promote-pushes-with-a-lease-and-answers-one-host.md,
docs/decisions/0122-values-edit-composed-by-libyaml-checked-independently.md,
docs/decisions/0120-one-retry-and-deadline-module-for-the-step-scripts.md,
docs/decisions/0423-promote-resets-and-reapplies-rather-than-rebasing.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jwt

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
import _common
import _retry
from _common import GITHUB_REPO, SHA, StepError, api_base, error_message, ignore_signals, raise_on_signals, write_output
from _retry import Backoff, Deadline, HTTPStatusError, fetch, git_transient, number, retry, transient_http
from _values import set_yaml_value

__all__ = ["set_yaml_value"]  # the edit lives in _values.py; the tests reach it through this script

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KEY = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
DEFAULT_PRIVATE_KEY_FILE = "/etc/release-pipeline/github-app/private-key"
BOT_NAME = "release-pipeline[bot]"
BOT_EMAIL = "release-pipeline[bot]@users.noreply.github.com"
# The credential helper reads the token from this variable of git's environment, and
# answers only a request for https and exactly the host of HELM_REPO's URL (HOST_ENV):
# a redirect to another host, or plain http, gets nothing.
TOKEN_ENV = "RELEASE_PIPELINE_GIT_TOKEN"
HOST_ENV = "RELEASE_PIPELINE_GIT_HOST"
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; p=; h=; '
    'while IFS= read -r l; do case "$l" in protocol=*) p="${l#protocol=}";; host=*) h="${l#host=}";; '
    '"") break;; esac; done; '
    f'test "$p" = https && test -n "${HOST_ENV}" && test "$h" = "${HOST_ENV}" || return 0; '
    f'echo username=x-access-token; printf "password=%s\\n" "${TOKEN_ENV}"; }}; f'
)
# Installation token requests: GitHub's 5xx and 429 are retried within this many seconds.
TOKEN_DEADLINE_SECONDS = 120


def log(message: str) -> None:
    print(f"promote: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Config:
    helm_repo: str
    branch: str
    values_file: str
    key: tuple[str, ...]
    revision: str
    service: str
    environment: str
    pr_number: str
    source_repo: str
    app_id: str
    installation_id: str
    private_key_file: str
    github_api: str
    max_attempts: int
    backoff_seconds: float
    timeout_seconds: float
    remote_url: str
    credential_host: str


def relative_path(name: str, value: str) -> str:
    """Also not empty and not starting with "-" (it is a git argument)."""
    if not value or value.startswith("-"):
        raise StepError(f"{name} must be a relative path without '..', got {value!r}")
    return _common.relative_path(name, value)


def check_api_url(name: str, url: str) -> str:
    """https, or plain http to a loopback address only (tests): a bearer token never crosses a network in clear."""
    base = api_base(url)
    if base is None:
        raise StepError(f"{name} must be an https URL (plain http only to a loopback address), got {url!r}")
    return base


def valid_branch(branch: str) -> bool:
    """git's own rules for a branch name (no "..", no control characters, ...), and no leading "-"."""
    if not branch or branch.startswith("-"):
        return False
    check = subprocess.run(["git", "check-ref-format", f"refs/heads/{branch}"], capture_output=True, check=False)
    return check.returncode == 0


def read_config(environ: dict[str, str]) -> Config:
    """Validate the environment; raise StepError naming the first bad variable."""

    def need(name: str, pattern: re.Pattern[str], what: str) -> str:
        value = environ.get(name, "")
        if not pattern.fullmatch(value):
            raise StepError(f"{name} must be {what}, got {value!r}")
        return value

    helm_repo = need("HELM_REPO", GITHUB_REPO, "owner/name")
    branch = environ.get("BRANCH", "")
    if not valid_branch(branch):
        raise StepError(f"BRANCH must be a valid branch name, got {branch!r}")
    source_repo = environ.get("SOURCE_REPO", "")
    if source_repo and not GITHUB_REPO.fullmatch(source_repo):
        raise StepError(f"SOURCE_REPO must be owner/name or empty, got {source_repo!r}")
    remote_url = environ.get("REMOTE_URL", "")
    app_id = environ.get("APP_ID", "")
    installation_id = environ.get("INSTALLATION_ID", "")
    if app_id or not remote_url:
        need("APP_ID", re.compile(r"^[0-9]+$"), "the GitHub App id (digits)")
        need("INSTALLATION_ID", re.compile(r"^[0-9]+$"), "the App installation id (digits)")
    max_attempts = int(number(environ, "MAX_ATTEMPTS", 5, 1, 20, integer=True))
    backoff = number(environ, "BACKOFF_SECONDS", 2, 0, 60)
    timeout = number(environ, "TIMEOUT_SECONDS", 600, 10, 3600)
    remote_url = remote_url or f"https://github.com/{helm_repo}.git"
    return Config(
        helm_repo=helm_repo,
        branch=branch,
        values_file=relative_path("VALUES_FILE", environ.get("VALUES_FILE", "")),
        key=tuple(need("KEY", KEY, "a dotted key path like image.tag").split(".")),
        revision=need("REVISION", SHA, "a full 40-hex commit sha"),
        service=need("SERVICE", NAME, "a service name"),
        environment=need("ENVIRONMENT", NAME, "an environment name"),
        pr_number=need("PR_NUMBER", re.compile(r"^[0-9]*$"), "a pull request number or empty"),
        source_repo=source_repo,
        app_id=app_id,
        installation_id=installation_id,
        private_key_file=environ.get("PRIVATE_KEY_FILE") or DEFAULT_PRIVATE_KEY_FILE,
        github_api=check_api_url("GITHUB_API", environ.get("GITHUB_API") or "https://api.github.com"),
        max_attempts=max_attempts,
        backoff_seconds=backoff,
        timeout_seconds=timeout,
        remote_url=remote_url,
        credential_host=credential_host(remote_url),
    )


def credential_host(remote_url: str) -> str:
    """The host (and port) the credential helper may answer: that of an https remote, else none."""
    parts = urllib.parse.urlsplit(remote_url)
    return parts.netloc.rpartition("@")[2] if parts.scheme == "https" else ""


# ------------------------------------------------------------------ (a) installation token


def app_jwt(app_id: str, private_key_pem: str, now: float) -> str:
    """The App's JWT: RS256, issued 60 s in the past (clock drift), valid 10 minutes at most."""
    issued = int(now) - 60
    return jwt.encode({"iat": issued, "exp": issued + 600, "iss": app_id}, private_key_pem, algorithm="RS256")


def installation_token(
    api: str, app_id: str, installation_id: str, private_key_pem: str, repository: str, now: float | None = None,
    *, backoff: Backoff | None = None, deadline: Deadline | None = None,
) -> str:
    """Mint an installation token for `repository` (a name, no owner) with contents:write only.

    GitHub's 5xx and 429 (its Retry-After) and no answer at all are tried again with backoff.
    Ref: https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
    """
    deadline = deadline or Deadline(TOKEN_DEADLINE_SECONDS)
    try:
        token_jwt = app_jwt(app_id, private_key_pem, time.time() if now is None else now)
    except (ValueError, TypeError, jwt.PyJWTError):
        raise StepError("the GitHub App private key could not be used to sign a JWT (is it an RSA PEM key?)") from None
    body = json.dumps({"repositories": [repository], "permissions": {"contents": "write"}}).encode()
    request = urllib.request.Request(
        f"{api}/app/installations/{installation_id}/access_tokens",
        data=body,
        method="POST",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token_jwt}",
            "Content-Type": "application/json",
            "User-Agent": "release-pipeline-promote",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )

    def mint() -> bytes:
        response = fetch(request, deadline, timeout=30)
        if response.status != 201 and response.status != 200:
            detail = error_message(response.body)
            raise HTTPStatusError(f"GitHub refused the installation token: HTTP {response.status} {detail}".rstrip(),
                                  response)
        return response.body

    try:
        answer = retry(mint, what="minting the installation token", backoff=backoff or Backoff(4, 1.0),
                       deadline=deadline, transient=transient_http, log=log)
    except _retry.Unreachable as error:
        raise StepError(f"cannot reach the GitHub API at {api}: {error}") from None
    try:
        payload = json.loads(answer)
    except ValueError:
        payload = None
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise StepError("the GitHub API answered without a token")
    return token


# ------------------------------------------------------------------ (b, d, e) git


def credential_config() -> list[str]:
    """`git -c` options: no other credential helper, ours reading TOKEN_ENV, never a prompt."""
    return ["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}", "-c", "core.askPass="]


class Git:
    """git in one work tree, with the token only in the environment of the git process."""

    def __init__(self, workdir: str, token: str | None, host: str = "", deadline: Deadline | None = None) -> None:
        self.workdir = workdir
        self.deadline = deadline or Deadline(None)
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": BOT_NAME,
            "GIT_AUTHOR_EMAIL": BOT_EMAIL,
            "GIT_COMMITTER_NAME": BOT_NAME,
            "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        }
        self.env.pop(TOKEN_ENV, None)
        self.env[HOST_ENV] = host
        if token:
            self.env[TOKEN_ENV] = token

    def run(
        self, *args: str, check: bool = True, cwd: str | None = None, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        command = ["git", *credential_config(), "-c", "commit.gpgSign=false", *args]
        try:
            result = subprocess.run(
                command, cwd=cwd or self.workdir, env=self.env, input=stdin, capture_output=True, text=True,
                check=False, timeout=max(1.0, self.deadline.remaining()) if self.deadline.end != float("inf") else None,
            )
        except subprocess.TimeoutExpired:
            raise StepError(f"`git {args[0]}` did not finish within TIMEOUT_SECONDS") from None
        if check and result.returncode != 0:
            raise GitError(f"`git {args[0]}` failed ({result.returncode}): {result.stderr.strip()[-1000:]}", result)
        return result

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").stdout.strip()


class GitError(StepError):
    def __init__(self, message: str, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(message)
        self.result = result


def transient_git(error: Exception) -> float | None:
    """For `retry`: a clone or fetch that failed on the network or a GitHub hiccup."""
    return 0.0 if isinstance(error, GitError) and git_transient(error.result.stderr) else None


def push_outcome(result: subprocess.CompletedProcess[str]) -> str:
    """Classify a push: "ok", "retry" (the branch moved: someone pushed, or rolled it back, first;
    or the network failed), or "fail" (auth, ruleset, hook, ...)."""
    if result.returncode == 0:
        return "ok"
    output = result.stdout + result.stderr
    if "[rejected]" in output or re.search(r"stale info|cannot lock ref|failed to update ref|incorrect old value",
                                           output):
        return "retry"
    return "retry" if git_transient(result.stderr) else "fail"


def commit_message(config: Config) -> str:
    pr = ""
    if config.pr_number:
        pr = f"{config.source_repo}#{config.pr_number}" if config.source_repo else f"#{config.pr_number}"
    lines = [
        f"Release {config.service} to {config.environment} at {config.revision[:12]}",
        "",
        f"Set {'.'.join(config.key)} in {config.values_file} to {config.revision}.",
        "",
        f"Service: {config.service}",
        f"Environment: {config.environment}",
        f"Commit: {config.revision}",
    ]
    if pr:
        lines.append(f"Pull request: {pr}")
    return "\n".join(lines) + "\n"


def read_values_file(root: Path, config: Config) -> str:
    """The values file's text; StepError when it is missing, a symlink (on any part of its path:
    it could point outside the repository, and git would commit the link, not the edit),
    not a regular file or not UTF-8."""
    where = f"on {config.branch} of {config.helm_repo}"
    path = root
    for part in Path(config.values_file).parts:
        path = path / part
        try:
            mode = path.lstat().st_mode
        except OSError:
            raise StepError(f"{config.values_file} is not a file {where}") from None
        if stat.S_ISLNK(mode):
            raise StepError(f"{config.values_file} {where}: {path.relative_to(root)} is a symbolic link; "
                            "promote edits only regular files inside the repository (point VALUES_FILE at the "
                            "real file)")
    if not stat.S_ISREG(mode):
        raise StepError(f"{config.values_file} is not a file {where}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StepError(f"{config.values_file} {where} is not UTF-8 text (byte {error.start}: "
                        f"{data[error.start:error.start + 1]!r}); YAML values files must be UTF-8") from None


def apply_edit(git: Git, config: Config) -> bool:
    """Edit the values file in the work tree and commit; False when it already has the tag."""
    root = Path(git.workdir)
    text = read_values_file(root, config)
    new_text = set_yaml_value(text, config.key, config.revision)
    if new_text is None:
        return False
    # newline="": the text keeps its own line ends (a CRLF file stays CRLF).
    with open(root / config.values_file, "w", encoding="utf-8", newline="") as handle:
        handle.write(new_text)
    git.run("add", "--", config.values_file)
    git.run("commit", "--quiet", "--file=-", stdin=commit_message(config))
    return True


def promote(config: Config, token: str | None, workspace: str, deadline: Deadline | None = None) -> str:
    """Clone, edit, commit and push with bounded retries; return the commit carrying the tag.

    The push carries a lease on the commit it was made on (`--force-with-lease=<branch>:<that
    sha>`): if the branch moved in between, forward (another release) or back (a person's
    rollback by force-push), the push is refused and the edit is made again on the new tip,
    so a rollback is never fast-forwarded over.
    """
    deadline = deadline or Deadline(config.timeout_seconds)
    workdir = os.path.join(workspace, "repo")
    git = Git(workdir, token, config.credential_host, deadline)
    backoff = Backoff(config.max_attempts, config.backoff_seconds)
    branch = f"refs/heads/{config.branch}"
    log(f"cloning {config.remote_url} branch {config.branch}")

    def clone() -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        git.run("clone", "--quiet", "--depth=1", "--single-branch", f"--branch={config.branch}", "--",
                config.remote_url, workdir, cwd=workspace)

    def refetch() -> None:
        git.run("fetch", "--quiet", "--depth=1", "origin", f"+{branch}:refs/remotes/origin/{config.branch}")
        git.run("reset", "--quiet", "--hard", f"refs/remotes/origin/{config.branch}")

    retry(clone, what="git clone", backoff=backoff, deadline=deadline, transient=transient_git, log=log)
    for attempt in range(1, config.max_attempts + 1):
        if attempt > 1:
            pause = backoff.pause(attempt - 1)
            if pause >= deadline.remaining():
                break
            log(f"push refused: the branch moved; making the edit again on the new tip in {pause:.1f}s")
            time.sleep(pause)
            retry(refetch, what="git fetch", backoff=backoff, deadline=deadline, transient=transient_git, log=log)
        base = git.head()
        if not apply_edit(git, config):
            log(f"{'.'.join(config.key)} is already {config.revision} at {base}: nothing to push")
            return base
        result = git.run("push", "--porcelain", f"--force-with-lease={branch}:{base}", "origin", f"HEAD:{branch}",
                         check=False)
        outcome = push_outcome(result)
        if outcome == "ok":
            head = git.head()
            log(f"pushed {head} to {config.branch} (attempt {attempt})")
            return head
        if outcome == "fail":
            raise StepError(f"push to {config.branch} failed: {(result.stdout + result.stderr).strip()[-1000:]}")
    raise StepError(f"push to {config.branch} still refused after {attempt} attempt(s) (MAX_ATTEMPTS, TIMEOUT_SECONDS)")


def main() -> int:
    raise_on_signals()
    workspace = ""
    try:
        config = read_config(dict(os.environ))
        deadline = Deadline(config.timeout_seconds)
        token = None
        if config.app_id:
            try:
                private_key = Path(config.private_key_file).read_text()
            except OSError as error:
                raise StepError(f"cannot read PRIVATE_KEY_FILE {config.private_key_file}: {error.strerror}") from None
            repository = config.helm_repo.split("/", 1)[1]
            token = installation_token(
                config.github_api, config.app_id, config.installation_id, private_key, repository,
                backoff=Backoff(config.max_attempts, config.backoff_seconds), deadline=deadline,
            )
            log(f"minted an installation token for {config.helm_repo} (contents: write)")
        workspace = tempfile.mkdtemp(prefix="promote-")
        revision = promote(config, token, workspace, deadline)
        write_output("revision", revision)
    except StepError as error:
        log(f"error: {error}")
        return 1
    finally:
        ignore_signals()
        if workspace:
            shutil.rmtree(workspace, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
