"""scripts/promote.py, run for real against a local bare helm repository.

A concurrent release is simulated with a `post-commit` hook (given to git through
GIT_CONFIG_* variables, so the script itself has no test seam): right after the script
commits, the hook pushes a competing commit to the bare repository, so the script's
push is rejected exactly as GitHub would reject it. Token minting is checked against a
fake GitHub API on 127.0.0.1.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes import FakeServer, Request, base_env, fake_ssh, git, run_script, servers, ssh_calls

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "promote.py"
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
VALUES_PATH = "services/checkout/values-dev.yaml"
VALUES = """\
# Values of the checkout service in dev.
replicaCount: 0   # the Rollout runs the pods

image:
  repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/dev/checkout
  # set by the release pipeline
  tag: "0000000000000000000000000000000000000000"
  pullPolicy: IfNotPresent

env:
  - name: LOG_LEVEL
    value: 'info'
ingress:
  hosts:
  - host: checkout.dev.example.com
    paths: ["/"]
"""
@pytest.fixture
def helm(tmp_path: Path) -> Path:
    """A bare helm repository with branches `development` (the one promoted) and `main`."""
    bare = tmp_path / "helm.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(bare), str(work))
    (work / VALUES_PATH).parent.mkdir(parents=True)
    (work / VALUES_PATH).write_text(VALUES)
    (work / "services" / "other").mkdir()
    (work / "services" / "other" / "values.yaml").write_text("image:\n  tag: one\n")
    git(work, "add", ".")
    git(work, "commit", "--quiet", "-m", "seed")
    git(work, "push", "--quiet", "origin", "HEAD:main", "HEAD:development")
    return bare


def tip(bare: Path, branch: str = "development") -> str:
    return git(bare, "rev-parse", f"refs/heads/{branch}")


def show(bare: Path, path: str, ref: str = "development") -> str:
    return git(bare, "show", f"{ref}:{path}") + "\n"


def run(tmp_path: Path, bare: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = base_env(tmp_path) | {
        "GIT_CONFIG_NOSYSTEM": "1",
        "OUTPUT_DIR": str(tmp_path / "outputs"),
        "HELM_REPO": "acme/helm",
        "BRANCH": "development",
        "VALUES_FILE": VALUES_PATH,
        "KEY": "image.tag",
        "REVISION": SHA,
        "SERVICE": "checkout",
        "ENVIRONMENT": "dev",
        "PR_NUMBER": "42",
        "APP_ID": "",
        "REMOTE_URL": str(bare),
        "BACKOFF_SECONDS": "0",
    }
    return run_script("promote", {**base, **env}, timeout=120)


def output(tmp_path: Path) -> str | None:
    path = tmp_path / "outputs" / "revision"
    return path.read_text() if path.exists() else None


def test_sets_the_tag_and_keeps_everything_else(tmp_path, helm):
    before = tip(helm)
    result = run(tmp_path, helm)
    assert result.returncode == 0, result.stderr
    assert show(helm, VALUES_PATH) == VALUES.replace('tag: "0000000000000000000000000000000000000000"', f'tag: "{SHA}"')
    assert output(tmp_path) == tip(helm)
    assert git(helm, "rev-parse", "development^") == before
    assert tip(helm, "main") == before, "no other branch is touched"
    assert git(helm, "diff", "--name-only", before, "development") == VALUES_PATH


def test_commit_names_service_environment_sha_and_pr(tmp_path, helm):
    assert run(tmp_path, helm, SOURCE_REPO="acme/checkout").returncode == 0
    message = git(helm, "log", "-1", "--format=%B", "development")
    assert message.splitlines()[0] == f"Release checkout to dev at {SHA[:12]}"
    for expected in (
        "Service: checkout",
        "Environment: dev",
        f"Commit: {SHA}",
        "Pull request: acme/checkout#42",
        f"Set image.tag in {VALUES_PATH} to {SHA}.",
    ):
        assert expected in message
    people = git(helm, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "development")
    bot = "release-pipeline[bot] <release-pipeline[bot]@users.noreply.github.com>"
    assert people == f"{bot}|{bot}"


def test_pr_number_without_source_repo_and_push_without_pr(tmp_path, helm):
    assert run(tmp_path, helm).returncode == 0
    assert "Pull request: #42" in git(helm, "log", "-1", "--format=%B", "development")
    assert run(tmp_path, helm, REVISION="1" * 40, PR_NUMBER="").returncode == 0
    assert "Pull request" not in git(helm, "log", "-1", "--format=%B", "development")


def test_rerun_is_idempotent(tmp_path, helm):
    assert run(tmp_path, helm).returncode == 0
    first = tip(helm)
    result = run(tmp_path, helm)
    assert result.returncode == 0, result.stderr
    assert tip(helm) == first, "no second commit"
    assert output(tmp_path) == first
    assert "nothing to push" in result.stderr


HOOK = """#!/bin/sh
# post-commit: push a competing commit to the helm repository, as another release would.
[ -n "$COMPETING" ] && exit 0
{once}
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX
export COMPETING=1
work=$(mktemp -d)
git clone --quiet --branch development {bare} "$work/c" || exit 1
cd "$work/c"
n=$(git rev-list --count HEAD)
printf 'image:\\n  tag: competitor-%s\\n' "$n" > services/other/values.yaml
git -c user.name=Other -c user.email=other@example.com commit --quiet -am "other service $n"
git push --quiet origin HEAD:development
"""


def competing_hook(tmp_path: Path, bare: Path, once: bool) -> dict[str, str]:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "competed"
    once_line = f'[ -e "{marker}" ] && exit 0; touch "{marker}"' if once else ""
    (hooks / "post-commit").write_text(HOOK.format(bare=bare, once=once_line))
    (hooks / "post-commit").chmod(0o755)
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}


def test_a_concurrent_push_is_retried_and_both_changes_land(tmp_path, helm):
    seed = tip(helm)
    result = run(tmp_path, helm, **competing_hook(tmp_path, helm, once=True))
    assert result.returncode == 0, result.stderr
    assert "push refused: the branch moved" in result.stderr
    assert show(helm, "services/other/values.yaml") == "image:\n  tag: competitor-1\n"
    assert f'tag: "{SHA}"' in show(helm, VALUES_PATH)
    log = git(helm, "log", "--format=%s", "development").splitlines()
    assert log == [f"Release checkout to dev at {SHA[:12]}", "other service 1", "seed"]
    assert git(helm, "rev-parse", "development~2") == seed
    assert output(tmp_path) == tip(helm)


def test_gives_up_after_max_attempts(tmp_path, helm):
    result = run(tmp_path, helm, MAX_ATTEMPTS="3", **competing_hook(tmp_path, helm, once=False))
    assert result.returncode != 0
    assert "still refused after 3 attempt(s)" in result.stderr
    assert output(tmp_path) is None
    assert '"0000000000000000000000000000000000000000"' in show(helm, VALUES_PATH), "our change never landed"
    assert len(git(helm, "log", "--format=%s", "development").splitlines()) == 4  # seed + 3 competitors


def test_a_refused_push_is_not_retried(tmp_path, helm):
    hook = helm / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'ruleset: this App may not push here' >&2\nexit 1\n")
    hook.chmod(0o755)
    result = run(tmp_path, helm)
    assert result.returncode != 0
    assert "push to development failed" in result.stderr
    assert "retrying" not in result.stderr


def test_a_missing_values_file_fails(tmp_path, helm):
    result = run(tmp_path, helm, VALUES_FILE="services/nope/values.yaml")
    assert result.returncode != 0
    assert "is not a file" in result.stderr


def test_a_missing_branch_fails(tmp_path, helm):
    result = run(tmp_path, helm, BRANCH="release")
    assert result.returncode != 0
    assert "git clone" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REVISION", "main"),
        ("REVISION", SHA + "\n"),
        ("VALUES_FILE", "../values.yaml"),
        ("VALUES_FILE", "/etc/passwd"),
        ("VALUES_FILE", ""),
        ("KEY", "image..tag"),
        ("KEY", ""),
        ("BRANCH", "-delete"),
        ("BRANCH", "a..b"),
        ("HELM_REPO", "acme"),
        ("PR_NUMBER", "42; rm -rf /"),
        ("SERVICE", "Check Out"),
        ("MAX_ATTEMPTS", "0"),
        ("MAX_ATTEMPTS", "1.5"),
        ("MAX_ATTEMPTS", "five"),
        ("BACKOFF_SECONDS", "-1"),
        ("TIMEOUT_SECONDS", "0"),
        ("GITHUB_API", "http://api.github.com"),
        ("SOURCE_REPO", "not a repo"),
    ],
)
def test_refuses_bad_input(tmp_path, helm, name, value):
    before = tip(helm)
    result = run(tmp_path, helm, **{name: value})
    assert result.returncode != 0
    assert name in result.stderr
    assert tip(helm) == before


def test_without_remote_url_an_app_is_required(tmp_path, helm):
    result = run(tmp_path, helm, REMOTE_URL="")
    assert result.returncode != 0
    assert "APP_ID" in result.stderr


# ------------------------------------------------------------------ the YAML edit


def load_script():
    spec = importlib.util.spec_from_file_location("promote", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["promote"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('image:\n  tag: "old"  # pinned\n', f'image:\n  tag: "{SHA}"  # pinned\n'),
        ("image:\n  tag: 'old'\n", f"image:\n  tag: '{SHA}'\n"),
        ("image:\n  tag: old\n", f"image:\n  tag: {SHA}\n"),
        (
            "---\nimage:\n    tag: old\n    list:\n        - a\n",
            f"---\nimage:\n    tag: {SHA}\n    list:\n        - a\n",
        ),
        ("image: {repository: r, tag: old}\n", f"image: {{repository: r, tag: {SHA}}}\n"),
        ("image:\n  repository: r\n", f"image:\n  repository: r\n  tag: {SHA}\n"),
        ("# only a comment\nother: 1\n", f"# only a comment\nother: 1\nimage:\n  tag: {SHA}\n"),
        ("", f"image:\n  tag: {SHA}\n"),
    ],
)
def test_yaml_edit_keeps_the_file(before, after):
    assert load_script().set_yaml_value(before, ("image", "tag"), SHA) == after


def test_yaml_edit_quotes_a_sha_that_would_read_as_a_number():
    module = load_script()
    assert module.set_yaml_value("image:\n  tag: old\n", ("image", "tag"), "1" * 40) == f"image:\n  tag: '{'1' * 40}'\n"
    exponent = "1e" + "2" * 38
    assert module.set_yaml_value("image:\n  tag: old\n", ("image", "tag"), exponent) == f"image:\n  tag: '{exponent}'\n"


def test_yaml_edit_is_none_when_already_set():
    assert load_script().set_yaml_value(f'image:\n  tag: "{SHA}"\n', ("image", "tag"), SHA) is None


@pytest.mark.parametrize("text", ["image: not-a-map\n", "- a list\n", "image:\n  - tag\n"])
def test_yaml_edit_refuses_a_non_mapping(text):
    module = load_script()
    with pytest.raises(module.StepError):
        module.set_yaml_value(text, ("image", "tag"), SHA)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # An empty value is null: the tag goes after the colon, nothing else moves.
        ("image:\n  tag:\n  pullPolicy: IfNotPresent\n", f"image:\n  tag: {SHA}\n  pullPolicy: IfNotPresent\n"),
        ("image:\n  tag:   # set by CI\n  x: 1\n", f"image:\n  tag: {SHA}   # set by CI\n  x: 1\n"),
        ("image:\n  tag: ~\n", f"image:\n  tag: {SHA}\n"),
        ("image:\n  tag: null\n", f"image:\n  tag: {SHA}\n"),
        ('image:\r\n  tag: "old"\r\n  x: 1\r\n', f'image:\r\n  tag: "{SHA}"\r\n  x: 1\r\n'),
        # A missing key is one new line at the mapping's own indentation, after its last entry.
        (
            "image:\n    repository: r\n    list:\n      - a\n\n# next\nother: 1\n",
            f"image:\n    repository: r\n    list:\n      - a\n    tag: {SHA}\n\n# next\nother: 1\n",
        ),
        ("a: 1", f"a: 1\nimage:\n  tag: {SHA}\n"),
        # A merge key: the mapping gets its own tag, the anchor is untouched.
        (
            "defaults: &d\n  tag: old\napi:\n  image:\n    <<: *d\n",
            f"defaults: &d\n  tag: old\napi:\n  image:\n    <<: *d\n    tag: {SHA}\n",
        ),
    ],
)
def test_yaml_edit_of_empty_and_missing_values(before, after):
    keys = ("api", "image", "tag") if before.startswith("defaults") else ("image", "tag")
    assert load_script().set_yaml_value(before, keys, SHA) == after


ALIASED = """\
defaults: &img
  repository: r
  tag: old
