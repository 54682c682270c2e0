#!/usr/bin/env python3
"""Strict offline validator for Kubernetes manifests that use Argo custom resources.

Stand-in (tests/checks): an offline check the tests use until it is replaced by the upstream
binary it imitates; see tests/checks/__init__.py and docs/upstream-data.md.

Usage:
    python validate_manifests.py FILE_OR_DIR... [--json] [--require-schema]
                                 [--schemas DIR] [--extra-crds PATH]... [--k8s-version X.Y]

Reads YAML (multi-document) or JSON (one object, a list of objects, or a
``kind: *List`` object) files, or every *.yaml/*.yml/*.json file of a directory
tree, and validates every object by apiVersion/kind:

* kinds backed by a CustomResourceDefinition found under the schema folder
  (Argo CD, Argo Rollouts, Argo Workflows): the CRD's openAPIV3Schema is turned
  into a JSON Schema with strict unknown-field detection, which mimics the
  API server's strict field validation (``kubectl apply --validate=strict``);
* Argo Events kinds (their CRDs carry no schema): the definitions of the Argo
  Events swagger.json, just as strict;
* core Kubernetes kinds: ``kubernetes-validate`` in strict mode when it is
  installed, otherwise the object is skipped with a warning;
* anything else: "no schema" (an error only with --require-schema).

Every problem is printed as ``FILE:DOC KIND/NAME: PATH: message`` (DOC is the
0-based document index in the file), then ``N objects, M valid, K invalid,
S skipped``.  The exit status is 1 when an object is invalid, 2 on bad usage.

Only PyYAML and jsonschema (>= 4.18) are required; kubernetes-validate is
optional.  Tests import :func:`validate_objects`.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator

import yaml
import jsonschema
from jsonschema import Draft202012Validator, ValidationError

__all__ = [
    "Problem",
    "validate_objects",
    "validate_paths",
    "load_documents",
    "SchemaStore",
    "DEFAULT_SCHEMA_DIR",
]

DEFAULT_SCHEMA_DIR = os.environ.get(
    "VALIDATE_MANIFESTS_SCHEMAS",
    os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "upstream", "schemas")),
)

# Kinds whose CRD is schema-less upstream; validated against swagger definitions.
# (group, version, kind) -> (swagger file relative to the schema dir, definition name, namespaced)
SWAGGER_KINDS: dict[tuple[str, str, str], tuple[str, str, bool]] = {
    ("argoproj.io", "v1alpha1", "EventSource"): (
        "argo-events/swagger.json", "io.argoproj.events.v1alpha1.EventSource", True),
    ("argoproj.io", "v1alpha1", "Sensor"): (
        "argo-events/swagger.json", "io.argoproj.events.v1alpha1.Sensor", True),
    ("argoproj.io", "v1alpha1", "EventBus"): (
        "argo-events/swagger.json", "io.argoproj.events.v1alpha1.EventBus", True),
}

# Swagger `required` lists come from Go fields without `omitempty`; for Argo Events types many
# of them are not required in practice (e.g. every field of filters.context, webhook.url).
# For io.argoproj.events.* definitions only these fields are enforced: the ones the Argo Events
# controller rejects when empty (pkg/reconciler/sensor/validate.go, eventsources/common/webhook).
# (definition -> required fields, fields that need at least one item)
EVENTS_REQUIRED: dict[str, tuple[list[str], list[str]]] = {
    "io.argoproj.events.v1alpha1.SensorSpec": (["dependencies", "triggers"], ["dependencies", "triggers"]),
    "io.argoproj.events.v1alpha1.EventDependency": (["name", "eventSourceName", "eventName"], []),
    "io.argoproj.events.v1alpha1.Trigger": (["template"], []),
    "io.argoproj.events.v1alpha1.TriggerTemplate": (["name"], []),
    "io.argoproj.events.v1alpha1.TriggerParameterSource": (["dependencyName"], []),
    "io.argoproj.events.v1alpha1.DataFilter": (["path", "type", "value"], ["value"]),
    "io.argoproj.events.v1alpha1.ExprFilter": (["expr", "fields"], ["fields"]),
    "io.argoproj.events.v1alpha1.PayloadField": (["path", "name"], []),
    "io.argoproj.events.v1alpha1.WebhookContext": (["endpoint", "port"], []),
    "io.argoproj.events.v1alpha1.HTTPTrigger": (["url"], []),
    "io.argoproj.events.v1alpha1.StandardK8STrigger": (["source"], []),
    "io.argoproj.events.v1alpha1.ArgoWorkflowTrigger": (["source"], []),
}
EVENTS_PREFIX = "io.argoproj.events."

# A swagger that carries the upstream ObjectMeta definition (used for metadata of CRs).
OBJECTMETA_SWAGGER = ("argo-events/swagger.json", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")

# Built-in API groups (validated with kubernetes-validate when it is installed).
def _is_builtin_group(group: str) -> bool:
    return group == "" or "." not in group or group.endswith(".k8s.io")

# Name rules of built-in kinds (everything else: DNS-1123 subdomain).
CORE_NAME_RULES = {
    "Namespace": "dns1123label",
    "Service": "dns1035label",
    "Role": "pathsegment",
    "ClusterRole": "pathsegment",
    "RoleBinding": "pathsegment",
    "ClusterRoleBinding": "pathsegment",
}
CORE_CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "StorageClass", "IngressClass", "PriorityClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CSIDriver",
    "RuntimeClass", "VolumeAttachment", "CertificateSigningRequest",
}

QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")

# --------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------


@dataclass
class Problem:
    """One finding. severity is 'error' (object invalid), 'warning' or 'skipped'."""

    file: str
    doc_index: str
    kind: str
    name: str
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        msg = self.message
        if self.severity == "warning":
            msg = "warning: " + msg
        elif self.severity == "skipped":
            msg = "skipped: " + msg
        return f"{self.file}:{self.doc_index} {self.kind}/{self.name}: {self.path}: {msg}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Summary:
    objects: int = 0
    valid: int = 0
    invalid: int = 0
    skipped: int = 0

    def line(self) -> str:
        return f"{self.objects} objects, {self.valid} valid, {self.invalid} invalid, {self.skipped} skipped"


# --------------------------------------------------------------------------------------
# Name / metadata rules (k8s.io/apimachinery/pkg/util/validation)
# --------------------------------------------------------------------------------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _check_name(value: str, rule: str) -> str | None:
    if rule == "dns1123subdomain":
        if len(value) > 253:
            return "must be no more than 253 characters"
        if not _DNS1123_SUBDOMAIN.match(value):
            return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                    "'-' or '.', and must start and end with an alphanumeric character")
    elif rule == "dns1123label":
        if len(value) > 63:
            return "must be no more than 63 characters"
        if not _DNS1123_LABEL.match(value):
            return ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character")
    elif rule == "dns1035label":
        if len(value) > 63:
            return "must be no more than 63 characters"
        if not _DNS1035_LABEL.match(value):
            return ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                    "an alphabetic character, and end with an alphanumeric character")
    elif rule == "pathsegment":
        if value in (".", ".."):
            return f"may not be '{value}'"
        if "/" in value or "%" in value:
            return "may not contain '/' or '%'"
    return None


def _check_qualified_name(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return "prefix part must be non-empty"
        err = _check_name(prefix, "dns1123subdomain")
        if err:
            return "prefix part " + err
    else:
        return "a qualified name must consist of an optional DNS subdomain prefix and '/' and a name"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                "end with an alphanumeric character")
    return None


# --------------------------------------------------------------------------------------
# A small CEL subset for x-kubernetes-validations
# --------------------------------------------------------------------------------------


class CelUnsupported(Exception):
    """The rule uses CEL that this evaluator does not implement: the rule is skipped."""


class CelEvalError(Exception):
    """Evaluation error (e.g. no such key): the rule is skipped, as it cannot be judged offline."""


_CEL_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d+|\d+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!+\-*/%?:().,\[\]])
""", re.X)


