"""gosem.py - small re-implementations of Go-library semantics (written for sensor_sim.py, which
argo-events-check replaced; today only workflow_lint.py's command line imports its sjson `Set`).

Stand-in (tests/checks): an offline check the tests use until it is replaced by the upstream
binary it imitates; see tests/checks/__init__.py and docs/upstream-data.md.

Everything here was written from reading the upstream sources (no code copied) and
cross-checked against a local Go 1.19 toolchain for the stdlib parts:

  * Go number formatting (strconv / fmt %v) and encoding/json output (compact, HTML-escaped)
  * Go RE2 regexp -> Python `re` translation (raises GoRegexError where Go's regexp.Compile fails)
  * tidwall/gjson v1.19.0 path subset (gjson.go, SYNTAX.md)
  * tidwall/sjson v1.2.5 simple-path `Set` semantics (sjson.go)

Upstream commits read: tidwall/gjson v1.19.0 (7d8b3821), tidwall/sjson v1.2.5 (3a21ce7b), Go 1.26 stdlib.
"""
from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any


class Unsupported(Exception):
    """A feature that the simulator deliberately does not implement (instead of guessing)."""


class GoRegexError(Exception):
    """Go's regexp.Compile would fail on this pattern."""


# ---------------------------------------------------------------------------
# JSON values with Go-faithful raw text
# ---------------------------------------------------------------------------

class JFloat(float):
    """A JSON number that was written with a fraction/exponent; keeps its raw text."""

    raw: str

    def __new__(cls, raw: str):
        obj = float.__new__(cls, raw)
        obj.raw = raw
        return obj


def load_json(text: str) -> Any:
    """json.loads keeping the raw text of non-integer numbers (like a Go json.RawMessage would)."""
    return json.loads(text, parse_float=JFloat)


def to_go_float64(value: Any) -> Any:
    """What json.Unmarshal into interface{} does: every number becomes a float64; objects keep keys."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: to_go_float64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_go_float64(v) for v in value]
    return value


def sort_keys_deep(value: Any) -> Any:
    """Go marshals map[string]interface{} with sorted keys (byte order == code point order)."""
    if isinstance(value, dict):
        return {k: sort_keys_deep(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys_deep(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """Strip JFloat markers; integral floats that came from integers stay floats (as in Go)."""
    if isinstance(value, JFloat):
        return float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# Go number formatting
# ---------------------------------------------------------------------------

def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |f| (f finite, non-zero) and decimal-point position."""
    d = Decimal(repr(abs(f)))
    _sign, digits, exp = d.as_tuple()
    ds = list(digits)
    while len(ds) > 1 and ds[-1] == 0:
        ds.pop()
        exp += 1
    while len(ds) > 1 and ds[0] == 0:
        ds.pop(0)
    s = "".join(str(x) for x in ds)
    return s, len(s) + exp


def _fmt_e(s: str, dp: int, prec: int, neg: bool) -> str:
    out = "-" if neg else ""
    out += s[0] if s else "0"
    if prec > 0:
        frac = s[1:1 + prec]
        out += "." + frac + "0" * (prec - len(frac))
    exp = dp - 1 if s and s != "0" else 0
    sign = "+" if exp >= 0 else "-"
    exp = abs(exp)
    return out + "e" + sign + (("0" + str(exp)) if exp < 10 else str(exp))


def _fmt_f(s: str, dp: int, prec: int, neg: bool) -> str:
    out = "-" if neg else ""
    if dp > 0:
        out += s[:dp] + "0" * max(0, dp - len(s))
    else:
        out += "0"
    if prec > 0:
        out += "."
        for i in range(prec):
            j = dp + i
            out += s[j] if 0 <= j < len(s) else "0"
    return out


