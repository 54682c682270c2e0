"""Set the service's image tag on this environment's branch of the helm (GitOps) repository.

Step script of the release Workflow (docs/release-contract.md, sections 2 and 4); runs in
the `release-tools` image as `python3 promote.py`, under a Workflow mutex per helm
repository and branch:

    HELM_REPO         owner/name of the helm repository on GitHub
    BRANCH            this environment's branch of it
    VALUES_FILE       values file to edit, relative to the repository root
    KEY               dotted path of the tag in it, e.g. image.tag
    REVISION          full commit sha (40 lowercase hex): the new tag
    SERVICE           service name (commit message)
    ENVIRONMENT       environment name (commit message)
    PR_NUMBER         source pull request number, "" for a push (commit message)
    SOURCE_REPO       optional owner/name of the source repository, so the message
                      links `owner/name#<n>` instead of a bare `#<n>`
    APP_ID            GitHub App id (this environment's helm writer)
    INSTALLATION_ID   its installation id on the helm repository's owner
    PRIVATE_KEY_FILE  its private key (PEM), default /etc/release-pipeline/github-app/private-key
    GITHUB_API        default https://api.github.com
    MAX_ATTEMPTS      pushes to try before failing, default 5
    BACKOFF_SECONDS   base of the pause between attempts, default 2
    REMOTE_URL        replaces https://github.com/HELM_REPO.git (tests: a local bare
                      repository; then an empty APP_ID skips minting a token)
    OUTPUT_DIR        where outputs go, default /tmp/outputs

Output: `$OUTPUT_DIR/revision`, the helm repository commit that carries the tag: the
one pushed, or the branch tip when the tag was already REVISION (idempotent rerun).

How: (a) mint a one-hour installation token scoped to the one repository with
`contents: write` only, from a ten-minute RS256 JWT signed with the App's key; (b)
clone the branch at depth 1 over HTTPS, git getting the token from a credential helper
that reads it from an environment variable (never the URL, an argument or a log);
(c) set KEY with a ruamel.yaml round-trip edit that keeps comments, key order, quotes
and indentation; (d) commit as release-pipeline[bot]; (e) push.

On a rejected push (someone pushed first) the step fetches the new tip, *resets* to
it and re-applies the same structured edit, then pushes again, at most MAX_ATTEMPTS
times with a growing pause. Reset-and-reapply rather than rebase: the edit is a pure
function of the file ("KEY becomes REVISION"), so re-applying it on the new tip can
never conflict, whereas a rebase of the textual diff conflicts whenever the other
commit touched neighbouring lines of the same file; and when the new tip already has
the tag (a rerun raced itself) there is simply nothing left to push.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jwt
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
import _common
from _common import GITHUB_REPO, SHA, StepError, api_base, error_message, write_output

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KEY = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
DEFAULT_PRIVATE_KEY_FILE = "/etc/release-pipeline/github-app/private-key"
BOT_NAME = "release-pipeline[bot]"
BOT_EMAIL = "release-pipeline[bot]@users.noreply.github.com"
# The credential helper reads the token from this variable of git's environment.
TOKEN_ENV = "RELEASE_PIPELINE_GIT_TOKEN"
CREDENTIAL_HELPER = (
    f'!f() {{ test "$1" = get || return 0; echo username=x-access-token; printf "password=%s\\n" "${TOKEN_ENV}"; }}; f'
)


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
    remote_url: str


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
    try:
        max_attempts = int(environ.get("MAX_ATTEMPTS") or "5")
        backoff = float(environ.get("BACKOFF_SECONDS") or "2")
    except ValueError:
        raise StepError("MAX_ATTEMPTS must be an integer and BACKOFF_SECONDS a number") from None
    if not 1 <= max_attempts <= 20 or not 0 <= backoff <= 60:
        raise StepError("MAX_ATTEMPTS must be 1..20 and BACKOFF_SECONDS 0..60")
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
        remote_url=remote_url or f"https://github.com/{helm_repo}.git",
    )


# ------------------------------------------------------------------ (a) installation token


def app_jwt(app_id: str, private_key_pem: str, now: float) -> str:
    """The App's JWT: RS256, issued 60 s in the past (clock drift), valid 10 minutes at most."""
    issued = int(now) - 60
    return jwt.encode({"iat": issued, "exp": issued + 600, "iss": app_id}, private_key_pem, algorithm="RS256")


def installation_token(
    api: str, app_id: str, installation_id: str, private_key_pem: str, repository: str, now: float | None = None
) -> str:
    """Mint an installation token for `repository` (a name, no owner) with contents:write only.

    Ref: https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
    """
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
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as error:
        detail = error_message(error)
        raise StepError(f"GitHub refused the installation token: HTTP {error.code} {detail}".rstrip()) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise StepError(f"cannot reach the GitHub API at {api}: {reason}") from None
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise StepError("the GitHub API answered without a token")
    return token


