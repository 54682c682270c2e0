#!/usr/bin/env python3
"""sensor_sim.py - offline simulator of Argo Events Sensor dependency filtering and trigger

Stand-in (tests/checks): an offline check the tests use until it is replaced by the upstream
binary it imitates; see tests/checks/__init__.py and docs/upstream-data.md.

parameterisation, for use as a test oracle.

Semantics were re-implemented (no code copied) from reading, at these upstream commits:

  argoproj/argo-events  6478ece495f951dde9f183ae58fde134c52f41a5  (master, 2026-07-18; go 1.26)
      pkg/sensors/dependencies/filter.go            data/expr/context/time/script filters
      pkg/sensors/triggers/params.go                ResolveParamValue / ApplyParams
      pkg/sensors/listener.go                       dependency expression, triggerOne order
      pkg/eventbus/jetstream/sensor/trigger_conn.go how events satisfy dependencies (AND/OR logic)
      pkg/sensors/triggers/argo-workflow/argo-workflow.go, standard-k8s/standard-k8s.go
      pkg/sensors/artifacts/resource.go, inline.go  trigger sources
      pkg/eventsources/sources/github/start.go      github EventSource payload wrapping
      pkg/eventsources/sources/webhook/start.go     generic webhook EventSource payload wrapping
      pkg/eventsources/events/event-data.go         {"headers"...} (github) vs {"header"...} (webhook)
      pkg/eventsources/eventing.go                  cloudevent context (type/source/subject)
      pkg/reconciler/sensor/validate.go             sensor validation
      pkg/apis/events/v1alpha1/sensor_types.go      field names / enums
  tidwall/gjson v1.19.0 (7d8b3821), tidwall/sjson v1.2.5 (3a21ce7b), Masterminds/sprig v3.3.0,
  Knetic/govaluate 9aa49832a739 (the version pinned in argo-events' go.mod).
  argo-events v1.9.10 (the version the project deploys) is byte-identical to that master for
  filter.go, params.go, github/start.go, event-data.go, trigger_conn.go and argo-workflow.go
  (listener.go differs only in metrics; v1.9.10 pins gjson v1.18.0 / sjson v1.2.4, which differ
  from v1.19.0 / v1.2.5 only by new iterator functions).

The helpers live next to this file (package tests.checks): gosem.py (Go number/JSON/regexp, gjson, sjson) and
gotemplate.py (text/template + sprig subset, fmt, govaluate subset).

Python API
----------
    match(sensor, event_source_name, event_name, payload, headers, *, source_type="github") -> [dep names]
    fire(sensor, event_source_name, event_name, payload, headers, *, source_type="github") -> [k8s objects]
    simulate(...) -> SimResult (per-dependency filter outcomes with reasons, per-trigger firings/errors)
    SensorSimulator(sensor).send(...) keeps per-trigger dependency state across several events
    lint_sensor(sensor, source_type=...) -> [warnings about well-known pitfalls]

`source_type` picks how the EventSource wraps the HTTP request (upstream, verified in event-data.go
and github/start.go). The default is "github" because the project's EventSource is a `github:` one
(docs/release-flow.md: the "github" EventSource verifies the webhook signature):
    "github" : github EventSource    -> data = {"headers": {Canonical-Key: [values]}, "body": <payload
               re-marshalled from a Go map: sorted keys, numbers as float64, plus string keys
               "X-GitHub-Event" and "X-GitHub-Delivery" copied from the request headers>}
    "webhook": generic webhook EventSource -> data = {"header": {...}, "body": <payload as sent, compacted>}
So a filter on `header.X-Github-Event` (singular) can only ever pass with a generic webhook EventSource.
"""
from __future__ import annotations

import argparse
import base64
import copy
import datetime as _dt
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from .gosem import (  # noqa: F401
    JSONT, STRING, GResult, GoRegexError, SjsonError, Unsupported, go_json_dumps, go_json_string,
    go_parse_bool, go_parse_float, go_regexp, gjson_get, load_json, plain, sjson_set, sort_keys_deep,
    to_go_float64,
)
from .gotemplate import ExprError, TemplateError, govaluate, render

__all__ = ["match", "fire", "simulate", "SensorSimulator", "lint_sensor", "validate_sensor", "build_event",
           "github_headers", "Unsupported", "SensorInvalid", "TriggerError", "SimResult"]


class SensorInvalid(Exception):
    """The sensor would be rejected by the argo-events controller (pkg/reconciler/sensor/validate.go),
    or could not even be decoded by it: the Sensor CRD has `x-kubernetes-preserve-unknown-fields`
    on spec, so the API server accepts e.g. `value: [true]`, but Go's json.Unmarshal into the
    []string field fails and the sensor never runs."""


class TriggerError(Exception):
    """A trigger whose dependency conditions were met failed while building its resource."""


# ---------------------------------------------------------------------------
# Event construction (what reaches the sensor)
# ---------------------------------------------------------------------------

def canonical_header_key(key: str) -> str:
    """net/textproto.CanonicalMIMEHeaderKey (what Go's HTTP server does to request header names)."""
    if not key or any(not (c.isalnum() or c in "!#$%&'*+-.^_`|~") or ord(c) > 127 for c in key):
        return key
    out = []
    upper = True
    for c in key:
        out.append(c.upper() if upper else c.lower())
        upper = c == "-"
    return "".join(out)


