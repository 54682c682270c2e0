"""`python -m components e2e`: the real EventSource and Sensor programs on loopback, and its own checks.

The dev stack is run once for the module (a local API server, nats-server and three
argo-events programs take about half a minute); a second run has the Sensor's Role
without `create` on Workflows. Needs the pinned tools (`make tools`), `unshare` and
`ip`. The unit tests at the end judge hand-made Workflows, without any server.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import main
from components.e2e import controller, load, runner
from components.e2e import deliveries as dl
from components.verify.apply import InputError
from components.verify.report import StackReport
from tests.conftest import RenderStack

Manifests = list[dict[str, Any]]
LOAD = 12


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    cases: list[dl.Case] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)


def _write(folder: Path, stack: str, manifests: Manifests, resources: list[dict[str, Any]] | None = None) -> Path:
    (folder / stack).mkdir(parents=True)
    if resources is not None:
        (folder / stack / "resources.json").write_text(json.dumps(resources), encoding="utf-8")
    (folder / stack / "manifests.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=True), encoding="utf-8")
    return folder


def _run(folder: Path, stack: str = "dev", load: int = 0, faults: tuple[str, ...] = ("none",)) -> Outcome:
    try:
        tools = runner.find_tools(runner.TOOLS)
    except InputError as exc:
        pytest.fail(f"e2e needs the pinned tools: {exc}", pytrace=False)
    out, err = io.StringIO(), io.StringIO()
    outcome = Outcome(0, "", "")

    def observe(cases: list[dl.Case], workflows: list[dict[str, Any]]) -> None:
        outcome.cases, outcome.workflows = cases, workflows

    outcome.code = runner.run(folder, stack, out=out, err=err, tool_finder=lambda: tools, observe=observe,
                              load=load, faults=faults)
    outcome.out, outcome.err = out.getvalue(), err.getvalue()
    return outcome


@pytest.fixture(scope="module")
def dev(render_stack: RenderStack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifests, Outcome]:
    resources, manifests = render_stack("dev")
    return manifests, _run(_write(tmp_path_factory.mktemp("e2e-dev"), "dev", manifests, resources), load=LOAD,
                           faults=load.FAULTS)


def _sensors(manifests: Manifests) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == "Sensor"]


def test_dev_stack_holds(dev: tuple[Manifests, Outcome]) -> None:
    _, outcome = dev
    assert outcome.code == 0, outcome.out + outcome.err
    assert "FAIL" not in outcome.out and outcome.out.rstrip().endswith("dev: ok")


def test_a_merged_pr_creates_exactly_the_contracts_workflow(dev: tuple[Manifests, Outcome]) -> None:
    manifests, outcome = dev
    sensors = _sensors(manifests)
    assert len(outcome.workflows) == len(sensors) >= 1
    for sensor in sensors:
        service = sensor["metadata"]["name"]
        case = next(c for c in outcome.cases if c.route.service == service and c.name == "merged PR")
        assert case.status == 200
        sha = dl.commit(f"{service}:merged PR")
        workflow = next(w for w in outcome.workflows if w["metadata"]["name"].endswith(sha))
        resource = sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]
        assert workflow["metadata"]["name"] == resource["metadata"]["name"] + sha
        assert workflow["metadata"]["namespace"] == resource["metadata"]["namespace"]
        assert workflow["spec"]["workflowTemplateRef"] == resource["spec"]["workflowTemplateRef"]
        params = {p["name"]: dl.decode(p["value"]) for p in workflow["spec"]["arguments"]["parameters"]}
        assert params["revision"] == sha
        assert params["pr-title"] == dl.HOSTILE_TITLE  # $(...), {{...}}, newline: carried as text
        assert params["repository"] == case.route.repository
        assert params["pr-number"] == str(json.loads(case.body)["pull_request"]["number"])


def test_unsigned_wrongly_signed_unmerged_other_branch_other_repository_create_nothing(
    dev: tuple[Manifests, Outcome],
) -> None:
    manifests, outcome = dev
    names = {w["metadata"]["name"] for w in outcome.workflows}
    negatives = [c for c in outcome.cases if not c.creates]
    assert {c.name for c in negatives} == {"unsigned", "wrongly signed", "unmerged PR", "another branch",
                                           "another repository"}
    assert len(negatives) == 5 * len(_sensors(manifests))
    for case in negatives:
        assert not any(name.endswith(case.sha) for name in names), case.name
    refused = {c.status for c in negatives if c.name in ("unsigned", "wrongly signed")}
    assert refused == {400}  # the EventSource itself refuses a bad signature


def test_a_redelivery_still_makes_one_workflow(dev: tuple[Manifests, Outcome]) -> None:
    _, outcome = dev
    again = [c for c in outcome.cases if c.name == "merged PR redelivered"]
    assert again and all(c.status == 200 for c in again)
    for case in again:
        assert sum(w["metadata"]["name"].endswith(case.sha) for w in outcome.workflows) == 1


def test_the_workflows_controller_takes_each_workflow_and_its_first_pod_is_admitted(
    dev: tuple[Manifests, Outcome],
) -> None:
    _, outcome = dev
    assert outcome.workflows
    for workflow in outcome.workflows:
        name = workflow["metadata"]["name"]
        assert re.search(rf"note: Workflow {name}: (Pending|Running), [1-9][0-9]* pod\(s\) admitted", outcome.out), \
            outcome.out
    # Each admitted pod was read back, with the containers the controller adds itself.
    pods = re.findall(r"note: pod (\S+)/\S+ \(containers ([^)]*)\): [1-9][0-9]* references to Secrets", outcome.out)
    assert len(pods) == 2 * len(outcome.workflows), outcome.out
    assert all("wait" in containers.split(", ") and "init" in containers.split(", ") for _, containers in pods)


def test_the_build_step_creates_its_child_as_the_release_identity_and_the_childs_pod_is_admitted(
    dev: tuple[Manifests, Outcome],
) -> None:
    manifests, outcome = dev
    build_namespace = next(m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"
                           and m["metadata"]["labels"].get("release-pipeline/role") == "build")
    for workflow in outcome.workflows:
        meta = workflow["metadata"]
        account = next(t["spec"]["serviceAccountName"] for t in manifests if t["kind"] == "WorkflowTemplate"
                       and t["metadata"]["name"] == workflow["spec"]["workflowTemplateRef"]["name"])
        created = re.search(rf"note: Workflow {meta['namespace']}/{meta['name']}, step build: child Workflow "
                            rf"{build_namespace}/(\S+) created as ServiceAccount {meta['namespace']}/{account}\n",
                            outcome.out)
        assert created, outcome.out
        assert re.search(rf"note: child Workflow {created.group(1)}: (Pending|Running), [1-9][0-9]* pod\(s\) admitted",
                         outcome.out), outcome.out
        assert re.search(rf"note: pod {build_namespace}/{created.group(1)}-\S+ \(containers [^)]*wait[^)]*\)",
                         outcome.out), outcome.out


def test_load_loses_and_duplicates_nothing_without_a_fault_and_with_the_sensors_or_the_bus_crashed(
    dev: tuple[Manifests, Outcome],
) -> None:
    manifests, outcome = dev
    duplicates = len(range(0, LOAD, load.DUPLICATE_EVERY))
    for fault in load.FAULTS:
        line = re.search(rf"note: load \(fault {fault}\): sent (\d+) \((\d+) deliveries \+ (\d+) duplicates; \d+ "
                         r"redelivered by the sender after a non-2xx answer, 0 never answered 2xx\), "
                         r"Workflows created (\d+), lost 0, duplicated 0, latency p50 [\d.]+ s", outcome.out)
        assert line, outcome.out
        assert [int(n) for n in line.groups()] == [LOAD + duplicates, LOAD, duplicates, LOAD]
    # The faults happened, mid-burst (the run also fails when a restarted program exits).
    assert (f"note: fault sensor: {len(_sensors(manifests))} Sensor programs killed (SIGKILL) mid-burst and restarted"
            in outcome.out)
    assert "note: fault bus: nats-server killed (SIGKILL) mid-burst and restarted" in outcome.out


def test_everything_started_is_stopped(dev: tuple[Manifests, Outcome]) -> None:
    _, outcome = dev
    assert "3 argo-events programs started" in outcome.err
    folder = re.search(r"run folder (\S+)", outcome.err)
    assert folder, outcome.err
    assert not Path(folder.group(1)).exists()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
                root = os.readlink(proc / "root")
            except OSError:
                continue
            assert folder.group(1) not in cmdline + root, f"process {proc.name} still runs: {cmdline}"


def test_without_create_on_workflows_the_sensor_makes_none(
    render_stack: RenderStack, tmp_path: Path
) -> None:
    _, manifests = render_stack("dev")
    manifests = json.loads(json.dumps(manifests))
    account = _sensors(manifests)[0]["spec"]["template"]["serviceAccountName"]
    bound = {b["roleRef"]["name"] for b in manifests if b["kind"] == "RoleBinding"
             and any(s.get("name") == account for s in b.get("subjects") or [])}
    changed = 0
    for role in manifests:
        if role["kind"] == "Role" and role["metadata"]["name"] in bound:
            for rule in role["rules"]:
                if "workflows" in rule.get("resources", []) and "create" in rule["verbs"]:
                    rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
                    changed += 1
    assert changed
    outcome = _run(_write(tmp_path / "out", "dev", manifests))
    assert outcome.code == 1
    assert outcome.workflows == []
    for sensor in _sensors(manifests):
        assert f"FAIL dev: e2e: {sensor['metadata']['name']}: merged PR: 0 Workflows created" in outcome.out


@pytest.mark.parametrize("stack", ["sandbox", "integration", "live"])
def test_the_other_stacks_basic_path_holds(render_stack: RenderStack, tmp_path: Path, stack: str) -> None:
    """Each other stack once, without load (about a minute each on a quiet 2-core machine, two to three when
    loaded): its Workflows are created as the contract says, taken by the controller, their pods and the child
    build Workflows' pods admitted, every object they name present."""
    resources, manifests = render_stack(stack)
    outcome = _run(_write(tmp_path / "out", stack, manifests, resources), stack)
    assert outcome.code == 0, outcome.out + outcome.err
    assert outcome.out.rstrip().endswith(f"{stack}: ok")
    assert len(outcome.workflows) == len(_sensors(manifests)) >= 1
    assert len(re.findall(r"note: child Workflow \S+: (Pending|Running), [1-9][0-9]* pod\(s\) admitted",
                          outcome.out)) == len(outcome.workflows), outcome.out