def _cel_tokenize(src: str) -> list[tuple[str, Any]]:
    pos, out = 0, []
    while pos < len(src):
        m = _CEL_TOKEN.match(src, pos)
        if not m:
            raise CelUnsupported(f"cannot tokenize at {src[pos:pos + 10]!r}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind == "ws":
            continue
        if kind == "num":
            out.append(("lit", float(text) if "." in text else int(text)))
        elif kind == "str":
            body = text[1:-1]
            out.append(("lit", bytes(body, "utf-8").decode("unicode_escape")))
        elif kind == "id":
            if text in ("true", "false"):
                out.append(("lit", text == "true"))
            elif text == "null":
                out.append(("lit", None))
            elif text == "in":
                out.append(("op", "in"))
            else:
                out.append(("id", text))
        else:
            out.append(("op", text))
    out.append(("eof", None))
    return out


class _CelParser:
    def __init__(self, src: str):
        self.toks = _cel_tokenize(src)
        self.i = 0

    def peek(self, value=None):
        t = self.toks[self.i]
        if value is None:
            return t
        return t if t[0] == "op" and t[1] == value else None

    def take(self, value=None):
        t = self.toks[self.i]
        if value is not None and not (t[0] == "op" and t[1] == value):
            raise CelUnsupported(f"expected {value!r}")
        self.i += 1
        return t

    def parse(self):
        node = self.expr()
        if self.peek()[0] != "eof":
            raise CelUnsupported("trailing tokens")
        return node

    def expr(self):
        cond = self.or_()
        if self.peek("?"):
            self.take("?")
            a = self.expr()
            self.take(":")
            b = self.expr()
            return ("?:", cond, a, b)
        return cond

    def or_(self):
        node = self.and_()
        while self.peek("||"):
            self.take()
            node = ("||", node, self.and_())
        return node

    def and_(self):
        node = self.rel()
        while self.peek("&&"):
            self.take()
            node = ("&&", node, self.rel())
        return node

    def rel(self):
        node = self.add()
        for op in ("==", "!=", "<=", ">=", "<", ">", "in"):
            if self.peek(op):
                self.take()
                return (op, node, self.add())
        return node

    def add(self):
        node = self.mul()
        while self.peek("+") or self.peek("-"):
            op = self.take()[1]
            node = (op, node, self.mul())
        return node

    def mul(self):
        node = self.unary()
        while self.peek("*") or self.peek("/") or self.peek("%"):
            op = self.take()[1]
            node = (op, node, self.unary())
        return node

    def unary(self):
        if self.peek("!"):
            self.take()
            return ("!", self.unary())
        if self.peek("-"):
            self.take()
            return ("neg", self.unary())
        return self.postfix()

    def args(self):
        self.take("(")
        args = []
        if not self.peek(")"):
            args.append(self.expr())
            while self.peek(","):
                self.take()
                args.append(self.expr())
        self.take(")")
        return args

    def postfix(self):
        node = self.primary()
        while True:
            if self.peek("."):
                self.take()
                t = self.take()
                if t[0] != "id":
                    raise CelUnsupported("expected identifier after '.'")
                if self.peek("("):
                    node = ("call", node, t[1], self.args())
                else:
                    node = ("member", node, t[1])
            elif self.peek("["):
                self.take()
                idx = self.expr()
                self.take("]")
                node = ("index", node, idx)
            else:
                return node

    def primary(self):
        t = self.take()
        if t[0] == "lit":
            return ("lit", t[1])
        if t[0] == "id":
            if self.peek("("):
                return ("fn", t[1], self.args())
            return ("var", t[1])
        if t[0] == "op" and t[1] == "(":
            node = self.expr()
            self.take(")")
            return node
        if t[0] == "op" and t[1] == "[":
            items = []
            if not self.peek("]"):
                items.append(self.expr())
                while self.peek(","):
                    self.take()
                    items.append(self.expr())
            self.take("]")
            return ("list", items)
        raise CelUnsupported(f"unexpected token {t!r}")


_MISSING = object()


def _cel_eval(node, env: dict) -> Any:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "var":
        if node[1] not in env:
            raise CelUnsupported(f"unknown variable {node[1]}")
        return env[node[1]]
    if op == "list":
        return [_cel_eval(n, env) for n in node[1]]
    if op == "member":
        obj = _cel_eval(node[1], env)
        if isinstance(obj, dict) and node[2] in obj and obj[node[2]] is not None:
            return obj[node[2]]
        raise CelEvalError(f"no such key: {node[2]}")
    if op == "index":
        obj, idx = _cel_eval(node[1], env), _cel_eval(node[2], env)
        try:
            return obj[idx]
        except (KeyError, IndexError, TypeError):
            raise CelEvalError("bad index")
    if op == "fn":
        name, args = node[1], node[2]
        if name == "has":
            if len(args) != 1 or args[0][0] != "member":
                raise CelUnsupported("has() needs a field selection")
            obj = _cel_eval(args[0][1], env)
            if not isinstance(obj, dict):
                raise CelEvalError("has() on a non-object")
            return args[0][2] in obj and obj[args[0][2]] is not None
        if name == "size" and len(args) == 1:
            v = _cel_eval(args[0], env)
            if isinstance(v, (str, list, dict)):
                return len(v)
            raise CelEvalError("size() of a scalar")
        raise CelUnsupported(f"function {name}()")
    if op == "call":
        target, name, args = node[1], node[2], node[3]
        if name in ("all", "exists", "exists_one"):
            coll = _cel_eval(target, env)
            if len(args) != 2 or args[0][0] != "var":
                raise CelUnsupported("bad macro")
            var = args[0][1]
            items = list(coll.keys()) if isinstance(coll, dict) else coll
            if not isinstance(items, list):
                raise CelEvalError("macro on a scalar")
            results = []
            for it in items:
                r = _cel_eval(args[1], {**env, var: it})
                if not isinstance(r, bool):
                    raise CelEvalError("macro predicate is not a bool")
                results.append(r)
            if name == "all":
                return all(results)
            if name == "exists":
                return any(results)
            return sum(results) == 1
        obj = _cel_eval(target, env)
        vals = [_cel_eval(a, env) for a in args]
        if name == "size" and not vals and isinstance(obj, (str, list, dict)):
            return len(obj)
        if isinstance(obj, str) and len(vals) == 1 and isinstance(vals[0], str):
            if name == "contains":
                return vals[0] in obj
            if name == "startsWith":
                return obj.startswith(vals[0])
            if name == "endsWith":
                return obj.endswith(vals[0])
            if name == "matches":
                try:
                    return re.search(vals[0], obj) is not None
                except re.error:
                    raise CelUnsupported("regex")
        raise CelUnsupported(f"method {name}()")
    if op == "!":
        v = _cel_eval(node[1], env)
        if not isinstance(v, bool):
            raise CelEvalError("! of a non-bool")
        return not v
    if op == "neg":
        v = _cel_eval(node[1], env)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CelEvalError("- of a non-number")
        return -v
    if op == "?:":
        c = _cel_eval(node[1], env)
        if not isinstance(c, bool):
            raise CelEvalError("condition is not a bool")
        return _cel_eval(node[2] if c else node[3], env)
    if op in ("&&", "||"):
        # CEL's logical operators are commutative with respect to errors.
        results = []
        for sub in (node[1], node[2]):
            try:
                v = _cel_eval(sub, env)
                if not isinstance(v, bool):
                    raise CelEvalError("logical operand is not a bool")
                results.append(v)
            except CelEvalError:
                results.append(_MISSING)
        if op == "&&":
            if False in results:
                return False
        else:
            if True in results:
                return True
        if _MISSING in results:
            raise CelEvalError("logical operand error")
        return results[0] and results[1] if op == "&&" else results[0] or results[1]
    a, b = _cel_eval(node[1], env), _cel_eval(node[2], env)
    if op == "==":
        return _json_eq(a, b)
    if op == "!=":
        return not _json_eq(a, b)
    if op == "in":
        if isinstance(b, (list, dict)):
            return a in b
        raise CelEvalError("in on a scalar")
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if op in ("<", "<=", ">", ">="):
        if not ((num(a) and num(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise CelEvalError("comparison of mismatched types")
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "+":
        if (num(a) and num(b)) or (isinstance(a, str) and isinstance(b, str)) or (
                isinstance(a, list) and isinstance(b, list)):
            return a + b
        raise CelEvalError("+ of mismatched types")
    if op in ("-", "*", "/", "%"):
        if not (num(a) and num(b)):
            raise CelEvalError("arithmetic on non-numbers")
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise CelEvalError("division by zero")
        if op == "/":
            return a // b if isinstance(a, int) and isinstance(b, int) else a / b
        return a % b
    raise CelUnsupported(f"operator {op}")


_CEL_CACHE: dict[str, Any] = {}


def cel_check(rule: str, value: Any) -> bool | None:
    """Evaluate a CEL rule against value: True/False, or None when it cannot be judged offline."""
    if "oldSelf" in rule:  # transition rules only apply to updates
        return None
    ast = _CEL_CACHE.get(rule)
    if ast is None:
        try:
            ast = _CelParser(rule).parse()
        except CelUnsupported:
            ast = False
        _CEL_CACHE[rule] = ast
    if ast is False:
        return None
    try:
        result = _cel_eval(ast, {"self": value})
    except (CelUnsupported, CelEvalError, RecursionError):
        return None
    return result if isinstance(result, bool) else None


# --------------------------------------------------------------------------------------
# Schema conversion
# --------------------------------------------------------------------------------------

_COPY_KEYWORDS = ("enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems",
                  "maxItems", "uniqueItems", "minProperties", "maxProperties", "multipleOf", "required")


def _is_int_or_string_pair(branches: list) -> bool:
    types = sorted(b.get("type", "") for b in branches if isinstance(b, dict))
    return len(branches) == 2 and types == ["integer", "string"] and all(len(b) == 1 for b in branches)


def convert_crd_schema(s: dict, *, in_junctor: bool = False) -> dict:
    """Turn a structural openAPIV3Schema node into a strict JSON Schema (draft 2020-12) node."""
    if not isinstance(s, dict):
        return {}
    out: dict[str, Any] = {}
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    nullable = bool(s.get("nullable"))
    t = s.get("type")
    types: list[str] = []
    if s.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    elif t:
        types = [t]
    if types:
        if nullable:
            types.append("null")
        out["type"] = types if len(types) > 1 else types[0]
    for kw in _COPY_KEYWORDS + ("default",):
        if kw in s:
            out[kw] = copy.deepcopy(s[kw])
    if nullable and "enum" in out and None not in out["enum"]:
        out["enum"].append(None)
    # OpenAPI 3.0 boolean exclusive bounds -> JSON Schema numeric form
    for bound, excl in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if s.get(excl) is True and bound in s:
            out[excl] = s[bound]
            out.pop(bound, None)
    props = s.get("properties")
    if isinstance(props, dict):
        out["properties"] = {k: convert_crd_schema(v, in_junctor=in_junctor) for k, v in props.items()}
    if embedded and not in_junctor:
        out.setdefault("properties", {})
        out["properties"].setdefault("apiVersion", {"type": "string"})
        out["properties"].setdefault("kind", {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
        out.setdefault("required", [])
        for r in ("apiVersion", "kind"):
            if r not in out["required"]:
                out["required"].append(r)
    if "items" in s:
        out["items"] = convert_crd_schema(s["items"], in_junctor=in_junctor)
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        out["additionalProperties"] = convert_crd_schema(ap, in_junctor=in_junctor)
    elif isinstance(ap, bool):
        out["additionalProperties"] = ap
    elif not in_junctor and not preserve and t == "object":
        # Pruning drops every field that the schema does not declare: strict validation reports it.
        out["additionalProperties"] = False
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in s:
            branches = s[junctor]
            if junctor == "anyOf" and s.get("x-kubernetes-int-or-string") and _is_int_or_string_pair(branches):
                continue
            out[junctor] = [convert_crd_schema(b, in_junctor=True) for b in branches]
    if "not" in s:
        out["not"] = convert_crd_schema(s["not"], in_junctor=True)
    if not in_junctor:
        lt = s.get("x-kubernetes-list-type")
        if lt in ("set", "map"):
            out["x-kubernetes-list-type"] = lt
            if lt == "map":
                out["x-kubernetes-list-map-keys"] = list(s.get("x-kubernetes-list-map-keys") or [])
        if s.get("x-kubernetes-validations"):
            out["x-kubernetes-validations"] = [
                {k: v for k, v in r.items() if k in ("rule", "message", "fieldPath")}
                for r in s["x-kubernetes-validations"]]
    return out


def convert_swagger_schema(s: Any) -> Any:
    """Turn a swagger 2.0 definition node into a strict JSON Schema node (refs -> #/$defs/...)."""
    if not isinstance(s, dict):
        return {}
    if "$ref" in s:
        ref = s["$ref"]
        if ref.startswith("#/definitions/"):
            ref = "#/$defs/" + ref[len("#/definitions/"):]
        return {"$ref": ref}
    out: dict[str, Any] = {}
    t = s.get("type")
    fmt = s.get("format")
    if t == "string" and fmt in ("int-or-string", "int64-or-string"):
        out["type"] = ["integer", "string"]
    elif t:
        out["type"] = t
    for kw in _COPY_KEYWORDS:
        if kw in s:
            out[kw] = copy.deepcopy(s[kw])
    props = s.get("properties")
    if isinstance(props, dict):
        out["properties"] = {k: convert_swagger_schema(v) for k, v in props.items()}
    if "items" in s:
        out["items"] = convert_swagger_schema(s["items"])
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        out["additionalProperties"] = convert_swagger_schema(ap)
    elif isinstance(ap, bool):
        out["additionalProperties"] = ap
    elif isinstance(props, dict):
        # Declared properties: anything else is an unknown field.  (A bare `type: object`
        # without properties is a free-form object in swagger, e.g. K8SResource.)
        out["additionalProperties"] = False
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in s:
            out[junctor] = [convert_swagger_schema(b) for b in s[junctor]]
    return out


def convert_swagger_definitions(defs: dict) -> dict:
    out = {name: convert_swagger_schema(d) for name, d in defs.items()}
    for name, d in out.items():
        if not name.startswith(EVENTS_PREFIX):
            continue
        req, non_empty = EVENTS_REQUIRED.get(name, ([], []))
        if req:
            d["required"] = list(req)
        else:
            d.pop("required", None)
        for f in non_empty:
            if f in d.get("properties", {}) and d["properties"][f].get("type") == "array":
                d["properties"][f]["minItems"] = 1
    # Quantity is a string in swagger, but the API accepts numbers too.
    q = "io.k8s.apimachinery.pkg.api.resource.Quantity"
    if q in out:
        out[q] = {"anyOf": [{"type": "string", "pattern": QUANTITY_PATTERN}, {"type": "number"}]}
    # creationTimestamp: null is what most clients serialize for an unset timestamp.
    om = out.get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    if om and "creationTimestamp" in om.get("properties", {}):
        om["properties"]["creationTimestamp"] = {"anyOf": [{"type": "null"}, om["properties"]["creationTimestamp"]]}
    return out


# --------------------------------------------------------------------------------------
# jsonschema validator with Kubernetes-flavoured keywords and messages
# --------------------------------------------------------------------------------------

_BASE = Draft202012Validator.VALIDATORS


def _describe(instance: Any) -> str:
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return f"boolean {json.dumps(instance)}"
    if isinstance(instance, (int, float)):
        return f"number {instance!r}"
    if isinstance(instance, str):
        short = instance if len(instance) <= 60 else instance[:57] + "..."
        return f"string {json.dumps(short)}"
    if isinstance(instance, list):
        return "array"
    if isinstance(instance, dict):
        return "object"
    return type(instance).__name__


def _kw_type(validator, types, instance, schema):
    types = [types] if isinstance(types, str) else list(types)
    if any(validator.is_type(instance, t) for t in types):
        return
    expected = " or ".join(types)
    if instance is None:
        err = ValidationError(f"null value for a non-nullable field of type {expected} "
                              "(treated as unset)")
        err.k8s_severity = "warning"  # type: ignore[attr-defined]
        yield err
        return
    yield ValidationError(f"invalid type: expected {expected}, got {_describe(instance)}")


def _nullable(validator, prop_schema) -> bool:
    try:
        return validator.evolve(schema=prop_schema).is_valid(None)
    except Exception:  # pragma: no cover - unresolvable refs etc.
        return True


def _kw_required(validator, required, instance, schema):
    if not isinstance(instance, dict):
        return
    props = schema.get("properties", {})
    for prop in required:
        if prop not in instance:
            if isinstance(props.get(prop), dict) and "default" in props[prop]:
                continue  # the API server fills in the default before validating
            yield ValidationError("required field is missing", path=[prop])
        elif instance[prop] is None and prop in props and not _nullable(validator, props[prop]):
            yield ValidationError("required field is null", path=[prop])


def _kw_additional_properties(validator, ap, instance, schema):
    if not isinstance(instance, dict):
        return
    if ap is not False:
        yield from _BASE["additionalProperties"](validator, ap, instance, schema)
        return
    known = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    for key in instance:
        if key in known or any(p.search(key) for p in patterns):
            continue
        msg = f'unknown field "{key}"'
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        if close:
            msg += f' (did you mean "{close[0]}"?)'
        elif not known:
            msg += " (this object takes no fields)"
        yield ValidationError(msg, path=[key])


def _json_eq(a: Any, b: Any) -> bool:
    """Equality of JSON values (true != 1, 1 == 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_eq(a[k], b[k]) for k in a)
    return a == b


def _kw_enum(validator, enums, instance, schema):
    if instance is None:
        return  # reported by `type`
    if any(_json_eq(instance, e) for e in enums):
        return
    shown = ", ".join(json.dumps(e) for e in enums[:20]) + (", ..." if len(enums) > 20 else "")
    yield ValidationError(f"unsupported value {json.dumps(instance)}: supported values: {shown}")


def _kw_list_type(validator, list_type, instance, schema):
    if not isinstance(instance, list):
        return
    seen: dict[str, int] = {}
    if list_type == "set":
        for i, item in enumerate(instance):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                yield ValidationError(f"duplicate entry {key} (x-kubernetes-list-type: set)", path=[i])
            seen[key] = i
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        if not keys:
            return
        for i, item in enumerate(instance):
            if not isinstance(item, dict):
                continue
            ident = json.dumps([item.get(k) for k in keys])
            if ident in seen:
                desc = ", ".join(f"{k}={json.dumps(item.get(k))}" for k in keys)
                yield ValidationError(f"duplicate entry with {desc} (x-kubernetes-list-type: map)", path=[i])
            seen[ident] = i


def _with_defaults(instance: Any, schema: Any) -> Any:
    """Apply structural-schema defaults (the API server defaults before it runs CEL rules)."""
    if not isinstance(schema, dict):
        return instance
    if isinstance(instance, dict):
        out = dict(instance)
        props = schema.get("properties") or {}
        for k, ps in props.items():
            if not isinstance(ps, dict):
                continue
            if k not in out and "default" in ps:
                out[k] = copy.deepcopy(ps["default"])
            if k in out:
                out[k] = _with_defaults(out[k], ps)
        ap = schema.get("additionalProperties")
        if isinstance(ap, dict):
            for k in out:
                if k not in props:
                    out[k] = _with_defaults(out[k], ap)
        return out
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_with_defaults(i, schema["items"]) for i in instance]
    return instance


def _kw_cel(validator, rules, instance, schema):
    if instance is None:
        return
    instance = _with_defaults(instance, schema)
    for r in rules:
        rule = r.get("rule", "")
        ok = cel_check(rule, instance)
        if ok is False:
            msg = r.get("message") or f"failed rule: {rule}"
            err = ValidationError(f"{msg} (x-kubernetes-validations)")
            fp = r.get("fieldPath")
            if fp:
                err.k8s_field_path = fp  # type: ignore[attr-defined]
            yield err


K8sValidator = jsonschema.validators.extend(
    Draft202012Validator,
    {
        "type": _kw_type,
        "required": _kw_required,
        "additionalProperties": _kw_additional_properties,
        "enum": _kw_enum,
        "x-kubernetes-list-type": _kw_list_type,
        "x-kubernetes-validations": _kw_cel,
    },
)


# --------------------------------------------------------------------------------------
# Schema store
# --------------------------------------------------------------------------------------

def _fast_loader():
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    return Loader


_CRD_HEAD_GROUP = re.compile(r"^\s+group:\s*['\"]?([A-Za-z0-9.\-]+)", re.M)
_CRD_HEAD_KIND = re.compile(r"^\s+names:\s*\n(?:[ \t]+.*\n)*?[ \t]+kind:\s*['\"]?([A-Za-z0-9]+)", re.M)
_CRD_HEAD_IS_CRD = re.compile(r"^kind:\s*['\"]?CustomResourceDefinition['\"]?\s*$", re.M)


class SchemaStore:
    """Finds and converts schemas for (group, version, kind); caches validators."""

    def __init__(self, schema_dir: str | None = None, extra_crds: Iterable[str] = ()):
        self.schema_dir = schema_dir or DEFAULT_SCHEMA_DIR
        self._crd_files: dict[tuple[str, str], list[str]] = {}
        self._crds: dict[tuple[str, str], dict] = {}
        self._loaded_files: set[str] = set()
        self._swaggers: dict[str, dict] = {}
        self._validators: dict[tuple, Any] = {}
        self._objectmeta: dict | None = None
        self._scan(self.schema_dir)
        for p in extra_crds:
            self._scan(p, override=True)

    # -- CRDs ---------------------------------------------------------------------------
    def _scan(self, root: str, override: bool = False) -> None:
        files = []
        if os.path.isfile(root):
            files = [root]
        elif os.path.isdir(root):
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fn in sorted(filenames):
                    if fn.endswith((".yaml", ".yml")):
                        files.append(os.path.join(dirpath, fn))
                    elif fn.endswith(".json") and override:
                        files.append(os.path.join(dirpath, fn))
        for path in files:
            if path.endswith(".json"):
                self._load_file(path, override=override)
                continue
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            for chunk in re.split(r"^---\s*$", text, flags=re.M):
                head = chunk[:20000]
                if not _CRD_HEAD_IS_CRD.search(head):
                    continue
                g, k = _CRD_HEAD_GROUP.search(head), _CRD_HEAD_KIND.search(head)
                if not g or not k:
                    self._load_file(path, override=override)
                    break
                key = (g.group(1), k.group(1))
                if override:
                    self._crd_files[key] = [path] + [f for f in self._crd_files.get(key, []) if f != path]
                else:
                    self._crd_files.setdefault(key, []).append(path)

    def _load_file(self, path: str, override: bool = False) -> None:
        if path in self._loaded_files:
            return
        self._loaded_files.add(path)
        with open(path, encoding="utf-8") as fh:
            if path.endswith(".json"):
                data = json.load(fh)
                docs = data if isinstance(data, list) else (data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), list) else [data])
            else:
                docs = list(yaml.load_all(fh, Loader=_fast_loader()))
        for d in docs:
            if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition":
                spec = d.get("spec") or {}
                key = (spec.get("group"), (spec.get("names") or {}).get("kind"))
                if override or key not in self._crds:
                    self._crds[key] = d
                if override:
                    self._crd_files[key] = [path] + [f for f in self._crd_files.get(key, []) if f != path]
                else:
                    self._crd_files.setdefault(key, [])
                    if path not in self._crd_files[key]:
                        self._crd_files[key].append(path)

    def crd(self, group: str, kind: str) -> dict | None:
        key = (group, kind)
        if key not in self._crds:
            for path in self._crd_files.get(key, []):
                self._load_file(path)
                if key in self._crds:
                    break
        return self._crds.get(key)

    # -- swagger ------------------------------------------------------------------------
    def swagger(self, rel: str) -> dict | None:
        if rel not in self._swaggers:
            path = os.path.join(self.schema_dir, rel)
            if not os.path.exists(path):
                self._swaggers[rel] = None  # type: ignore[assignment]
            else:
                with open(path, encoding="utf-8") as fh:
                    doc = json.load(fh)
                self._swaggers[rel] = {"$defs": convert_swagger_definitions(doc.get("definitions", {})),
                                       "info": doc.get("info", {})}
        return self._swaggers[rel]

    def objectmeta_schema(self) -> dict:
        """Strict ObjectMeta (from the upstream swagger), with $defs, for the metadata of CRs."""
        if self._objectmeta is None:
            sw = self.swagger(OBJECTMETA_SWAGGER[0])
            if sw and OBJECTMETA_SWAGGER[1] in sw["$defs"]:
                self._objectmeta = {"$ref": "#/$defs/" + OBJECTMETA_SWAGGER[1]}
            else:
                self._objectmeta = {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"}, "generateName": {"type": "string"},
                        "namespace": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                        "finalizers": {"type": "array", "items": {"type": "string"}},
                        "ownerReferences": {"type": "array", "items": {"type": "object"}},
                        "uid": {"type": "string"}, "resourceVersion": {"type": "string"},
                        "generation": {"type": "integer"}, "selfLink": {"type": "string"},
                        "creationTimestamp": {"type": ["string", "null"]},
                        "deletionTimestamp": {"type": ["string", "null"]},
                        "deletionGracePeriodSeconds": {"type": "integer"},
                        "managedFields": {"type": "array", "items": {"type": "object"}},
                    },
                    "additionalProperties": False,
                }
        return self._objectmeta

    def _objectmeta_defs(self) -> dict:
        sw = self.swagger(OBJECTMETA_SWAGGER[0])
        if not sw:
            return {}
        # Only the closure of ObjectMeta is needed.
        defs, todo = {}, [OBJECTMETA_SWAGGER[1]]
        while todo:
            n = todo.pop()
            if n in defs or n not in sw["$defs"]:
                continue
            defs[n] = sw["$defs"][n]
            todo.extend(re.findall(r'"#/\$defs/([^"]+)"', json.dumps(defs[n])))
        return defs

    # -- lookup -------------------------------------------------------------------------
    def lookup(self, group: str, version: str, kind: str):
        """Return (validator, info) or (None, reason). info: dict(source, namespaced)."""
        key = (group, version, kind)
        if key in self._validators:
            return self._validators[key]
        result = self._build(group, version, kind)
        self._validators[key] = result
        return result

    def _build(self, group: str, version: str, kind: str):
        sk = SWAGGER_KINDS.get((group, version, kind))
        if sk:
            sw = self.swagger(sk[0])
            if sw and sk[1] in sw["$defs"]:
                root = {"$defs": sw["$defs"], "$ref": "#/$defs/" + sk[1]}
                # The metadata gets the same strict ObjectMeta as CRD kinds.
                info = {"source": f"{sk[0]}#{sk[1]} ({sw['info'].get('title', '')} "
                                  f"{sw['info'].get('version', '')})".strip(),
                        "namespaced": sk[2]}
                return K8sValidator(root), info
        crd = self.crd(group, kind)
        if crd is None:
            return None, None
        spec = crd.get("spec") or {}
        versions = spec.get("versions") or []
        ver = next((v for v in versions if v.get("name") == version), None)
        if ver is None:
            served = [v.get("name") for v in versions if v.get("served", True)]
            return None, f"version {version} is not defined by CRD {crd['metadata']['name']} (served: {', '.join(served)})"
        if not ver.get("served", True):
            return None, f"version {version} of CRD {crd['metadata']['name']} is not served"
        raw = ((ver.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")) or {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        js = convert_crd_schema(raw)
        js.setdefault("properties", {})
        js["properties"]["metadata"] = self.objectmeta_schema()
        js["properties"].setdefault("apiVersion", {"type": "string"})
        js["properties"].setdefault("kind", {"type": "string"})
        js["$defs"] = self._objectmeta_defs()
        info = {"source": f"CRD {crd['metadata']['name']} {version}",
                "namespaced": spec.get("scope", "Namespaced") == "Namespaced"}
        return K8sValidator(js), info


# --------------------------------------------------------------------------------------
# Core kinds via kubernetes-validate
# --------------------------------------------------------------------------------------

class _CoreValidator:
    def __init__(self, k8s_version: str | None):
        self.available = False
        self.version = None
        self._cache: dict[tuple[str, str], Any] = {}
        try:
            from kubernetes_validate import utils as kvu
        except Exception:  # pragma: no cover - depends on the environment
            return
        self.kvu = kvu
        self.available = True
        try:
            versions = kvu.all_versions()
            if k8s_version:
                mm = lambda v: tuple(int(x) for x in kvu.major_minor(v.lstrip("v")).split("."))  # noqa: E731
                ok = [v for v in versions if mm(v) <= mm(k8s_version)]
                self.version = ok[-1] if ok else versions[0]
            else:
                self.version = versions[-1]
        except Exception:  # pragma: no cover
            self.version = k8s_version or "1.30"

    def validator(self, api_version: str, kind: str):
        key = (api_version, kind)
        if key in self._cache:
            return self._cache[key]
        result = None
        try:
            from referencing import Registry, Resource
            api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            sdir = f"v{self.version}-local-strict"
            schema = self.kvu.schema_contents(f"kubernetes-json-schema/{sdir}/{kind.lower()}-{api}.json", self.version)
            defs = self.kvu.schema_contents(f"kubernetes-json-schema/{sdir}/_definitions.json", self.version)
            registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
            result = K8sValidator(schema, registry=registry)
        except FileNotFoundError:
            result = None
        except Exception:
            result = "fallback"
        self._cache[key] = result
        return result

    def validate(self, obj: dict):
        """Yield (path_list, message) pairs; raise LookupError when no schema exists."""
        v = self.validator(obj.get("apiVersion", ""), obj.get("kind", ""))
        if v is None:
            raise LookupError
        if v == "fallback":  # pragma: no cover - only if kubernetes-validate's layout changes
            import kubernetes_validate
            try:
                kubernetes_validate.validate(obj, self.version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                raise LookupError
            except kubernetes_validate.ValidationError as e:
                yield list(e.absolute_path), e.message, "error"
            return
        for err in _flatten_errors(v.iter_errors(obj)):
            yield err


# --------------------------------------------------------------------------------------
# Error formatting
# --------------------------------------------------------------------------------------

_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_\-$]+$")


def format_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _SIMPLE_KEY.match(str(p)):
            out += ("." if out else "") + str(p)
        else:
            out += f"[{json.dumps(str(p))}]"
    return out or "(root)"


def _flatten_errors(errors: Iterable[ValidationError]):
    """Yield (path parts, message, severity) for every leaf error."""
    for err in errors:
        path = list(err.absolute_path)
        sev = getattr(err, "k8s_severity", "error")
        if err.validator in ("anyOf", "oneOf") and err.context:
            # Show the most relevant branch failure, not the whole union.
            best = jsonschema.exceptions.best_match(err.context)
            detail = best.message if best is not None else ""
            if err.validator == "oneOf" and not detail:
                msg = "value matches more than one allowed form"
            else:
                msg = f"value does not match any allowed form ({detail})"
            yield path, msg, sev
            continue
        msg = err.message
        fp = getattr(err, "k8s_field_path", None)
        if fp:
            path = path + [p for p in re.split(r"\.", fp.lstrip(".")) if p]
        yield path, msg, sev


# --------------------------------------------------------------------------------------
# Validation of objects
# --------------------------------------------------------------------------------------

_STORES: dict[tuple, SchemaStore] = {}
_CORES: dict[str | None, _CoreValidator] = {}


def _store(schema_dir: str | None, extra_crds: tuple) -> SchemaStore:
    key = (schema_dir or DEFAULT_SCHEMA_DIR, extra_crds)
    if key not in _STORES:
        _STORES[key] = SchemaStore(schema_dir, extra_crds)
    return _STORES[key]


def _core(k8s_version: str | None) -> _CoreValidator:
    if k8s_version not in _CORES:
        _CORES[k8s_version] = _CoreValidator(k8s_version)
    return _CORES[k8s_version]


def _split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


def _metadata_problems(obj: dict, name_rule: str | None, namespaced: bool | None):
    """Yield (path, message, severity) for metadata rules that JSON Schema cannot express."""
    md = obj.get("metadata")
    if md is None:
        yield ["metadata"], "required field is missing (metadata.name or metadata.generateName is needed)", "error"
        return
    if not isinstance(md, dict):
        yield ["metadata"], f"invalid type: expected object, got {_describe(md)}", "error"
        return
    name, gen = md.get("name"), md.get("generateName")
    if not name and not gen:
        yield ["metadata", "name"], "name or generateName is required", "error"
    rule = name_rule or "dns1123subdomain"
    if isinstance(name, str) and name:
        err = _check_name(name, rule)
        if err:
            yield ["metadata", "name"], f"invalid name {json.dumps(name)}: {err}", "error"
    if isinstance(gen, str) and gen and not name:
        # generateName is a prefix: the server appends 5 random characters.
        err = _check_name(gen + "x" * 5, rule)
        if err:
            yield ["metadata", "generateName"], f"invalid generateName {json.dumps(gen)}: {err}", "error"
    ns = md.get("namespace")
    if isinstance(ns, str) and ns:
        err = _check_name(ns, "dns1123label")
        if err:
            yield ["metadata", "namespace"], f"invalid namespace {json.dumps(ns)}: {err}", "error"
        if namespaced is False:
            yield ["metadata", "namespace"], (f"{obj.get('kind')} is cluster-scoped: the namespace is "
                                              "ignored"), "warning"
    labels = md.get("labels")
    if isinstance(labels, dict):
        for k, v in labels.items():
            err = _check_qualified_name(str(k))
            if err:
                yield ["metadata", "labels", k], f"invalid label key: {err}", "error"
            if isinstance(v, str):
                if len(v) > 63:
                    yield ["metadata", "labels", k], "invalid label value: must be no more than 63 characters", "error"
                elif not _LABEL_VALUE.match(v):
                    yield ["metadata", "labels", k], (
                        f"invalid label value {json.dumps(v)}: must be empty or consist of alphanumeric "
                        "characters, '-', '_' or '.', and must start and end with an alphanumeric character"), "error"
    annotations = md.get("annotations")
    if isinstance(annotations, dict):
        total = 0
        for k, v in annotations.items():
            err = _check_qualified_name(str(k).lower())
            if err:
                yield ["metadata", "annotations", k], f"invalid annotation key: {err}", "error"
            total += len(str(k)) + (len(v) if isinstance(v, str) else 0)
        if total > 256 * 1024:
            yield ["metadata", "annotations"], "annotations may not exceed 262144 bytes in total", "error"


def _validate_one(obj: Any, file: str, doc: str, store: SchemaStore, core: _CoreValidator,
                  require_schema: bool) -> tuple[list[Problem], str]:
    """Validate one object. Returns (problems, status) with status valid|invalid|skipped."""
    problems: list[Problem] = []
    if not isinstance(obj, dict):
        problems.append(Problem(file, doc, "-", "-", "(root)",
                                f"document is not an object (got {_describe(obj)})"))
        return problems, "invalid"
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = md.get("name") or (md.get("generateName", "") + "*" if md.get("generateName") else "") or "-"
    kind_s = kind if isinstance(kind, str) and kind else "-"

    def add(path, message, severity="error"):
        problems.append(Problem(file, doc, kind_s, str(name), format_path(path) if isinstance(path, list) else path,
                                message, severity))

    if not isinstance(api_version, str) or not api_version:
        add(["apiVersion"], "required field is missing")
    if not isinstance(kind, str) or not kind:
        add(["kind"], "required field is missing")
    if problems:
        return problems, "invalid"

    group, version = _split_api_version(api_version)
    validator, info = store.lookup(group, version, kind)
    status = "valid"
    if validator is not None:
        for path, msg, sev in _flatten_errors(validator.iter_errors(obj)):
            add(path, msg, sev)
        for path, msg, sev in _metadata_problems(obj, "dns1123subdomain", info.get("namespaced")):
            add(path, msg, sev)
    elif isinstance(info, str):
        add(["apiVersion"], info)
    elif _is_builtin_group(group):
        rule = CORE_NAME_RULES.get(kind, "dns1123subdomain")
        namespaced = False if kind in CORE_CLUSTER_SCOPED else None
        known = True
        if core.available:
            try:
                for path, msg, sev in core.validate(obj):
                    add(path, msg, sev)
            except LookupError:
                known = False
                status = "skipped"
                add("(root)", f"no schema for {api_version} {kind} (kubernetes-validate, Kubernetes "
                              f"{core.version})", "error" if require_schema else "skipped")
        else:
            status = "skipped"
            add("(root)", "kubernetes-validate is not installed; core kind not validated "
                          f"({api_version} {kind})", "error" if require_schema else "warning")
        if known:  # metadata rules still apply to every API object
            for path, msg, sev in _metadata_problems(obj, rule, namespaced):
                add(path, msg, sev)
    else:
        status = "skipped"
        add("(root)", f"no schema for {api_version} {kind}", "error" if require_schema else "skipped")

    # "required field is null" already says it all: drop the null warning at the same path.
    null_required = {p.path for p in problems if p.message == "required field is null"}
    problems = [p for p in problems if not (p.severity == "warning" and p.path in null_required
                                            and p.message.startswith("null value"))]
    if any(p.severity == "error" for p in problems):
        status = "invalid"
    return problems, status


def _expand(obj: Any, doc: str) -> Iterator[tuple[str, Any]]:
    """Expand `kind: List` / `*List` objects into their items."""
    if (isinstance(obj, dict) and isinstance(obj.get("kind"), str) and obj["kind"].endswith("List")
            and isinstance(obj.get("items"), list)):
        for i, item in enumerate(obj["items"]):
            yield f"{doc}[{i}]", item
    else:
        yield doc, obj


def validate_objects(objects: list[dict], *, file: str = "<objects>", require_schema: bool = False,
                     schema_dir: str | None = None, extra_crds: Iterable[str] = (),
                     k8s_version: str | None = None) -> list["Problem"]:
    """Validate a list of Kubernetes objects (dicts). Returns every Problem found.

    Problems with severity 'error' make an object invalid; 'warning' and 'skipped' do not.
    """
    problems, _ = _validate_docs([(str(i), o) for i, o in enumerate(objects)], file,
                                 require_schema=require_schema, schema_dir=schema_dir,
                                 extra_crds=tuple(extra_crds), k8s_version=k8s_version)
    return problems


def _validate_docs(docs: list[tuple[str, Any]], file: str, *, require_schema: bool, schema_dir: str | None,
                   extra_crds: tuple, k8s_version: str | None, summary: Summary | None = None):
    store = _store(schema_dir, extra_crds)
    core = _core(k8s_version)
    summary = summary or Summary()
    problems: list[Problem] = []
    for doc, obj in docs:
        for sub_doc, item in _expand(obj, doc):
            found, status = _validate_one(item, file, sub_doc, store, core, require_schema)
            problems.extend(found)
            summary.objects += 1
            setattr(summary, status, getattr(summary, status) + 1)
    return problems, summary


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------

def _manifest_loader():
    """SafeLoader that keeps timestamps as strings and rejects duplicate keys (like sigs.k8s.io/yaml)."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in base.yaml_implicit_resolvers.items()
    }

    def construct_mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                hashable = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark)
            if hashable:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        mapping = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = json.dumps(key) if isinstance(key, bool) or key is None else str(key)
            mapping[key] = loader.construct_object(value_node, deep=deep)
        return mapping

    Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda l, n: l.construct_scalar(n))
    return Loader


_MANIFEST_LOADER = None


def load_documents(path: str) -> tuple[list[tuple[str, Any]], list[Problem]]:
    """Read one file. Returns ([(docIndex, object)], parse problems)."""
    global _MANIFEST_LOADER
    if _MANIFEST_LOADER is None:
        _MANIFEST_LOADER = _manifest_loader()
    docs: list[tuple[str, Any]] = []
    problems: list[Problem] = []
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as e:
        return [], [Problem(path, "0", "-", "-", "(file)", f"cannot read file: {e}")]
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            return [], [Problem(path, "0", "-", "-", "(file)", f"JSON parse error: {e}")]
        items = data if isinstance(data, list) else [data]
        return [(str(i), o) for i, o in enumerate(items)], []
    loader = yaml.load_all(text, Loader=_MANIFEST_LOADER)
    i = 0
    while True:
        try:
            obj = next(loader)
        except StopIteration:
            break
        except yaml.YAMLError as e:
            problems.append(Problem(path, str(i), "-", "-", "(document)", f"YAML parse error: {e}".replace("\n", " ")))
            break
        if obj is not None:
            docs.append((str(i), obj))
        i += 1
    return docs, problems


def _iter_files(paths: Iterable[str]) -> Iterator[str]:
    for p in paths:
        if os.path.isdir(p):
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fn in sorted(filenames):
                    if fn.endswith((".yaml", ".yml", ".json")):
                        yield os.path.join(dirpath, fn)
        else:
            yield p


def validate_paths(paths: Iterable[str], *, require_schema: bool = False, schema_dir: str | None = None,
                   extra_crds: Iterable[str] = (), k8s_version: str | None = None):
    """Validate files/directories. Returns (problems, Summary)."""
    summary = Summary()
    problems: list[Problem] = []
    for path in _iter_files(paths):
        if not os.path.exists(path):
            problems.append(Problem(path, "0", "-", "-", "(file)", "no such file or directory"))
            summary.objects += 1
            summary.invalid += 1
            continue
        docs, parse_problems = load_documents(path)
        if parse_problems:
            problems.extend(parse_problems)
            summary.objects += len(parse_problems)
            summary.invalid += len(parse_problems)
        found, _ = _validate_docs(docs, path, require_schema=require_schema, schema_dir=schema_dir,
                                  extra_crds=tuple(extra_crds), k8s_version=k8s_version, summary=summary)
        problems.extend(found)
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    ap.add_argument("--json", action="store_true", help="print a JSON report instead of lines")
    ap.add_argument("--require-schema", action="store_true", help="objects without a schema are errors")
    ap.add_argument("--schemas", default=None, help=f"schema folder (default: {DEFAULT_SCHEMA_DIR})")
    ap.add_argument("--extra-crds", action="append", default=[], metavar="PATH",
                    help="extra CRD file or folder (takes precedence); repeatable")
    ap.add_argument("--k8s-version", default=None, help="Kubernetes version for core kinds (kubernetes-validate)")
    ap.add_argument("--quiet", action="store_true", help="print only errors and the summary")
    args = ap.parse_args(argv)
    schema_dir = args.schemas or DEFAULT_SCHEMA_DIR
    if not os.path.isdir(schema_dir):
        print(f"schema folder not found: {schema_dir}", file=sys.stderr)
        return 2
    problems, summary = validate_paths(args.paths, require_schema=args.require_schema, schema_dir=schema_dir,
                                       extra_crds=args.extra_crds, k8s_version=args.k8s_version)
    if args.json:
        print(json.dumps({"problems": [p.to_dict() for p in problems], "summary": asdict(summary)}, indent=2))
    else:
        for p in problems:
            if args.quiet and p.severity != "error":
                continue
            print(p)
        print(summary.line())
    return 1 if summary.invalid else 0


if __name__ == "__main__":
    sys.exit(main())
