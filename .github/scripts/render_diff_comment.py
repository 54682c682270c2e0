"""Turn the diff of two offline renders into the text of the pull request's render comment.

Run by the `render` job of `.github/workflows/pull-request.yml` after
`diff -ruN base head` over `make render` of the base and of the pull request:

    python3 render_diff_comment.py --diff render.diff --out comment.md \
        --base-outcome success --head-outcome success \
        --base-sha SHA --head-sha SHA --run-url URL

Writes Markdown: a per-file summary, then the diff in a fenced block, cut at a line
boundary to stay inside GitHub's comment limit (65,536 characters) with a note
saying so. The hidden marker that finds the comment again is added by the job that
posts it, not here. Standard library only: it runs on the runner's Python, before
and apart from the project's virtualenv.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

# GitHub refuses comment bodies over 65,536 characters; leave room for the marker.
MAX_CHARS = 60_000
TITLE = "### Offline render diff"


def file_stats(diff: str) -> list[tuple[str, int, int]]:
    """(path under the render directory, lines added, lines removed) for each file in a ``diff -ruN``."""
    stats: list[tuple[str, int, int]] = []
    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("diff "):
            # diff -ruN base/dev/manifests.yaml head/dev/manifests.yaml
            stats.append((line.split()[-1].partition("/")[2], 0, 0))
            in_hunk = False
        elif line.startswith("@@"):
            in_hunk = True
        elif stats and in_hunk and line[:1] in "+-":
            name, added, removed = stats[-1]
            stats[-1] = (name, added + (line[0] == "+"), removed + (line[0] == "-"))
    return stats


def without_timestamps(diff: str) -> str:
    """Drop the file times from the ``---``/``+++`` header lines, so each push's comment shows only content."""
    out, header = [], 0
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff "):
            header = 2
        elif header and line.startswith(("--- ", "+++ ")):
            header -= 1
            name, tab, _ = line.partition("\t")
            line = name + "\n" if tab else line
        out.append(line)
    return "".join(out)


def fence_for(text: str) -> str:
    """A backtick fence longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def build(diff: str, *, base_outcome: str, head_outcome: str, base_sha: str, head_sha: str,
          run_url: str, max_chars: int = MAX_CHARS) -> str:
    diff = without_timestamps(diff)
    base, head = base_sha[:12], head_sha[:12]
    lines = [f"{TITLE} (`{base}` → `{head}`)", ""]
    if head_outcome != "success":
        lines += [
            f"**`make render` failed on this pull request** ({head}); there is no diff to show. "
            f"See the *Render head* step of [the run]({run_url}).",
        ]
        return "\n".join(lines) + "\n"
    if base_outcome != "success":
        lines += [
            f"> The base ({base}) did not render, so everything below is shown as added. "
            f"See the *Render base* step of [the run]({run_url}).",
            "",
        ]
    stats = file_stats(diff)
    if not stats:
        lines.append("No change in the rendered manifests or resources of any stack.")
        return "\n".join(lines) + "\n"
    added, removed = sum(s[1] for s in stats), sum(s[2] for s in stats)
    lines += [
        f"{len(stats)} file(s) changed, +{added} −{removed} lines. "
        "Every stack rendered offline from the same inputs; secret values show as `[secret]`.",
        "",
        "| file | + | − |",
        "|---|---:|---:|",
        *(f"| `{name}` | {a} | {r} |" for name, a, r in stats),
        "",
    ]
    fence = fence_for(diff)
    head_text = "\n".join(lines) + f"\n<details open><summary>diff</summary>\n\n{fence}diff\n"
    tail_text = f"{fence}\n</details>\n"
    budget = max_chars - len(head_text) - len(tail_text) - 300  # the truncation note
    diff_lines = diff.splitlines(keepends=True)
    shown, used = [], 0
    for line in diff_lines:
        if used + len(line) > budget:
            break
        shown.append(line)
        used += len(line)
    body = "".join(shown)
    if body and not body.endswith("\n"):
        body += "\n"
    note = ""
    if len(shown) < len(diff_lines):
        note = (
            f"\n**Diff truncated:** showing {len(shown)} of {len(diff_lines)} lines. "
            f"The whole diff is the `render-diff` artifact of [this run]({run_url}).\n"
        )
    return head_text + body + tail_text + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diff", type=Path, required=True, help="output of diff -ruN base head")
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    parser.add_argument("--base-outcome", default="success", help="outcome of the base render step")
    parser.add_argument("--head-outcome", default="success", help="outcome of the head render step")
    parser.add_argument("--base-sha", default="base")
    parser.add_argument("--head-sha", default="head")
    parser.add_argument("--run-url", default="")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS)
    args = parser.parse_args(argv)
    diff = args.diff.read_text(encoding="utf-8", errors="replace") if args.diff.exists() else ""
    args.out.write_text(
        build(diff, base_outcome=args.base_outcome, head_outcome=args.head_outcome, base_sha=args.base_sha,
              head_sha=args.head_sha, run_url=args.run_url, max_chars=args.max_chars),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