api:
  image: *img
worker:
  image: *img
"""


@pytest.mark.parametrize(
    ("text", "keys", "anchor", "shared"),
    [
        (ALIASED, ("api", "image", "tag"), "&img", "api.image"),
        (ALIASED, ("defaults", "tag"), "&img", "defaults"),
        ("base: &t old\nimage:\n  tag: *t\n", ("image", "tag"), "&t", "image.tag"),
        ("defaults: &d\n  tag: old\napi:\n  image:\n    <<: *d\n", ("defaults", "tag"), "&d", "defaults"),
    ],
)
def test_yaml_edit_refuses_a_key_shared_through_an_anchor(text, keys, anchor, shared):
    module = load_script()
    with pytest.raises(module.StepError) as raised:
        module.set_yaml_value(text, keys, SHA)
    message = str(raised.value)
    assert ".".join(keys) in message and anchor in message and shared in message


def test_the_check_sees_a_change_made_through_an_alias():
    """A text that changes `worker` through the shared anchor is not "only api.image.tag changed"."""
    values = load_values_module()
    through_anchor = ALIASED.replace("tag: old", f"tag: {SHA}")
    assert not values._only_key_changed(ALIASED, through_anchor, ("api", "image", "tag"), SHA)
    own = ALIASED.replace("api:\n  image: *img", f"api:\n  image:\n    repository: r\n    tag: {SHA}")
    assert values._only_key_changed(ALIASED, own, ("api", "image", "tag"), SHA)


def load_values_module():
    load_script()  # puts scripts/ on sys.path
    import _values

    return _values


def big_values() -> str:
    parts = ["# many services in one file\n"]
    n = 0
    while sum(map(len, parts)) < 405_000:
        parts.append(
            f"service{n}:\n  # comment {n}\n  image:\n"
            f"    repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/s{n}\n"
            f"    tag: \"old{n}\"\n  env:\n    - name: A{n}\n      value: 'x'\n"
            f"  resources: {{limits: {{cpu: 1, memory: 1Gi}}}}\n  anchors: &a{n} {{k: v}}\n  alias: *a{n}\n"
        )
        n += 1
    return "".join(parts) + "image:\n  tag: old\n  pullPolicy: IfNotPresent\n"


def test_a_400_kb_values_file_is_edited_fast_and_on_one_line():
    module = load_script()
    text = big_values()
    assert len(text) >= 405_000
    started = time.process_time()
    new_text = module.set_yaml_value(text, ("service1000", "image", "tag"), SHA)
    elapsed = time.process_time() - started
    assert elapsed < 3, f"{elapsed:.1f}s of CPU for a 405 kB file"
    diff = [line for line in difflib.unified_diff(text.splitlines(), new_text.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert diff == ['-    tag: "old1000"', f'+    tag: "{SHA}"']


# ------------------------------------------------------------------ the installation token


class FakeGitHub(FakeServer):
    """POST /app/installations/<id>/access_tokens: records the request, answers `status` with `answer`."""

    methods = ("POST",)

    def __init__(self, status: int = 201, answer: dict | None = None) -> None:
        self.requests: list[dict] = []
        self.status, self.reply = status, answer
        super().__init__()

    def answer(self, request: Request) -> tuple[int, dict]:
        self.requests.append({"path": request.path, "headers": request.headers, "body": request.json()})
        return self.status, self.reply or {}


@pytest.fixture(scope="module")
def app_key() -> tuple[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


TOKEN = "ghs_FAKEinstallationTOKEN0123456789"


@pytest.fixture
def github():
    yield from servers(FakeGitHub)


def test_installation_token_request(app_key, github):
    pem, public_key = app_key
    api = github(answer={"token": TOKEN, "expires_at": "2030-01-01T00:00:00Z"})
    now = time.time()
    token = load_script().installation_token(api.url, "12345", "678", pem, "helm")
    assert token == TOKEN
    [request] = api.requests
    assert request["path"] == "/app/installations/678/access_tokens"
    assert request["body"] == {"repositories": ["helm"], "permissions": {"contents": "write"}}
    assert request["headers"]["accept"] == "application/vnd.github+json"
    assert request["headers"]["x-github-api-version"] == "2022-11-28"
    scheme, _, token_jwt = request["headers"]["authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token_jwt)["alg"] == "RS256"
    claims = jwt.decode(token_jwt, public_key, algorithms=["RS256"], issuer="12345")
    assert claims["iss"] == "12345"
    assert now - 70 <= claims["iat"] <= now - 50, "issued 60 s in the past"
    assert claims["exp"] - claims["iat"] <= 600, "valid ten minutes at most"
    assert claims["exp"] > now


def test_token_refused_by_github(app_key, github):
    pem, _ = app_key
    module = load_script()
    api = github(status=401, answer={"message": "A JSON web token could not be decoded"})
    with pytest.raises(module.StepError, match="HTTP 401 A JSON web token could not be decoded"):
        module.installation_token(api.url, "12345", "678", pem, "helm")


def test_a_bad_private_key_fails_without_printing_it(app_key, github):
    module = load_script()
    with pytest.raises(module.StepError) as raised:
        module.installation_token(github().url, "12345", "678", "-----BEGIN RSA PRIVATE KEY-----\nnope\n", "helm")
    assert "nope" not in str(raised.value)


def test_promote_with_an_app_never_shows_the_token_or_the_key(tmp_path, helm, app_key, github):
    pem, _ = app_key
    key_file = tmp_path / "private-key"
    key_file.write_text(pem)
    api = github(answer={"token": TOKEN})
    result = run(
        tmp_path, helm, APP_ID="12345", INSTALLATION_ID="678", PRIVATE_KEY_FILE=str(key_file), GITHUB_API=api.url
    )
    assert result.returncode == 0, result.stderr
    assert len(api.requests) == 1
    assert f'tag: "{SHA}"' in show(helm, VALUES_PATH)
    printed = result.stdout + result.stderr
    assert TOKEN not in printed
    assert api.requests[0]["headers"]["authorization"].split()[1] not in printed
    for line in pem.splitlines()[1:-1]:
        assert line not in printed


def test_promote_fails_when_github_refuses_the_token(tmp_path, helm, app_key, github):
    pem, _ = app_key
    key_file = tmp_path / "private-key"
    key_file.write_text(pem)
    api = github(status=403, answer={"message": "Resource not accessible by integration"})
    before = tip(helm)
    result = run(
        tmp_path, helm, APP_ID="12345", INSTALLATION_ID="678", PRIVATE_KEY_FILE=str(key_file), GITHUB_API=api.url
    )
    assert result.returncode != 0
    assert "HTTP 403" in result.stderr
    assert tip(helm) == before


def credential_fill(tmp_path: Path, module, request: str) -> subprocess.CompletedProcess[str]:
    """git itself asks the script's credential helper, as it would for a clone, push or redirect."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
           module.TOKEN_ENV: TOKEN, module.HOST_ENV: "github.com"}
    return subprocess.run(["git", *module.credential_config(), "credential", "fill"], input=request, env=env,
                          capture_output=True, text=True, check=False)


