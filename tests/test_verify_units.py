"""verify's pure parts, without a server: input checks, the pods it builds, the RBAC table, the report.

The checks against the real API server and tools are in test_verify_server.py and
test_verify_cli.py; these pin what those rely on.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from components.verify import admission, apiserver, lint, rbac_checks, report, runner
from components.verify.apply import InputError, apply_order, load_crds, load_manifests
from tests.conftest import ROOT, RenderStack


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- unusable input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: [unclosed\n", "not YAML"),
        ("- 1\n- 2\n", "not a mapping"),
        ("kind: ConfigMap\nmetadata: {name: x}\n", "no apiVersion or kind"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "no metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: [a]}\n", "namespace is not a string"),
        ("---\n", "no objects"),
    ],
)
def test_unusable_manifests_are_named(tmp_path: Path, text: str, says: str) -> None:
    path = _write(tmp_path / "manifests.yaml", text)
    with pytest.raises(InputError, match=says) as caught:
        load_manifests(path)
    assert str(path) in str(caught.value)


def test_missing_stack_and_crds_are_unusable_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing"):
        load_manifests(tmp_path / "dev" / "manifests.yaml")
    with pytest.raises(InputError, match="no pinned CRD files"):
        load_crds(tmp_path / "crds")


def test_cli_unusable_input_exits_2_without_traceback(tmp_path: Path) -> None:
    _write(tmp_path / "out" / "dev" / "manifests.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
    for args in (["--in", str(tmp_path / "nowhere")], ["--in", str(tmp_path / "out"), "--stack", "dev"],
                 ["--in", str(tmp_path / "out"), "--stack", "live"]):
        proc = subprocess.run([sys.executable, "-m", "components", "verify", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("verify: ")


def test_missing_tool_is_unusable_input(tmp_path: Path) -> None:
    _write(tmp_path / "out" / "dev" / "manifests.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    _write(tmp_path / "crds" / "x" / "a.yaml", "kind: CustomResourceDefinition\n")

    def no_tools() -> dict[str, Path]:
        raise InputError("kube-apiserver v1.34.4 is not built: run `make tools`")

    err = io.StringIO()
    code = runner.run(tmp_path / "out", ["dev"], out=io.StringIO(), err=err, crds_dir=tmp_path / "crds",
                      tool_finder=no_tools)
    assert code == report.EXIT_UNUSABLE
    assert "make tools" in err.getvalue()


# --- order ---------------------------------------------------------------------------


def test_apply_order_puts_dependencies_first(render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    kinds = [m["kind"] for m in apply_order(manifests)]
    first = {kind: kinds.index(kind) for kind in set(kinds)}
    assert first["Namespace"] == 0
    assert first["ServiceAccount"] < first["Role"] < first["RoleBinding"] < first["WorkflowTemplate"]
    assert first["ValidatingAdmissionPolicy"] < first["ValidatingAdmissionPolicyBinding"] < first["Sensor"]


# --- pods ----------------------------------------------------------------------------


def test_buildkit_pod_is_built_as_the_controller_would(render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    template = next(m for m in manifests if m["kind"] == "WorkflowTemplate"
                    and m["metadata"]["namespace"] == "argo-build")
    pods = {tp.subject.rsplit(" ", 1)[1]: tp for tp in admission.template_pods(template)}
    buildkit = pods["buildkit"].pod
    main = buildkit["spec"]["containers"][0]
    assert main["name"] == "main"
    assert main["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    assert buildkit["spec"]["serviceAccountName"] == template["spec"]["serviceAccountName"]
    assert buildkit["spec"]["automountServiceAccountToken"] is False
    assert buildkit["spec"]["securityContext"]["runAsNonRoot"] is True
    assert [c["name"] for c in buildkit["spec"]["initContainers"]] == ["checkout"]
    mounted = {m["name"] for c in buildkit["spec"]["containers"] + buildkit["spec"]["initContainers"]
               for m in c["volumeMounts"]}
    assert mounted <= {v["name"] for v in buildkit["spec"]["volumes"]}
    assert "{{" not in str(buildkit)
    assert admission.needs_relaxation(buildkit)
    assert not admission.needs_relaxation(pods["image-exists"].pod)


def test_template_defaults_and_pod_spec_patch_are_applied() -> None:
    template = {
        "kind": "WorkflowTemplate",
        "metadata": {"name": "t", "namespace": "ns"},
        "spec": {
            "serviceAccountName": "wf-sa",
            "securityContext": {"runAsNonRoot": True},
            "volumes": [{"name": "shared", "emptyDir": {}}, {"name": "unused", "emptyDir": {}}],
            "templateDefaults": {"activeDeadlineSeconds": 60},
            "podSpecPatch": '{"containers": [{"name": "main", "securityContext": {"privileged": true}}]}',
            "templates": [
                {"name": "s", "script": {"image": "i", "source": "echo", "volumeMounts": [
                    {"name": "shared", "mountPath": "/s"}]}, "serviceAccountName": "own-sa"},
                {"name": "steps", "steps": []},
            ],
        },
    }
    [tp] = admission.template_pods(template)
    spec = tp.pod["spec"]
    assert spec["serviceAccountName"] == "own-sa"
    assert spec["activeDeadlineSeconds"] == 60
    assert [v["name"] for v in spec["volumes"]] == ["shared"]
    assert spec["containers"][0]["securityContext"] == {"privileged": True}
    assert "source" not in spec["containers"][0]


def test_probes_change_one_thing_each(render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    template = next(m for m in manifests if m["kind"] == "WorkflowTemplate"
                    and m["metadata"]["namespace"] == "argo-build")
    base = next(tp.pod for tp in admission.template_pods(template) if admission.needs_relaxation(tp.pod))
    probe = admission.variant(base, "privileged container", admission._privileged, "argo-build", "builder-x")
    assert probe["spec"]["containers"][0]["securityContext"]["privileged"] is True
    assert base["spec"]["containers"][0]["securityContext"]["privileged"] is False  # the original is untouched
    assert probe["spec"]["serviceAccountName"] == "builder-x"


def test_sensor_workflow_gets_a_delivery_like_name(render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    workflows = list(lint.sensor_workflows(manifests))
    assert len(workflows) == sum(1 for m in manifests if m["kind"] == "Sensor")
    for subject, workflow in workflows:
        assert subject.startswith("Sensor argo-events/")
        assert workflow["metadata"]["name"].endswith(lint.FAKE_SHA)
        assert workflow["spec"]["arguments"]["parameters"][0]["value"] == lint.FAKE_SHA


# --- RBAC table ------------------------------------------------------------------------


def test_every_rendered_account_has_a_row_and_questions(render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    ctx = rbac_checks.context_of(manifests)
    accounts = rbac_checks.accounts_of(manifests)
    assert {a.component for a in accounts} <= set(rbac_checks.EXPECTATIONS)
    for account in accounts:
        asks = rbac_checks.asks_for(account)
        assert asks is not None
        resolved = [attrs for ask in asks if ask.allowed for attrs in rbac_checks.resolve(ask, account, ctx)]
        if account.component != "builder":
            assert resolved, f"{account} has no 'must' question"
    sensor = next(a for a in accounts if a.component == "sensor")
    questions = [(ask.allowed, attrs) for ask in rbac_checks.asks_for(sensor) or ()
                 for attrs in rbac_checks.resolve(ask, sensor, ctx)]
    assert (True, {"verb": "create", "group": "argoproj.io", "resource": "workflows", "namespace": "argo"}) in questions
    assert (False, {"verb": "get", "group": "", "resource": "secrets", "namespace": "argo-events"}) in questions
    assert (False, {"verb": "create", "group": "argoproj.io", "resource": "workflows",
                    "namespace": "argo-build"}) in questions


def test_release_account_questions_name_its_own_objects(render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    ctx = rbac_checks.context_of(manifests)
    release = next(a for a in rbac_checks.accounts_of(manifests) if a.component == "release")
    questions = [(ask.allowed, attrs) for ask in rbac_checks.asks_for(release) or ()
                 for attrs in rbac_checks.resolve(ask, release, ctx)]
    own_app = ctx.applications[release.service]
    assert (True, {"verb": "patch", "group": "argoproj.io", "resource": "applications", "namespace": "argocd",
                   "name": own_app}) in questions
    others = [attrs["name"] for allowed, attrs in questions if not allowed and attrs.get("name", own_app) != own_app]
    assert others, "a release account must be asked about another service's Application"


def test_account_without_a_row_is_a_finding() -> None:
    account = rbac_checks.Account("ns", "new-robot", "robot", "")
    assert rbac_checks.asks_for(account) is None


# --- report ----------------------------------------------------------------------------


def test_report_table_and_exit_codes() -> None:
    good = report.StackReport("dev", applied=3)
    good.rbac.passed = 2
    bad = report.StackReport("live", applied=2, refused=1)
    bad.fail("apply", "ConfigMap argo/x", "refused: strict decoding error: unknown field \"datta\"")
    out = io.StringIO()
    assert report.print_report([good], out) == report.EXIT_OK
    out = io.StringIO()
    assert report.print_report([good, bad], out) == report.EXIT_FAILED
    text = out.getvalue()
    assert text.splitlines()[0].startswith("FAIL live: apply: ConfigMap argo/x: refused: strict decoding error")
    assert "stack" in text and "RBAC checks" in text and "FAILED" in text


# --- processes ---------------------------------------------------------------------------


def test_stop_reaches_the_whole_process_group(tmp_path: Path) -> None:
    """A child that ignores SIGTERM and forks a grandchild: both are gone after stop."""
    script = _write(tmp_path / "stubborn.sh", """\
        trap '' TERM
        sleep 300 &
        echo $! > "$1"
        wait
        """)
    grandchild_file = tmp_path / "grandchild"
    process = apiserver._start("stub", ["bash", str(script), str(grandchild_file)], tmp_path / "log")
    for _ in range(100):
        if grandchild_file.exists() and grandchild_file.read_text().strip():
            break
        subprocess.run(["sleep", "0.05"], check=False)
    grandchild = int(grandchild_file.read_text())
    apiserver.STOP_TIMEOUT, old = 0.5, apiserver.STOP_TIMEOUT
    try:
        apiserver._stop(process)
    finally:
        apiserver.STOP_TIMEOUT = old
    assert process.popen.poll() is not None
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(grandchild, 0)
            subprocess.run(["sleep", "0.05"], check=False)


def test_signal_becomes_an_exception_inside_the_block() -> None:
    with pytest.raises(apiserver.Interrupted), apiserver.stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        subprocess.run(["sleep", "1"], check=False)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_pki_files(tmp_path: Path) -> None:
    from cryptography import x509

    apiserver.make_pki(tmp_path)
    admin = x509.load_pem_x509_certificate((tmp_path / "admin.crt").read_bytes())
    assert "O=system:masters" in admin.subject.rfc4514_string()
    serving = x509.load_pem_x509_certificate((tmp_path / "serving.crt").read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert oct((tmp_path / "sa.key").stat().st_mode & 0o777) == "0o600"


def test_sensor_and_event_source_pods_take_their_template(render_stack: RenderStack) -> None:
    _, manifests = render_stack("dev")
    sensor = next(m for m in manifests if m["kind"] == "Sensor")
    tp = admission.events_pod(sensor)
    assert tp is not None and tp.subject == f"Sensor argo-events/{sensor['metadata']['name']} (its pod)"
    spec = tp.pod["spec"]
    assert spec["serviceAccountName"] == sensor["spec"]["template"]["serviceAccountName"]
    assert spec["securityContext"] == sensor["spec"]["template"]["securityContext"]
    assert spec["containers"][0]["securityContext"] == sensor["spec"]["template"]["container"]["securityContext"]
    assert admission.events_pod(next(m for m in manifests if m["kind"] == "Role")) is None


def test_custom_kinds_include_argo_subgroups() -> None:
    from components.verify.apply import is_custom

    assert is_custom({"apiVersion": "argocd-image-updater.argoproj.io/v1alpha1"})
    assert is_custom({"apiVersion": "argoproj.io/v1alpha1"})
    assert not is_custom({"apiVersion": "apps/v1"}) and not is_custom({"apiVersion": "v1"})
    assert not is_custom({"apiVersion": "notargoproj.io/v1"})


def test_relay_is_asked_about_the_objects_that_notify_it() -> None:
    def obj(kind: str, namespace: str, name: str, threaded: bool) -> dict[str, object]:
        annotations = {"notifications.argoproj.io/subscribe.on-x.slack-thread": ""} if threaded else {}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": kind,
                "metadata": {"namespace": namespace, "name": name, "annotations": annotations}}

    manifests = [obj("Application", "argocd", "a-dev", True), obj("Application", "argocd", "b-dev", False),
                 obj("Rollout", "svc", "a", True), obj("Rollout", "svc", "b", False)]
    ctx = rbac_checks.context_of(manifests)  # type: ignore[arg-type]
    relay = rbac_checks.Account("argo", "release-pipeline-slack-relay", "slack-relay", "")
    asked = {(ask.allowed, ask.verb, attrs.get("name")) for ask in rbac_checks.asks_for(relay) or ()
             for attrs in rbac_checks.resolve(ask, relay, ctx) if attrs["resource"] in ("applications", "rollouts")}
    assert {(True, "patch", "a-dev"), (True, "get", "a"), (False, "patch", "b-dev"), (False, "get", "b")} <= asked
