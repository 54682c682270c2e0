#!/usr/bin/env python3
"""workflow_lint.py - offline linter for Argo Workflows Workflow / WorkflowTemplate /

Stand-in (tests/checks): an offline check the tests use until it is replaced by the upstream
binary it imitates; see tests/checks/__init__.py and docs/upstream-data.md.

ClusterWorkflowTemplate / CronWorkflow objects (dicts), modelled on `argo lint`.

Semantics were re-implemented (no code copied) from reading argoproj/argo-workflows at
f016ad89eb269d282aec06dc491c29f396a38df4 (master, 2026-08-21; compared with tag v4.0.6, the
version the project deploys: same variable-resolution / DAG / argument rules, master only renames
and adds podResources / resourceClaims / pendingTimeout checks, which are not modelled here):
    workflow/validate/validate.go      (Workflow/WorkflowTemplate validation, steps/DAG scopes,
                                        resolveAllVariables, validateArguments, validateOutputs, cycles)
    workflow/common/ancestry.go        (depends/dependencies parsing, task results)
    workflow/common/util.go            (ProcessArgs: required inputs), common.go (variable prefixes)
    util/template/{validate,kind}.go   ({{...}} tags, '{{=expr}}' expression tags are not checked upstream)
    util/variables/keys/*.go           (variable names), util/sorting/topological_sorting.go

Unlike upstream (which stops at the first error) every problem found is reported. A few checks are
deliberately STRICTER than `argo lint`; their messages end with "[stricter than argo lint]":
  * {{workflow.parameters.X}} must be declared even in a WorkflowTemplate (upstream exempts templates)
  * arguments passed to a template that it does not declare in inputs
  * a Workflow's arguments that its referenced WorkflowTemplate does not declare (silently unused)
  * {{steps.S...}} references to a step of the same parallel group, {{tasks.T...}} references to a
    task that is not an ancestor anywhere in a task (upstream only checks argument values that START with
    "{{tasks.")
  * inputs.parameters / workflow.parameters used inside '{{= expression }}' tags

API:  lint(obj, templates=None) -> list[str]; lint_report(...) -> Report(problems, notes)
CLI:  python workflow_lint.py FILE.yaml [FILE.yaml ...]   (exit 1 when problems are found)
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

STRICT = " [stricter than argo lint]"
KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
TEMPLATE_TYPES = ("container", "containerSet", "steps", "script", "resource", "dag", "suspend", "data", "http", "plugin")
LEAF_TYPES = ("container", "containerSet", "script", "resource", "data", "http", "plugin")
POD_TYPES = ("container", "containerSet", "script", "resource", "data")
VAR_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
TASK_RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")
ART_LOCATIONS = ("s3", "git", "http", "artifactory", "hdfs", "raw", "oss", "gcs", "azure", "plugin")

_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
_PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
_PARAM_REF = re.compile(r"{{[-a-zA-Z0-9]+(\.[-a-zA-Z0-9_]+)*}}")
_TASK_NAME_RX = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)|([a-zA-Z0-9][-a-zA-Z0-9]*)")
_TASK_RESULT_RX = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)")
_EXPR_PARAM = re.compile(r"\b(inputs|workflow)\.parameters(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _strings(obj: Any):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def _tags(obj: Any) -> list[str]:
    """All {{...}} tags (fasttemplate semantics: text up to the first following '}}') in every string."""
    out = []
    for s in _strings(obj):
        i = 0
        while True:
            j = s.find("{{", i)
            if j < 0:
                break
            k = s.find("}}", j + 2)
            if k < 0:
                break
            out.append(s[j + 2:k])
            i = k + 2
    return out


def _name_problems(items: list, what: str, param_like: bool) -> list[str]:
    probs = []
    seen: set[str] = set()
    for i, it in enumerate(items or []):
        name = (it or {}).get("name") if isinstance(it, dict) else None
        if not name:
            probs.append(f"{what}[{i}].name is required")
            continue
        rx = _PARAM_NAME if param_like else _FIELD_NAME
        if not rx.match(str(name)) or (not param_like and len(str(name)) > 128):
            probs.append(f"{what}[{i}].name: '{name}' is invalid")
        if name in seen:
            probs.append(f"{what}[{i}].name '{name}' is not unique")
        seen.add(name)
    return probs


def _tmpl_type(t: dict) -> list[str]:
    return [k for k in TEMPLATE_TYPES if t.get(k) is not None]


def _has_output(t: dict) -> bool:
    cs = t.get("containerSet")
    cs_main = bool(cs) and any((c or {}).get("name") == "main" for c in cs.get("containers") or [])
    return any(t.get(k) is not None for k in ("container", "script", "data", "http", "plugin")) or cs_main


def _art_has_location(a: dict) -> bool:
    return any(a.get(k) is not None for k in ART_LOCATIONS) or bool(a.get("key"))


class _Ctx:
    def __init__(self, obj: dict, templates: dict[tuple[str, str], dict] | None, report: Report):
        self.obj = obj
        self.kind = obj.get("kind")
        self.name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or "?"
        spec = obj.get("spec") or {}
        if self.kind == "CronWorkflow":
            spec = spec.get("workflowSpec") or {}
        self.spec = spec
        self.templates_ext = templates
        self.report = report
        self.tmpls: dict[str, dict] = {}
        for t in spec.get("templates") or []:
            if isinstance(t, dict) and t.get("name") and t["name"] not in self.tmpls:
                self.tmpls[t["name"]] = t
        self.is_template = self.kind in ("WorkflowTemplate", "ClusterWorkflowTemplate")
        self.global_names = self._collect_global_outputs()

    # -- helpers ---------------------------------------------------------------
    def prob(self, msg: str) -> None:
        if msg not in self.report.problems:
            self.report.problems.append(msg)

    def note(self, msg: str) -> None:
        if msg not in self.report.notes:
            self.report.notes.append(msg)

    def _collect_global_outputs(self) -> tuple[set[str], set[str], bool, bool]:
        params: set[str] = set()
        arts: set[str] = set()
        any_param = any_art = False
        for t in self.spec.get("templates") or []:
            outs = (t or {}).get("outputs") or {}
            for p in outs.get("parameters") or []:
                g = (p or {}).get("globalName")
                if g:
                    if _PARAM_REF.search(g):
                        any_param = True
                    else:
                        params.add(g)
            for a in outs.get("artifacts") or []:
                g = (a or {}).get("globalName")
                if g:
                    if _PARAM_REF.search(g):
                        any_art = True
                    else:
                        arts.add(g)
        return params, arts, any_param, any_art

    def resolve_ref(self, ref: dict, where: str) -> dict | None | str:
        """Resolve a templateRef. Returns template dict, None (not found -> problem) or 'external'."""
        if not ref.get("name"):
            self.prob(f"{where}: templateRef: resource name is required")
            return None
        if not ref.get("template"):
            self.prob(f"{where}: templateRef: template name is required")
            return None
        if "{{" in str(ref.get("name")) or "{{" in str(ref.get("template")):
            self.note(f"{where}: templateRef {ref.get('name')}.{ref.get('template')} is parameterised (not checked)")
            return "external"
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
        if self.templates_ext is None or (kind, ref["name"]) not in self.templates_ext:
            if self.templates_ext is not None and getattr(self, "strict_refs", False):
                self.prob(f"{where}: template reference {ref['name']}.{ref['template']} not found")
                return None
            self.note(f"{where}: templateRef to external {kind} '{ref['name']}' (template '{ref['template']}') - not checked")
            return "external"
        other = self.templates_ext[(kind, ref["name"])]
        for t in (other.get("spec") or {}).get("templates") or []:
            if (t or {}).get("name") == ref["template"]:
                return t
        self.prob(f"{where}: template reference {ref['name']}.{ref['template']} not found")
        return None

    def callee(self, holder: dict, where: str) -> dict | None | str:
        has_t = holder.get("template") is not None
        has_ref = holder.get("templateRef") is not None
        has_inline = holder.get("inline") is not None
        if sum((has_t, has_ref, has_inline)) > 1:
            self.prob(f"{where}: only one of template, templateRef and inline may be set")
        if has_ref:
            return self.resolve_ref(holder["templateRef"] or {}, where)
        if has_inline:
            return holder["inline"]
        if has_t:
            name = holder["template"]
            if "{{" in str(name):
                self.note(f"{where}: template name {name!r} is parameterised (not checked)")
                return "external"
            if name not in self.tmpls:
                self.prob(f"{where}: template name '{name}' undefined")
                return None
            return self.tmpls[name]
        self.prob(f"{where}: one of template, templateRef or inline is required")
        return None

    # -- globals ---------------------------------------------------------------
    def global_scope(self) -> set[str]:
        if getattr(self, "_gscope", None) is None:
            self._gscope = self._global_scope()
        return self._gscope

    def _global_scope(self) -> set[str]:
        g = {"workflow.name", "workflow.namespace", "workflow.mainEntrypoint", "workflow.serviceAccountName",
             "workflow.uid", "workflow.status"}
        params = (self.spec.get("arguments") or {}).get("parameters") or []
        for p in params:
            if (p or {}).get("name"):
                g.add(f"workflow.parameters.{p['name']}")
        if params:
            g.update({"workflow.parameters", "workflow.parameters.json"})
        meta = self.obj.get("metadata") or {}
        wm = self.spec.get("workflowMetadata") or {}
        for k in list((meta.get("annotations") or {})) + list((wm.get("annotations") or {})):
            g.add(f"workflow.annotations.{k}")
        for k in list((meta.get("labels") or {})) + list((wm.get("labels") or {})) + list((wm.get("labelsFrom") or {})):
            g.add(f"workflow.labels.{k}")
        g.update({"workflow.annotations", "workflow.annotations.json", "workflow.labels", "workflow.labels.json"})
        if self.spec.get("priority") is not None:
            g.add("workflow.priority")
        if self.spec.get("onExit"):
            g.add("workflow.failures")
        gp, ga, _, _ = self.global_names
        g.update(f"workflow.outputs.parameters.{n}" for n in gp)
        g.update(f"workflow.outputs.artifacts.{n}" for n in ga)
        return g

    # -- variable resolution ---------------------------------------------------
    def check_tags(self, obj: Any, scope: set[str], where: str, *, any_item: bool = False) -> None:
        _, _, any_gp, any_ga = self.global_names
        for raw in _tags(obj):
            if raw.startswith("="):
                self.check_expression(raw[1:], scope, where)
                continue
            tag = raw.strip()
            if not tag.startswith(VAR_PREFIXES):
                continue
            if tag in scope:
                continue
            if (tag == "item" or tag.startswith("item.")) and any_item:
                continue
            if tag.startswith("workflow.outputs.parameters.") and any_gp:
                continue
            if tag.startswith("workflow.outputs.artifacts.") and any_ga:
                continue
            if tag.startswith(("outputs.", "workflow.creationTimestamp", "workflow.scheduledTime", "workflow.duration",
                               "tasks.name", "steps.name", "node.name")):
                continue
            if tag.startswith("workflow.parameters") and self.is_template:
                if tag in ("workflow.parameters", "workflow.parameters.json"):
                    continue
                self.prob(f"{where}: {{{{{raw}}}}}: workflow parameter '{tag[len('workflow.parameters.'):]}' is not "
                          f"declared in spec.arguments.parameters" + STRICT)
                continue
            self.prob(f"{where}: failed to resolve {{{{{raw}}}}}" + self._hint(tag))

    def _hint(self, tag: str) -> str:
        if tag.startswith("inputs.parameters."):
            return f" (input parameter '{tag.split('.', 2)[2]}' is not declared in this template's inputs)"
        if tag.startswith("inputs.artifacts."):
            return f" (input artifact '{tag.split('.')[2]}' is not declared in this template's inputs)"
        if tag.startswith("workflow.parameters."):
            return " (not declared in spec.arguments.parameters)"
        if tag.startswith("workflow.outputs."):
            return " (no output declares a matching globalName)"
        if tag.startswith(("tasks.", "steps.")):
            return " (unknown step/task, output not declared by its template, or not visible from here)"
        return ""

    def check_expression(self, expr: str, scope: set[str], where: str) -> None:
        for m in _EXPR_PARAM.finditer(expr):
            kind, name = m.group(1), m.group(2) or m.group(3)
            key = f"{kind}.parameters.{name}"
            if key in scope:
                continue
            if kind == "workflow" and key in self.global_scope():
                continue
            self.prob(f"{where}: expression {{{{={expr.strip()}}}}} references undeclared {key}" + STRICT)

    # -- templates -------------------------------------------------------------
    def input_scope(self, t: dict) -> set[str]:
        inputs = t.get("inputs") or {}
        s: set[str] = set()
        for p in inputs.get("parameters") or []:
            if (p or {}).get("name"):
                s.add(f"inputs.parameters.{p['name']}")
        if inputs.get("parameters"):
            s.add("inputs.parameters")
        leaf = bool(set(_tmpl_type(t)) & set(LEAF_TYPES))
        for a in inputs.get("artifacts") or []:
            if (a or {}).get("name"):
                s.add(f"inputs.artifacts.{a['name']}")
                if leaf:
                    s.add(f"inputs.artifacts.{a['name']}.path")
        if set(_tmpl_type(t)) & set(POD_TYPES):
            s.add("pod.name")
        if t.get("retryStrategy") is not None:
            s.update({"retries", "retries.lastExitCode", "retries.lastStatus", "retries.lastDuration", "retries.lastMessage"})
        return s

    def validate_template(self, t: dict, where: str) -> None:
        types = _tmpl_type(t)
        if not types:
            self.prob(f"{where}: template type unspecified. choose one of: container, containerSet, steps, script, "
                      f"resource, dag, suspend, template, template ref")
            return
        if len(types) > 1:
            self.prob(f"{where}: multiple template types specified ({', '.join(types)})")
        inputs = t.get("inputs") or {}
        for p in _name_problems(inputs.get("parameters"), f"{where}.inputs.parameters", True):
            self.prob(p)
        for p in _name_problems(inputs.get("artifacts"), f"{where}.inputs.artifacts", True):
            self.prob(p)
        leaf = types[0] in LEAF_TYPES
        for a in inputs.get("artifacts") or []:
            if not leaf and (a or {}).get("path"):
                self.prob(f"{where}.inputs.artifacts.{a.get('name')}.path only valid in container/script templates")
            if (a or {}).get("from"):
                self.prob(f"{where}.inputs.artifacts.{a.get('name')}.from not valid in inputs")
        if not leaf and t.get("activeDeadlineSeconds") is not None:
            self.prob(f"{where}.activeDeadlineSeconds is only valid for leaf templates")
        if t.get("parallelism") is not None and types[0] not in ("steps", "dag"):
            self.prob(f"{where}.parallelism is only valid for steps and dag templates")
        scope = self.input_scope(t) | self.global_scope()
        if types[0] == "steps":
            scope = self.validate_steps(t, scope, where)
        elif types[0] == "dag":
            scope = self.validate_dag(t, scope, where)
        else:
            self.validate_leaf(t, scope, where, types[0])
        self.validate_outputs(t, scope, where, types[0])

    def validate_leaf(self, t: dict, scope: set[str], where: str, typ: str) -> None:
        body = {k: v for k, v in t.items() if k != "outputs"}
        self.check_tags(body, scope, where)
        if typ in ("container", "script"):
            img = (t.get(typ) or {}).get("image")
            if not img:
                self.prob(f"{where}.{typ}.image may not be empty")
        if typ == "resource":
            r = t.get("resource") or {}
            if r.get("action") not in ("get", "create", "apply", "delete", "replace", "patch"):
                self.prob(f"{where}.resource.action must be one of: get, create, apply, delete, replace, patch")
            if not r.get("manifest") and not r.get("manifestFrom"):
                self.prob(f"either {where}.resource.manifest or {where}.resource.manifestFrom must be specified")

    def validate_outputs(self, t: dict, scope: set[str], where: str, typ: str) -> None:
        outs = t.get("outputs") or {}
        for p in _name_problems(outs.get("parameters"), f"{where}.outputs.parameters", True):
            self.prob(p)
        for p in _name_problems(outs.get("artifacts"), f"{where}.outputs.artifacts", True):
            self.prob(p)
        self.check_tags(outs, scope, f"{where}.outputs")
        for p in outs.get("parameters") or []:
            ref = f"{where}.outputs.parameters.{(p or {}).get('name')}"
            vf = (p or {}).get("valueFrom")
            if vf is not None and p.get("value") is not None:
                self.prob(f"{ref} has both valueFrom and value specified, choose one")
                continue
            if p.get("value") is not None:
                pass
            elif vf is None:
                self.prob(f"{ref} does not have valueFrom or value specified")
                continue
            else:
                kinds = [k for k in ("path", "jqFilter", "jsonPath", "parameter", "expression") if vf.get(k)]
                kinds += ["supplied"] if vf.get("supplied") is not None else []
                if not kinds:
                    self.prob(f"{ref}: valueFrom type unspecified. choose one of: path, jqFilter, jsonPath, parameter, raw, expression")
                elif len(kinds) > 1:
                    self.prob(f"{ref}: multiple valueFrom types specified ({', '.join(kinds)})")
                if typ in ("container", "containerSet", "script") and not vf.get("path") and vf.get("supplied") is None:
                    self.prob(f"{ref}.path must be specified for {typ} templates")
                if typ == "resource" and not vf.get("jqFilter") and not vf.get("jsonPath"):
                    self.prob(f"{ref} .jqFilter or jsonPath must be specified for resource templates")
                if typ in ("dag", "steps") and not vf.get("parameter") and not vf.get("expression") and vf.get("supplied") is None:
                    self.prob(f"{ref}.parameter or expression must be specified for {typ} templates")
            g = p.get("globalName")
            if g and not _PARAM_REF.search(g) and not _PARAM_NAME.match(g):
                self.prob(f"{ref}.globalName: Parameter/Artifact name must consist of alpha-numeric characters, '_' or '-'")

    def node_scope(self, pfx: str, name: str, callee: Any, aggregate: bool) -> tuple[set[str], bool]:
        """Scope keys a finished step/task adds; second value True if its outputs are unknown (external)."""
        s = {f"{pfx}.{name}.{k}" for k in ("id", "startedAt", "finishedAt", "hostNodeName")}
        if not isinstance(callee, dict):
            return s, True
        if callee.get("daemon"):
            s.add(f"{pfx}.{name}.ip")
        if _has_output(callee):
            s.update({f"{pfx}.{name}.outputs.result", f"{pfx}.{name}.exitCode"})
        outs = callee.get("outputs") or {}
        for p in outs.get("parameters") or []:
            s.add(f"{pfx}.{name}.outputs.parameters.{(p or {}).get('name')}")
        for a in outs.get("artifacts") or []:
            s.add(f"{pfx}.{name}.outputs.artifacts.{(a or {}).get('name')}")
        if aggregate:
            s.add(f"{pfx}.{name}.outputs.parameters")
            if callee.get("script") is not None or callee.get("containerSet") is not None:
                s.update({f"{pfx}.{name}.outputs.result", f"{pfx}.{name}.exitCode"})
        return s, False

    def item_scope(self, holder: dict, where: str) -> tuple[set[str], bool]:
        wi, wp, ws = holder.get("withItems"), holder.get("withParam"), holder.get("withSequence")
        if sum(1 for x in (wi, wp, ws) if x) > 1:
            self.prob(f"{where}: only one of withItems, withParam, withSequence can be specified")
        s: set[str] = set()
        if wi:
            for v in wi:
                if isinstance(v, dict):
                    s.update(f"item.{k}" for k in v)
                elif isinstance(v, list):
                    s.update(f"item.[{i}]" for i in range(len(v)))
                else:
                    s.add("item")
            return s, False
        if wp:
            return {"item"}, True
        if ws:
            if ws.get("count") is not None and ws.get("end") is not None:
                self.prob(f"{where}: only one of count or end can be defined in withSequence")
            return {"item"}, False
        return s, False

    def check_call(self, holder: dict, callee: Any, where: str) -> None:
        """Arguments passed at a call site vs. the callee's inputs."""
        args = holder.get("arguments") or {}
        aparams = args.get("parameters") or []
        aarts = args.get("artifacts") or []
        for p in _name_problems(aparams, f"{where}.arguments.parameters", True):
            self.prob(p)
        for p in _name_problems(aarts, f"{where}.arguments.artifacts", True):
            self.prob(p)
        for p in aparams:
            if (p or {}).get("value") is None and (p or {}).get("valueFrom") is None:
                self.prob(f"{where}.arguments.parameters.{(p or {}).get('name')}.value or valueFrom is required")
        for a in aarts:
            if not (a or {}).get("from") and not (a or {}).get("fromExpression") and not _art_has_location(a or {}):
                self.prob(f"{where}.arguments.artifacts.{(a or {}).get('name')}.from, artifact location, or key is required")
        if not isinstance(callee, dict):
            return
        inputs = callee.get("inputs") or {}
        cname = callee.get("name", "<inline>")
        declared_p = {(p or {}).get("name") for p in inputs.get("parameters") or []}
        declared_a = {(a or {}).get("name") for a in inputs.get("artifacts") or []}
        passed_p = {(p or {}).get("name") for p in aparams}
        passed_a = {(a or {}).get("name") for a in aarts}
        for p in inputs.get("parameters") or []:
            p = p or {}
            if p.get("name") not in passed_p and p.get("value") is None and p.get("default") is None and p.get("valueFrom") is None:
                self.prob(f"{where}: inputs.parameters.{p.get('name')} was not supplied (template '{cname}' declares it without value/default)")
        for a in inputs.get("artifacts") or []:
            a = a or {}
            if a.get("name") not in passed_a and not a.get("optional") and not _art_has_location(a):
                self.prob(f"{where}: inputs.artifacts.{a.get('name')} was not supplied")
        for n in sorted(x for x in passed_p - declared_p if x):
            self.prob(f"{where}: argument parameter '{n}' is not declared in template '{cname}' inputs" + STRICT)
        for n in sorted(x for x in passed_a - declared_a if x):
            self.prob(f"{where}: argument artifact '{n}' is not declared in template '{cname}' inputs" + STRICT)

    def validate_steps(self, t: dict, scope: set[str], where: str) -> set[str]:
        visible = set(scope)
        ext_prefixes: set[str] = set()
        seen: set[str] = set()
        all_names = {(s or {}).get("name") for g in t.get("steps") or [] for s in (g or [])}
        for gi, group in enumerate(t.get("steps") or []):
            group = group or []
            group_scope: set[str] = set()
            group_ext: set[str] = set()
            group_names = {(s or {}).get("name") for s in group}
            for si, step in enumerate(group):
                step = step or {}
                name = step.get("name")
                w = f"{where}.steps[{gi}][{si}]" + (f".{name}" if name else "")
                if not name:
                    self.prob(f"{where}.steps[{gi}].name is required")
                    continue
                if name in seen:
                    self.prob(f"{where}.steps[{gi}].name '{name}' is not unique")
                if not _FIELD_NAME.match(name):
                    self.prob(f"{where}.steps[{gi}].name '{name}' is invalid")
                seen.add(name)
                visible.add(f"steps.{name}.status")
                callee = self.callee(step, w)
                items, any_item = self.item_scope(step, w)
                sc = set(visible) | items
                if isinstance(step.get("inline"), dict):
                    sc |= {f"inputs.parameters.{(p or {}).get('name')}" for p in (step["inline"].get("inputs") or {}).get("parameters") or []}
                self._check_with_ext(step, sc, ext_prefixes, w, any_item, same_group=group_names, all_names=all_names, pfx="steps")
                self.check_call(step, callee, w)
                if isinstance(step.get("inline"), dict):
                    self.validate_template(dict(step["inline"], name=step["inline"].get("name", name)), f"{w}.inline")
                ns, ext = self.node_scope("steps", name, callee,
                                          aggregate=bool(step.get("withItems") or step.get("withParam")))
                group_scope |= ns
                if ext:
                    group_ext.add(f"steps.{name}.")
                for h in (step.get("hooks") or {}).values():
                    self.callee(h or {}, f"{w}.hooks")
                if step.get("onExit"):
                    self.callee({"template": step["onExit"]}, f"{w}.onExit")
            visible |= group_scope
            ext_prefixes |= group_ext
        return visible

    def _check_with_ext(self, holder: dict, scope: set[str], ext_prefixes: set[str], where: str, any_item: bool,
                        same_group: set[str] | None = None, all_names: set[str] | None = None, pfx: str = "steps",
                        ancestors: set[str] | None = None) -> None:
        body = {k: v for k, v in holder.items() if k not in ("inline",)}
        sub = Report()
        saved, self.report = self.report, sub
        try:
            self.check_tags(body, scope, where, any_item=any_item)
        finally:
            self.report = saved
        for msg in sub.problems:
            m = re.search(r"\{\{(?:\s*)((?:steps|tasks)\.([-a-zA-Z0-9]+)\.[^}]*)\}\}", msg)
            if m and any(m.group(1).strip().startswith(p) for p in ext_prefixes):
                continue
            if m and pfx == "steps" and same_group and m.group(2) in same_group:
                self.prob(f"{where}: {{{{{m.group(1)}}}}} refers to step '{m.group(2)}' of the same parallel step group "
                          f"(its outputs are not available yet)" + STRICT)
                continue
            self.prob(msg)
        if pfx == "tasks" and ancestors is not None:
            # argument values that START with {{tasks. are covered by the upstream "missing dependency" check
            args = holder.get("arguments") or {}
            covered = [p.get("value") for p in args.get("parameters") or [] if isinstance((p or {}).get("value"), str)
                       and p["value"].startswith("{{tasks.")]
            covered += [a.get("from") for a in args.get("artifacts") or [] if isinstance((a or {}).get("from"), str)
                        and a["from"].startswith("{{tasks.")]
            body = copy.deepcopy(body)
            for p in (body.get("arguments") or {}).get("parameters") or []:
                if (p or {}).get("value") in covered:
                    p["value"] = ""
            for a in (body.get("arguments") or {}).get("artifacts") or []:
                if (a or {}).get("from") in covered:
                    a["from"] = ""
            for raw in _tags(body):
                tag = raw.strip().lstrip("=")
                for mm in re.finditer(r"\btasks\.([-a-zA-Z0-9]+)\.", tag):
                    tn = mm.group(1)
                    if all_names and tn in all_names and tn not in ancestors and not tag.startswith("tasks.name"):
                        self.prob(f"{where}: {{{{{raw}}}}} refers to task '{tn}' which is not an ancestor "
                                  f"(add it to depends/dependencies)" + STRICT)

    def validate_dag(self, t: dict, scope: set[str], where: str) -> set[str]:
        dag = t.get("dag") or {}
        tasks = [x or {} for x in dag.get("tasks") or []]
        if not tasks:
            self.prob(f"{where} must have at least one task")
            return scope
        for p in _name_problems(tasks, f"{where}.tasks", False):
            self.prob(p)
        by_name = {x.get("name"): x for x in tasks if x.get("name")}
        using_depends = any(x.get("depends") for x in tasks)
        deps: dict[str, dict[str, str]] = {}
        for x in tasks:
            n = x.get("name")
            if not n:
                continue
            w = f"{where}.tasks.{n}"
            if (using_depends or x.get("dependencies")) and n[:1].isdigit():
                self.prob(f"{w} name cannot begin with a digit when using either 'depends' or 'dependencies'")
            if using_depends and x.get("dependencies"):
                self.prob(f"{where} cannot use both 'depends' and 'dependencies' in the same DAG template")
            if using_depends and x.get("continueOn") is not None:
                self.prob(f"{where} cannot use 'continueOn' when using 'depends'. Instead use 'dep-task.Failed'/'dep-task.Errored'")
            d: dict[str, str] = {}
            if x.get("depends"):
                expr = str(x["depends"])
                for mm in _TASK_RESULT_RX.finditer(expr):
                    tn, res = mm.group(1).split(".", 1)
                    if res not in TASK_RESULTS:
                        self.prob(f"{w} task result '{res}' for task '{tn}' is invalid")
                for mm in _TASK_NAME_RX.finditer(expr):
                    if mm.group(1):
                        tn, res = mm.group(1).split(".", 1)
                        if res in ("AnySucceeded", "AllFailed"):
                            d[tn] = "items"
                        else:
                            d.setdefault(tn, "task")
                    else:
                        d[mm.group(2)] = "task"
                rest = _TASK_NAME_RX.sub("", expr)
                if re.search(r"[^\s()&|!]", rest):
                    self.prob(f"{w} depends {expr!r} contains characters other than task names, &&, ||, ! and parentheses")
            for dn in x.get("dependencies") or []:
                d[dn] = "task"
            deps[n] = d
            for dn, dt in d.items():
                if dn not in by_name:
                    self.prob(f"{w} dependency '{dn}' not defined")
                elif dt == "items":
                    dtask = by_name[dn]
                    if not dtask.get("withItems") and not dtask.get("withParam") and dtask.get("withSequence") is None:
                        self.prob(f"{w} dependency '{dn}' uses an items-based condition such as .AnySucceeded or "
                                  f".AllFailed but does not contain any items")
        for cyc in _find_cycles(deps):
            self.prob(f"{where}.tasks dependency cycle detected: {'->'.join(cyc)}")
        target = dag.get("target")
        if target:
            for tn in str(target).split(" "):
                if tn and not _PARAM_REF.search(tn) and tn not in by_name:
                    self.prob(f"{where}.targets: target '{tn}' is not defined")
        # scopes: every task's outputs are in scope (upstream), ancestors add status/aggregates
        callees: dict[str, Any] = {}
        base = set(scope)
        ext_prefixes: set[str] = set()
        for x in tasks:
            n = x.get("name")
            if not n:
                continue
            callee = self.callee(x, f"{where}.tasks.{n}")
            callees[n] = callee
            agg = bool(x.get("withItems") or x.get("withParam"))
            ns, ext = self.node_scope("tasks", n, callee, agg)
            base |= ns
            if ext:
                ext_prefixes.add(f"tasks.{n}.")
        all_names = set(by_name)
        for x in tasks:
            n = x.get("name")
            if not n:
                continue
            w = f"{where}.tasks.{n}"
            anc = _ancestors(n, deps)
            sc = set(base)
            for a in anc:
                sc.add(f"tasks.{a}.status")
                ax = by_name.get(a) or {}
                if ax.get("withItems") or ax.get("withParam"):
                    ns, _ = self.node_scope("tasks", a, callees.get(a), True)
                    sc |= ns
            if x.get("hooks"):
                sc.add(f"tasks.{n}.status")
            items, any_item = self.item_scope(x, w)
            sc |= items
            if isinstance(x.get("inline"), dict):
                sc |= {f"inputs.parameters.{(p or {}).get('name')}" for p in (x["inline"].get("inputs") or {}).get("parameters") or []}
            self._check_with_ext(x, sc, ext_prefixes, w, any_item, all_names=all_names, pfx="tasks", ancestors=set(anc))
            for p in (x.get("arguments") or {}).get("parameters") or []:
                v = (p or {}).get("value")
                if isinstance(v, str) and v.startswith("{{tasks."):
                    ref = v.split(".")[1]
                    if ref not in anc:
                        self.prob(f"{w} missing dependency '{ref}' for parameter '{p.get('name')}'")
            for a in (x.get("arguments") or {}).get("artifacts") or []:
                f = (a or {}).get("from")
                if isinstance(f, str) and f.startswith("{{tasks."):
                    ref = f.split(".")[1]
                    if ref not in anc:
                        self.prob(f"{w} missing dependency '{ref}' for artifact '{a.get('name')}'")
            self.check_call(x, callees.get(n), w)
            if isinstance(x.get("inline"), dict):
                self.validate_template(dict(x["inline"], name=x["inline"].get("name", n)), f"{w}.inline")
            for h in (x.get("hooks") or {}).values():
                self.callee(h or {}, f"{w}.hooks")
            if x.get("onExit"):
                self.callee({"template": x["onExit"]}, f"{w}.onExit")
        return base

    # -- top level ---------------------------------------------------------------
    def run(self) -> None:
        kind, spec = self.kind, self.spec
        if kind not in KINDS:
            self.prob(f"unsupported kind {kind!r} (expected one of {', '.join(KINDS)})")
            return
        meta = self.obj.get("metadata") or {}
        if len(meta.get("name") or "") > (52 if kind == "CronWorkflow" else 63):
            self.prob(f"name {meta.get('name')!r} is too long")
        for p in _name_problems(spec.get("templates"), "spec.templates", False):
            self.prob(p)
        args = spec.get("arguments") or {}
        for p in _name_problems(args.get("parameters"), "spec.arguments.parameters", True):
            self.prob(p)
        for p in args.get("parameters") or []:
            p = p or {}
            if p.get("enum") is not None:
                if not p["enum"]:
                    self.prob(f"spec.arguments.parameters.{p.get('name')}.enum should contain at least one value")
                elif p.get("value") is not None and p["value"] not in p["enum"]:
                    self.prob(f"spec.arguments.parameters.{p.get('name')}.value should be present in the enum list")
        ref = spec.get("workflowTemplateRef")
        if ref is not None:
            self.run_with_ref(ref)
            return
        entry = spec.get("entrypoint")
        if not entry and kind in ("Workflow", "CronWorkflow"):
            self.prob("spec.entrypoint is required")
        if entry:
            if "{{" in entry:
                self.note(f"spec.entrypoint {entry!r} is parameterised (not checked)")
            elif entry not in self.tmpls:
                self.prob(f"spec.entrypoint: template name '{entry}' undefined")
            elif kind in ("Workflow", "CronWorkflow"):
                # ProcessArgs with the workflow arguments: required entrypoint inputs must be supplied
                self.check_call({"arguments": {"parameters": [p for p in args.get("parameters") or []
                                                              if (p or {}).get("name") in {(q or {}).get("name") for q in (self.tmpls[entry].get("inputs") or {}).get("parameters") or []}],
                                               "artifacts": args.get("artifacts") or []}},
                                self.tmpls[entry], "spec.entrypoint")
        on_exit = spec.get("onExit")
        if on_exit and on_exit not in self.tmpls:
            self.prob(f"spec.onExit: template name '{on_exit}' undefined")
        for hn, h in (spec.get("hooks") or {}).items():
            h = h or {}
            if hn != "exit" and not h.get("expression"):
                self.prob(f"hooks.{hn} Expression required")
            self.callee(h, f"hooks.{hn}")
        for t in spec.get("templates") or []:
            if isinstance(t, dict) and t.get("name"):
                self.validate_template(t, f"templates.{t['name']}")
        gscope = self.global_scope()
        top = {k: v for k, v in spec.items() if k not in ("templates",)}
        self.check_tags(top, gscope, "spec")

    def run_with_ref(self, ref: dict) -> None:
        spec = self.spec
        if spec.get("templates"):
            self.prob("Templates is invalid field in spec if workflow referred WorkflowTemplate reference")
        name = ref.get("name")
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
        if not name:
            self.prob("spec.workflowTemplateRef.name is required")
            return
        if self.templates_ext is None or (kind, name) not in self.templates_ext:
            if self.templates_ext is not None and getattr(self, "strict_refs", False):
                self.prob(f"spec.workflowTemplateRef: {kind} '{name}' not found")
            else:
                self.note(f"spec.workflowTemplateRef: external {kind} '{name}' - arguments not checked")
            return
        wft = self.templates_ext[(kind, name)]
        tspec = wft.get("spec") or {}
        entry = spec.get("entrypoint") or tspec.get("entrypoint")
        tnames = {(t or {}).get("name") for t in tspec.get("templates") or []}
        if not entry:
            self.prob("spec.entrypoint is required (neither the Workflow nor the WorkflowTemplate sets it)")
        elif entry not in tnames:
            self.prob(f"spec.entrypoint: template reference {name}.{entry} not found")
        mine = {(p or {}).get("name"): p or {} for p in (spec.get("arguments") or {}).get("parameters") or []}
        theirs = {(p or {}).get("name"): p or {} for p in (tspec.get("arguments") or {}).get("parameters") or []}
        for pn, p in theirs.items():
            merged = mine.get(pn, p)
            if merged.get("value") is None and merged.get("valueFrom") is None:
                self.prob(f"spec.arguments.parameters.{pn}: no value - {kind} '{name}' declares it without a value "
                          f"and the Workflow does not supply one (argo submit fails: "
                          f"'spec.arguments.{pn}.value or spec.arguments.{pn}.valueFrom is required')")
            if merged.get("enum") and merged.get("value") is not None and merged["value"] not in merged["enum"]:
                self.prob(f"spec.arguments.parameters.{pn}.value should be present in the enum list")
        for pn in mine:
            if pn not in theirs:
                self.prob(f"spec.arguments.parameters.{pn} is not declared by {kind} '{name}' (the value is never "
                          f"used as {{{{workflow.parameters.{pn}}}}} there)" + STRICT)