def github_headers(event: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> dict[str, str]:
    """A realistic header set for a GitHub webhook delivery (without signature headers)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-ID": "79929171",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }


def _normalise_headers(headers: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not headers:
        return out
    items = headers.items() if isinstance(headers, dict) else headers
    for k, v in items:
        vals = v if isinstance(v, (list, tuple)) else [v]
        out.setdefault(canonical_header_key(str(k)), []).extend(str(x) for x in vals)
    return {k: out[k] for k in sorted(out)}


@dataclass
class Event:
    context: dict[str, str]
    data: Any               # Python value whose Go-JSON encoding is exactly the event data bytes
    time: _dt.datetime

    @property
    def data_json(self) -> str:
        return go_json_dumps(self.data)


def build_event(event_source_name: str, event_name: str, payload: Any, headers: Any = None, *,
                source_type: str = "github", metadata: dict[str, str] | None = None,
                now: _dt.datetime | None = None, event_id: str | None = None) -> Event:
    """Build the cloudevent the EventSource would publish for one HTTP delivery."""
    if isinstance(payload, (bytes, bytearray)):
        payload = payload.decode()
    if isinstance(payload, str):
        payload = load_json(payload)
    hdrs = _normalise_headers(headers)
    if source_type == "github":
        body = to_go_float64(copy.deepcopy(payload))
        if not isinstance(body, dict):
            raise ValueError("github EventSource: payload must be a JSON object (it is unmarshalled into a map)")
        for h in ("X-GitHub-Event", "X-GitHub-Delivery"):   # r.Header.Get(h) -> first value or ""
            vals = hdrs.get(canonical_header_key(h)) or [""]
            body[h] = vals[0]
        data: dict[str, Any] = {"headers": hdrs, "body": sort_keys_deep(body)}
    elif source_type == "webhook":
        data = {"header": hdrs, "body": payload}
    else:
        raise Unsupported(f"source_type {source_type!r} (supported: 'webhook', 'github')")
    if metadata:
        data["metadata"] = {k: metadata[k] for k in sorted(metadata)}
    t = now or _dt.datetime.now(_dt.timezone.utc)
    ctx = {"id": event_id or uuid.uuid4().hex, "source": event_source_name, "specversion": "1.0",
           "type": source_type, "datacontenttype": "application/json", "subject": event_name,
           "time": t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return Event(ctx, data, t)


# ---------------------------------------------------------------------------
# Validation (controller) + lint (well-known pitfalls, not upstream errors)
# ---------------------------------------------------------------------------

_LOGICAL = ("", "and", "or")
_COMPARATORS = (">=", ">", "=", "!=", "<", "<=", "")
_PARAM_OPS = ("", "append", "overwrite", "prepend")
_ARGO_OPS = ("submit", "submit-from", "resubmit", "resume", "retry", "suspend", "terminate", "stop", "")
_K8S_OPS = ("create", "update", "patch", "delete", "")
_TRIGGER_KINDS = ("k8s", "argoWorkflow", "http", "awsLambda", "custom", "kafka", "nats", "slack", "openWhisk",
                  "log", "azureEventHubs", "pulsar", "azureServiceBus", "email")


def _spec(sensor: dict) -> dict:
    if not isinstance(sensor, dict):
        raise SensorInvalid("sensor must be a mapping")
    if sensor.get("kind") not in (None, "Sensor"):
        raise SensorInvalid(f"not a Sensor: kind={sensor.get('kind')!r}")
    return sensor.get("spec") or {}


def _validate_time(s: Any) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})", str(s))
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3)) > 59:
        raise ValueError(f'parsing time "{s}" as "15:04:05": cannot parse')
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def validate_sensor(sensor: dict) -> None:
    """Raise SensorInvalid for what the controller (or the CRD schema) would reject."""
    spec = _spec(sensor)
    problems: list[str] = []
    deps = spec.get("dependencies") or []
    if not deps:
        problems.append("no event dependencies found")
    for i, d in enumerate(deps):
        where = f"dependencies[{i}]"
        if not d.get("name"):
            problems.append(f"{where}: event dependency must define a name")
        if not d.get("eventSourceName"):
            problems.append(f"{where}: event dependency must define the EventSourceName")
        if not d.get("eventName"):
            problems.append(f"{where}: event dependency must define the EventName")
        if d.get("filtersLogicalOperator", "") not in _LOGICAL:
            problems.append(f"{where}: logical operator {d.get('filtersLogicalOperator')} not supported")
        f = d.get("filters")
        if f is None:
            continue
        for key in ("exprLogicalOperator", "dataLogicalOperator"):
            if f.get(key, "") not in _LOGICAL:
                problems.append(f"{where}.filters.{key}: logical operator {f.get(key)} not supported")
        for j, e in enumerate(f.get("exprs") or []):
            if not e.get("expr") or not e.get("fields"):
                problems.append(f"{where}.filters.exprs[{j}]: one of expr filters is not valid (expr and fields must be not empty)")
            for fld in e.get("fields") or []:
                if not fld.get("path") or not fld.get("name"):
                    problems.append(f"{where}.filters.exprs[{j}]: one of expr filters is not valid (path and name in a field must be not empty)")
        for j, df in enumerate(f.get("data") or []):
            w = f"{where}.filters.data[{j}]"
            if df.get("comparator", "") not in _COMPARATORS:
                problems.append(f"{w}: comparator {df.get('comparator')} not supported")
            vals = df.get("value")
            if not df.get("path") or not df.get("type") or not vals:
                problems.append(f"{w}: one of data filters is not valid (type, path and value must be not empty)")
                continue
            for v in vals:
                if not isinstance(v, str):
                    problems.append(f"{w}.value: {v!r} is a {type(v).__name__}; the field is []string, so the "
                                    f"controller cannot decode the Sensor (json: cannot unmarshal into string) - "
                                    f"quote it in YAML, e.g. \"{str(v).lower() if isinstance(v, bool) else v}\"")
                elif v == "":
                    problems.append(f"{w}: one of data filters is not valid (value must be not empty)")
        ctx = f.get("context")
        if ctx is not None and not any(ctx.get(k) for k in ("type", "subject", "source", "datacontenttype")):
            problems.append(f"{where}.filters.context: no fields specified in ctx filter (aka all events will be discarded)")
        tf = f.get("time")
        if tf is not None:
            try:
                a, b = _validate_time(tf.get("start")), _validate_time(tf.get("stop"))
                if a == b:
                    problems.append(f"{where}.filters.time: stop '{tf.get('stop')}' is equal to start '{tf.get('start')}'")
            except ValueError as e:
                problems.append(f"{where}.filters.time: {e}")
    trigs = spec.get("triggers") or []
    if not trigs:
        problems.append("no triggers found")
    names: set[str] = set()
    for i, t in enumerate(trigs):
        tpl = t.get("template")
        if not tpl:
            problems.append(f"triggers[{i}]: trigger template can't be nil")
            continue
        name = tpl.get("name")
        if not name:
            problems.append(f"triggers[{i}]: trigger must define a name")
        elif name in names:
            problems.append(f"duplicate trigger name: {name}")
        names.add(name)
        kinds = [k for k in _TRIGGER_KINDS if tpl.get(k) is not None]
        if not kinds:
            problems.append(f"triggers[{i}] ({name}): template does not define a trigger type")
        for k in ("k8s", "argoWorkflow"):
            body = tpl.get(k)
            if body is None:
                continue
            if not body.get("source"):
                problems.append(f"template {name} is invalid, {k} trigger does not contain an absolute action")
            ops = _K8S_OPS if k == "k8s" else _ARGO_OPS
            if body.get("operation", "") not in ops:
                problems.append(f"template {name} is invalid, unknown operation type {body.get('operation')}")
            for j, p in enumerate(body.get("parameters") or []):
                problems.extend(f"template {name} is invalid, resource parameter index: {j}. err: {e}" for e in _param_problems(p))
        for j, p in enumerate(t.get("parameters") or []):
            problems.extend(f"trigger {name}: template parameter index: {j}. err: {e}" for e in _param_problems(p))
    if problems:
        raise SensorInvalid("; ".join(problems))


def _param_problems(p: dict) -> list[str]:
    out = []
    src = p.get("src")
    if not src:
        out.append("parameter source can't be empty")
    elif not src.get("dependencyName"):
        out.append("parameter dependency name can't be empty")
    if not p.get("dest"):
        out.append("parameter destination can't be empty")
    if p.get("operation", "") not in _PARAM_OPS:
        out.append(f"parameter operation {p.get('operation')} is invalid")
    if src and src.get("value") is not None and not isinstance(src.get("value"), str):
        out.append("src.value must be a string (the field is *string; the controller cannot decode anything else)")
    return out


_REGEX_META = re.compile(r"[\\^$.|?*+()\[\]{}]")


def lint_sensor(sensor: dict, source_type: str | None = None) -> list[str]:
    """Warnings about constructs that are valid upstream but very likely not what was meant."""
    spec = _spec(sensor)
    warns: list[str] = []
    dep_names = [d.get("name") for d in spec.get("dependencies") or []]
    for d in spec.get("dependencies") or []:
        for j, df in enumerate((d.get("filters") or {}).get("data") or []):
            path = str(df.get("path", ""))
            w = f"dependency {d.get('name')!r} data[{j}] path {path!r}"
            root = path.split(".", 1)[0]
            if source_type == "github" and root == "header":
                warns.append(f"{w}: the github EventSource emits 'headers' (plural); 'header.*' never exists there "
                             f"-> the filter errors and the dependency never passes")
            if source_type == "webhook" and root == "headers":
                warns.append(f"{w}: the generic webhook EventSource emits 'header' (singular); 'headers.*' never exists")
            if df.get("type") == "string" and not df.get("template"):
                for v in df.get("value") or []:
                    if not isinstance(v, str):
                        continue
                    if root in ("header", "headers") and path.count(".") == 1 and not _REGEX_META.search(v):
                        warns.append(f"{w}: header values are lists, so the regex runs against the raw JSON text "
                                     f'[\"...\"]; {v!r} also matches e.g. {v + "_review"!r}. Use path '
                                     f"'{path}.0' with value '^{v}$'")
                    elif not v.startswith("^") or not v.endswith("$"):
                        warns.append(f"{w}: string values are unanchored Go regexps (regexp.Match); {v!r} also "
                                     f"matches values that merely contain it. Use '^{re.escape(v) if _REGEX_META.search(v) is None else v}$'")
    for t in spec.get("triggers") or []:
        tpl = t.get("template") or {}
        plist = list(t.get("parameters") or [])
        for k in ("k8s", "argoWorkflow"):
            plist += list((tpl.get(k) or {}).get("parameters") or [])
        for p in plist:
            dn = (p.get("src") or {}).get("dependencyName")
            if dn and dn not in dep_names:
                warns.append(f"trigger {tpl.get('name')!r}: parameter src.dependencyName {dn!r} is not a dependency; "
                             f"upstream silently skips the parameter (no error, value left as in the template)")
    return warns


# ---------------------------------------------------------------------------
# Filters (pkg/sensors/dependencies/filter.go)
# ---------------------------------------------------------------------------

def _present(d: dict, key: str) -> bool:
    return key in d and d[key] is not None


def _filter_data(filters: list, op: str, ev: Event, notes: list[str]) -> tuple[bool, str | None]:
    if not filters:
        return True, None
    errs: list[str] = []
    is_or = op == "or"

    def fail(msg: str) -> tuple[bool, str] | None:
        if is_or:
            errs.append(msg)
            return None
        return False, f"data filter error ({msg})"

    for idx, f in enumerate(filters):
        path = f.get("path", "")
        res = gjson_get(ev.data, path)
        label = f"data[{idx}] path={path!r} type={f.get('type')!r} value={f.get('value')!r}" + \
                (f" comparator={f.get('comparator')!r}" if f.get("comparator") else "")
        if not res.exists():
            notes.append(f"{label}: path does not exist in event data")
            r = fail(f"path '{path}' does not exist")
            if r:
                return r
            continue
        values = f.get("value") or []
        if not values:
            r = fail("no values specified")
            if r:
                return r
            continue
        if f.get("template"):
            try:
                out = render(f["template"], {"Input": res.string()})
            except TemplateError as e:
                notes.append(f"{label}: template error: {e}")
                r = fail(str(e))
                if r:
                    return r
                continue
            if out in ("", "<no value>"):
                notes.append(f"{label}: template evaluated to {out!r}")
                r = fail(f"template '{f['template']}' evaluated to empty string or no value")
                if r:
                    return r
                continue
            res = GResult(STRING, go_json_string(out), out)
        typ = f.get("type")
        comp = f.get("comparator", "") or ""
        shown = res.string()
        extra = ""
        matched = False
        error = None
        if typ == "bool":
            ev_val = res.bool()
            for v in values:
                try:
                    fv = go_parse_bool(v)
                except ValueError as e:
                    error = str(e)
                    break
                if fv == ev_val:
                    matched = True
                    break
            extra = f" (as bool: {'true' if ev_val else 'false'})"
        elif typ == "number":
            ev_val = res.float()
            for v in values:
                try:
                    fv = go_parse_float(v)
                except ValueError as e:
                    error = str(e)
                    break
                ok = {">=": ev_val >= fv, ">": ev_val > fv, "<": ev_val < fv, "<=": ev_val <= fv,
                      "!=": ev_val != fv, "=": ev_val == fv, "": ev_val == fv}.get(comp, False)
                if ok:
                    matched = True
                    break
            extra = f" (as number: {ev_val!r})"
        elif typ == "string":
            s = res.string()
            for v in values:
                try:
                    rx = go_regexp(v)
                except GoRegexError as e:
                    error = str(e)
                    break
                m = rx.search(s) is not None
                if (comp in ("=", "") and m) or (comp == "!=" and not m):
                    matched = True
                    break
        else:
            error = f"unsupported JSON type '{typ}'"
        if error is not None:
            notes.append(f"{label}: {error}")
            r = fail(error)
            if r:
                return r
            continue
        if matched:
            if is_or:
                return True, None
            continue
        notes.append(f"{label}: no value matched event value {shown!r}{extra}")
        if not is_or:
            return False, None
    if is_or:
        if errs:
            return False, f"data filter errors [{' / '.join(errs)}]"
        return False, None
    return True, None


def _filter_expr(filters: list, op: str, ev: Event, notes: list[str]) -> tuple[bool, str | None]:
    is_or = op == "or"
    errs: list[str] = []
    for idx, f in enumerate(filters):
        params: dict[str, Any] = {}
        missing = None
        for fld in f.get("fields") or []:
            r = gjson_get(ev.data, fld.get("path", ""))
            if not r.exists():
                missing = fld.get("path")
                break
            params[fld.get("name")] = r.value()
        label = f"exprs[{idx}] {f.get('expr')!r}"
        if missing is not None:
            msg = f"path '{missing}' does not exist"
            notes.append(f"{label}: {msg}")
            if is_or:
                errs.append(msg)
                continue
            return False, f"expr filter error ({msg})"
        if not params:
            continue
        try:
            result = govaluate(f.get("expr", ""), params)
        except ExprError as e:
            notes.append(f"{label}: {e}")
            if is_or:
                errs.append(str(e))
                continue
            return False, f"expr filter error ({e})"
        if result is True:
            if is_or:
                return True, None
        else:
            notes.append(f"{label}: evaluated to {result!r} with {params!r}")
            if not is_or:
                return False, None
    if is_or:
        if errs:
            return False, f"expr filter errors [{' / '.join(errs)}]"
        return False, None
    return True, None


def _filter_context(expected: dict, ctx: dict, notes: list[str]) -> bool:
    ok = True
    for k in ("type", "subject", "source", "datacontenttype"):
        want = expected.get(k) or ""
        if want and want != ctx.get(k):
            notes.append(f"context.{k}: want {want!r}, event has {ctx.get(k)!r}")
            ok = False
    return ok


def _filter_time(tf: dict, t: _dt.datetime, notes: list[str]) -> tuple[bool, str | None]:
    tz = _dt.timezone.utc
    if tf.get("timezone"):
        try:
            from zoneinfo import ZoneInfo
            tz = ZoneInfo(tf["timezone"])
        except Exception as e:
            return False, f"time filter error (invalid timezone '{tf['timezone']}': {e})"
    base = t.astimezone(tz)
    try:
        sh, sm, ss = _validate_time(tf.get("start"))
        eh, em, es = _validate_time(tf.get("stop"))
    except ValueError as e:
        return False, f"time filter error ({e})"
    start = base.replace(hour=sh, minute=sm, second=ss, microsecond=0)
    stop = base.replace(hour=eh, minute=em, second=es, microsecond=0)
    if start < stop:
        ok = start <= base < stop
    else:
        ok = base >= start or base < stop
    if not ok:
        notes.append(f"time filter [{tf.get('start')}, {tf.get('stop')}) excludes event time {base.isoformat()}")
    return ok, None


@dataclass
class DepOutcome:
    name: str
    passed: bool
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def reason(self) -> str:
        parts = list(self.notes)
        if self.error:
            parts.append(f"error: {self.error}")
        return "; ".join(parts) if parts else ("passed" if self.passed else "filtered out")


def evaluate_dependency(dep: dict, ev: Event) -> DepOutcome:
    """Filter(event, dep.filters, dep.filtersLogicalOperator) for one dependency."""
    name = dep.get("name")
    if dep.get("transform"):
        raise Unsupported(f"dependency {name!r}: event transforms (jq/script) are not simulated")
    f = dep.get("filters")
    if f is None:
        return DepOutcome(name, True)
    if f.get("script"):
        raise Unsupported(f"dependency {name!r}: Lua script filters are not simulated")
    op = dep.get("filtersLogicalOperator", "") or ""
    is_or = op == "or"
    notes: list[str] = []
    errs: list[str] = []

    expr_ok, expr_err = (True, None)
    if _present(f, "exprs"):
        expr_ok, expr_err = _filter_expr(f["exprs"], f.get("exprLogicalOperator", "") or "", ev, notes)
    if expr_err:
        if not is_or:
            return DepOutcome(name, False, expr_err, notes)
        errs.append(expr_err)
    data_ok, data_err = _filter_data(f.get("data") or [], f.get("dataLogicalOperator", "") or "", ev, notes)
    if data_err:
        if not is_or:
            return DepOutcome(name, False, data_err, notes)
        errs.append(data_err)
    ctx_ok = _filter_context(f["context"], ev.context, notes) if _present(f, "context") else True
    time_ok, time_err = (True, None)
    if _present(f, "time"):
        time_ok, time_err = _filter_time(f["time"], ev.time, notes)
    if time_err:
        if not is_or:
            return DepOutcome(name, False, time_err, notes)
        errs.append(time_err)
    if is_or:
        passed = ((_present(f, "exprs") and expr_ok) or (_present(f, "data") and data_ok)
                  or (_present(f, "context") and ctx_ok) or (_present(f, "time") and time_ok))
        return DepOutcome(name, bool(passed), " / ".join(errs) if errs else None, [] if passed else notes)
    passed = expr_ok and data_ok and ctx_ok and time_ok
    return DepOutcome(name, passed, None, [] if passed else notes)


# ---------------------------------------------------------------------------
# Trigger parameters (pkg/sensors/triggers/params.go)
# ---------------------------------------------------------------------------

def _event_context_json(ev: Event) -> dict:
    c = ev.context
    return {"id": c["id"], "source": c["source"], "specversion": c["specversion"], "type": c["type"],
            "datacontenttype": c["datacontenttype"], "subject": c["subject"], "time": c["time"]}


def resolve_param_value(src: dict, events: dict[str, Event]) -> tuple[str | None, str]:
    """ResolveParamValue: returns (value or None, gjson type name / 'String')."""
    dep = src.get("dependencyName", "")
    ev = events.get(dep)
    default = src.get("value")
    ckey, ctpl = src.get("contextKey") or "", src.get("contextTemplate") or ""
    dkey, dtpl = src.get("dataKey") or "", src.get("dataTemplate") or ""
    if ev is None:
        if default is not None:
            return default, "String"
        return None, "String"
    if not (ckey or dkey or dtpl or ctpl):
        if default is not None:
            return default, "String"
        whole = {"context": _event_context_json(ev),
                 "data": base64.b64encode(ev.data_json.encode()).decode()}
        return go_json_dumps(whole), "String"
    key = tmplt = ""
    payload: Any = None
    if ckey or ctpl:
        key, tmplt, payload = ckey, ctpl, _event_context_json(ev)
    if dkey or dtpl:
        key, tmplt, payload = dkey, dtpl, ev.data
    last_err = None
    if tmplt:
        try:
            # getValueWithTemplate: .Input is gjson.ParseBytes(payload).Value() (numbers are float64)
            out = render(tmplt, {"Input": GResult(JSONT, go_json_dumps(payload)).value()})
            if out in ("", "<no value>"):
                raise TemplateError(f"template evaluated to empty string or no value: {tmplt}")
            return out, "String"
        except TemplateError as e:
            last_err = e  # upstream prints and falls back to key / default
    if key:
        r = gjson_get(payload, key)
        if r.exists():
            if r.type == JSONT or r.type == "Null":
                return r.raw, r.type
            return r.string(), r.type
        last_err = f"key {key} does not exist to in the event payload"
    if default is not None:
        return default, "String"
    raise TriggerError(f"unable to resolve '{dep}' parameter value. err: {last_err}")


def apply_params(obj: Any, params: list[dict], events: dict[str, Event]) -> Any:
    """ApplyParams on a JSON-ish Python object (mutated and returned)."""
    for p in params or []:
        src = p.get("src") or {}
        value, typ = resolve_param_value(src, events)
        if value is None:
            continue
        op = p.get("operation", "") or ""
        dest = p.get("dest", "")
        if op in ("append", "prepend"):
            cur = gjson_get(obj, dest, sort_keys=True)
            if cur.exists():
                typ = "String"
                value = cur.string() + value if op == "append" else value + cur.string()
        elif op not in ("overwrite", ""):
            raise TriggerError(f"unsupported trigger parameter operation: {op}")
        if typ != "String" and src.get("useRawData"):
            new_val = load_json(value)
        else:
            new_val = value
        try:
            obj = sjson_set(obj, dest, new_val)
        except SjsonError as e:
            raise TriggerError(str(e)) from None
    return obj


# ---------------------------------------------------------------------------
# Dependency expressions (listener.go getDependencyExpression + govaluate on dep names)
# ---------------------------------------------------------------------------

_COND_TOKEN = re.compile(r"\s*(?:(&&|\|\|)|([()])|([A-Za-z0-9_\-.]+))")


def _parse_conditions(expr: str, dep_names: list[str]) -> tuple[list[str], Any]:
    """Return (dependency names in order of first appearance, AST) for '&&' / '||' / parentheses."""
    by_underscore = {n.replace("-", "_"): n for n in dep_names}
    toks: list[tuple[str, str]] = []
    pos = 0
    s = expr.strip()
    while pos < len(s):
        m = _COND_TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise SensorInvalid(f"conditions {expr!r}: cannot parse near {s[pos:pos + 10]!r} "
                                f"(only dependency names, &&, || and parentheses are valid)")
        pos = m.end()
        if m.group(1):
            toks.append(("op", m.group(1)))
        elif m.group(2):
            toks.append(("paren", m.group(2)))
        else:
            key = m.group(3).replace("-", "_")
            if key not in by_underscore:
                raise SensorInvalid(f"conditions {expr!r}: unknown name {m.group(3)!r} (not a dependency)")
            toks.append(("name", by_underscore[key]))
    order: list[str] = []
    i = 0

    def p_or():
        nonlocal i
        left = p_and()
        while i < len(toks) and toks[i] == ("op", "||"):
            i += 1
            left = ("or", left, p_and())
        return left

    def p_and():
        nonlocal i
        left = p_atom()
        while i < len(toks) and toks[i] == ("op", "&&"):
            i += 1
            left = ("and", left, p_atom())
        return left

    def p_atom():
        nonlocal i
        if i >= len(toks):
            raise SensorInvalid(f"conditions {expr!r}: unexpected end")
        t = toks[i]
        i += 1
        if t == ("paren", "("):
            node = p_or()
            if i >= len(toks) or toks[i] != ("paren", ")"):
                raise SensorInvalid(f"conditions {expr!r}: unbalanced parenthesis")
            i += 1
            return node
        if t[0] == "name":
            if t[1] not in order:
                order.append(t[1])
            return ("name", t[1])
        raise SensorInvalid(f"conditions {expr!r}: unexpected {t[1]!r}")

    ast = p_or()
    if i != len(toks):
        raise SensorInvalid(f"conditions {expr!r}: unexpected trailing tokens")
    return order, ast


def _eval_cond(ast: Any, satisfied: set[str]) -> bool:
    if ast[0] == "name":
        return ast[1] in satisfied
    if ast[0] == "and":
        return _eval_cond(ast[1], satisfied) and _eval_cond(ast[2], satisfied)
    return _eval_cond(ast[1], satisfied) or _eval_cond(ast[2], satisfied)


# ---------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------

@dataclass
class Firing:
    trigger: str
    dependencies: list[str]
    kind: str                       # argoWorkflow | k8s | <other trigger type>
    operation: str = ""
    namespace: str = ""
    object: dict | None = None      # the Kubernetes object that would be created
    error: str | None = None        # trigger failed (upstream logs it; nothing is created)
    note: str | None = None


def _fetch_resource(source: dict, tname: str) -> dict:
    if source is None:
        raise TriggerError("trigger source for k8s is empty")
    if source.get("resource") is not None:
        res = source["resource"]
        obj = load_json(json.dumps(res, default=str))
    elif source.get("inline") is not None:
        obj = load_json(json.dumps(yaml.safe_load(source["inline"]), default=str))
    else:
        kinds = [k for k in source if source.get(k) is not None]
        raise Unsupported(f"trigger {tname!r}: source {kinds} is not simulated (only 'resource' and 'inline')")
    if not isinstance(obj, dict):
        raise TriggerError("trigger resource is not an object")
    return obj


def _execute_trigger(sensor: dict, trigger: dict, events: dict[str, Event], now: _dt.datetime) -> Firing:
    trigger = copy.deepcopy(trigger)
    tpl = trigger.get("template") or {}
    tname = tpl.get("name", "")
    deps = sorted(events)
    if trigger.get("parameters"):
        tpl = apply_params(load_json(json.dumps(tpl, default=str)), trigger["parameters"], events)
        tname = tpl.get("name", tname)
    kind = next((k for k in _TRIGGER_KINDS if tpl.get(k) is not None), "")
    sensor_ns = ((sensor.get("metadata") or {}).get("namespace")) or ""
    sensor_name = (sensor.get("metadata") or {}).get("name", "")
    ts = str(int(now.timestamp() * 1000))
    if kind not in ("k8s", "argoWorkflow"):
        return Firing(tname, deps, kind, note=f"{kind or 'unknown'} trigger fired; it creates no Kubernetes object "
                                              f"(its effect is not simulated)")
    body = tpl[kind]
    obj = _fetch_resource(body.get("source"), tname)
    obj = apply_params(obj, body.get("parameters") or [], events)
    if not obj.get("kind"):
        raise TriggerError("Object 'Kind' is missing in the trigger resource")
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    meta = obj["metadata"]
    if kind == "argoWorkflow":
        op = body.get("operation") or "submit"
        if op != "submit":
            raise Unsupported(f"trigger {tname!r}: argoWorkflow operation {op!r} acts on existing objects / the argo CLI "
                              f"and is not simulated")
        if body.get("args"):
            raise Unsupported(f"trigger {tname!r}: argoWorkflow.args (extra argo CLI flags) are not simulated")
        if not meta.get("name") and not meta.get("generateName"):
            raise TriggerError("failed to trigger the workflow, neither name nor generateName is given")
        labels = meta.get("labels")
        if labels is None:
            labels = meta["labels"] = {}
        labels["events.argoproj.io/sensor"] = sensor_name
        labels["events.argoproj.io/trigger"] = tname
        labels["events.argoproj.io/action-timestamp"] = ts
        ns = meta.get("namespace") or sensor_ns
        return Firing(tname, deps, kind, op, ns, plain(obj))
    op = body.get("operation") or "create"
    if op != "create":
        raise Unsupported(f"trigger {tname!r}: k8s operation {op!r} needs the live object and is not simulated")
    if str(obj.get("kind", "")).lower() in ("namespace", "node", "persistentvolume", "clusterrole", "clusterrolebinding"):
        ns = ""                                   # upstream's clusterResources: namespace is cleared
        meta.pop("namespace", None)
    else:
        ns = meta.get("namespace") or sensor_ns
        if ns:
            meta["namespace"] = ns
    labels = meta.get("labels")
    if labels is None:
        labels = meta["labels"] = {}
    labels["events.argoproj.io/sensor"] = sensor_name
    labels["events.argoproj.io/trigger"] = tname
    labels["events.argoproj.io/action-timestamp"] = ts
    return Firing(tname, deps, kind, op, ns, plain(obj))


# ---------------------------------------------------------------------------
# Simulator
# ---------------------------------------------------------------------------

@dataclass
class SimResult:
    event: Event
    dependencies: dict[str, DepOutcome]          # deps subscribed to this event source/name
    firings: list[Firing]
    trigger_notes: dict[str, str]                # why a trigger did not fire
    unmatched_source: bool = False

    @property
    def objects(self) -> list[dict]:
        return [f.object for f in self.firings if f.object is not None]

    def explain(self) -> str:
        lines = []
        if self.unmatched_source:
            lines.append(f"no dependency subscribes to eventSourceName={self.event.context['source']!r} "
                         f"eventName={self.event.context['subject']!r}")
        for name, o in self.dependencies.items():
            lines.append(f"dependency {name!r}: {'PASSED' if o.passed else 'FAILED'}"
                         + ("" if o.passed else f" - {o.reason()}"))
        for t, why in self.trigger_notes.items():
            lines.append(f"trigger {t!r}: {why}")
        for f in self.firings:
            if f.error:
                lines.append(f"trigger {f.trigger!r}: FAILED while building its resource - {f.error}")
            elif f.note:
                lines.append(f"trigger {f.trigger!r}: {f.note}")
        return "\n".join(lines)


class SensorSimulator:
    """Keeps per-trigger dependency state across events, like the JetStream event bus."""

    def __init__(self, sensor: dict, *, source_type: str = "github", validate: bool = True):
        if validate:
            validate_sensor(sensor)
        self.sensor = sensor
        self.source_type = source_type
        spec = _spec(sensor)
        self.deps: list[dict] = list(spec.get("dependencies") or [])
        self.dep_by_name = {d.get("name"): d for d in self.deps}
        self.triggers: list[dict] = list(spec.get("triggers") or [])
        self.trigger_expr: dict[str, tuple[list[str], Any, bool]] = {}
        names = [d.get("name") for d in self.deps]
        for t in self.triggers:
            tpl = t.get("template") or {}
            cond = tpl.get("conditions") or ""
            if cond:
                order, ast = _parse_conditions(cond, names)
                requires_and = "&&" in cond
            else:
                order = list(dict.fromkeys(names))
                ast = None
                for n in order:
                    ast = ("name", n) if ast is None else ("and", ast, ("name", n))
                requires_and = len(order) > 1
            self.trigger_expr[tpl.get("name")] = (order, ast, requires_and)
        # conditionsReset (cron) only clears saved dependency state on a schedule: not simulated.
        self.saved: dict[str, dict[str, Event]] = {(t.get("template") or {}).get("name"): {} for t in self.triggers}

    def send(self, event_source_name: str, event_name: str, payload: Any, headers: Any = None, *,
             now: _dt.datetime | None = None, metadata: dict | None = None, event_id: str | None = None) -> SimResult:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        ev = build_event(event_source_name, event_name, payload, headers, source_type=self.source_type,
                         metadata=metadata, now=now, event_id=event_id)
        subscribed = [d for d in self.deps if d.get("eventSourceName") == event_source_name
                      and d.get("eventName") == event_name]
        outcomes = {d.get("name"): evaluate_dependency(d, ev) for d in subscribed}
        firings: list[Firing] = []
        notes: dict[str, str] = {}
        for t in self.triggers:
            tname = (t.get("template") or {}).get("name")
            order, ast, requires_and = self.trigger_expr[tname]
            mine = [n for n in order if n in outcomes]
            if not mine:
                notes[tname] = "none of its dependencies subscribe to this event"
                continue
            fired_any = False
            for dn in mine:
                if not outcomes[dn].passed:
                    continue
                if not requires_and:
                    firings.append(self._run(t, {dn: ev}, now))
                    fired_any = True
                    continue
                state = self.saved[tname]
                satisfied = set(state) | {dn}
                if _eval_cond(ast, satisfied):
                    evs = dict(state)
                    evs[dn] = ev
                    firings.append(self._run(t, evs, now))
                    state.clear()
                    fired_any = True
                else:
                    state[dn] = ev
            if not fired_any:
                passed = [dn for dn in mine if outcomes[dn].passed]
                if passed:
                    missing = [n for n in order if n not in self.saved[tname]]
                    notes[tname] = (f"conditions not yet satisfied (saved: {sorted(self.saved[tname])}; "
                                    f"still waiting for some of {missing})")
                else:
                    notes[tname] = f"dependencies {mine} did not pass their filters"
        return SimResult(ev, outcomes, firings, notes, unmatched_source=not subscribed)

    def _run(self, trigger: dict, events: dict[str, Event], now: _dt.datetime) -> Firing:
        try:
            return _execute_trigger(self.sensor, trigger, events, now)
        except TriggerError as e:
            tname = (trigger.get("template") or {}).get("name", "")
            return Firing(tname, sorted(events), "", error=str(e))


def simulate(sensor: dict, event_source_name: str, event_name: str, payload: Any, headers: Any = None, *,
             source_type: str = "github", now: _dt.datetime | None = None, metadata: dict | None = None) -> SimResult:
    return SensorSimulator(sensor, source_type=source_type).send(event_source_name, event_name, payload, headers,
                                                                 now=now, metadata=metadata)


def match(sensor: dict, event_source_name: str, event_name: str, payload: Any, headers: Any = None, *,
          source_type: str = "github") -> list[str]:
    """Names of the sensor's dependencies (subscribed to this source/event) whose filters pass."""
    res = simulate(sensor, event_source_name, event_name, payload, headers, source_type=source_type)
    return [n for n, o in res.dependencies.items() if o.passed]


def fire(sensor: dict, event_source_name: str, event_name: str, payload: Any, headers: Any = None, *,
         source_type: str = "github", strict: bool = False, now: _dt.datetime | None = None) -> list[dict]:
    """Kubernetes objects the sensor's triggers would create for this single event (fresh state).
    With strict=True a trigger that fires but fails to build its resource raises TriggerError
    (upstream only logs it)."""
    res = simulate(sensor, event_source_name, event_name, payload, headers, source_type=source_type, now=now)
    if strict:
        for f in res.firings:
            if f.error:
                raise TriggerError(f"trigger {f.trigger!r}: {f.error}")
    return res.objects


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _load_docs(path: str) -> list[dict]:
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def _eventsource_info(docs: list[dict], es_name: str, event_name: str) -> tuple[str | None, dict | None]:
    for d in docs:
        if d.get("kind") != "EventSource" or (d.get("metadata") or {}).get("name") != es_name:
            continue
        spec = d.get("spec") or {}
        for st in ("github", "webhook"):
            entry = (spec.get(st) or {}).get(event_name)
            if entry is not None:
                if entry.get("filter"):
                    raise Unsupported("EventSource-level filter.expression (expr-lang) is not simulated")
                return st, entry.get("metadata")
        other = [k for k in spec if isinstance(spec.get(k), dict) and event_name in spec[k]]
        if other:
            raise Unsupported(f"EventSource type {other[0]!r} is not simulated")
    return None, None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Simulate an Argo Events Sensor against one webhook delivery.")
    ap.add_argument("sensor", help="YAML file with one or more Sensor documents (EventSource docs are used if present)")
    ap.add_argument("--event-source", required=True, help="EventSource metadata.name (dependency eventSourceName)")
    ap.add_argument("--event-name", required=True, help="event name inside the EventSource (dependency eventName)")
    ap.add_argument("--payload", required=True, help="JSON file with the webhook body")
    ap.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                    help="request header (repeatable; repeated names give multiple values)")
    ap.add_argument("--github-event", metavar="EVENT",
                    help="add a realistic GitHub header set with X-GitHub-Event=EVENT")
    ap.add_argument("--source-type", choices=("webhook", "github"),
                    help="EventSource type wrapping the request (default: from --eventsource, else 'github')")
    ap.add_argument("--eventsource", help="YAML file with the EventSource (to infer --source-type/metadata)")
    ap.add_argument("--namespace", help="sensor namespace if metadata.namespace is unset")
    ap.add_argument("--json", action="store_true", help="print objects as JSON instead of YAML")
    ap.add_argument("--explain", action="store_true", help="always print filter outcomes to stderr")
    args = ap.parse_args(argv)

    docs = _load_docs(args.sensor)
    es_docs = list(docs) + (_load_docs(args.eventsource) if args.eventsource else [])
    sensors = [d for d in docs if d.get("kind") == "Sensor"]
    if not sensors:
        print(f"error: no Sensor document in {args.sensor}", file=sys.stderr)
        return 2
    st, metadata = _eventsource_info(es_docs, args.event_source, args.event_name)
    source_type = args.source_type or st or "github"
    if not args.source_type and not st:
        print("note: assuming a 'github' EventSource (event data {headers, body}); pass --source-type webhook "
              "for a generic webhook EventSource (event data {header, body})", file=sys.stderr)
    headers: list[tuple[str, str]] = []
    if args.github_event:
        headers.extend(github_headers(args.github_event).items())
    for h in args.header:
        if "=" not in h:
            print(f"error: --header expects NAME=VALUE, got {h!r}", file=sys.stderr)
            return 2
        k, v = h.split("=", 1)
        headers.append((k, v))
    with open(args.payload) as fh:
        payload = load_json(fh.read())
    fired: list[tuple[dict, Firing]] = []
    explanations: list[str] = []
    for s in sensors:
        if args.namespace and not (s.get("metadata") or {}).get("namespace"):
            s = copy.deepcopy(s)
            s.setdefault("metadata", {})["namespace"] = args.namespace
        name = (s.get("metadata") or {}).get("name", "?")
        for w in lint_sensor(s, source_type):
            print(f"warning: sensor {name}: {w}", file=sys.stderr)
        try:
            res = simulate(s, args.event_source, args.event_name, payload, headers, source_type=source_type,
                           metadata=metadata)
        except (SensorInvalid, Unsupported) as e:
            print(f"error: sensor {name}: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        fired.extend((s, f) for f in res.firings if f.object is not None)
        explanations.append(f"sensor {name}:\n  " + res.explain().replace("\n", "\n  "))
        for f in res.firings:
            if f.error:
                print(f"error: sensor {name}: trigger {f.trigger!r} failed: {f.error}", file=sys.stderr)
    if args.explain:
        print("\n".join(explanations), file=sys.stderr)
    if not fired:
        print("no trigger fired")
        print("\n".join(explanations))
        return 1
    out = []
    for s, f in fired:
        if args.json:
            out.append(json.dumps(f.object, indent=2))
        else:
            header = (f"# sensor: {(s.get('metadata') or {}).get('name')}  trigger: {f.trigger}  ({f.kind} {f.operation}"
                      f"{', namespace ' + f.namespace if f.namespace else ''}; dependencies: {', '.join(f.dependencies)})\n")
            out.append(header + yaml.safe_dump(f.object, sort_keys=False, default_flow_style=False))
    print(("\n" if args.json else "---\n").join(out), end="" if not args.json else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