def test_the_credential_helper_hands_the_token_to_git_from_the_environment(tmp_path):
    module = load_script()
    assert all("ghs_" not in option for option in module.credential_config())
    result = credential_fill(tmp_path, module, "protocol=https\nhost=github.com\npath=acme/helm.git\n\n")
    assert result.returncode == 0, result.stderr
    assert "username=x-access-token" in result.stdout
    assert f"password={TOKEN}" in result.stdout


@pytest.mark.parametrize(
    "request_",
    [
        "protocol=http\nhost=github.com\n\n",  # plain http: the token would cross the network in clear
        "protocol=https\nhost=127.0.0.2:8443\n\n",  # a redirect to another host
        "protocol=https\nhost=github.com.evil.example\n\n",
        "protocol=https\nhost=api.github.com\n\n",
        "protocol=https\nhost=github.com:444\n\n",
        "protocol=ssh\nhost=github.com\n\n",
        "host=github.com\nprotocol=https-not\n\n",
    ],
)
def test_the_credential_helper_answers_no_other_host_or_protocol(tmp_path, request_):
    result = credential_fill(tmp_path, load_script(), request_)
    assert TOKEN not in result.stdout + result.stderr
    assert "x-access-token" not in result.stdout
    assert result.returncode != 0, "git found no credential and may not prompt"


