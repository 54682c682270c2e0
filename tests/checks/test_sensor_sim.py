"""Tests for sensor_sim.py (run: python -m pytest tests/checks/test_sensor_sim.py)."""
from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository root: python -m tests.checks.<tool>

from tests.checks import sensor_sim as ss
from tests.checks.gosem import (
    GoRegexError, Unsupported, go_format_float, go_json_dumps, go_regexp, gjson_get, load_json, sjson_set,
)
from tests.checks.gotemplate import TemplateError, govaluate, render

FIX = os.path.join(ROOT, "upstream", "github-webhooks")


def fixture(name: str) -> dict:
    with open(os.path.join(FIX, name)) as fh:
        return load_json(fh.read())


def with_base(payload: dict, branch: str) -> dict:
    p = copy.deepcopy(payload)
    p["pull_request"]["base"]["ref"] = branch
    return p


MERGED = fixture("pull_request.closed-merged.json")           # derived: merged=true (base ref 'master')
CLOSED = fixture("pull_request.closed.json")                   # real: closed, not merged
OPENED = fixture("pull_request.opened.json")
SYNC = fixture("pull_request.synchronize.json")
PUSH_BRANCH = fixture("push.branch.json")
PUSH_TAG = fixture("push.tag.json")
PING = fixture("ping.json")
REVIEW_COMMENT_EDITED = fixture("pull_request_review_comment.edited.json")
SHA = MERGED["pull_request"]["merge_commit_sha"]

PR = {"X-GitHub-Event": "pull_request"}

# The sensor fragment from the task brief, verbatim in spirit: `header.` (singular) and unanchored values.
# It can only work behind a *generic webhook* EventSource (data.header); see test_brief_sensor_*.
BRIEF_SENSOR = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: svc-release, namespace: ci}
spec:
  dependencies:
    - name: merged
      eventSourceName: github
      eventName: svc
      filters:
        data:
          - {path: header.X-Github-Event, type: string, value: [pull_request]}
          - {path: body.action, type: string, value: [closed]}
          - {path: body.pull_request.merged, type: bool, value: ["true"]}
          - {path: body.pull_request.base.ref, type: string, value: [development]}
  triggers:
    - template:
        name: build
        argoWorkflow:
          operation: submit
          source:
            resource:
              apiVersion: argoproj.io/v1alpha1
              kind: Workflow
              metadata: {generateName: svc-}
              spec:
                workflowTemplateRef: {name: svc-release}
                arguments: {parameters: [{name: revision}]}
          parameters:
            - src: {dependencyName: merged, dataKey: body.pull_request.merge_commit_sha}
              dest: spec.arguments.parameters.0.value
""")

# The same intent written for the project's `github:` EventSource (data.headers, anchored regexps,
# repository check, deterministic Workflow name so a redelivery cannot start a second build).
NEW_SENSOR = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: svc-release, namespace: ci}
spec:
  dependencies:
    - name: merged
      eventSourceName: github
      eventName: svc
      filters:
        data:
          - {path: headers.X-Github-Event.0, type: string, value: ["^pull_request$"]}
          - {path: body.action, type: string, value: ["^closed$"]}
          - {path: body.pull_request.merged, type: bool, value: ["true"]}
          - {path: body.pull_request.base.ref, type: string, value: ["^development$"]}
          - {path: body.repository.full_name, type: string, value: ["^Codertocat/Hello-World$"]}
  triggers:
    - template:
        name: build
        argoWorkflow:
          operation: submit
          source:
            resource:
              apiVersion: argoproj.io/v1alpha1
              kind: Workflow
              metadata: {generateName: svc-}
              spec:
                workflowTemplateRef: {name: svc-release}
                arguments:
                  parameters:
                    - {name: revision}
                    - {name: short-sha}
                    - {name: pr-number}
                    - {name: branch}
          parameters:
            - src: {dependencyName: merged, dataKey: body.pull_request.merge_commit_sha}
              dest: spec.arguments.parameters.0.value
            - src: {dependencyName: merged, dataTemplate: "{{ .Input.body.pull_request.merge_commit_sha | substr 0 7 }}"}
              dest: spec.arguments.parameters.1.value
            - src: {dependencyName: merged, dataKey: body.number}
              dest: spec.arguments.parameters.2.value
            - src: {dependencyName: merged, dataKey: body.pull_request.base.ref}
              dest: spec.arguments.parameters.3.value
""")
NAMED = copy.deepcopy(NEW_SENSOR)
NAMED["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"].append(
    {"src": {"dependencyName": "merged",
             "dataTemplate": "svc-{{ .Input.body.pull_request.merge_commit_sha | trunc 12 }}"},
     "dest": "metadata.name"})

