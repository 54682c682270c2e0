"""Release metrics (components/workflows/metrics.py): what each template emits, consistent
names, help and buckets, labels without payload, and the dashboard's queries.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import workflows as wf
from components.config import STACKS
from tests.upstream_support import beyond_argo_lint, lint_each
from tests.workflows_support import (
    PROJECT_DIR,
    _all_variants,
    _release,
    _service,
    _settings,
    _templates,
    _with,
    payload_outside_env,
)

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
ALLOWED_LABEL_VALUES = re.compile(r"^(svc|dev|changed|tests|build|promote|verify|supersede|newest-check"
                                  r"|\{\{status\}\}|\{\{workflow\.status\}\})$")


def _metrics(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, metric) for every Prometheus metric in the template."""
    found = [("spec", p) for p in manifest["spec"].get("metrics", {}).get("prometheus", [])]
    for template in manifest["spec"]["templates"]:
        found += [(template["name"], p) for p in template.get("metrics", {}).get("prometheus", [])]
    return found


def test_release_metrics_outcome_stage_durations_lead_time_and_supersede_counts() -> None:
    settings = _with(_settings(), newest_wins=True, release_metrics=True)
    manifest = _release(_service("    path: services/svc\n"), settings)
    metrics = _metrics(manifest)
    by_where: dict[str, set[str]] = {}
    for where, metric in metrics:
        by_where.setdefault(where, set()).add(metric["name"])
    assert by_where == {
        "spec": {"release_outcomes", "release_last_timestamp_seconds"},
        "changed": {"release_stage_duration_seconds"},
        "tests": {"release_stage_duration_seconds"},
        "build": {"release_stage_duration_seconds"},
        "promote": {"release_stage_duration_seconds"},
        "verify": {"release_stage_duration_seconds", "release_lead_time_seconds"},
        "supersede": {"release_stage_duration_seconds", "release_superseded"},
        "newest-check": {"release_stage_duration_seconds", "release_superseded"},
    }
    spec = {m["name"]: m for m in manifest["spec"]["metrics"]["prometheus"]}
    assert spec["release_outcomes"]["counter"] == {"value": "1"}
    assert spec["release_outcomes"]["labels"] == [
        {"key": "service", "value": "svc"}, {"key": "environment", "value": "dev"},
        {"key": "status", "value": "{{workflow.status}}"},
    ]
    assert spec["release_last_timestamp_seconds"]["gauge"] == {"value": "{{workflow.creationTimestamp.s}}",
                                                               "realtime": False}
    verify = {m["name"]: m for m in _templates(manifest)["verify"]["metrics"]["prometheus"]}
    lead = verify["release_lead_time_seconds"]
    assert lead["histogram"]["value"] == "{{workflow.duration}}"
    assert lead["when"] == "{{status}} == Succeeded"
    stage = verify["release_stage_duration_seconds"]
    assert stage["histogram"]["value"] == "{{duration}}"
    assert {"key": "stage", "value": "verify"} in stage["labels"]
    superseded = {m["name"]: m for m in _templates(manifest)["supersede"]["metrics"]["prometheus"]}
    assert superseded["release_superseded"]["counter"] == {"value": "{{outputs.parameters.stopped}}"}
    # The exit handler and notify are not stages.
    assert "metrics" not in _templates(manifest)["notify"]


def test_metric_names_help_and_buckets_are_consistent_and_labels_carry_no_payload() -> None:
    """Argo refuses a metric whose help or buckets differ between emitters; labels are config or enums only."""
    seen: dict[str, tuple[str, Any, list[str]]] = {}
    for service, settings in _all_variants(_settings()):
        for where, metric in _metrics(_release(service, settings)):
            assert METRIC_NAME.match(metric["name"]), metric["name"]
            assert metric["help"] == wf.METRIC_HELP[metric["name"]]
            buckets = metric.get("histogram", {}).get("buckets")
            keys = [label["key"] for label in metric["labels"]]
            first = seen.setdefault(metric["name"], (metric["help"], buckets, keys))
            assert first == (metric["help"], buckets, keys), (where, metric["name"])
            for label in metric["labels"]:
                assert ALLOWED_LABEL_VALUES.match(label["value"]), (where, label)
    assert set(seen) == set(wf.METRIC_HELP)
    for service, settings in _all_variants(_settings()):
        assert payload_outside_env(_release(service, settings)) == []


def test_release_metrics_are_refused_without_the_controllers_metrics(tmp_path: Path) -> None:
    from components.config import ConfigError, parse_settings
    data = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]["release-pipeline:settings"]
    data["metrics"] = {"enabled": False, "releaseMetrics": True}
    with pytest.raises(ConfigError, match="releaseMetrics"):
        parse_settings(data, "Pulumi.dev.yaml")


def test_every_template_with_the_options_lints_clean_and_validates(upstream_judge: Any) -> None:
    objects = []
    for stack in STACKS:
        for service, settings in _all_variants(_settings(stack)):
            release = _release(service, settings)
            assert payload_outside_env(release) == []
            objects.append(release)
    assert lint_each(objects) == []
    assert [p for t in objects for p in beyond_argo_lint(t)] == []
    assert upstream_judge.errors(objects) == []


def test_the_dashboard_is_valid_json_and_queries_only_the_metrics_the_templates_emit() -> None:
    import json
    dashboard = json.loads((PROJECT_DIR / "dashboards" / "release-pipeline.json").read_text(encoding="utf-8"))
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for measure in ("deployment frequency", "lead time", "change failure rate", "time to restore", "stage duration"):
        assert measure in titles, measure
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_bucket$", "", name) for e in exprs for name in re.findall(r"argo_workflows_(\w+)", e)}
    assert used == set(wf.METRIC_HELP)  # every metric is shown, and nothing else is assumed
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
