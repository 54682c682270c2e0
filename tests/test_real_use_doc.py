"""The real-use procedure (docs/real-use.md) and every command the repository shows a person.

- No document, stack file or comment shows a secret typed on a command line: a
  `pulumi config set` of a secret key, or with `--secret`, must leave the value out (the
  CLI then prompts without echo, or reads standard input).
- The Pulumi CLI version the procedure installs is the one CI runs.
- The procedure's snippet that prints what a stack needs runs for every stack.
- Relative Markdown links between the README and docs/ reach a file and a heading.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config_keys import SECRETS

ROOT = Path(__file__).resolve().parent.parent
REAL_USE = ROOT / "docs" / "real-use.md"
STACKS = ("dev", "sandbox", "integration", "live")

# Where a shown command ends: a pipe, a redirect, a comment, the end of inline code, a list.
_COMMAND_END = re.compile(r"[|<>#`;&)]|\s\(")
# Options of `pulumi config set` (and the global ones) that take a value of their own.
_OPTIONS_WITH_VALUE = {"-s", "--stack", "--type", "--config-file", "-C", "--cwd", "--color", "-v", "--verbose",
                       "--tracing", "--profiling", "--memprofilerate"}


def secret_on_command_line(line: str) -> list[str]:
    """Each `config set` in ``line`` that puts a secret value on the command line, as shown."""
    found = []
    for match in re.finditer(r"\bconfig\s+set\b", line):
        # A placeholder such as `<value>` is a word, not a redirect.
        rest = re.sub(r"<[^<>\s|]+>", "PLACEHOLDER", line[match.end():])
        end = _COMMAND_END.search(rest)
        words = (rest[: end.start()] if end else rest).split()
        positional: list[str] = []
        secret = False
        options_done = False
        skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
            elif not options_done and word == "--":
                options_done = True
            elif not options_done and word.startswith("-"):
                secret = secret or word == "--secret"
                skip_next = word in _OPTIONS_WITH_VALUE
            else:
                positional.append(word)
        key = positional[0].split(":")[-1] if positional else ""
        if len(positional) > 1 and (secret or key in SECRETS):
            found.append(line[match.start():].strip())
    return found


@pytest.mark.parametrize("line", [
    "pulumi config set --secret slackToken xoxb-123",
    "#   pulumi config set --secret githubToken ...        (GitHub provider)",
    "pulumi config set --secret release-pipeline:slackToken -- xoxb-123",
    "pulumi config set slackToken xoxb-123 --secret",
    "pulumi config set release-pipeline:githubToken ghp_123",            # a secret key, even without --secret
    "pulumi config set --stack live --secret dbPassword S3cr37",
    "run `pulumi config set --secret ssoClientSecret <value>` once",
])
def test_the_check_finds_a_secret_value_on_a_command_line(line: str) -> None:
    assert secret_on_command_line(line)


@pytest.mark.parametrize("line", [
    "pulumi config set --secret slackToken",
    "pulumi config set --secret githubToken                 # prompts for it",
    "pulumi config set --secret helmWriterPrivateKey < dev-helm-writer.pem",
    "cat new.pem | pulumi config set --secret helmWriterPrivateKey",
    "pulumi config set --stack live --secret slackToken < slack-token",
    "| the Slack token | `pulumi config set --secret slackToken`, `pulumi up` |",
    "pulumi config set aws:region us-east-1",                             # not a secret
    "`pulumi config set --secret {name}`, ",
])
def test_the_check_lets_a_prompt_or_a_file_pass(line: str) -> None:
    assert secret_on_command_line(line) == []


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    suffixes = {".md", ".yaml", ".yml", ".py", ".txt", ".toml", ".sh", ""}
    return [
        ROOT / name for name in listed.split()
        if Path(name).suffix in suffixes and not name.startswith(("upstream/", "tests/")) and (ROOT / name).is_file()
    ]


def test_no_document_or_stack_file_shows_a_secret_on_a_command_line() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {shown}"
        for path in [*_tracked_text_files(), REAL_USE]
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        for shown in secret_on_command_line(line)
    ]
    assert found == []


def test_every_stack_file_says_how_to_set_each_secret_without_its_value() -> None:
    for stack in STACKS:
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
        shown = set(re.findall(r"^#\s+pulumi config set --secret (\w+)", text, re.M))
        assert shown == set(SECRETS), stack


def _ci_pulumi_versions() -> set[str]:
    versions = set()
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job in (yaml.safe_load(workflow.read_text(encoding="utf-8")).get("jobs") or {}).values():
            for step in job.get("steps") or []:
                if "pulumi-version" in (step.get("with") or {}):
                    versions.add(str(step["with"]["pulumi-version"]))
    return versions


def _real_use_section_of_readme() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Real use\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_the_procedure_installs_the_pulumi_cli_ci_runs() -> None:
    ci = _ci_pulumi_versions()
    assert len(ci) == 1, f"the workflows pin different Pulumi CLI versions: {sorted(ci)}"
    doc = REAL_USE.read_text(encoding="utf-8")
    installs = re.findall(r"curl -fsSL https://get\.pulumi\.com \| sh -s -- --version (\S+)", doc)
    assert installs, "docs/real-use.md installs the Pulumi CLI at a pinned version"
    shown = installs + re.findall(r"pulumi version\s+# v(\S+)", doc) + re.findall(r"\*\*version (\S+)\*\*", doc)
    shown += re.findall(r"version CI pins, (\d+\.\d+\.\d+)", _real_use_section_of_readme())
    assert len(shown) >= 4
    assert set(shown) == ci


def test_the_readme_real_use_section_leads_to_the_procedure() -> None:
    assert "](docs/real-use.md)" in _real_use_section_of_readme()


def test_the_procedure_says_it_has_not_been_run_against_a_real_account() -> None:
    assert "has not been run end to end against a real" in " ".join(REAL_USE.read_text(encoding="utf-8").split())


def _what_a_stack_needs_snippet() -> str:
    doc = REAL_USE.read_text(encoding="utf-8")
    found = re.search(r"^\.venv/bin/python - live <<'EOF'\n(.*?)^EOF$", doc, re.M | re.S)
    assert found, "the snippet that prints what a stack needs"
    return found.group(1)


@pytest.mark.parametrize("stack", STACKS)
def test_the_snippet_that_prints_what_a_stack_needs_runs(stack: str) -> None:
    ran = subprocess.run([sys.executable, "-", stack], input=_what_a_stack_needs_snippet(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    lines = dict(line.split(":", 1) for line in ran.stdout.splitlines())
    assert f"datacollect-{stack}" in lines["cluster, context"]
    assert "Appen/platform" in lines["GitHub teams"]
    assert ("Appen/release-managers" in lines["GitHub teams"]) == (stack == "live")


def _slug(heading: str) -> str:
    # GitHub's anchors: lower case, punctuation but '-' and '_' dropped, spaces to '-'.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_markdown_links_reach_a_file_and_a_heading() -> None:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    dead = []
    for document in documents:
        for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target):
                    continue  # https:, mailto:
                path, _, anchor = target.partition("#")
                linked = (document.parent / path).resolve() if path else document
                if not linked.exists():
                    dead.append(f"{document.relative_to(ROOT)}:{number}: {target}: no such file")
                elif anchor and linked.suffix == ".md":
                    text = linked.read_text(encoding="utf-8")
                    headings = re.findall(r"^#+ (.+)$", text, re.M)
                    explicit = set(re.findall(r'<a id="([^"]+)"></a>', text))  # docs/settings.md's anchors
                    if anchor not in {_slug(h) for h in headings} | explicit:
                        dead.append(f"{document.relative_to(ROOT)}:{number}: {target}: no such heading")
    assert dead == []