# The old style: fires while a PR is open (opened/edited/reopened/synchronize), never on a merge.
OLD_SENSOR = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: svc-pr}
spec:
  dependencies:
    - name: pr
      eventSourceName: github
      eventName: svc
      filters:
        data:
          - {path: headers.X-Github-Event, type: string, value: [pull_request]}
          - {path: body.action, type: string, value: [opened, edited, reopened, synchronize]}
          - {path: body.pull_request.state, type: string, value: [open]}
  triggers:
    - template:
        name: ci
        k8s:
          operation: create
          source:
            resource:
              apiVersion: argoproj.io/v1alpha1
              kind: Workflow
              metadata: {generateName: svc-pr-}
              spec:
                entrypoint: main
                arguments: {parameters: [{name: revision, value: placeholder}]}
                templates: [{name: main, container: {image: alpine}}]
          parameters:
            - src: {dependencyName: pr, dataKey: body.pull_request.head.sha}
              dest: spec.arguments.parameters.0.value
""")


def fire(sensor, payload, headers=None, **kw):
    return ss.fire(sensor, "github", "svc", payload, PR if headers is None else headers, **kw)


# ---------------------------------------------------------------------------
# The project's sensor: only a merged PR into development fires
# ---------------------------------------------------------------------------

def test_new_sensor_fires_for_merged_pr_into_development():
    objs = fire(NEW_SENSOR, with_base(MERGED, "development"))
    assert len(objs) == 1
    wf = objs[0]
    assert wf["kind"] == "Workflow" and wf["metadata"]["generateName"] == "svc-"
    assert wf["spec"]["workflowTemplateRef"] == {"name": "svc-release"}
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert params == {"revision": SHA, "short-sha": SHA[:7], "pr-number": "2", "branch": "development"}
    labels = wf["metadata"]["labels"]
    assert labels["events.argoproj.io/sensor"] == "svc-release"
    assert labels["events.argoproj.io/trigger"] == "build"
    assert labels["events.argoproj.io/action-timestamp"].isdigit()
    assert ss.match(NEW_SENSOR, "github", "svc", with_base(MERGED, "development"), PR) == ["merged"]
    assert ss.lint_sensor(NEW_SENSOR, "github") == []


def test_deterministic_name():
    wf = fire(NAMED, with_base(MERGED, "development"))[0]
    assert wf["metadata"]["name"] == "svc-" + SHA[:12]
    assert wf["metadata"]["generateName"] == "svc-"  # still there; argo uses name when both are set


@pytest.mark.parametrize("payload,headers,why", [
    (MERGED, PR, "merged into master, not development"),
    (with_base(MERGED, "development-old"), PR, "merged into another branch containing 'development'"),
    (with_base(CLOSED, "development"), PR, "closed without merging"),
    (with_base(OPENED, "development"), PR, "opened"),
    (with_base(SYNC, "development"), PR, "synchronize"),
    (PUSH_BRANCH, {"X-GitHub-Event": "push"}, "push to a branch"),
    (PUSH_TAG, {"X-GitHub-Event": "push"}, "tag push"),
    (PING, {"X-GitHub-Event": "ping"}, "ping"),
    (with_base(MERGED, "development"), {"X-GitHub-Event": "push"}, "wrong X-GitHub-Event header"),
    (with_base(MERGED, "development"), {"X-GitHub-Event": "pull_request_review"}, "similar event name"),
    (with_base(REVIEW_COMMENT_EDITED, "development"), {"X-GitHub-Event": "pull_request_review_comment"}, "review comment"),
])
def test_new_sensor_does_not_fire_otherwise(payload, headers, why):
    assert fire(NEW_SENSOR, payload, headers) == [], why


def test_new_sensor_checks_the_repository():
    p = with_base(MERGED, "development")
    p["repository"]["full_name"] = "someone/else"
    assert fire(NEW_SENSOR, p) == []


def test_new_sensor_ignores_other_event_names_and_sources():
    p = with_base(MERGED, "development")
    assert ss.fire(NEW_SENSOR, "github", "other-svc", p, PR) == []
    assert ss.fire(NEW_SENSOR, "gitlab", "svc", p, PR) == []


def test_reasons_name_the_failing_filter():
    res = ss.simulate(NEW_SENSOR, "github", "svc", CLOSED, PR)
    out = res.dependencies["merged"]
    assert not out.passed
    assert "body.pull_request.merged" in out.reason()
    res = ss.simulate(NEW_SENSOR, "github", "svc", PING, {"X-GitHub-Event": "ping"})
    assert "headers.X-Github-Event.0" in res.explain() and "'ping'" in res.explain()
    res = ss.simulate(NEW_SENSOR, "github", "svc", PING, PR)   # header passes, ping has no 'action'
    assert "path 'body.action' does not exist" in res.explain()


# ---------------------------------------------------------------------------
# The brief's literal fragment
# ---------------------------------------------------------------------------

def test_brief_sensor_never_fires_behind_a_github_eventsource():
    p = with_base(MERGED, "development")
    assert ss.fire(BRIEF_SENSOR, "github", "svc", p, PR, source_type="github") == []
    r = ss.simulate(BRIEF_SENSOR, "github", "svc", p, PR)          # default source_type is "github"
    assert "path 'header.X-Github-Event' does not exist" in r.dependencies["merged"].reason()
    assert any("emits 'headers'" in w for w in ss.lint_sensor(BRIEF_SENSOR, "github"))


def test_brief_sensor_behind_a_generic_webhook_eventsource():
    def wfire(payload, headers=PR):
        return ss.fire(BRIEF_SENSOR, "github", "svc", payload, headers, source_type="webhook")
    objs = wfire(with_base(MERGED, "development"))
    assert len(objs) == 1 and objs[0]["spec"]["arguments"]["parameters"][0]["value"] == SHA
    for payload in (MERGED, with_base(CLOSED, "development"), with_base(OPENED, "development"),
                    with_base(SYNC, "development")):
        assert wfire(payload) == []
    assert wfire(PUSH_TAG, {"X-GitHub-Event": "push"}) == []
    # unanchored regexps: also fires for branches that merely contain 'development'
    for ref in ("feature/development-x", "development-old", "pre-development"):
        assert len(wfire(with_base(MERGED, ref))) == 1, ref


# ---------------------------------------------------------------------------
# The old sensor fires on open PRs, never on the merge
# ---------------------------------------------------------------------------

def test_old_sensor_does_not_fire_on_merge():
    for branch in ("development", "master"):
        assert fire(OLD_SENSOR, with_base(MERGED, branch)) == []
    res = ss.simulate(OLD_SENSOR, "github", "svc", with_base(MERGED, "development"), PR)
    assert "body.action" in res.dependencies["pr"].reason()


def test_old_sensor_fires_on_open_pr_events():
    for payload in (OPENED, SYNC):
        objs = fire(OLD_SENSOR, payload)
        assert len(objs) == 1
        assert objs[0]["spec"]["arguments"]["parameters"][0]["value"] == payload["pull_request"]["head"]["sha"]
        # k8s create: namespace defaults to the sensor's (none here), labels are added
        assert objs[0]["metadata"]["labels"]["events.argoproj.io/trigger"] == "ci"


def test_k8s_trigger_gets_sensor_namespace():
    s = copy.deepcopy(OLD_SENSOR)
    s["metadata"]["namespace"] = "argo"
    assert fire(s, OPENED)[0]["metadata"]["namespace"] == "argo"


# ---------------------------------------------------------------------------
# Exact filter semantics (documented pitfalls)
# ---------------------------------------------------------------------------

def test_string_values_are_unanchored_regexps():
    # 'development' (no anchors) matches any base ref that merely contains it
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["dependencies"][0]["filters"]["data"][3]["value"] = ["development"]
    for ref in ("feature/development-x", "development-old", "pre-development", "development"):
        assert len(fire(s, with_base(MERGED, ref))) == 1, ref
    # the anchored form in NEW_SENSOR does not
    assert fire(NEW_SENSOR, with_base(MERGED, "development-old")) == []
    # several values are alternatives (any one may match)
    s["spec"]["dependencies"][0]["filters"]["data"][3]["value"] = ["^main$", "^development$"]
    assert len(fire(s, with_base(MERGED, "development"))) == 1


def test_header_values_are_lists_matched_as_raw_json_text():
    p = with_base(MERGED, "development")
    # gjson String() of ["pull_request"] is the raw JSON text, so '^pull_request$' on the list never matches ...
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["dependencies"][0]["filters"]["data"][0]["path"] = "headers.X-Github-Event"
    assert fire(s, p) == []
    # ... indexing into the list (NEW_SENSOR) does, and so does an unanchored value on the list
    s["spec"]["dependencies"][0]["filters"]["data"][0]["value"] = ["pull_request"]
    assert len(fire(s, p)) == 1
    # which also matches pull_request_review_comment deliveries: the old sensor fires on an edited
    # review comment of an open PR
    r = ss.simulate(OLD_SENSOR, "github", "svc", REVIEW_COMMENT_EDITED,
                    {"X-GitHub-Event": "pull_request_review_comment"})
    assert len(r.objects) == 1


def test_header_names_are_canonicalised():
    p = with_base(MERGED, "development")
    assert len(fire(NEW_SENSOR, p, {"x-github-event": "pull_request"})) == 1
    ev = ss.build_event("github", "svc", p, {"x-github-event": "pull_request", "X-GITHUB-DELIVERY": "1"},
                        source_type="webhook")
    assert ev.data["header"] == {"X-Github-Delivery": ["1"], "X-Github-Event": ["pull_request"]}
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["dependencies"][0]["filters"]["data"][0]["path"] = "headers.X-GitHub-Event.0"  # not canonical
    assert fire(s, p) == []


def test_github_eventsource_event_data_layout():
    p = with_base(MERGED, "development")
    ev = ss.build_event("github", "svc", p, {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-1"})
    assert set(ev.data) == {"headers", "body"}
    assert ev.data["body"]["X-GitHub-Event"] == "pull_request" and ev.data["body"]["X-GitHub-Delivery"] == "d-1"
    # the injected body key is a plain string, so it can be matched anchored without an index
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["dependencies"][0]["filters"]["data"][0]["path"] = "body.X-GitHub-Event"
    assert len(fire(s, p)) == 1
    assert ss.fire(s, "github", "svc", p, PR, source_type="webhook") == []   # not there for a webhook source
    ev = ss.build_event("github", "svc", '{"b": 1, "a": 1.50}', PR)
    assert ev.data_json == ('{"headers":{"X-Github-Event":["pull_request"]},"body":{"X-GitHub-Delivery":"",'
                            '"X-GitHub-Event":"pull_request","a":1.5,"b":1}}')   # Go map re-marshal
    ev = ss.build_event("github", "svc", '{"b": 1, "a": 1.50}', PR, source_type="webhook")
    assert ev.data_json == '{"header":{"X-Github-Event":["pull_request"]},"body":{"b":1,"a":1.50}}'   # raw kept


def test_lint_sensor_flags_pitfalls():
    w = ss.lint_sensor(BRIEF_SENSOR, "github")
    assert any("emits 'headers'" in x for x in w)
    assert any("unanchored" in x and "development" in x for x in w)
    assert any("header values are lists" in x for x in w)


def test_bool_filter_values():
    p = with_base(MERGED, "development")
    for v in ("true", "True", "TRUE", "t", "1"):
        s = copy.deepcopy(NEW_SENSOR)
        s["spec"]["dependencies"][0]["filters"]["data"][2]["value"] = [v]
        assert len(fire(s, p)) == 1, v
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["dependencies"][0]["filters"]["data"][2]["value"] = ["yes"]      # ParseBool error -> filter error
    r = ss.simulate(s, "github", "svc", p, PR)
    assert not r.dependencies["merged"].passed and "invalid syntax" in r.dependencies["merged"].reason()
    s["spec"]["dependencies"][0]["filters"]["data"][2]["value"] = [True]       # unquoted YAML bool
    with pytest.raises(ss.SensorInvalid, match="cannot decode the Sensor"):
        ss.simulate(s, "github", "svc", p, PR)


def test_bool_filter_on_string_and_number_event_values():
    s = {"spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "n", "filters": {"data": [
        {"path": "body.x", "type": "bool", "value": ["true"]}]}}], "triggers": [{"template": {"name": "t", "log": {}}}]}}
    for x, ok in (("TRUE", True), ("t", True), ("yes", False), (1, True), (0, False), (None, False), ([True], False)):
        assert (ss.match(s, "e", "n", {"x": x}) == ["d"]) is ok, x


def test_number_filter_comparators():
    def sensor(comp, val):
        return {"spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "n", "filters": {"data": [
            {"path": "body.number", "type": "number", "comparator": comp, "value": [val]}]}}],
            "triggers": [{"template": {"name": "t", "log": {}}}]}}
    assert ss.match(sensor(">", "1"), "e", "n", OPENED) == ["d"]
    assert ss.match(sensor("<=", "1.5"), "e", "n", OPENED) == []
    assert ss.match(sensor("", "2"), "e", "n", OPENED) == ["d"]
    assert ss.match(sensor("!=", "2"), "e", "n", OPENED) == []
    assert ss.match(sensor("=", "2.0"), "e", "n", {"number": "2"}) == ["d"]   # strings are parsed as numbers


def test_string_comparator_not_equal_and_others():
    def sensor(comp):
        return {"spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "n", "filters": {"data": [
            {"path": "body.action", "type": "string", "comparator": comp, "value": ["^closed$"]}]}}],
            "triggers": [{"template": {"name": "t", "log": {}}}]}}
    assert ss.match(sensor("!="), "e", "n", OPENED) == ["d"]
    assert ss.match(sensor("!="), "e", "n", CLOSED) == []
    assert ss.match(sensor(">"), "e", "n", CLOSED) == []   # other comparators never match strings


def test_data_logical_or_and_filters_logical_or():
    s = {"spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "n", "filters": {
        "dataLogicalOperator": "or",
        "data": [{"path": "body.missing", "type": "string", "value": ["x"]},
                 {"path": "body.action", "type": "string", "value": ["^opened$"]}]}}],
        "triggers": [{"template": {"name": "t", "log": {}}}]}}
    assert ss.match(s, "e", "n", OPENED) == ["d"]
    assert ss.match(s, "e", "n", CLOSED) == []
    s2 = copy.deepcopy(s)
    f = s2["spec"]["dependencies"][0]
    f["filtersLogicalOperator"] = "or"
    f["filters"] = {"data": [{"path": "body.action", "type": "string", "value": ["^nope$"]}],
                    "exprs": [{"expr": "a == 'closed' && m == false", "fields": [
                        {"name": "a", "path": "body.action"}, {"name": "m", "path": "body.pull_request.merged"}]}]}
    assert ss.match(s2, "e", "n", CLOSED) == ["d"]
    assert ss.match(s2, "e", "n", MERGED) == []


def test_expr_filters_govaluate():
    assert govaluate("a == 'closed' && n >= 2", {"a": "closed", "n": 2.0}) is True
    assert govaluate("a =~ '^clo'", {"a": "closed"}) is True
    assert govaluate("n == '2'", {"n": 2.0}) is False                       # DeepEqual: float64 != string
    assert govaluate("(1 + 2) * 2 == 6 || x", {"x": False}) is True
    with pytest.raises(Exception):
        govaluate("a > 1", {"a": "x"})
    with pytest.raises(Unsupported):
        govaluate("t == '2020-01-01'", {"t": "x"})


def test_time_and_context_filters():
    base = {"name": "d", "eventSourceName": "e", "eventName": "n"}
    s = {"spec": {"dependencies": [dict(base, filters={"time": {"start": "09:00:00", "stop": "17:00:00"},
                                                       "context": {"type": "github", "subject": "n"}})],
                  "triggers": [{"template": {"name": "t", "log": {}}}]}}
    noon = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    night = dt.datetime(2024, 1, 1, 22, 0, tzinfo=dt.timezone.utc)
    assert ss.simulate(s, "e", "n", {}, now=noon).dependencies["d"].passed
    assert not ss.simulate(s, "e", "n", {}, now=night).dependencies["d"].passed
    assert not ss.simulate(s, "e", "n", {}, now=noon, source_type="webhook").dependencies["d"].passed


# ---------------------------------------------------------------------------
# Trigger parameters
# ---------------------------------------------------------------------------

def sensor_with_params(params, resource=None):
    s = copy.deepcopy(NEW_SENSOR)
    aw = s["spec"]["triggers"][0]["template"]["argoWorkflow"]
    aw["parameters"] = params
    if resource is not None:
        aw["source"]["resource"] = resource
    return s


def test_data_template_functions_and_go_number_printing():
    p = with_base(MERGED, "development")
    p["pull_request"]["head"]["ref"] = "Feature/ABC_1"
    params = [
        {"src": {"dependencyName": "merged", "dataTemplate": "{{ .Input.body.pull_request.head.ref | lower | replace \"/\" \"-\" | trunc 9 }}"},
         "dest": "spec.arguments.parameters.0.value"},
        {"src": {"dependencyName": "merged", "dataTemplate": "{{ .Input.body.pull_request.id }}"},
         "dest": "spec.arguments.parameters.1.value"},
        {"src": {"dependencyName": "merged", "dataTemplate": "{{ printf \"%s-%v\" .Input.body.action .Input.body.number }}"},
         "dest": "spec.arguments.parameters.2.value"},
        {"src": {"dependencyName": "merged", "dataTemplate": "{{ .Input.body.number | toString | upper }}"},
         "dest": "spec.arguments.parameters.3.value"},
    ]
    wf = fire(sensor_with_params(params), p)[0]
    vals = [x["value"] for x in wf["spec"]["arguments"]["parameters"]]
    # Go prints float64 with %v: 279147437 -> 2.79147437e+08
    assert vals == ["feature-a", "2.79147437e+08", "closed-2", "2"]
    assert p["pull_request"]["id"] == 279147437


def test_template_failure_falls_back_to_key_then_default_then_error():
    p = with_base(MERGED, "development")
    params = [{"src": {"dependencyName": "merged", "dataTemplate": "{{ .Input.body.number | lower }}",  # type error
                       "dataKey": "body.pull_request.title"}, "dest": "spec.arguments.parameters.0.value"},
              {"src": {"dependencyName": "merged", "dataKey": "body.nope", "value": "dflt"},
               "dest": "spec.arguments.parameters.1.value"},
              {"src": {"dependencyName": "merged", "dataTemplate": "{{ .Input.body.nope }}", "value": "dflt2"},
               "dest": "spec.arguments.parameters.2.value"}]
    wf = fire(sensor_with_params(params), p)[0]
    vals = [x.get("value") for x in wf["spec"]["arguments"]["parameters"]]
    assert vals[:3] == [p["pull_request"]["title"], "dflt", "dflt2"]
    bad = [{"src": {"dependencyName": "merged", "dataKey": "body.nope"}, "dest": "spec.arguments.parameters.0.value"}]
    s = sensor_with_params(bad)
    assert fire(s, p) == []                                    # upstream: trigger fails, nothing created
    res = ss.simulate(s, "github", "svc", p, PR)
    assert res.firings[0].error and "unable to resolve 'merged' parameter value" in res.firings[0].error
    with pytest.raises(ss.TriggerError):
        fire(s, p, strict=True)


def test_use_raw_data_and_json_blocks():
    p = with_base(MERGED, "development")
    params = [{"src": {"dependencyName": "merged", "dataKey": "body.number", "useRawData": True},
               "dest": "spec.arguments.parameters.0.value"},
              {"src": {"dependencyName": "merged", "dataKey": "body.number"}, "dest": "spec.arguments.parameters.1.value"},
              {"src": {"dependencyName": "merged", "dataKey": "body.pull_request.base.repo.owner.login"},
               "dest": "metadata.annotations.owner"},
              {"src": {"dependencyName": "merged", "dataKey": "body.pull_request.labels"},
               "dest": "metadata.annotations.labels"},
              {"src": {"dependencyName": "merged", "dataKey": "body.pull_request.requested_reviewers", "useRawData": True},
               "dest": "spec.reviewers"}]
    wf = fire(sensor_with_params(params), p)[0]
    vals = [x.get("value") for x in wf["spec"]["arguments"]["parameters"]]
    assert vals[0] == 2 and vals[1] == "2"
    assert wf["metadata"]["annotations"]["owner"] == "Codertocat"
    raw = wf["metadata"]["annotations"]["labels"]
    assert json.loads(raw) == p["pull_request"]["labels"] and raw.startswith('[{"color":')  # github: sorted keys
    assert wf["spec"]["reviewers"] == p["pull_request"]["requested_reviewers"]   # raw JSON block inserted


def test_dest_paths_append_prepend_and_array_growth():
    p = with_base(MERGED, "development")
    params = [{"src": {"dependencyName": "merged", "dataTemplate": "{{ .Input.body.number }}"},
               "dest": "metadata.generateName", "operation": "append"},
              {"src": {"dependencyName": "merged", "value": "ci-"}, "dest": "metadata.generateName", "operation": "prepend"},
              {"src": {"dependencyName": "merged", "dataKey": "body.pull_request.head.sha"},
               "dest": "spec.arguments.parameters.5.value"},
              {"src": {"dependencyName": "merged", "value": "x"}, "dest": "metadata.labels.team"},
              {"src": {"dependencyName": "merged", "value": "y"}, "dest": "spec.extra.-1"},
              {"src": {"dependencyName": "missing-dep"}, "dest": "metadata.labels.never"}]
    wf = fire(sensor_with_params(params), p)[0]
    assert wf["metadata"]["generateName"] == "ci-svc-2"
    plist = wf["spec"]["arguments"]["parameters"]
    assert len(plist) == 6 and plist[4] is None and plist[5] == {"value": p["pull_request"]["head"]["sha"]}
    assert wf["metadata"]["labels"]["team"] == "x" and "never" not in wf["metadata"]["labels"]
    assert wf["spec"]["extra"] == ["y"]
    assert any("missing-dep" in w for w in ss.lint_sensor(sensor_with_params(params)))


def test_whole_event_when_no_key_and_context_key():
    p = with_base(MERGED, "development")
    params = [{"src": {"dependencyName": "merged"}, "dest": "metadata.annotations.event"},
              {"src": {"dependencyName": "merged", "contextKey": "subject"}, "dest": "metadata.annotations.subject"},
              {"src": {"dependencyName": "merged", "contextTemplate": "{{ .Input.source }}/{{ .Input.type }}"},
               "dest": "metadata.annotations.src"}]
    wf = fire(sensor_with_params(params), p)[0]
    ann = wf["metadata"]["annotations"]
    whole = json.loads(ann["event"])
    assert whole["context"]["subject"] == "svc" and whole["context"]["type"] == "github"
    import base64
    assert json.loads(base64.b64decode(whole["data"]))["body"]["number"] == 2
    assert ann["subject"] == "svc" and ann["src"] == "github/github"


def test_trigger_level_parameters_patch_the_template():
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["triggers"][0]["parameters"] = [
        {"src": {"dependencyName": "merged", "dataTemplate": "pr-{{ .Input.body.number }}-"},
         "dest": "argoWorkflow.source.resource.metadata.generateName"}]
    wf = fire(s, with_base(MERGED, "development"))[0]
    assert wf["metadata"]["generateName"] == "pr-2-"


def test_inline_source():
    s = copy.deepcopy(NEW_SENSOR)
    aw = s["spec"]["triggers"][0]["template"]["argoWorkflow"]
    aw["source"] = {"inline": yaml.safe_dump(aw["source"]["resource"])}
    wf = fire(s, with_base(MERGED, "development"))[0]
    assert wf["spec"]["arguments"]["parameters"][0]["value"] == SHA


# ---------------------------------------------------------------------------
# Conditions / multiple dependencies
# ---------------------------------------------------------------------------

TWO_DEPS = yaml.safe_load("""
kind: Sensor
metadata: {name: two}
spec:
  dependencies:
    - name: merged-dev
      eventSourceName: github
      eventName: svc
      filters:
        data:
          - {path: body.pull_request.merged, type: bool, value: ["true"]}
          - {path: body.pull_request.base.ref, type: string, value: ["^development$"]}
    - name: tag
      eventSourceName: github
      eventName: svc
      filters:
        data:
          - {path: body.ref, type: string, value: ["^refs/tags/"]}
  triggers:
    - template:
        name: either
        conditions: "merged-dev || tag"
        log: {}
    - template:
        name: both
        log: {}