def go_format_float(f: float, fmt: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, fmt, prec, 64) for fmt in 'e','f','g' (prec -1 = shortest)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = math.copysign(1.0, f) < 0
    if prec >= 0:
        if fmt == "f":
            r = format(abs(f), f".{prec}f")
        elif fmt == "e":
            r = format(abs(f), f".{prec}e")
        else:  # 'g' with explicit precision
            r = format(abs(f), f".{max(prec, 1)}g")
        return ("-" if neg else "") + r
    if f == 0:
        s, dp = "0", 1
    else:
        s, dp = _shortest_digits(f)
    if fmt == "e":
        return _fmt_e(s, dp, len(s) - 1, neg)
    if fmt == "f":
        return _fmt_f(s, dp, max(len(s) - dp, 0), neg)
    # 'g' shortest: %e if exp < -4 || exp >= 6 (eprec is forced to 6 for shortest)
    exp = dp - 1
    if f != 0 and (exp < -4 or exp >= 6):
        return _fmt_e(s, dp, len(s) - 1, neg)
    return _fmt_f(s, dp, max(len(s) - dp, 0), neg)


def go_json_float(f: float) -> str:
    """encoding/json float64 encoding."""
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {f}")
    a = abs(f)
    fmt = "f"
    if a != 0 and (a < 1e-6 or a >= 1e21):
        fmt = "e"
    s = go_format_float(f, fmt, -1)
    if fmt == "e":
        n = len(s)
        if n >= 4 and s[n - 4] == "e" and s[n - 3] == "-" and s[n - 2] == "0":
            s = s[:n - 2] + s[n - 1]
    return s


