#!/usr/bin/env python3
"""Typo check for Helm values against a chart's own default values.yaml.

Stand-in (tests/checks): an offline check the tests use until it is replaced by the upstream
binary it imitates; see tests/checks/__init__.py and docs/upstream-data.md.

A key path you set must exist in the chart's defaults, unless the default at its
parent is free-form (an empty map, null, or a list), or the key is at least mentioned
in the chart's values.yaml (many optional keys are documented only in comments).
That keeps false alarms rare while catching misspelt and invented keys.

    python check_helm_values.py CHART_DIR VALUES.(yaml|json)
    python check_helm_values.py --render DIR     # every helm.v3.Release in DIR/*/resources.json

Charts: upstream/charts/<name>/ (values.yaml + Chart.yaml from the argo-helm repository).
From Python: problems(chart_dir, values_dict) -> list[str]. Exit 1 on problems.
"""
from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

import yaml

CHARTS = Path(__file__).resolve().parents[2] / "upstream" / "charts"


# Maps a chart copies key by key into a ConfigMap or Secret, or passes through as-is:
# any key is legal below them.
FREE_FORM = {
    "argo-cd": ("configs.cm", "configs.params", "configs.rbac", "configs.secret.extra",
                "configs.cmp.plugins", "notifications.notifiers", "notifications.templates",
                "notifications.triggers", "notifications.subscriptions", "notifications.secret.items"),
    "argo-rollouts": ("notifications.notifiers", "notifications.templates", "notifications.triggers",
                      "notifications.secret.items"),
}
FREE_KEYS = {"annotations", "labels", "podAnnotations", "podLabels", "nodeSelector", "extraArgs",
             "extraEnv", "env", "extraObjects", "tolerations", "affinity"}


def _free(default) -> bool:
    return default is None or default == {} or isinstance(default, list)


def problems(chart_dir: str | Path, values: dict) -> list[str]:
    chart_dir = Path(chart_dir)
    raw = (chart_dir / "values.yaml").read_text()
    defaults = yaml.safe_load(raw) or {}
    out: list[str] = []

    free = FREE_FORM.get(chart_dir.name, ())

    def walk(v, d, path):
        if not isinstance(v, dict):
            return
        if _free(d) or not isinstance(d, dict) or path in free or path.split(".")[-1] in FREE_KEYS:
            return
        for k, sub in v.items():
            p = f"{path}.{k}" if path else str(k)
            if k in d:
                walk(sub, d[k], p)
            elif re.search(rf"(^|[\s#\"'.]){re.escape(str(k))}\s*:", raw, re.M):
                continue  # documented (often only in a comment)
            else:
                near = difflib.get_close_matches(str(k), [str(x) for x in d], n=1)
                out.append(f"{chart_dir.name}: unknown values key {p}" + (f" (did you mean {near[0]!r}?)" if near else ""))

    walk(values, defaults, "")
    return out


def _chart_dir(chart: str) -> Path | None:
    name = chart.rstrip("/").split("/")[-1]
    d = CHARTS / name
    return d if (d / "values.yaml").exists() else None


def main(argv: list[str]) -> int:
    found: list[str] = []
    if len(argv) == 2 and argv[0] == "--render":
        for f in sorted(Path(argv[1]).glob("*/resources.json")):
            for r in json.loads(f.read_text()):
                if str(r.get("type", "")).startswith("kubernetes:helm.sh/v3:Release"):
                    inp = r.get("inputs") or {}
                    d = _chart_dir(str(inp.get("chart", "")))
                    if d is None:
                        print(f"{f.parent.name}/{r.get('name')}: skipped: no chart defaults for {inp.get('chart')!r}")
                        continue
                    found += [f"{f.parent.name}/{r.get('name')}: {p}" for p in problems(d, inp.get("values") or {})]
    elif len(argv) == 2:
        text = Path(argv[1]).read_text()
        vals = json.loads(text) if argv[1].endswith(".json") else yaml.safe_load(text)
        found = problems(argv[0], vals or {})
    else:
        print(__doc__)
        return 2
    for p in found:
        print(p)
    print(f"{len(found)} unknown values keys")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