""")


def test_conditions_or_and_default_and():
    sim = ss.SensorSimulator(TWO_DEPS)
    r1 = sim.send("github", "svc", with_base(MERGED, "development"), PR)
    assert [f.trigger for f in r1.firings] == ["either"]          # 'both' waits for the tag dependency
    assert "still waiting" in r1.trigger_notes["both"]
    r2 = sim.send("github", "svc", PUSH_TAG, {"X-GitHub-Event": "push"})
    assert sorted(f.trigger for f in r2.firings) == ["both", "either"]
    both = next(f for f in r2.firings if f.trigger == "both")
    assert both.dependencies == ["merged-dev", "tag"] and both.object is None and "log" in both.note
    # a fresh single event cannot satisfy the implicit AND of all dependencies
    assert [f.trigger for f in ss.simulate(TWO_DEPS, "github", "svc", PUSH_TAG).firings] == ["either"]


def test_bad_conditions_rejected():
    s = copy.deepcopy(TWO_DEPS)
    s["spec"]["triggers"][0]["template"]["conditions"] = "merged-dev || nope"
    with pytest.raises(ss.SensorInvalid, match="nope"):
        ss.SensorSimulator(s)


# ---------------------------------------------------------------------------
# Validation and Unsupported
# ---------------------------------------------------------------------------

def test_validation_errors():
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["dependencies"][0]["filters"]["data"][0]["value"] = []
    with pytest.raises(ss.SensorInvalid, match="type, path and value must be not empty"):
        ss.validate_sensor(s)
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["dependencies"][0]["filters"]["data"][0]["comparator"] = "=="
    with pytest.raises(ss.SensorInvalid, match="comparator == not supported"):
        ss.validate_sensor(s)
    s = copy.deepcopy(NEW_SENSOR)
    s["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"][0]["dest"] = ""
    with pytest.raises(ss.SensorInvalid, match="destination can't be empty"):
        ss.validate_sensor(s)


@pytest.mark.parametrize("mutate", [
    lambda s: s["spec"]["dependencies"][0].__setitem__("transform", {"jq": ".body"}),
    lambda s: s["spec"]["dependencies"][0]["filters"].__setitem__("script", "return true"),
    lambda s: s["spec"]["dependencies"][0]["filters"]["data"][0].__setitem__("path", "header|X"),
    lambda s: s["spec"]["dependencies"][0]["filters"]["data"][1].__setitem__("template", "{{ now }}"),
    lambda s: s["spec"]["dependencies"][0]["filters"]["data"][1].__setitem__("template", "{{ range .Input }}x{{ end }}"),
    lambda s: s["spec"]["triggers"][0]["template"]["argoWorkflow"].__setitem__("operation", "resubmit"),
    lambda s: s["spec"]["triggers"][0]["template"]["argoWorkflow"].__setitem__("source", {"configmap": {"name": "x"}}),
])
def test_unsupported_features_raise(mutate):
    s = copy.deepcopy(NEW_SENSOR)
    mutate(s)
    with pytest.raises(Unsupported):
        fire(s, with_base(MERGED, "development"))


# ---------------------------------------------------------------------------
# gjson / sjson / Go formatting / regexp / templates (unit)
# ---------------------------------------------------------------------------

DOC = load_json('{"name":{"first":"Tom"},"fav.movie":"Deer","friends":[{"first":"Dale","age":44},'
                '{"first":"Roger","age":68},{"first":"Jane","age":47}],"n":1.50,"e":[]}')


@pytest.mark.parametrize("path,expect", [
    ("name.first", "Tom"), ("fav\\.movie", "Deer"), ("friends.#", "3"), ("friends.#.age", "[44,68,47]"),
    ("friends.1.first", "Roger"), ("friends.#(age>45).first", "Roger"), ("friends.#(age>45)#.first", '["Roger","Jane"]'),
    ('friends.#(first=="Jane").age', "47"), ('friends.#(first%"D*").age', "44"), ("n", "1.5"), ("e.#", "0"),
    ("name", '{"first":"Tom"}'), ("f*.#", "3"), ("[name.first,n]", '["Tom",1.50]'), ("{name.first,n}", '{"first":"Tom","n":1.50}'),
])
def test_gjson_paths(path, expect):
    r = gjson_get(DOC, path)
    assert r.exists() and r.string() == expect


def test_gjson_missing_and_unsupported():
    assert not gjson_get(DOC, "friends.9").exists()
    assert not gjson_get(DOC, "name.first.x").exists()
    for bad in ("friends|#", "@reverse", "friends.@reverse", "a,b"):
        with pytest.raises(Unsupported):
            gjson_get(DOC, bad)


def test_sjson_set():
    assert sjson_set({}, "a.b.0.c", "x") == {"a": {"b": [{"c": "x"}]}}
    assert sjson_set({"a": [1]}, "a.3", "x") == {"a": [1, None, None, "x"]}
    assert sjson_set({"a": [1]}, "a.-1", "x") == {"a": [1, "x"]}
    assert sjson_set({"a": "scalar"}, "a.b", "x") == {"a": {"b": "x"}}
    assert sjson_set({"a": {}}, "a.:0", "x") == {"a": {"0": "x"}}
    assert sjson_set({}, "k\\.dot", "x") == {"k.dot": "x"}


@pytest.mark.parametrize("f,expect", [
    (2.0, "2"), (123456.0, "123456"), (1234567.0, "1.234567e+06"), (1e-5, "1e-05"), (0.0001, "0.0001"),
    (1.5, "1.5"), (-0.5, "-0.5"), (1e21, "1e+21"),
])
def test_go_float_v(f, expect):
    assert go_format_float(f, "g", -1) == expect


def test_go_json_encoding():
    assert go_json_dumps({"x": "a<b>&\u2028\b"}) == '{"x":"a\\u003cb\\u003e\\u0026\\u2028\\b"}'
    assert go_json_dumps([1e21, 1e20, 0.00001, 1e-7]) == "[1e+21,100000000000000000000,0.00001,1e-7]"


def test_go_regexp_translation():
    assert go_regexp("x$").search("x\n") is None          # Go '$' is end of text without (?m)
    assert go_regexp("(?m)x$").search("x\n")
    assert go_regexp("a{,2}").search("a{,2}")               # literal in Go
    assert go_regexp("[[:alpha:]]+").search("abc")
    for bad in ("(?=x)", "\\1", "(", "[a-"):
        with pytest.raises(GoRegexError):
            go_regexp(bad)


def test_templates_match_go_semantics():
    data = {"Input": {"a": {"s": "Hello", "n": 3.0, "z": None}}}
    assert render("{{ .Input.a.s | upper }}", data) == "HELLO"
    assert render("{{ .Input.a.missing }}", data) == "<no value>"
    assert render("{{ .Input.a.z }}", data) == "<no value>"
    assert render("{{ if eq .Input.a.s \"Hello\" }}y{{ end }}", data) == "y"
    assert render("{{- \" x \" -}}", data) == " x "
    for bad in ("{{ .Input.a.n | lower }}", "{{ eq .Input.a.n 3 }}", "{{ .Input.a.z.x }}", "{{ nosuchfn 1 }}",
                "{{ substr 3 1 \"abc\" }}"):
        with pytest.raises(TemplateError):
            render(bad, data)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def test_cli(tmp_path):
    def run(sensor_obj, payload_obj, *extra):
        sensor = tmp_path / "sensor.yaml"
        sensor.write_text(yaml.safe_dump(sensor_obj))
        payload = tmp_path / "p.json"
        payload.write_text(json.dumps(payload_obj))
        cmd = [sys.executable, "-m", "tests.checks.sensor_sim", str(sensor), "--event-source", "github",
               "--event-name", "svc", "--payload", str(payload), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)

    out = run(NEW_SENSOR, with_base(MERGED, "development"), "--header", "X-GitHub-Event=pull_request")
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs[0]["spec"]["arguments"]["parameters"][0]["value"] == SHA
    out = run(NEW_SENSOR, CLOSED, "--github-event", "pull_request")
    assert out.returncode == 1 and out.stdout.startswith("no trigger fired")
    assert "body.pull_request.merged" in out.stdout
    out = run(BRIEF_SENSOR, with_base(MERGED, "development"), "--header", "X-GitHub-Event=pull_request")
    assert out.returncode == 1 and "emits 'headers'" in out.stderr
    out = run(BRIEF_SENSOR, with_base(MERGED, "development"), "--header", "X-GitHub-Event=pull_request",
              "--source-type", "webhook")
    assert out.returncode == 0 and SHA in out.stdout