# --- without servers ---------------------------------------------------------------------


def test_controller_configmap_is_derived_from_the_programs_helm_values(render_stack: RenderStack) -> None:
    resources, _ = render_stack("dev")
    release = controller.helm_values(resources)
    assert release is not None
    namespace, values = release
    configmap = controller.configmap(namespace, values)
    data = {key: yaml.safe_load(text) for key, text in configmap["data"].items()}
    assert configmap["metadata"] == {"name": "workflow-controller-configmap", "namespace": namespace}
    assert data["workflowRestrictions"] == values["controller"]["workflowRestrictions"]
    assert data["executor"] == {"resources": values["executor"]["resources"],
                                "securityContext": values["executor"]["securityContext"]}
    assert data["metricsConfig"] == {"enabled": True, "path": "/metrics", "port": 9090}
    assert controller.configmap(namespace, {})["data"] == {}


def test_unusable_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["e2e", "--in", str(tmp_path / "missing"), "--stack", "dev"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["e2e", "--in", str(tmp_path), "--stack", "dev"]) == 2
    assert "render the stack first" in capsys.readouterr().err
    folder = _write(tmp_path / "out", "dev", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}])
    assert main(["e2e", "--in", str(folder), "--stack", "dev"]) == 2
    assert "EventBus" in capsys.readouterr().err


