"""What verify found, and how it is shown: findings, the summary table, the exit code.

Owns: the `Finding` and `StackReport` records every check module fills, the one-table
summary (stack, objects applied, refused, RBAC checks, admission checks, lint
findings) and the exit code: 0 every check holds, 1 a check fails. (2, unusable input,
is decided before any check runs: `components.verify.runner`.)

Does not own: running the checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2


@dataclass(frozen=True)
class Finding:
    """One check that does not hold: which check, on what object, and the server's or tool's words."""

    stack: str
    check: str  # apply | rbac | admission | lint
    subject: str  # the object or ServiceAccount it is about, e.g. "WorkflowTemplate argo-build/x-build"
    message: str

    def __str__(self) -> str:
        return f"{self.stack}: {self.check}: {self.subject}: {self.message}"


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.passed}/{self.passed + self.failed}"


@dataclass
class StackReport:
    stack: str
    applied: int = 0
    refused: int = 0
    rbac: Tally = field(default_factory=Tally)
    admission: Tally = field(default_factory=Tally)
    lint_checked: int = 0
    lint_findings: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, check: str, subject: str, message: str) -> None:
        self.findings.append(Finding(self.stack, check, subject, message))

    @property
    def ok(self) -> bool:
        return not self.findings


HEADER = ("stack", "applied", "refused", "RBAC checks", "admission checks", "lint findings", "result")


def rows(reports: list[StackReport]) -> list[tuple[str, ...]]:
    return [
        (
            r.stack,
            str(r.applied),
            str(r.refused),
            f"{r.rbac} hold",
            f"{r.admission} hold",
            f"{r.lint_findings} in {r.lint_checked} objects",
            "ok" if r.ok else "FAILED",
        )
        for r in reports
    ]


def print_report(reports: list[StackReport], out: TextIO) -> int:
    """Every finding (one line each, sorted), the notes, then the table; returns the exit code."""
    findings = sorted(
        (f for r in reports for f in r.findings), key=lambda f: (f.stack, f.check, f.subject, f.message)
    )
    for finding in findings:
        print(f"FAIL {finding}", file=out)
    for note in sorted({n for r in reports for n in r.notes}):
        print(f"note: {note}", file=out)
    table = [HEADER, *rows(reports)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
        if index == 0:
            print("  ".join("-" * width for width in widths), file=out)
    return EXIT_FAILED if findings else EXIT_OK