def _ancestors(name: str, deps: dict[str, dict[str, str]]) -> list[str]:
    seen: list[str] = []

    def walk(n: str) -> None:
        for d in deps.get(n, {}):
            if d not in seen and d != name:
                seen.append(d)
                walk(d)
    walk(name)
    return seen


def _find_cycles(deps: dict[str, dict[str, str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    seen_sets: list[frozenset] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in deps.get(n, {}):
            if d not in deps:
                continue
            if state.get(d) == 1:
                cyc = stack[stack.index(d):] + [d]
                key = frozenset(cyc)
                if key not in seen_sets:
                    seen_sets.append(key)
                    cycles.append(cyc)
            elif state.get(d) is None:
                dfs(d)
        stack.pop()
        state[n] = 2

    for n in deps:
        if state.get(n) is None:
            dfs(n)
    return cycles


def _index_templates(objs: list[dict]) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for o in objs:
        if o.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate") and (o.get("metadata") or {}).get("name"):
            out[(o["kind"], o["metadata"]["name"])] = o
    return out


def lint_report(obj: dict, templates: Any = None, *, strict_refs: bool = False) -> Report:
    """Lint one object. `templates` may be a list of WorkflowTemplate/ClusterWorkflowTemplate dicts or a
    {(kind, name): obj} / {name: obj} mapping used to resolve templateRef / workflowTemplateRef.
    Without it (or with strict_refs=False) unresolvable references are reported in notes as external."""
    report = Report()
    if not isinstance(obj, dict):
        report.problems.append("object is not a mapping")
        return report
    idx = None
    if templates is not None:
        if isinstance(templates, dict):
            idx = {}
            for k, v in templates.items():
                idx[k if isinstance(k, tuple) else (v.get("kind", "WorkflowTemplate"), k)] = v
        else:
            idx = _index_templates(list(templates))
    ctx = _Ctx(obj, idx, report)
    ctx.strict_refs = strict_refs
    ctx.run()
    return report


def lint(obj: dict, templates: Any = None, *, strict_refs: bool = False) -> list[str]:
    """Problems found in a Workflow/WorkflowTemplate/ClusterWorkflowTemplate/CronWorkflow dict ([] = clean)."""
    return lint_report(obj, templates, strict_refs=strict_refs).problems


def external_refs(obj: dict) -> list[str]:
    return [n for n in lint_report(obj).notes if "external" in n]


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _sensor_workflows(sensor: dict) -> list[tuple[str, dict]]:
    """Workflows embedded in Sensor triggers, with parameter destinations filled by a placeholder."""
    from .gosem import sjson_set, SjsonError  # local import: only the CLI needs it
    out = []
    for t in (sensor.get("spec") or {}).get("triggers") or []:
        tpl = (t or {}).get("template") or {}
        for k in ("argoWorkflow", "k8s"):
            body = tpl.get(k) or {}
            res = ((body.get("source") or {}).get("resource"))
            if isinstance(res, dict) and res.get("kind") == "Workflow":
                wf = copy.deepcopy(res)
                for p in body.get("parameters") or []:
                    dest = (p or {}).get("dest")
                    if dest:
                        try:
                            wf = sjson_set(wf, dest, "<set by sensor parameter>")
                        except (SjsonError, Exception):
                            pass
                out.append((f"Sensor/{(sensor.get('metadata') or {}).get('name')} trigger {tpl.get('name')}", wf))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Offline lint for Argo Workflows objects (argo lint semantics, plus a few stricter checks).")
    ap.add_argument("files", nargs="+", help="YAML/JSON files (multi-document YAML is fine)")
    ap.add_argument("--strict-refs", action="store_true",
                    help="treat templateRef/workflowTemplateRef to templates not among FILES as errors")
    ap.add_argument("--no-sensors", action="store_true",
                    help="do not lint Workflows embedded in Sensor triggers")
    args = ap.parse_args(argv)
    docs: list[tuple[str, dict]] = []
    for f in args.files:
        with open(f) as fh:
            for d in yaml.safe_load_all(fh):
                if isinstance(d, dict):
                    docs.append((f, d))
    templates = [d for _, d in docs if d.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate")]
    rc = 0
    checked = 0
    for f, d in docs:
        targets: list[tuple[str, dict]] = []
        if d.get("kind") in KINDS:
            targets.append((f"{d.get('kind')}/{(d.get('metadata') or {}).get('name') or (d.get('metadata') or {}).get('generateName')}", d))
        elif d.get("kind") == "Sensor" and not args.no_sensors:
            targets.extend(_sensor_workflows(d))
        for label, obj in targets:
            checked += 1
            rep = lint_report(obj, templates, strict_refs=args.strict_refs)
            for n in rep.notes:
                print(f"{f}: {label}: note: {n}")
            for p in rep.problems:
                print(f"{f}: {label}: {p}")
            if rep.problems:
                rc = 1
    if checked == 0:
        print("no Workflow/WorkflowTemplate/ClusterWorkflowTemplate/CronWorkflow found", file=sys.stderr)
        return 2
    if rc == 0:
        print(f"{checked} object(s) linted: no problems found")
    return rc


if __name__ == "__main__":
    sys.exit(main())