def test_without_unshare_or_ip_the_input_is_unusable(
    render_stack: RenderStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, manifests = render_stack("dev")
    folder = _write(tmp_path / "out", "dev", manifests)
    monkeypatch.setattr(runner.shutil, "which", lambda name: None if name == "ip" else f"/usr/bin/{name}")
    err = io.StringIO()
    assert runner.run(folder, "dev", err=err, tool_finder=lambda: pytest.fail("tools are not looked for")) == 2
    assert err.getvalue().startswith("e2e: ip not found: e2e runs each program in its own network namespace")


def _route(render_stack: RenderStack) -> dl.Route:
    _, manifests = render_stack("dev")
    sources = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "EventSource"}
    return dl.route_of(_sensors(manifests)[0], sources)


def _workflow(case: dl.Case) -> dict[str, Any]:
    name, template, params = dl.expected_workflow(case)
    return {"metadata": {"name": name}, "spec": {"workflowTemplateRef": {"name": template}, "arguments": {
        "parameters": [{"name": k, "value": v} for k, v in params.items()]}}}


def test_load_count_must_be_a_small_whole_number(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("-1", "x", "10001"):
        with pytest.raises(SystemExit) as exit_:
            main(["e2e", "--in", "out", "--stack", "dev", "--load", bad])
        assert exit_.value.code == 2
        assert "a whole number from 0 to 10000" in capsys.readouterr().err
    assert main(["e2e", "--in", "out", "--stack", "dev", "--fault", "bus"]) == 2
    assert "--fault bus needs --load N" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["e2e", "--in", "out", "--stack", "dev", "--load", "5", "--fault", "etcd"])
    assert "invalid choice: 'etcd'" in capsys.readouterr().err
    assert load._percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert load._percentile([3.0, 1.0, 2.0, 4.0], 0.95) == 4.0