def go_json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(ch, "\\u%04x" % o))
        elif ch in "<>&":
            out.append("\\u%04x" % o)
        elif o in (0x2028, 0x2029):
            out.append("\\u%04x" % o)
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json_dumps(value: Any, sort_keys: bool = False) -> str:
    """Compact JSON as Go's encoding/json writes it (HTML escaping on, Go float formatting)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, JFloat):
        return value.raw
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_json_float(value)
    if isinstance(value, str):
        return go_json_string(value)
    if isinstance(value, dict):
        keys = sorted(value) if sort_keys else list(value)
        return "{" + ",".join(go_json_string(str(k)) + ":" + go_json_dumps(value[k], sort_keys) for k in keys) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json_dumps(v, sort_keys) for v in value) + "]"
    raise TypeError(f"cannot JSON-encode {type(value).__name__}")


def number_raw(value: Any) -> str:
    if isinstance(value, JFloat):
        return value.raw
    if isinstance(value, int):
        return str(value)
    return go_json_float(value)


def go_parse_float(s: str) -> float:
    """strconv.ParseFloat(s, 64) (decimal and special forms; errors like Go on spaces/underscores)."""
    if s != s.strip() or s == "" or "_" in s:
        raise ValueError(f'strconv.ParseFloat: parsing "{s}": invalid syntax')
    low = s.lower().lstrip("+-")
    if low.startswith("0x"):
        try:
            return float.fromhex(s)
        except ValueError:
            raise ValueError(f'strconv.ParseFloat: parsing "{s}": invalid syntax') from None
    if low in ("inf", "infinity", "nan"):
        return float(s)
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise ValueError(f'strconv.ParseFloat: parsing "{s}": invalid syntax')
    return float(s)


_PARSE_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
               "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def go_parse_bool(s: str) -> bool:
    """strconv.ParseBool."""
    if s in _PARSE_BOOL:
        return _PARSE_BOOL[s]
    raise ValueError(f'strconv.ParseBool: parsing "{s}": invalid syntax')


# ---------------------------------------------------------------------------
# Go regexp (RE2 syntax) -> Python re
# ---------------------------------------------------------------------------

_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_regex_cache: dict[str, re.Pattern] = {}


def go_regexp(pattern: str) -> re.Pattern:
    """Compile a Go regexp pattern as an equivalent Python pattern (search() == Go's Match)."""
    if pattern in _regex_cache:
        return _regex_cache[pattern]
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = False
    multiline = False
    # stack of open groups; each entry counts extra ')' to emit when the group closes
    stack: list[int] = [0]

    def err(msg: str) -> GoRegexError:
        return GoRegexError(f"error parsing regexp: {msg}: `{pattern}`")

    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise err("trailing backslash at end of expression")
            d = pattern[i + 1]
            if d == "z" and not in_class:
                out.append(r"\Z")
            elif d in "QEC":
                raise Unsupported(f"Go regexp escape \\{d} is not simulated")
            elif d in "pP":
                raise Unsupported("Go regexp Unicode classes (\\p, \\P) are not simulated")
            elif d.isdigit():
                if d == "0":
                    out.append("\\0")
                else:
                    raise err(f"invalid escape sequence: `\\{d}`")
            elif d == "x":
                if i + 2 < n and pattern[i + 2] == "{":
                    j = pattern.find("}", i + 3)
                    if j < 0:
                        raise err("invalid escape sequence")
                    cp = int(pattern[i + 3:j], 16)
                    out.append("\\U%08x" % cp)
                    i = j + 1
                    continue
                out.append("\\x")
            elif d in "AbBdDsSwWfnrtva":
                out.append("\\" + d)
            elif d.isalnum():
                raise err(f"invalid escape sequence: `\\{d}`")
            else:
                out.append("\\" + d)
            i += 2
            class_start = False
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                j = pattern.find(":]", i + 2)
                if j > 0:
                    name = pattern[i + 2:j]
                    if name.startswith("^"):
                        raise Unsupported("negated POSIX classes are not simulated")
                    if name not in _POSIX:
                        raise err("invalid character class range")
                    out.append(_POSIX[name])
                    i = j + 2
                    class_start = False
                    continue
            if c == "]" and not class_start:
                in_class = False
                out.append("]")
            elif c == "[":
                out.append("\\[")
            else:
                out.append(c)
            class_start = False
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append("[")
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            class_start = True
            continue
        if c == "(":
            if pattern.startswith("(?", i):
                rest = pattern[i + 2:]
                if rest.startswith("P<"):
                    out.append("(?P<")
                    i += 4
                    stack.append(0)
                    continue
                if rest.startswith("<") and not rest.startswith("<=") and not rest.startswith("<!"):
                    out.append("(?P<")  # Go >= 1.22 accepts (?<name>...)
                    i += 3
                    stack.append(0)
                    continue
                if rest[:1] in ("=", "!") or rest.startswith("<=") or rest.startswith("<!") or rest[:1] in (">", "#"):
                    raise err("invalid or unsupported Perl syntax")
                m = re.match(r"([imsU]*)(?:-([imsU]*))?([:)])", rest)
                if not m:
                    raise err("invalid or unsupported Perl syntax")
                on, off, end = m.group(1), m.group(2) or "", m.group(3)
                if "U" in on or "U" in off:
                    raise Unsupported("Go regexp flag U (ungreedy) is not simulated")
                if "m" in on:
                    multiline = True
                flags = on + ("-" + off if off else "")
                if end == ":":
                    out.append(f"(?{flags}:" if flags else "(?:")
                    stack.append(0)
                    i += 2 + m.end()
                    continue
                # bare flag group: applies to the rest of the enclosing group
                if flags:
                    if not out and len(stack) == 1 and "-" not in flags:
                        out.append(f"(?{flags})")
                    else:
                        out.append(f"(?{flags}:")
                        stack[-1] += 1
                i += 2 + m.end()
                continue
            out.append("(")
            stack.append(0)
            i += 1
            continue
        if c == ")":
            if len(stack) == 1:
                raise err("unexpected )")
            extra = stack.pop()
            out.append(")" * extra + ")")
            i += 1
            continue
        if c == "|" and stack[-1] > 0:
            raise Unsupported("Go regexp flag group (?flags) followed by '|' in the same group is not simulated")
        if c == "$":
            out.append("$" if multiline else r"\Z")
            i += 1
            continue
        if c == "{" and pattern.startswith("{,", i):
            out.append("\\{")
            i += 1
            continue
        out.append(c)
        i += 1
    if in_class:
        raise err("missing closing ]")
    if len(stack) > 1:
        raise err("missing closing )")
    out.append(")" * stack[0])
    try:
        compiled = re.compile("".join(out), re.ASCII)
    except re.error as e:  # pragma: no cover - depends on pattern
        raise err(str(e)) from None
    _regex_cache[pattern] = compiled
    return compiled


def go_regexp_replacement(repl: str) -> str:
    """Go's Expand template ($1, ${1}, ${name}, $$) -> Python re.sub template."""
    out = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c == "\\":
            out.append("\\\\")
            i += 1
            continue
        if c != "$":
            out.append(c)
            i += 1
            continue
        if repl.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        m = re.match(r"\$(?:\{(\w+)\}|(\w+))", repl[i:])
        if not m:
            out.append("$")
            i += 1
            continue
        name = m.group(1) or m.group(2)
        out.append(f"\\g<{name}>")
        i += m.end()
    return "".join(out)


# ---------------------------------------------------------------------------
# gjson (v1.19.0) subset on Python values
# ---------------------------------------------------------------------------

NULL, FALSE, NUMBER, STRING, TRUE, JSONT = "Null", "False", "Number", "String", "True", "JSON"


class GResult:
    """Mirror of gjson.Result (type, raw, str, num) with Go's String/Bool/Float/Value/Exists."""

    __slots__ = ("type", "raw", "str", "num")

    def __init__(self, type_: str = NULL, raw: str = "", str_: str = "", num: float = 0.0):
        self.type, self.raw, self.str, self.num = type_, raw, str_, num

    def exists(self) -> bool:
        return self.type != NULL or len(self.raw) != 0

    def string(self) -> str:
        t = self.type
        if t == FALSE:
            return "false"
        if t == TRUE:
            return "true"
        if t == STRING:
            return self.str
        if t == JSONT:
            return self.raw
        if t == NUMBER:
            raw = self.raw
            if raw:
                body = raw[1:] if raw[0] == "-" else raw
                if body and all("0" <= ch <= "9" for ch in body):
                    return raw
            return go_format_float(self.num, "f", -1)
        return ""

    def bool(self) -> bool:
        if self.type == TRUE:
            return True
        if self.type == STRING:
            try:
                return go_parse_bool(self.str.lower())
            except ValueError:
                return False
        if self.type == NUMBER:
            return self.num != 0
        return False

    def float(self) -> float:
        if self.type == TRUE:
            return 1.0
        if self.type == STRING:
            try:
                return go_parse_float(self.str)
            except ValueError:
                return 0.0
        if self.type == NUMBER:
            return self.num
        return 0.0

    def value(self) -> Any:
        """gjson Result.Value(): numbers -> float64 (Python float), objects -> dict, arrays -> list."""
        if self.type == STRING:
            return self.str
        if self.type == NUMBER:
            return self.num
        if self.type == TRUE:
            return True
        if self.type == FALSE:
            return False
        if self.type == JSONT:
            return json.loads(self.raw, parse_int=float, parse_float=float)
        return None

    def type_name(self) -> str:
        return self.type

    def __repr__(self) -> str:  # pragma: no cover
        return f"GResult({self.type}, {self.raw!r})"


def result_of(value: Any, sort_keys: bool = False) -> GResult:
    if value is None:
        return GResult(NULL, "null")
    if value is True:
        return GResult(TRUE, "true")
    if value is False:
        return GResult(FALSE, "false")
    if isinstance(value, str):
        return GResult(STRING, go_json_string(value), value)
    if isinstance(value, (int, float)):
        return GResult(NUMBER, number_raw(value), "", float(value))
    if isinstance(value, (dict, list)):
        return GResult(JSONT, go_json_dumps(value, sort_keys))
    raise TypeError(type(value).__name__)


def parse_result_raw(raw: str) -> GResult:
    """gjson.Parse of a raw JSON value."""
    return result_of(load_json(raw))


_NOT_FOUND = GResult()


def _glob_match(s: str, pattern: str) -> bool:
    rx = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(rx, s, re.S) is not None


def _check_path_supported(path: str) -> None:
    if not path:
        return
    if path[0] in "@!" and len(path) > 1:
        raise Unsupported(f"gjson modifiers/literals ('{path[0]}...') are not simulated: {path!r}")
    if path.startswith(".."):
        raise Unsupported(f"gjson JSON-lines paths are not simulated: {path!r}")


def _split_object_part(path: str) -> tuple[str, bool, str | None]:
    """Returns (part with escapes removed, wild, rest-after-dot or None)."""
    part = []
    wild = False
    i = 0
    while i < len(path):
        c = path[i]
        if c == "|":
            raise Unsupported(f"gjson pipe '|' is not simulated: {path!r}")
        if c == ".":
            rest = path[i + 1:]
            if rest[:1] in ("@", "[", "{"):
                raise Unsupported(f"gjson modifiers/multipaths after '.' are not simulated: {path!r}")
            return "".join(part), wild, rest
        if c in "*?":
            wild = True
        if c == "\\":
            i += 1
            if i < len(path):
                part.append(path[i])
            i += 1
            continue
        part.append(c)
        i += 1
    return "".join(part), wild, None


def _parse_query(q: str) -> tuple[str, str, str, int] | None:
    """Parse '#(...)' at start of q. Returns (qpath, op, value, end_index_after_paren)."""
    if len(q) < 2 or q[0] != "#" or q[1] not in "([":
        return None
    i, j, depth = 2, 0, 1
    vesc = False
    while i < len(q):
        ch = q[i]
        if depth == 1 and j == 0 and ch in "!=<>%":
            j = i
            i += 1
            continue
        if ch == "\\":
            i += 2
            continue
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                break
        elif ch == '"':
            i += 1
            while i < len(q):
                if q[i] == "\\":
                    vesc = True
                    i += 2
                    continue
                if q[i] == '"':
                    break
                i += 1
        i += 1
    if depth > 0:
        return None
    if j > 0:
        qpath = q[2:j].strip(" \t\r\n")
        value = q[j:i].strip(" \t\r\n")
        if len(value) == 1:
            opsz = 1
        elif value[:2] in ("!=", "!%", "<=", ">="):
            opsz = 2
        elif value[:2] == "==":
            value = value[1:]
            opsz = 1
        else:
            opsz = 1
        op = value[:opsz]
        value = value[opsz:].strip(" \t\r\n")
    else:
        qpath, op, value = q[2:i].strip(" \t\r\n"), "", ""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = json.loads(value) if vesc else value[1:-1]
    return qpath, op, value, i + 1


def _query_matches(op: str, rpv: str, res: GResult) -> bool:
    if rpv.startswith("~"):
        raise Unsupported("gjson '~' query values are not simulated")
    if not res.exists():
        return False
    if op == "":
        return True
    if res.type == STRING:
        s = res.str
        return {"=": s == rpv, "!=": s != rpv, "<": s < rpv, "<=": s <= rpv, ">": s > rpv, ">=": s >= rpv,
                "%": _glob_match(s, rpv), "!%": not _glob_match(s, rpv)}.get(op, False)
    if res.type == NUMBER:
        try:
            v = go_parse_float(rpv)
        except ValueError:
            v = 0.0
        x = res.num
        return {"=": x == v, "!=": x != v, "<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}.get(op, False)
    if res.type == TRUE:
        return {"=": rpv == "true", "!=": rpv != "true", ">": rpv == "false", ">=": True}.get(op, False)
    if res.type == FALSE:
        return {"=": rpv == "false", "!=": rpv != "false", "<": rpv == "true", "<=": True}.get(op, False)
    return False


def _get_in_array(arr: list, path: str, sk: bool) -> GResult:
    if path.startswith("#"):
        if path == "#":
            return GResult(NUMBER, str(len(arr)), "", float(len(arr)))
        if path.startswith("#."):
            key = path[2:]
            raws = []
            for el in arr:
                if isinstance(el, (dict, list)):
                    r = gjson_get(el, key, sk)
                    if r.exists():
                        raws.append(r.raw if r.raw else r.string())
            return GResult(JSONT, "[" + ",".join(raws) + "]")
        q = _parse_query(path)
        if q is None:
            return _NOT_FOUND
        qpath, op, value, end = q
        rest_all = path[end:]
        query_all = rest_all.startswith("#")
        if query_all:
            rest_all = rest_all[1:]
        rest = None
        if rest_all:
            if rest_all[0] == "|":
                raise Unsupported(f"gjson pipe '|' is not simulated: {path!r}")
            if rest_all[0] != ".":
                return _NOT_FOUND
            rest = rest_all[1:]
        raws = []
        for el in arr:
            if isinstance(el, (dict, list)):
                res = gjson_get(el, qpath, sk)
            else:
                if qpath != "":
                    continue
                res = result_of(el, sk)
            if _query_matches(op, value, res):
                out = gjson_get(el, rest, sk) if rest is not None else result_of(el, sk)
                if query_all:
                    raw = out.raw if out.raw else out.string()
                    if raw:
                        raws.append(raw)
                else:
                    return out
        if query_all:
            return GResult(JSONT, "[" + ",".join(raws) + "]")
        return _NOT_FOUND
    # index component
    i = 0
    while i < len(path) and path[i] not in ".|":
        i += 1
    if i < len(path) and path[i] == "|":
        raise Unsupported(f"gjson pipe '|' is not simulated: {path!r}")
    part = path[:i]
    rest = path[i + 1:] if i < len(path) else None
    if rest is not None and rest[:1] in ("@", "[", "{"):
        raise Unsupported(f"gjson modifiers/multipaths after '.' are not simulated: {path!r}")
    if not part or not part.isdigit():
        return _NOT_FOUND
    idx = int(part)
    if idx >= len(arr):
        return _NOT_FOUND
    el = arr[idx]
    if rest is None:
        return result_of(el, sk)
    if isinstance(el, (dict, list)):
        return gjson_get(el, rest, sk)
    return _NOT_FOUND


def _split_multipath(path: str) -> tuple[list[tuple[str | None, str]], str]:
    depth, i, start, colon = 1, 1, 1, 0
    sels: list[tuple[str | None, str]] = []
    while i < len(path):
        c = path[i]
        if c == "\\":
            i += 2
            continue
        if c == ":" and colon == 0 and depth == 1:
            colon = i
        elif c == "," and depth == 1:
            sels.append((path[start:colon], path[colon + 1:i]) if colon else (None, path[start:i]))
            start, colon = i + 1, 0
        elif c == '"':
            i += 1
            while i < len(path) and path[i] != '"':
                i += 2 if path[i] == "\\" else 1
        elif c in "[({":
            depth += 1
        elif c in "])}":
            depth -= 1
            if depth == 0:
                sels.append((path[start:colon], path[colon + 1:i]) if colon else (None, path[start:i]))
                return sels, path[i + 1:]
        i += 1
    raise Unsupported(f"malformed gjson multipath: {path!r}")


def gjson_get(value: Any, path: str | None, sort_keys: bool = False) -> GResult:
    """gjson.Get(json-of(value), path) for the supported path subset."""
    if path is None:
        return result_of(value, sort_keys)
    if "," in path and not path.startswith(("[", "{")):
        # a bare comma is just a key character for gjson; the argo-events docs suggest otherwise,
        # so refuse rather than silently disagree with one of them.
        raise Unsupported(f"comma in gjson path outside a [..]/{{..}} multipath: {path!r}")
    _check_path_supported(path)
    if path and path[0] in "[{" and len(path) > 1:
        kind = path[0]
        sels, rest = _split_multipath(path)
        if rest and rest[0] not in ".|":
            raise Unsupported(f"malformed gjson multipath: {path!r}")
        parts = []
        for name, sub in sels:
            r = gjson_get(value, sub, sort_keys)
            if not r.exists():
                continue
            raw = r.raw if r.raw else (r.string() or "null")
            if kind == "{":
                if name:
                    key = name if name.startswith('"') else go_json_string(name)
                else:
                    last = re.split(r"(?<!\\)[.|]", sub)[-1]
                    key = go_json_string(last) if not re.search(r"[\[\]{}()#|!]|[\x00-\x1f]", last) else '"_"'
                parts.append(key + ":" + raw)
            else:
                parts.append(raw)
        res = GResult(JSONT, kind + ",".join(parts) + ("}" if kind == "{" else "]"))
        if rest:
            if rest[0] == "|":
                raise Unsupported(f"gjson pipe '|' is not simulated: {path!r}")
            return gjson_get(load_json(res.raw), rest[1:], sort_keys)
        return res
    if isinstance(value, list):
        return _get_in_array(value, path, sort_keys)
    if not isinstance(value, dict):
        return _NOT_FOUND
    part, wild, rest = _split_object_part(path)
    for key, v in value.items():
        ok = _glob_match(key, part) if wild else key == part
        if not ok:
            continue
        if rest is None:
            return result_of(v, sort_keys)
        if isinstance(v, (dict, list)):
            r = gjson_get(v, rest, sort_keys)
            if r.exists():
                return r
    return _NOT_FOUND


# ---------------------------------------------------------------------------
# sjson (v1.2.5) simple-path Set on Python values
# ---------------------------------------------------------------------------

class SjsonError(Exception):
    pass


def _sjson_components(path: str) -> list[tuple[str, bool]]:
    """Split an sjson path into (part, force) components; complex paths are unsupported."""
    if path == "":
        raise SjsonError("path cannot be empty")
    comps: list[tuple[str, bool]] = []
    rest: str | None = path
    while rest is not None:
        force = False
        p = rest
        if p.startswith(":"):
            force = True
            p = p[1:]
        part = []
        i = 0
        nxt = None
        while i < len(p):
            c = p[i]
            if c == ".":
                nxt = p[i + 1:]
                break
            if c in "|#@*?":
                raise Unsupported(f"sjson complex paths ('{c}') are not simulated: {path!r}")
            if c == "\\":
                i += 1
                if i < len(p):
                    part.append(p[i])
                i += 1
                continue
            part.append(c)
            i += 1
        comps.append(("".join(part), force))
        rest = nxt
    return comps


def _atoui(part: str, force: bool) -> tuple[int, bool]:
    if force:
        return 0, False
    if not all("0" <= c <= "9" for c in part):
        return 0, False
    return (int(part) if part else 0), True


def _sjson_build(comps: list[tuple[str, bool]], value: Any) -> Any:
    """appendBuild for the components *after* the current one."""
    if not comps:
        return value
    part, force = comps[0]
    n, numeric = _atoui(part, force)
    if numeric or (not force and part == "-1"):
        return [None] * n + [_sjson_build(comps[1:], value)]
    return {part: _sjson_build(comps[1:], value)}


def _sjson_set_in(cur: Any, comps: list[tuple[str, bool]], value: Any) -> Any:
    part, force = comps[0]
    more = comps[1:]
    # does the component exist (gjson.Get on the current value)?
    if isinstance(cur, dict) and part in cur:
        if more:
            cur[part] = _sjson_set_in(cur[part], more, value)
        else:
            cur[part] = value
        return cur
    n, numeric = _atoui(part, force)
    if isinstance(cur, list) and numeric and part != "" and n < len(cur):
        if more:
            cur[n] = _sjson_set_in(cur[n], more, value)
        else:
            cur[n] = value
        return cur
    # not found: scalars are replaced by a fresh container
    if not isinstance(cur, (dict, list)):
        cur = [] if numeric else {}
    if isinstance(cur, dict):
        cur[part] = _sjson_build(more, value)
        return cur
    if not numeric:
        if not force and part == "-1":
            cur.append(_sjson_build(more, value))
            return cur
        raise SjsonError(f"cannot set array element for non-numeric key '{part}'")
    cur.extend([None] * (n - len(cur)))
    cur.append(_sjson_build(more, value))
    return cur


def sjson_set(doc: Any, path: str, value: Any) -> Any:
    """sjson.Set(doc, path, value) where value is already a Python JSON value. Mutates & returns doc."""
    comps = _sjson_components(path)
    return _sjson_set_in(doc, comps, value)
