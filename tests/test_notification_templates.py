"""The Argo CD notification templates rendered as the notifications controller renders them.

The controller executes each template with Go's text/template over the Application's
JSON (`.app`). These tests run the real text/template (tests/gotemplate/render.go, Go
standard library only) against an Application status of the shape Argo CD v3.4.4
writes (`pkg/apis/application/v1alpha1/types.go`: `AppHealthStatus` has `status` and
`lastTransitionTime`, its `message` is deprecated and never set; `ResourceStatus` has
`kind`, `name`, `health.status` and `health.message`; `ApplicationCondition` has `type`
and `message`). Skipped where no Go toolchain is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import helm_values as hv
from components.config import load_stack_settings
from components.helm_values.notifications import rollouts_notifications

ROOT = Path(__file__).resolve().parents[1]
RENDER_GO = Path(__file__).resolve().parent / "gotemplate" / "render.go"

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain: cannot run text/template")

Render = Callable[[str, dict[str, Any]], str]


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Render:
    binary = tmp_path_factory.mktemp("gotemplate") / "render"
    subprocess.run(["go", "build", "-o", str(binary), str(RENDER_GO)], check=True, timeout=600,
                   capture_output=True)

    def run(template: str, data: dict[str, Any]) -> str:
        done = subprocess.run([str(binary)], input=json.dumps({"template": template, "data": data}),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def _message(template_name: str, notifications: Callable[..., dict[str, Any]] = hv.argocd_notifications) -> str:
    settings = load_stack_settings(ROOT, "live")
    templates = notifications(settings)["templates"]
    return str(yaml.safe_load(templates[f"template.{template_name}"])["message"])


def _application(status: dict[str, Any]) -> dict[str, Any]:
    return {"app": {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "vbsiv-live", "namespace": "argocd"},
        "spec": {"project": "datacollect"},
        "status": status,
    }}


# An Application as Argo CD v3.4.4 reports it once its Rollout was aborted: the app's
# health has a status only; the resources carry the messages.
DEGRADED_STATUS: dict[str, Any] = {
    "sync": {"status": "Synced", "revision": "0123456789abcdef0123456789abcdef01234567"},
    "health": {"status": "Degraded", "lastTransitionTime": "2026-12-07T10:00:00Z"},
    "conditions": [
        {"type": "SyncError", "message": "one or more objects failed to apply",
         "lastTransitionTime": "2026-12-07T10:00:01Z"},
    ],
    "resources": [
        {"version": "v1", "kind": "ConfigMap", "namespace": "datacollect", "name": "vbsiv-config",
         "status": "Synced"},  # no health check for this kind: no `health`
        {"version": "v1", "kind": "Service", "namespace": "datacollect", "name": "vbsiv",
         "status": "Synced", "health": {"status": "Healthy"}},
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "datacollect", "name": "vbsiv",
         "status": "Synced", "health": {"status": "Degraded",
                                        "message": 'Deployment "vbsiv" exceeded its progress deadline'}},
        {"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout", "namespace": "datacollect",
         "name": "vbsiv", "status": "Synced",
         "health": {"status": "Degraded", "message": "RolloutAborted: Rollout aborted update to revision 7"}},
        {"group": "batch", "version": "v1", "kind": "Job", "namespace": "datacollect", "name": "vbsiv-migrate",
         "status": "Synced", "health": {"status": "Degraded"}},  # Degraded without a message
    ],
}


def test_health_degraded_shows_status_conditions_and_the_degraded_resources(render: Render) -> None:
    out = render(_message("app-health-degraded"), _application(DEGRADED_STATUS))
    assert "<no value>" not in out
    lines = out.splitlines()
    assert lines[0] == ":warning: *vbsiv-live* is Degraded in *live*"
    assert lines[1] == ("Service: vbsiv | Environment: live | Revision: "
                        "0123456789abcdef0123456789abcdef01234567")
    assert lines[2:7] == [
        "Health: Degraded",
        "Condition SyncError: one or more objects failed to apply",
        'Degraded: Deployment vbsiv: Deployment "vbsiv" exceeded its progress deadline',
        "Degraded: Rollout vbsiv: RolloutAborted: Rollout aborted update to revision 7",
        "Degraded: Job vbsiv-migrate",
    ]
    # Healthy resources and those without a health check are not listed.
    assert "ConfigMap" not in out and "Service vbsiv" not in out
    assert lines[7].startswith("Argo CD: https://argocd.live.release.example.com/applications/")


def test_health_degraded_with_no_conditions_or_resources_prints_the_status_only(render: Render) -> None:
    status = {"sync": {"status": "Synced", "revision": "abc"}, "health": {"status": "Degraded"}}
    out = render(_message("app-health-degraded"), _application(status))
    assert "<no value>" not in out
    assert out.splitlines()[2] == "Health: Degraded"
    assert out.splitlines()[3].startswith("Argo CD: ")


def test_health_degraded_never_reads_the_field_argo_cd_no_longer_sets() -> None:
    assert ".app.status.health.message" not in _message("app-health-degraded")


def test_a_hostile_resource_message_is_printed_as_data_not_evaluated(render: Render) -> None:
    status = {"sync": {"revision": "abc"}, "health": {"status": "Degraded"}, "resources": [
        {"kind": "Deployment", "name": "vbsiv",
         "health": {"status": "Degraded", "message": "{{.app.metadata.namespace}} $(id) `x`"}}]}
    out = render(_message("app-health-degraded"), _application(status))
    assert "Degraded: Deployment vbsiv: {{.app.metadata.namespace}} $(id) `x`" in out.splitlines()


MENTIONS = "<!channel> see <https://evil.example|the runbook> & <@U0123>"
ESCAPED = "&lt;!channel&gt; see &lt;https://evil.example|the runbook&gt; &amp; &lt;@U0123&gt;"


def test_cluster_written_text_cannot_mention_or_link_in_slack(render: Render) -> None:
    """Every message the cluster writes reaches Slack with &, < and > escaped (Slack's own rule)."""
    degraded = {"sync": {"revision": "abc"}, "health": {"status": "Degraded"},
                "conditions": [{"type": "SyncError", "message": MENTIONS}],
                "resources": [{"kind": "Rollout", "name": "vbsiv",
                               "health": {"status": "Degraded", "message": MENTIONS}}]}
    out = render(_message("app-health-degraded"), _application(degraded))
    assert f"Condition SyncError: {ESCAPED}" in out.splitlines()
    assert f"Degraded: Rollout vbsiv: {ESCAPED}" in out.splitlines()
    failed = {"sync": {"revision": "abc"}, "operationState": {"phase": "Failed", "message": MENTIONS}}
    assert f"Error: {ESCAPED}" in render(_message("app-sync-failed"), _application(failed)).splitlines()
    rollout = {"rollout": {"metadata": {"name": "vbsiv", "namespace": "datacollect"},
                           "status": {"message": MENTIONS, "currentStepIndex": 1}}}
    assert f"Reason: {ESCAPED}" in render(_message("rollout-aborted", rollouts_notifications), rollout).splitlines()
    assert "<!channel>" not in out