def test_the_sender_redelivers_after_a_5xx_or_no_answer_but_not_after_a_4xx(
    render_stack: RenderStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = _route(render_stack)
    case = dl.standard_cases(route, "s3cret")[0]
    answers: list[int | None] = []

    def send(sent: dl.Case, _socket: Path) -> None:
        sent.status = answers.pop(0)
        sent.error = None if sent.status else "connection refused"

    monkeypatch.setattr(load.dl, "send", send)
    monkeypatch.setattr(load, "REDELIVER_FIRST", 0.01)
    answers[:] = [500, None, 503, 200]
    assert load._deliver(case, Path("x"), time.monotonic() + 60) == 3 and case.status == 200 and answers == []
    answers[:] = [400, 200]
    assert load._deliver(case, Path("x"), time.monotonic() + 60) == 0 and case.status == 400
    answers[:] = [500, 500, 500]
    assert load._deliver(case, Path("x"), time.monotonic()) == 0 and case.status == 500  # the time is up


def test_judge_names_a_wrong_parameter_a_missing_and_an_unexpected_workflow(render_stack: RenderStack) -> None:
    route = _route(render_stack)
    cases = dl.standard_cases(route, "s3cret")
    merged = next(c for c in cases if c.creates)
    unmerged = next(c for c in cases if c.name == "unmerged PR")
    report = StackReport("dev")
    runner.judge(report, cases, [_workflow(merged)])
    assert report.findings == []
    wrong = _workflow(merged)
    wrong["spec"]["arguments"]["parameters"][2]["value"] = "other title"
    report = StackReport("dev")
    runner.judge(report, cases, [wrong, _workflow(unmerged)])
    messages = sorted(f"{f.subject}: {f.message}" for f in report.findings)
    assert any("merged PR: parameter pr-title 'other title'" in m for m in messages), messages
    assert any(m.startswith(f"{route.service}: unmerged PR: created Workflow") for m in messages), messages
    report = StackReport("dev")
    runner.judge(report, cases, [])
    assert [f.message for f in report.findings] == ["0 Workflows created (exactly one expected)"]


def test_signature_and_route_come_from_the_render(render_stack: RenderStack) -> None:
    route = _route(render_stack)
    assert route.endpoint.startswith("/") and route.secret_ref[1]
    assert route.branch and "/" in route.repository
    body, headers, sha = dl.delivery(route, "x", "key")
    assert headers["X-Hub-Signature-256"] == dl.sign("key", body)
    payload = json.loads(body)
    assert payload["pull_request"]["base"]["ref"] == route.branch and payload["pull_request"]["merged"] is True
    assert payload["pull_request"]["merge_commit_sha"] == sha and len(sha) == 40
    assert "X-Hub-Signature-256" not in dl.delivery(route, "x", None)[1]


def test_b64_parameters_are_decoded_to_compare() -> None:
    template = "b64:{{ .Input.body.pull_request.title | toString | b64enc }}"
    event = {"body": {"pull_request": {"title": "a $(b)\n{{c}}"}}}
    value = dl.render_template(template, event)
    assert value == "b64:" + base64.b64encode(b"a $(b)\n{{c}}").decode()
    assert dl.decode(value) == "a $(b)\n{{c}}"
    assert dl.render_template("pull_request", event) == "pull_request"
    with pytest.raises(dl.RouteError):
        dl.render_template("{{ .Input.body | upper }}", event)


def test_a_missing_secret_and_a_build_namespace_without_the_release_identity_fail_the_run(
    render_stack: RenderStack, tmp_path: Path
) -> None:
    """One run for two faults (each run costs a minute): a Secret a release pod names is gone, and the release
    identity may not create Workflows in the build namespace."""
    resources, manifests = render_stack("dev")
    release_namespace = _sensors(manifests)[0]["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"][
        "metadata"]["namespace"]
    build_namespace = next(m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"
                           and m["metadata"]["labels"].get("release-pipeline/role") == "build")
    removed = sorted(m["metadata"]["name"] for m in manifests if m["kind"] == "Secret"
                     and m["metadata"].get("namespace") == release_namespace
                     and m["metadata"]["name"].startswith("source-"))
    accounts = sorted(m["metadata"]["name"] for m in manifests if m["kind"] == "ServiceAccount"
                      and m["metadata"]["namespace"] == release_namespace
                      and m["metadata"]["name"].startswith("release-"))
    unbound = [m for m in manifests if m["kind"] == "RoleBinding" and m["metadata"]["namespace"] == build_namespace
               and any(s.get("name") in accounts for s in m.get("subjects") or [])]
    assert removed and accounts and unbound
    kept = [m for m in manifests if m not in unbound and not (
        m["kind"] == "Secret" and m["metadata"].get("namespace") == release_namespace
        and m["metadata"]["name"] in removed)]
    outcome = _run(_write(tmp_path / "out", "dev", kept, resources))
    assert outcome.code == 1, outcome.out + outcome.err
    failures = [line for line in outcome.out.splitlines() if line.startswith("FAIL dev: references: pod ")]
    assert len(failures) == len(_sensors(manifests)), outcome.out
    for line in failures:
        assert re.fullmatch(rf"FAIL dev: references: pod {release_namespace}/\S+, pod: volume \S+ secret names Secret "
                            rf"{release_namespace}/({'|'.join(removed)}), which does not exist", line), line
    refused = [line for line in outcome.out.splitlines() if line.startswith("FAIL dev: child: ")]
    assert len(refused) == len(_sensors(manifests)), outcome.out
    for line in refused:
        assert re.fullmatch(rf"FAIL dev: child: Workflow {release_namespace}/\S+, step build: creating the child "
                            rf"Workflow as ServiceAccount {release_namespace}/({'|'.join(accounts)}) was refused: "
                            rf".*forbidden.*in the namespace \"{build_namespace}\"", line), line
    assert "child Workflow" not in outcome.out.replace("creating the child Workflow", "")