# ------------------------------------------------------------------ (c) the YAML edit
#
# The edit is structural: ruamel.yaml (round-trip mode) parses the file, finds KEY and
# tells where its value sits. When the value exists on one line, only that scalar's
# characters are replaced, in its own quote style, so nothing else in the file can
# move (ruamel can re-dump a file with only one indentation scheme, and real values
# files mix several). The result is parsed again and must equal the original data
# with just KEY changed. When keys must be created, the document is dumped by ruamel
# with the indentation under which the unmodified file re-dumps most faithfully.

# (mapping, sequence, offset) indentations tried for a full dump.
INDENT_CANDIDATES = [(m, o + 2, o) for m in (2, 4, 3) for o in (0, 2, m)]


def _yaml(mapping: int = 2, sequence: int = 2, offset: int = 0, explicit_start: bool = False) -> YAML:
    yaml = YAML()  # round-trip: comments, key order and quoting survive load + dump
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.explicit_start = explicit_start
    return yaml


def _load(text: str) -> object:
    try:
        return _yaml().load(text) if text.strip() else None
    except YAMLError as error:
        raise StepError(f"the values file is not valid YAML: {error}") from None


def _dump(yaml: YAML, data: object) -> str:
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _changed_lines(a: str, b: str) -> int:
    matcher = difflib.SequenceMatcher(a=a.splitlines(), b=b.splitlines(), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def _navigate(data: object, keys: tuple[str, ...], create: bool) -> CommentedMap | None:
    """The mapping that holds the last key, creating missing ones when `create`; None if absent."""
    if not isinstance(data, dict):
        raise StepError("the values file's top level is not a mapping")
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None and create:
            child = node[key] = CommentedMap()
        if child is None:
            return None
        if not isinstance(child, dict):
            raise StepError(f"{'.'.join(keys[: depth + 1])} is not a mapping in the values file")
        node = child
    return node  # type: ignore[return-value]


def _new_scalar(old: object, value: str) -> object:
    """The new value in the old one's quote style (plain stays plain unless YAML needs quotes)."""
    if isinstance(old, DoubleQuotedScalarString | SingleQuotedScalarString):
        return type(old)(value)
    return value


def _render_scalar(scalar: object) -> str:
    """How ruamel writes `scalar` as a mapping value (it quotes a plain string that would read as a number)."""
    text = _dump(_yaml(), {"k": scalar})
    if not text.startswith("k: ") or text.count("\n") != 1:
        raise StepError("cannot render the new value on one line")
    return text[3:-1]


def _scalar_end(line: str, start: int, flow: bool) -> int:
    """Index just past the scalar token that starts at `start` in `line`."""
    quote = line[start]
    if quote == '"':
        i = start + 1
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == '"':
                return i + 1
            i += 1
        return -1
    if quote == "'":
        i = start + 1
        while i < len(line):
            if line[i] == "'":
                if line[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        return -1
    end = len(line)
    comment = line.find(" #", start)
    if comment != -1:
        end = comment
    if flow:
        for stop in ",}]":
            found = line.find(stop, start)
            if found != -1:
                end = min(end, found)
    return len(line[:end].rstrip())


def _splice(text: str, holder: CommentedMap, leaf: str, scalar: object) -> str | None:
    """Replace the value of `leaf` in place in `text`; None if it does not sit on one line."""
    try:
        line_no, col = holder.lc.value(leaf)
    except (KeyError, TypeError, AttributeError):
        return None
    lines = text.splitlines(keepends=True)
    if line_no >= len(lines):
        return None
    line = lines[line_no]
    if col >= len(line) or line[col] in "|>&*!{[":
        return None  # block scalar, anchor, alias, tag or collection: not a one-line scalar
    end = _scalar_end(line.rstrip("\r\n"), col, flow=holder.fa.flow_style())
    if end <= col:
        return None
    lines[line_no] = line[:col] + _render_scalar(scalar) + line[end:]
    return "".join(lines)


def _full_dump(text: str, data: object) -> str:
    first_line = next((line for line in text.splitlines() if line.strip() and not line.startswith("#")), "")
    explicit_start = first_line.startswith("---")
    best: tuple[int, YAML] | None = None
    for mapping, sequence, offset in INDENT_CANDIDATES if text.strip() else INDENT_CANDIDATES[:1]:
        yaml = _yaml(mapping, sequence, offset, explicit_start)
        score = _changed_lines(text, _dump(yaml, yaml.load(text))) if text.strip() else 0
        if best is None or score < best[0]:
            best = (score, yaml)
        if score == 0:
            break
    assert best is not None
    if best[0]:
        log(f"warning: adding the key reformats {best[0]} other line(s) of the values file")
    return _dump(best[1], data)


def set_yaml_value(text: str, keys: tuple[str, ...], value: str) -> str | None:
    """`text` with `keys` set to `value`, or None when it already is `value`.

    Creates missing intermediate maps; keeps the old value's quote style. Raises
    StepError when the document or a key on the path is not a mapping.
    """
    data = _load(text)
    if data is None:
        data = CommentedMap()
    holder = _navigate(data, keys, create=False)
    leaf = keys[-1]
    current = holder.get(leaf) if holder is not None else None
    if current is not None and str(current) == value:
        return None

    expected = _load(text) or CommentedMap()
    expected_holder = _navigate(expected, keys, create=True)
    assert expected_holder is not None
    expected_holder[leaf] = _new_scalar(current, value)

    new_text = None
    if holder is not None and leaf in holder and not isinstance(current, dict | list):
        new_text = _splice(text, holder, leaf, _new_scalar(current, value))
    if new_text is None or _load(new_text) != expected:
        new_text = _full_dump(text, expected)
    if _load(new_text) != expected:
        raise StepError(f"could not set {'.'.join(keys)} in the values file without changing other values")
    return new_text


# ------------------------------------------------------------------ (b, d, e) git


def credential_config() -> list[str]:
    """`git -c` options: no other credential helper, ours reading TOKEN_ENV, never a prompt."""
    return ["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}", "-c", "core.askPass="]


class Git:
    """git in one work tree, with the token only in the environment of the git process."""

    def __init__(self, workdir: str, token: str | None) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": BOT_NAME,
            "GIT_AUTHOR_EMAIL": BOT_EMAIL,
            "GIT_COMMITTER_NAME": BOT_NAME,
            "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        }
        self.env.pop(TOKEN_ENV, None)
        if token:
            self.env[TOKEN_ENV] = token

    def run(
        self, *args: str, check: bool = True, cwd: str | None = None, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        command = ["git", *credential_config(), "-c", "commit.gpgSign=false", *args]
        result = subprocess.run(
            command, cwd=cwd or self.workdir, env=self.env, input=stdin, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise StepError(f"`git {args[0]}` failed ({result.returncode}): {result.stderr.strip()[-1000:]}")
        return result

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").stdout.strip()


def push_outcome(result: subprocess.CompletedProcess[str]) -> str:
    """Classify a push: "ok", "retry" (someone pushed first) or "fail" (auth, ruleset, hook, ...)."""
    if result.returncode == 0:
        return "ok"
    output = result.stdout + result.stderr
    if "[rejected]" in output or re.search(r"cannot lock ref|failed to update ref|incorrect old value", output):
        return "retry"
    return "fail"


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


def apply_edit(git: Git, config: Config) -> bool:
    """Edit the values file in the work tree and commit; False when it already has the tag."""
    root = Path(git.workdir).resolve()
    path = (root / config.values_file).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise StepError(f"{config.values_file} is not a file on {config.branch} of {config.helm_repo}")
    with open(path, encoding="utf-8", newline="") as handle:  # newline="": CRLF files stay CRLF
        text = handle.read()
    new_text = set_yaml_value(text, config.key, config.revision)
    if new_text is None:
        return False
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(new_text)
    git.run("add", "--", config.values_file)
    git.run("commit", "--quiet", "--file=-", stdin=commit_message(config))
    return True


def promote(config: Config, token: str | None, workspace: str) -> str:
    """Clone, edit, commit and push with bounded retries; return the commit carrying the tag."""
    workdir = os.path.join(workspace, "repo")
    git = Git(workdir, token)
    log(f"cloning {config.remote_url} branch {config.branch}")
    git.run(
        "clone",
        "--quiet",
        "--depth=1",
        "--single-branch",
        f"--branch={config.branch}",
        "--",
        config.remote_url,
        workdir,
        cwd=workspace,
    )
    for attempt in range(1, config.max_attempts + 1):
        if attempt > 1:
            pause = config.backoff_seconds * (attempt - 1) + random.uniform(0, config.backoff_seconds)
            log(f"push rejected: the branch moved; retrying on the new tip in {pause:.1f}s")
            time.sleep(pause)
            git.run("fetch", "--quiet", "--depth=1", "origin", config.branch)
            git.run("reset", "--quiet", "--hard", "FETCH_HEAD")
        if not apply_edit(git, config):
            head = git.head()
            log(f"{'.'.join(config.key)} is already {config.revision} at {head}: nothing to push")
            return head
        result = git.run("push", "--porcelain", "origin", f"HEAD:refs/heads/{config.branch}", check=False)
        outcome = push_outcome(result)
        if outcome == "ok":
            head = git.head()
            log(f"pushed {head} to {config.branch} (attempt {attempt})")
            return head
        if outcome == "fail":
            raise StepError(f"push to {config.branch} failed: {(result.stdout + result.stderr).strip()[-1000:]}")
    raise StepError(f"push to {config.branch} still rejected after {config.max_attempts} attempts")


def main() -> int:
    try:
        config = read_config(dict(os.environ))
        token = None
        if config.app_id:
            try:
                private_key = Path(config.private_key_file).read_text()
            except OSError as error:
                raise StepError(f"cannot read PRIVATE_KEY_FILE {config.private_key_file}: {error.strerror}") from None
            repository = config.helm_repo.split("/", 1)[1]
            token = installation_token(
                config.github_api, config.app_id, config.installation_id, private_key, repository
            )
            log(f"minted an installation token for {config.helm_repo} (contents: write)")
        workspace = tempfile.mkdtemp(prefix="promote-")
        try:
            revision = promote(config, token, workspace)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        write_output("revision", revision)
    except StepError as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