def test_the_credential_host_is_the_https_remotes_own():
    module = load_script()
    assert module.credential_host("https://github.com/acme/helm.git") == "github.com"
    assert module.credential_host("https://x@git.example.com:8443/acme/helm.git") == "git.example.com:8443"
    assert module.credential_host("http://github.com/acme/helm.git") == ""
    assert module.credential_host("/srv/helm.git") == ""


# ------------------------------------------------------------------ other writers of the branch


ROLLBACK_HOOK = """#!/bin/sh
# post-commit: between promote's fetch and its push, a person rolls the branch back by force.
[ -e "{marker}" ] && exit 0
touch "{marker}"
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX
git --git-dir="{bare}" update-ref refs/heads/development {rollback}
"""


def test_a_concurrent_rollback_by_force_push_is_not_undone(tmp_path, helm):
    seed = tip(helm)
    # A bad change lands on the branch; promote clones it; meanwhile a person rolls it back.
    work = tmp_path / "person"
    git(tmp_path, "clone", "--quiet", "--branch", "development", str(helm), str(work))
    (work / "services" / "other" / "values.yaml").write_text("image:\n  tag: broken\n")
    git(work, "commit", "--quiet", "-am", "bad change")
    git(work, "push", "--quiet", "origin", "HEAD:development")
    bad = tip(helm)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "post-commit").write_text(ROLLBACK_HOOK.format(marker=tmp_path / "rolled-back", bare=helm, rollback=seed))
    (hooks / "post-commit").chmod(0o755)
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}

    result = run(tmp_path, helm, **env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rolled-back").exists(), "the rollback happened between fetch and push"
    assert "push refused: the branch moved" in result.stderr
    assert git(helm, "rev-parse", "development^") == seed, "our commit sits on the rolled-back tip"
    assert subprocess.run(["git", "--git-dir", str(helm), "merge-base", "--is-ancestor", bad, "development"],
                          check=False).returncode == 1, "the rolled-back commit is not brought back"
    assert show(helm, "services/other/values.yaml") == "image:\n  tag: one\n"
    assert f'tag: "{SHA}"' in show(helm, VALUES_PATH)


# ------------------------------------------------------------------ transient failures


class FlakyGitHub(FakeGitHub):
    """Answers the first `failures` requests with `status` (and Retry-After 0), then mints."""

    def __init__(self, failures: int, status: int = 502) -> None:
        self.failures, self.fail_status = failures, status
        super().__init__(answer={"token": TOKEN})

    def answer(self, request: Request) -> tuple[int, bytes, str] | tuple[int, dict]:
        self.requests.append({"path": request.path})
        if len(self.requests) <= self.failures:
            return self.fail_status, b'{"message": "Server Error"}', "application/json"
        return 201, {"token": TOKEN}


def test_a_token_mint_answering_502_is_retried(app_key):
    pem, _ = app_key
    module = load_script()
    api = FlakyGitHub(failures=2)
    try:
        token = module.installation_token(api.url, "12345", "678", pem, "helm",
                                           backoff=module.Backoff(4, 0.01), deadline=module.Deadline(30))
    finally:
        api.close()
    assert token == TOKEN
    assert len(api.requests) == 3


def test_a_token_mint_refusal_is_not_retried(app_key):
    pem, _ = app_key
    module = load_script()
    api = FlakyGitHub(failures=5, status=401)
    try:
        with pytest.raises(module.StepError, match="HTTP 401"):
            module.installation_token(api.url, "12345", "678", pem, "helm", backoff=module.Backoff(4, 0.01))
    finally:
        api.close()
    assert len(api.requests) == 1


def test_a_token_mint_that_keeps_failing_gives_up_after_max_attempts(app_key):
    pem, _ = app_key
    module = load_script()
    api = FlakyGitHub(failures=100, status=503)
    try:
        with pytest.raises(module.StepError, match="HTTP 503"):
            module.installation_token(api.url, "12345", "678", pem, "helm", backoff=module.Backoff(3, 0.01))
    finally:
        api.close()
    assert len(api.requests) == 3


def test_a_transient_clone_failure_is_retried(tmp_path, helm):
    bin_dir = tmp_path / "bin"
    ssh = fake_ssh(bin_dir, tmp_path, fail_first=1)
    result = run(tmp_path, helm, REMOTE_URL="git@example.invalid:helm.git", GIT_SSH_COMMAND=str(ssh),
                 BACKOFF_SECONDS="0.05")
    assert result.returncode == 0, result.stderr
    assert "git clone" in result.stderr and "trying again" in result.stderr
    assert f'tag: "{SHA}"' in show(helm, VALUES_PATH)
    assert len(ssh_calls(bin_dir)) == 3  # failed clone, clone, push


# ------------------------------------------------------------------ values files that are not plain


def test_a_symlinked_values_file_is_refused(tmp_path, helm):
    work = tmp_path / "person"
    git(tmp_path, "clone", "--quiet", "--branch", "development", str(helm), str(work))
    (work / "services" / "linked.yaml").symlink_to("checkout/values-dev.yaml")
    git(work, "add", ".")
    git(work, "commit", "--quiet", "-m", "a link")
    git(work, "push", "--quiet", "origin", "HEAD:development")
    before = tip(helm)
    result = run(tmp_path, helm, VALUES_FILE="services/linked.yaml")
    assert result.returncode == 1
    assert "services/linked.yaml is a symbolic link" in result.stderr
    assert tip(helm) == before


def test_a_values_file_that_is_not_utf8_is_refused_clearly(tmp_path, helm):
    work = tmp_path / "person"
    git(tmp_path, "clone", "--quiet", "--branch", "development", str(helm), str(work))
    (work / VALUES_PATH).write_bytes("# Caf\u00e9\nimage:\n  tag: old\n".encode("latin-1"))
    git(work, "commit", "--quiet", "-am", "latin-1")
    git(work, "push", "--quiet", "origin", "HEAD:development")
    result = run(tmp_path, helm)
    assert result.returncode == 1
    assert "is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr
