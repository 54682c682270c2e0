"""gotemplate.py - a practical subset of Go text/template + Masterminds/sprig v3.3.0, fmt.Sprintf,

Stand-in (tests/checks): an offline check the tests use until it is replaced by the upstream
binary it imitates; see tests/checks/__init__.py and docs/upstream-data.md.

and Knetic/govaluate, re-implemented from reading the upstream sources (no code copied) and
checked against a local Go toolchain for the text/template / fmt behaviour.

Supported template syntax: text, {{ }} actions with trim markers ({{- -}}), comments,
field chains (.Input.body.a), '.', '$', string/raw-string/number/bool literals, function calls,
pipelines with '|', parenthesised pipelines (+ field chains on them), if / else if / else / end,
with / else / end. Not supported (raise Unsupported): range, define/template/block, variables
($x := ...), break/continue.

Go value model used here:  str=string, bool, int=Go int, GoInt64=int64, float=float64,
None=nil interface, MISSING=invalid reflect.Value (missing map key), dict=map[string]interface{},
list=[]interface{}.
"""
from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Callable

from .gosem import GoRegexError, Unsupported, go_format_float, go_json_dumps, go_regexp, go_regexp_replacement


class TemplateError(Exception):
    """Parse or execution error of a Go template (upstream: template.Parse / Execute error)."""


class _Missing:
    def __repr__(self) -> str:
        return "<MISSING>"


MISSING = _Missing()


class GoInt64(int):
    pass


# ---------------------------------------------------------------------------
# fmt
# ---------------------------------------------------------------------------

def go_type_name(v: Any) -> str:
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, GoInt64):
        return "int64"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    return type(v).__name__


def fmt_v(v: Any) -> str:
    """fmt.Sprint / %v of one value."""
    if v is None or v is MISSING:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return go_format_float(v, "g", -1)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{fmt_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(fmt_v(x) for x in v) + "]"
    return str(v)


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif not ch.isprintable():
            out.append("\\u%04x" % o if o <= 0xFFFF else "\\U%08x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, args: list[Any]) -> str:
    out: list[str] = []
    ai = 0
    pos = 0
    for m in _VERB_RE.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if width == "*" or prec == "*":
            raise Unsupported("printf '*' width/precision is not simulated")
        if ai >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[ai]
        ai += 1
        p = int(prec) if prec is not None and prec != "" else (0 if prec == "" else None)
        s = _fmt_one(verb, a, flags, p)
        if width:
            w = int(width)
            if len(s) < w:
                if "-" in flags:
                    s = s + " " * (w - len(s))
                elif "0" in flags and verb in "dfegxX" and not isinstance(a, str):
                    sign = s[0] if s[:1] in "+-" else ""
                    body = s[len(sign):]
                    s = sign + "0" * (w - len(s)) + body
                else:
                    s = " " * (w - len(s)) + s
        out.append(s)
    out.append(fmt[pos:])
    if ai < len(args):
        extra = ", ".join(f"{go_type_name(a)}={fmt_v(a)}" if a is not None else "<nil>" for a in args[ai:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad(verb: str, a: Any) -> str:
    if a is None or a is MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(a)}={fmt_v(a)})"


def _fmt_one(verb: str, a: Any, flags: str, prec: int | None) -> str:
    if verb == "v":
        return fmt_v(a)
    if verb == "T":
        return go_type_name(a)
    if verb == "s":
        if isinstance(a, str):
            return a if prec is None else a[:prec]
        if isinstance(a, (dict, list)):
            return fmt_v(a)
        return _bad(verb, a)
    if verb == "q":
        if isinstance(a, str):
            return _go_quote(a)
        return _bad(verb, a)
    if verb == "d":
        if isinstance(a, int) and not isinstance(a, bool):
            return ("+" if "+" in flags and a >= 0 else "") + str(int(a))
        return _bad(verb, a)
    if verb == "t":
        if isinstance(a, bool):
            return "true" if a else "false"
        return _bad(verb, a)
    if verb in "xX":
        if isinstance(a, int) and not isinstance(a, bool):
            s = format(int(a), "x")
        elif isinstance(a, str):
            s = a.encode().hex()
        else:
            return _bad(verb, a)
        return s.upper() if verb == "X" else s
    if verb in "feEgG":
        if isinstance(a, float) or (isinstance(a, int) and False):
            base = verb.lower()
            if base == "g":
                s = go_format_float(a, "g", -1 if prec is None else prec)
            else:
                s = go_format_float(a, base, 6 if prec is None else prec)
            if "+" in flags and not s.startswith("-"):
                s = "+" + s
            return s.upper() if verb in "EG" else s
        return _bad(verb, a)
    raise Unsupported(f"printf verb %{verb} is not simulated")


def go_sprint(args: list[Any]) -> str:
    out = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(fmt_v(a))
    return "".join(out)


# ---------------------------------------------------------------------------
# Lexer / parser
# ---------------------------------------------------------------------------

_KEYWORDS = {"if", "else", "end", "with", "range", "define", "template", "block", "break", "continue"}


class _Tok:
    __slots__ = ("kind", "val", "space")

    def __init__(self, kind: str, val: Any, space: bool):
        self.kind, self.val, self.space = kind, val, space

    def __repr__(self) -> str:  # pragma: no cover
        return f"{self.kind}:{self.val!r}"


_GO_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def _go_unquote(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise TemplateError("unterminated escape")
        d = body[i]
        if d in _GO_ESC:
            out.append(_GO_ESC[d])
            i += 1
        elif d == "x":
            out.append(chr(int(body[i + 1:i + 3], 16)))
            i += 3
        elif d == "u":
            out.append(chr(int(body[i + 1:i + 5], 16)))
            i += 5
        elif d == "U":
            out.append(chr(int(body[i + 1:i + 9], 16)))
            i += 9
        elif d in "01234567":
            out.append(chr(int(body[i:i + 3], 8)))
            i += 3
        else:
            raise TemplateError(f"invalid escape \\{d}")
    return "".join(out)


_NUM_RE = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?)")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _lex_action(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    n = len(src)
    space = False
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            space = True
            i += 1
            continue
        if c == "|":
            toks.append(_Tok("pipe", "|", space))
            i += 1
        elif c == "(":
            toks.append(_Tok("lparen", "(", space))
            i += 1
        elif c == ")":
            toks.append(_Tok("rparen", ")", space))
            i += 1
        elif src.startswith(":=", i) or c == "=" or c == ",":
            raise Unsupported("template variables / range declarations are not simulated")
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise TemplateError("unterminated quoted string")
            toks.append(_Tok("string", _go_unquote(src[i + 1:j]), space))
            i = j + 1
        elif c == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise TemplateError("unterminated raw quoted string")
            toks.append(_Tok("string", src[i + 1:j], space))
            i = j + 1
        elif c == "'":
            j = i + 1
            while j < n and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            s = _go_unquote(src[i + 1:j])
            if len(s) != 1:
                raise TemplateError("malformed character constant")
            toks.append(_Tok("number", ("rune", ord(s)), space))
            i = j + 1
        elif c == "." and (i + 1 >= n or not (src[i + 1].isalpha() or src[i + 1] == "_")) and not (i + 1 < n and src[i + 1].isdigit()):
            toks.append(_Tok("dot", ".", space))
            i += 1
        elif c == "." and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] == "_"):
            fields = []
            while i < n and src[i] == "." and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] == "_"):
                m = _IDENT_RE.match(src, i + 1)
                fields.append(m.group(0))
                i = m.end()
            toks.append(_Tok("field", fields, space))
        elif c == "$":
            m = _IDENT_RE.match(src, i + 1)
            name = m.group(0) if m else ""
            if name:
                raise Unsupported("template variables are not simulated")
            i += 1
            fields = []
            while i < n and src[i] == "." and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] == "_"):
                m = _IDENT_RE.match(src, i + 1)
                fields.append(m.group(0))
                i = m.end()
            toks.append(_Tok("var", fields, space))
        elif c.isdigit() or (c in "+-." and i + 1 < n and (src[i + 1].isdigit() or src[i + 1] == ".")):
            m = _NUM_RE.match(src, i)
            if not m or m.end() == i:
                raise TemplateError(f"bad number syntax near {src[i:i + 10]!r}")
            toks.append(_Tok("number", ("lit", m.group(0)), space))
            i = m.end()
        elif c.isalpha() or c == "_":
            m = _IDENT_RE.match(src, i)
            w = m.group(0)
            if w in ("true", "false"):
                toks.append(_Tok("bool", w == "true", space))
            elif w == "nil":
                toks.append(_Tok("nil", None, space))
            elif w in _KEYWORDS:
                toks.append(_Tok("keyword", w, space))
            else:
                toks.append(_Tok("ident", w, space))
            i = m.end()
        else:
            raise TemplateError(f"unexpected {c!r} in command")
        space = False
    return toks


class _Num:
    """An untyped numeric constant from the template source (parse.NumberNode)."""

    def __init__(self, spec: tuple[str, Any]):
        kind, text = spec
        self.is_rune = kind == "rune"
        if self.is_rune:
            self.text = repr(chr(text))
            self.float_val = float(text)
            self.int_exact: int | None = text
            self.is_float_syntax = False
            return
        self.text = text
        t = text.replace("_", "")
        low = t.lower().lstrip("+-")
        is_hex_int = low.startswith("0x") and "p" not in low
        try:
            if low.startswith(("0x", "0b", "0o")) and "p" not in low:
                iv = int(t, 0)
                self.float_val = float(iv)
                self.int_exact = iv
            else:
                self.float_val = float(t)
                self.int_exact = int(self.float_val) if self.float_val == int(self.float_val) else None
        except (ValueError, OverflowError):
            raise TemplateError(f"bad number syntax: {text!r}") from None
        if self.int_exact is not None and re.fullmatch(r"[+-]?\d+", t):
            self.int_exact = int(t)
        self.is_float_syntax = (not is_hex_int) and any(ch in text for ch in ".eEpP")

    def ideal(self) -> Any:
        """idealConstant(): float64 if written with . e E p P (and not a hex int), else int."""
        if self.is_float_syntax or self.int_exact is None:
            return self.float_val
        return self.int_exact


# AST nodes: ('text', s) ('action', pipe) ('if', pipe, list, elselist) ('with', pipe, list, elselist)
# pipe: list of commands; command: list of operands; operand: ('field', [names]) ('dot',)
# ('var', [names]) ('str', s) ('num', _Num) ('bool', b) ('nil',) ('ident', name) ('paren', pipe, [names])

_ACTION_RE = re.compile(r"\{\{")


def _split_template(src: str) -> list[tuple[str, str]]:
    """Split into ('text', s) and ('action', inner) items, applying trim markers and dropping comments."""
    items: list[tuple[str, str]] = []
    i = 0
    n = len(src)
    while i < n:
        j = src.find("{{", i)
        if j < 0:
            items.append(("text", src[i:]))
            break
        text = src[i:j]
        k = j + 2
        ltrim = False
        if k + 1 < n and src[k] == "-" and src[k + 1] in " \t\r\n":
            ltrim = True
            k += 2
        if ltrim:
            text = text.rstrip(" \t\r\n")
        items.append(("text", text))
        m = k
        inner_start = k
        if src.startswith("/*", k):
            e = src.find("*/", k)
            if e < 0:
                raise TemplateError("unclosed comment")
            m = e + 2
            rtrim = False
            if m + 3 < n + 1 and src[m:m + 1] in (" ", "\t", "\r", "\n") and src.startswith("-}}", m + 1):
                rtrim = True
                m += 4
            elif src.startswith("}}", m):
                m += 2
            else:
                raise TemplateError("comment ends before closing delimiter")
            i = m
            if rtrim:
                while i < n and src[i] in " \t\r\n":
                    i += 1
            continue
        while m < n:
            ch = src[m]
            if ch in "\"'`":
                q = ch
                m += 1
                while m < n and src[m] != q:
                    if src[m] == "\\" and q != "`":
                        m += 1
                    m += 1
                m += 1
                continue
            if src.startswith("}}", m):
                break
            m += 1
        if m >= n:
            raise TemplateError("unclosed action")
        inner = src[inner_start:m]
        rtrim = False
        if len(inner) >= 2 and inner[-1] == "-" and inner[-2] in " \t\r\n":
            rtrim = True
            inner = inner[:-1]
        items.append(("action", inner))
        i = m + 2
        if rtrim:
            while i < n and src[i] in " \t\r\n":
                i += 1
    return items


class _Parser:
    def __init__(self, funcs: set[str]):
        self.funcs = funcs

    def parse(self, src: str) -> list:
        self.items = _split_template(src)
        self.pos = 0
        nodes, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop[0]}}}}}")
        return nodes

    def _list(self) -> tuple[list, tuple | None]:
        nodes: list = []
        while self.pos < len(self.items):
            kind, val = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                if val:
                    nodes.append(("text", val))
                continue
            toks = _lex_action(val)
            if not toks:
                raise TemplateError("missing value for command")
            t0 = toks[0]
            if t0.kind == "keyword":
                kw = t0.val
                if kw in ("end",):
                    return nodes, ("end", toks[1:])
                if kw == "else":
                    return nodes, ("else", toks[1:])
                if kw in ("if", "with"):
                    nodes.append(self._control(kw, toks[1:]))
                    continue
                raise Unsupported(f"template action {{{{{kw}}}}} is not simulated")
            nodes.append(("action", self._pipeline(toks)))
        return nodes, None

    def _control(self, kw: str, toks: list[_Tok]) -> tuple:
        pipe = self._pipeline(toks)
        body, stop = self._list()
        if stop is None:
            raise TemplateError(f"unexpected EOF in {kw}")
        else_body: list = []
        if stop[0] == "else":
            rest = stop[1]
            if rest:
                if rest[0].kind == "keyword" and rest[0].val in ("if", "with"):
                    else_body = [self._control(rest[0].val, rest[1:])]
                    return (kw, pipe, body, else_body)
                raise TemplateError("unexpected tokens after else")
            else_body, stop2 = self._list()
            if stop2 is None or stop2[0] != "end":
                raise TemplateError(f"expected end after else in {kw}")
        return (kw, pipe, body, else_body)

    def _pipeline(self, toks: list[_Tok]) -> list:
        self.toks = toks
        self.ti = 0
        pipe = self._pipe_until(None)
        if self.ti != len(self.toks):
            raise TemplateError("unexpected tokens in pipeline")
        return pipe

    def _pipe_until(self, closer: str | None) -> list:
        cmds: list = []
        cur: list = []
        while self.ti < len(self.toks):
            t = self.toks[self.ti]
            if t.kind == "rparen":
                if closer != "rparen":
                    raise TemplateError("unexpected right paren")
                break
            if t.kind == "pipe":
                if not cur:
                    raise TemplateError("missing command before |")
                cmds.append(cur)
                cur = []
                self.ti += 1
                continue
            cur.append(self._operand())
        if not cur:
            raise TemplateError("missing command")
        cmds.append(cur)
        return cmds

    def _operand(self) -> tuple:
        t = self.toks[self.ti]
        self.ti += 1
        if t.kind == "field":
            return ("field", t.val)
        if t.kind == "dot":
            return ("dot",)
        if t.kind == "var":
            return ("var", t.val)
        if t.kind == "string":
            return ("str", t.val)
        if t.kind == "number":
            return ("num", _Num(t.val))
        if t.kind == "bool":
            return ("bool", t.val)
        if t.kind == "nil":
            return ("nil",)
        if t.kind == "ident":
            if t.val not in self.funcs:
                if t.val in SPRIG_NAMES or t.val in _GO_UNSUPPORTED_BUILTINS:
                    raise Unsupported(f"template function {t.val!r} is not simulated")
                raise TemplateError(f'function "{t.val}" not defined')
            return ("ident", t.val)
        if t.kind == "lparen":
            pipe = self._pipe_until("rparen")
            if self.ti >= len(self.toks) or self.toks[self.ti].kind != "rparen":
                raise TemplateError("unclosed left paren")
            self.ti += 1
            fields: list[str] = []
            if self.ti < len(self.toks) and self.toks[self.ti].kind == "field" and not self.toks[self.ti].space:
                fields = self.toks[self.ti].val
                self.ti += 1
            return ("paren", pipe, fields)
        if t.kind == "keyword":
            raise TemplateError(f"unexpected keyword {t.val}")
        raise TemplateError(f"unexpected {t.kind}")


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------

def _truth(v: Any) -> bool:
    if v is MISSING or v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, dict)):
        return len(v) > 0
    return True


def _field(recv: Any, name: str, has_args: bool) -> Any:
    if recv is MISSING:
        return MISSING
    if recv is None:
        raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(recv, dict):
        if has_args:
            raise TemplateError(f"{name} is not a method but has arguments")
        return recv.get(name, MISSING)
    raise TemplateError(f"can't evaluate field {name} in type {go_type_name(recv) if not isinstance(recv, (str, float, bool, list)) else 'interface {}'}")


class _Exec:
    def __init__(self, funcs: dict[str, "Func"], root: Any):
        self.funcs = funcs
        self.root = root

    def run(self, nodes: list, dot: Any, out: list[str]) -> None:
        for node in nodes:
            k = node[0]
            if k == "text":
                out.append(node[1])
            elif k == "action":
                v = self.pipeline(node[1], dot)
                out.append("<no value>" if v is MISSING or v is None else fmt_v(v))
            elif k == "if":
                v = self.pipeline(node[1], dot)
                self.run(node[2] if _truth(v) else node[3], dot, out)
            elif k == "with":
                v = self.pipeline(node[1], dot)
                if _truth(v):
                    self.run(node[2], v, out)
                else:
                    self.run(node[3], dot, out)

    def pipeline(self, pipe: list, dot: Any) -> Any:
        final: Any = _NOFINAL
        for cmd in pipe:
            final = self.command(cmd, dot, final)
            if final is None:  # interface{} holding nil is dug out to an invalid value
                final = MISSING
        return final

    def command(self, cmd: list, dot: Any, final: Any) -> Any:
        first = cmd[0]
        args = cmd[1:]
        has_args = bool(args) or final is not _NOFINAL
        k = first[0]
        if k == "field":
            return self.field_chain(dot, first[1], has_args)
        if k == "var":
            if not first[1]:
                if has_args:
                    raise TemplateError("can't give argument to non-function $")
                return self.root
            return self.field_chain(self.root, first[1], has_args)
        if k == "paren":
            v = self.pipeline(first[1], dot)
            if first[2]:
                v = self.field_chain(v, first[2], has_args)
            elif has_args:
                raise TemplateError("can't give argument to non-function")
            return v
        if k == "ident":
            return self.call(first[1], args, dot, final)
        if has_args:
            raise TemplateError(f"can't give argument to non-function {first}")
        if k == "dot":
            return dot
        if k == "str":
            return first[1]
        if k == "num":
            return first[1].ideal()
        if k == "bool":
            return first[1]
        if k == "nil":
            raise TemplateError("nil is not a command")
        raise TemplateError(f"can't evaluate command {first}")

    def field_chain(self, recv: Any, names: list[str], has_args: bool) -> Any:
        for i, name in enumerate(names):
            recv = _field(recv, name, has_args and i == len(names) - 1)
        return recv

    def arg_value(self, node: tuple, dot: Any) -> Any:
        """Evaluate an argument node; constants are returned as _Const for later typing."""
        k = node[0]
        if k in ("str", "num", "bool", "nil"):
            return _Const(node)
        if k == "field":
            return self.field_chain(dot, node[1], False)
        if k == "var":
            return self.field_chain(self.root, node[1], False) if node[1] else self.root
        if k == "dot":
            return dot
        if k == "paren":
            v = self.pipeline(node[1], dot)
            if node[2]:
                v = self.field_chain(v, node[2], False)
            return v
        if k == "ident":
            return self.call(node[1], [], dot, _NOFINAL)
        raise TemplateError(f"bad argument {node}")

    def call(self, name: str, arg_nodes: list, dot: Any, final: Any) -> Any:
        fn = self.funcs[name]
        if fn.lazy:  # and/or short-circuit on evaluated args
            vals = []
            for nd in arg_nodes:
                v = _coerce(self.arg_value(nd, dot), "any", name)
                vals.append(v)
                if name == "and" and not _truth(v):
                    return v
                if name == "or" and _truth(v):
                    return v
            if final is not _NOFINAL:
                vals.append(final)
            if not vals:
                raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
            return vals[-1]
        raw_args = [self.arg_value(nd, dot) for nd in arg_nodes]
        if final is not _NOFINAL:
            raw_args.append(final)
        params = fn.params
        nparams = len(params)
        if fn.variadic is None and len(raw_args) != nparams:
            raise TemplateError(f"wrong number of args for {name}: want {nparams} got {len(raw_args)}")
        if fn.variadic is not None and len(raw_args) < nparams:
            raise TemplateError(f"wrong number of args for {name}: want at least {nparams} got {len(raw_args)}")
        conv = []
        for i, a in enumerate(raw_args):
            typ = params[i] if i < nparams else fn.variadic
            conv.append(_coerce(a, typ, name))
        try:
            return fn.impl(*conv)
        except TemplateError:
            raise
        except Unsupported:
            raise
        except Exception as e:  # Go recovers panics in called functions and reports an error
            raise TemplateError(f"error calling {name}: {e}") from None


_NOFINAL = object()


class _Const:
    def __init__(self, node: tuple):
        self.node = node


def _coerce(a: Any, typ: str, fname: str) -> Any:
    """text/template evalArg/validateType for our small type set."""
    if isinstance(a, _Const):
        k = a.node[0]
        if k == "nil":
            if typ in ("any", "reflect"):
                return None
            raise TemplateError(f"cannot assign nil to {typ}")
        if typ in ("any", "reflect"):
            if k == "num":
                return a.node[1].ideal()
            return a.node[1]
        if typ == "string":
            if k == "str":
                return a.node[1]
            raise TemplateError(f"expected string; found {_const_text(a)}")
        if typ in ("int", "int64"):
            if k == "num" and a.node[1].int_exact is not None:
                v = a.node[1].int_exact
                return GoInt64(v) if typ == "int64" else v
            if k == "num":
                raise TemplateError(f"expected integer; found {_const_text(a)}")
            raise TemplateError(f"expected integer; found {_const_text(a)}")
        if typ == "float64":
            if k == "num":
                return a.node[1].float_val
            raise TemplateError(f"expected float; found {_const_text(a)}")
        if typ == "bool":
            if k == "bool":
                return a.node[1]
            raise TemplateError(f"expected bool; found {_const_text(a)}")
        raise TemplateError(f"can't handle {_const_text(a)} for arg of type {typ}")
    if typ in ("any", "reflect"):
        return None if a is MISSING else a
    if a is MISSING:
        raise TemplateError(f"invalid value; expected {typ}")
    if a is None:
        raise TemplateError(f"wrong type for value; expected {typ}; got interface {{}}")
    ok = {
        "string": isinstance(a, str),
        "int": isinstance(a, int) and not isinstance(a, (bool, GoInt64)),
        "int64": isinstance(a, GoInt64),
        "float64": isinstance(a, float),
        "bool": isinstance(a, bool),
    }.get(typ, False)
    if not ok:
        raise TemplateError(f"wrong type for value; expected {typ}; got {go_type_name(a)}")
    return a


def _const_text(c: _Const) -> str:
    k = c.node[0]
    if k == "str":
        return _go_quote(c.node[1])
    if k == "num":
        return c.node[1].text
    if k == "bool":
        return "true" if c.node[1] else "false"
    return "nil"


class Func:
    def __init__(self, impl: Callable, params: list[str], variadic: str | None = None, lazy: bool = False):
        self.impl, self.params, self.variadic, self.lazy = impl, params, variadic, lazy


# ---------------------------------------------------------------------------
# builtins (text/template) and sprig subset
# ---------------------------------------------------------------------------

def _kind(v: Any) -> str:
    if v is MISSING or v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise TemplateError("missing argument for comparison")
    ka = _kind(a)
    for b in bs:
        kb = _kind(b)
        if ka != kb:
            if ka != "invalid" and kb != "invalid":
                raise TemplateError("incompatible types for comparison")
            continue
        if ka == "other":
            raise TemplateError("non-comparable type")
        if ka == "invalid":
            return True
        if a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise TemplateError("invalid type for comparison")
    if ka != kb:
        raise TemplateError("incompatible types for comparison")
    return a < b


def _len(v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, dict)):
        return len(v)
    raise TemplateError(f"len of type {go_type_name(v)}")


def _index(item: Any, *idx: Any) -> Any:
    if item is None:
        raise TemplateError("index of untyped nil")
    for i in idx:
        if isinstance(item, dict):
            if not isinstance(i, str):
                raise TemplateError(f"value has type {go_type_name(i)}; should be string")
            item = item.get(i)
        elif isinstance(item, (list, str)):
            if not isinstance(i, int) or isinstance(i, bool):
                raise TemplateError(f"cannot index slice/array with type {go_type_name(i)}")
            seq = item.encode() if isinstance(item, str) else item
            if i < 0 or i >= len(seq):
                raise TemplateError(f"index out of range: {i}")
            item = seq[i]
        else:
            raise TemplateError(f"can't index item of type {go_type_name(item)}")
    return item


def _substr(start: int, end: int, s: str) -> str:
    b = s.encode()
    if start < 0:
        if end < 0 or end > len(b):
            raise IndexError(f"runtime error: slice bounds out of range [:{end}] with length {len(b)}")
        r = b[:end]
    elif end < 0 or end > len(b):
        if start > len(b):
            raise IndexError(f"runtime error: slice bounds out of range [{start}:{len(b)}]")
        r = b[start:]
    else:
        if start > end:
            raise IndexError(f"runtime error: slice bounds out of range [{start}:{end}]")
        r = b[start:end]
    return r.decode(errors="replace")


def _trunc(c: int, s: str) -> str:
    b = s.encode()
    if c < 0 and len(b) + c > 0:
        return b[len(b) + c:].decode(errors="replace")
    if c >= 0 and len(b) > c:
        return b[:c].decode(errors="replace")
    return s


def _strval(v: Any) -> str:
    return v if isinstance(v, str) else fmt_v(v)


def _empty(v: Any) -> bool:
    return not _truth(v)


def _default(d: Any, *given: Any) -> Any:
    if not given or _empty(given[0]):
        return d
    return given[0]


def _b64dec(s: str) -> str:
    try:
        return base64.b64decode(s.encode(), validate=True).decode(errors="replace")
    except Exception:
        # sprig returns the Go error text; compute the offending byte offset like encoding/base64
        stripped = s.rstrip("=")
        bad = next((i for i, ch in enumerate(s) if not (ch.isalnum() or ch in "+/=")), None)
        if bad is None:
            bad = len(stripped) - (len(stripped) % 4) if len(stripped) % 4 else len(s)
        return f"illegal base64 data at input byte {bad}"


def _title(s: str) -> str:
    out = []
    prev_sep = True
    for ch in s:
        if prev_sep and ch.isalpha():
            out.append(ch.upper())
        else:
            out.append(ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _strslice(v: Any) -> list[str]:
    if isinstance(v, list):
        return [_strval(x) for x in v if x is not None]
    if v is None:
        return []
    return [_strval(v)]


def _to_int64(v: Any) -> int:
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return 0
    return 0


def _to_float64(v: Any) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return 0.0
    return 0.0


def _regex_match(rx: str, s: str) -> bool:
    try:
        return go_regexp(rx).search(s) is not None
    except GoRegexError:
        return False


def _regex_find(rx: str, s: str) -> str:
    m = go_regexp(rx).search(s)
    return m.group(0) if m else ""


def _regex_replace_all(rx: str, s: str, repl: str) -> str:
    return go_regexp(rx).sub(go_regexp_replacement(repl), s)


def _regex_replace_all_literal(rx: str, s: str, repl: str) -> str:
    return go_regexp(rx).sub(lambda _m: repl, s)


def _indent(n: int, s: str) -> str:
    pad = " " * n
    return pad + s.replace("\n", "\n" + pad)


def _to_json(v: Any) -> str:
    try:
        return go_json_dumps(v, sort_keys=True)
    except Exception:
        return ""


def _split_list(sep: str, s: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _first(v: Any) -> Any:
    if isinstance(v, list):
        return v[0] if v else None
    raise TemplateError(f"Cannot find first on type {go_type_name(v)}")


def _last(v: Any) -> Any:
    if isinstance(v, list):
        return v[-1] if v else None
    raise TemplateError(f"Cannot find last on type {go_type_name(v)}")


def _not(v: Any) -> bool:
    return not _truth(v)


FUNCS: dict[str, Func] = {
    # text/template builtins
    "and": Func(None, [], "any", lazy=True),
    "or": Func(None, [], "any", lazy=True),
    "not": Func(_not, ["any"]),
    "len": Func(_len, ["any"]),
    "index": Func(_index, ["any"], "any"),
    "print": Func(lambda *a: go_sprint(list(a)), [], "any"),
    "println": Func(lambda *a: " ".join(fmt_v(x) for x in a) + "\n", [], "any"),
    "printf": Func(lambda f, *a: go_sprintf(f, list(a)), ["string"], "any"),
    "eq": Func(_eq, ["reflect"], "reflect"),
    "ne": Func(_ne, ["reflect", "reflect"]),
    "lt": Func(_lt, ["reflect", "reflect"]),
    "le": Func(lambda a, b: _lt(a, b) or _eq(a, b), ["reflect", "reflect"]),
    "gt": Func(lambda a, b: not (_lt(a, b) or _eq(a, b)), ["reflect", "reflect"]),
    "ge": Func(lambda a, b: not _lt(a, b), ["reflect", "reflect"]),
    # sprig (v3.3.0) subset
    "substr": Func(_substr, ["int", "int", "string"]),
    "trunc": Func(_trunc, ["int", "string"]),
    "replace": Func(lambda old, new, src: src.replace(old, new), ["string", "string", "string"]),
    "lower": Func(str.lower, ["string"]),
    "upper": Func(str.upper, ["string"]),
    "title": Func(_title, ["string"]),
    "trim": Func(lambda s: s.strip(), ["string"]),
    "trimAll": Func(lambda cut, s: s.strip(cut), ["string", "string"]),
    "trimall": Func(lambda cut, s: s.strip(cut), ["string", "string"]),
    "trimPrefix": Func(lambda a, b: b[len(a):] if b.startswith(a) else b, ["string", "string"]),
    "trimSuffix": Func(lambda a, b: b[:-len(a)] if a and b.endswith(a) else b, ["string", "string"]),
    "nospace": Func(lambda s: "".join(s.split()), ["string"]),
    "repeat": Func(lambda n, s: s * max(n, 0), ["int", "string"]),
    "contains": Func(lambda sub, s: sub in s, ["string", "string"]),
    "hasPrefix": Func(lambda p, s: s.startswith(p), ["string", "string"]),
    "hasSuffix": Func(lambda p, s: s.endswith(p), ["string", "string"]),
    "quote": Func(lambda *a: " ".join(_go_quote(_strval(x)) for x in a if x is not None), [], "any"),
    "squote": Func(lambda *a: " ".join("'" + fmt_v(x) + "'" for x in a if x is not None), [], "any"),
    "cat": Func(lambda *a: " ".join(fmt_v(x) for x in a if x is not None), [], "any"),
    "indent": Func(_indent, ["int", "string"]),
    "nindent": Func(lambda n, s: "\n" + _indent(n, s), ["int", "string"]),
    "toString": Func(_strval, ["any"]),
    "toStrings": Func(_strslice, ["any"]),
    "default": Func(_default, ["any"], "any"),
    "empty": Func(_empty, ["any"]),
    "coalesce": Func(lambda *a: next((x for x in a if not _empty(x)), None), [], "any"),
    "ternary": Func(lambda t, f, c: t if c else f, ["any", "any", "bool"]),
    "b64enc": Func(lambda s: base64.b64encode(s.encode()).decode(), ["string"]),
    "b64dec": Func(_b64dec, ["string"]),
    "sha256sum": Func(lambda s: hashlib.sha256(s.encode()).hexdigest(), ["string"]),
    "sha1sum": Func(lambda s: hashlib.sha1(s.encode()).hexdigest(), ["string"]),
    "splitList": Func(_split_list, ["string", "string"]),
    "join": Func(lambda sep, v: sep.join(_strslice(v)), ["string", "any"]),
    "first": Func(_first, ["any"]),
    "last": Func(_last, ["any"]),
    "regexMatch": Func(_regex_match, ["string", "string"]),
    "regexFind": Func(_regex_find, ["string", "string"]),
    "regexReplaceAll": Func(_regex_replace_all, ["string", "string", "string"]),
    "regexReplaceAllLiteral": Func(_regex_replace_all_literal, ["string", "string", "string"]),
    "toJson": Func(_to_json, ["any"]),
    "atoi": Func(lambda s: int(s) if re.fullmatch(r"[+-]?\d+", s) else 0, ["string"]),
    "int": Func(_to_int64, ["any"]),
    "int64": Func(lambda v: GoInt64(_to_int64(v)), ["any"]),
    "float64": Func(_to_float64, ["any"]),
    "add": Func(lambda *a: GoInt64(sum(_to_int64(x) for x in a)), [], "any"),
    "add1": Func(lambda a: GoInt64(_to_int64(a) + 1), ["any"]),
    "sub": Func(lambda a, b: GoInt64(_to_int64(a) - _to_int64(b)), ["any", "any"]),
    "mul": Func(lambda a, *b: GoInt64(_mul(a, b)), ["any"], "any"),
}


def _mul(a: Any, rest: tuple) -> int:
    v = _to_int64(a)
    for b in rest:
        v *= _to_int64(b)
    return v


SPRIG_NAMES = set("""abbrev abbrevboth add add1 add1f addf adler32sum ago all any append atoi b32dec b32enc b64dec
b64enc base bcrypt biggest buildCustomCert camelcase cat ceil chunk clean coalesce compact concat contains date
dateInZone dateModify date_in_zone date_modify decryptAES deepCopy deepEqual default derivePassword dict dig dir div
divf duration durationRound empty encryptAES env expandenv ext fail first float64 floor fromJson genCA genCAWithKey
genPrivateKey genSelfSignedCert genSelfSignedCertWithKey genSignedCert genSignedCertWithKey get getHostByName has
hasKey hasPrefix hasSuffix hello htmlDate htmlDateInZone htpasswd indent initial initials int int64 isAbs join
kebabcase keys kindIs kindOf last list lower max maxf merge mergeOverwrite min minf mod mul mulf mustAppend mustChunk
mustCompact mustDateModify mustDeepCopy mustFirst mustFromJson mustHas mustInitial mustLast mustMerge
mustMergeOverwrite mustPrepend mustRegexFind mustRegexFindAll mustRegexMatch mustRegexReplaceAll
mustRegexReplaceAllLiteral mustRegexSplit mustRest mustReverse mustSlice mustToDate mustToJson mustToPrettyJson
mustToRawJson mustUniq mustWithout must_date_modify nindent nospace now omit osBase osClean osDir osExt osIsAbs pick
pluck plural prepend quote randAlpha randAlphaNum randAscii randBytes randInt randNumeric regexFind regexFindAll
regexMatch regexQuoteMeta regexReplaceAll regexReplaceAllLiteral regexSplit repeat replace rest reverse round semver
semverCompare seq set sha1sum sha256sum sha512sum shuffle slice snakecase sortAlpha split splitList splitn squote sub
subf substr swapcase ternary title toDate toDecimal toJson toPrettyJson toRawJson toString toStrings trim trimAll
trimPrefix trimSuffix trimall trunc tuple typeIs typeIsLike typeOf uniq unixEpoch unset until untilStep untitle upper
urlJoin urlParse uuidv4 values without wrap wrapWith""".split())
_GO_UNSUPPORTED_BUILTINS = {"html", "js", "urlquery", "slice", "call"}


def render(template: str, data: Any) -> str:
    """Parse+execute a Go template with sprig functions. Raises TemplateError / Unsupported."""
    nodes = _Parser(set(FUNCS)).parse(template)
    out: list[str] = []
    _Exec(FUNCS, data).run(nodes, data, out)
    return "".join(out)


# ---------------------------------------------------------------------------
# govaluate subset (sensor `exprs` filters and nothing else)
# ---------------------------------------------------------------------------

class ExprError(Exception):
    pass


_GV_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>&&|\|\||==|!=|>=|<=|=~|!~|[><!()+\-*/%,])
  | (?P<bracket>\[[^\]]*\])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
""", re.X)

_DATEISH = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{1,2}:\d{2}(AM|PM)$|^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ")


def govaluate(expr: str, params: dict[str, Any]) -> Any:
    toks: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(expr):
        m = _GV_TOKEN.match(expr, pos)
        if not m:
            raise ExprError(f"Invalid token: '{expr[pos:pos + 10]}'")
        pos = m.end()
        kind = m.lastgroup
        val = m.group(0)
        if kind == "ws":
            continue
        if kind == "num":
            toks.append(("val", float(val)))
        elif kind == "str":
            s = re.sub(r"\\(.)", r"\1", val[1:-1], flags=re.S)
            if _DATEISH.search(s):
                raise Unsupported(f"govaluate parses date-like string literals as times: {val}")
            toks.append(("val", s))
        elif kind == "bracket":
            toks.append(("var", val[1:-1]))
        elif kind == "ident":
            if val in ("true", "false"):
                toks.append(("val", val == "true"))
            elif val in ("in", "IN"):
                toks.append(("op", "in"))
            elif "." in val:
                raise Unsupported(f"govaluate accessors ('{val}') are not simulated")
            else:
                toks.append(("var", val))
        else:
            toks.append(("op", val))
    p = _GVParser(toks, params)
    v = p.parse_or()
    if p.i != len(toks):
        raise ExprError("Unexpected tokens at end of expression")
    return v


class _GVParser:
    def __init__(self, toks: list, params: dict):
        self.t, self.i, self.params = toks, 0, params

    def peek(self) -> tuple | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take_op(self, *ops: str) -> str | None:
        tk = self.peek()
        if tk and tk[0] == "op" and tk[1] in ops:
            self.i += 1
            return tk[1]
        return None

    def parse_or(self) -> Any:
        left = self.parse_and()
        while self.take_op("||"):
            right = self.parse_and()
            for v in (left, right):
                if not isinstance(v, bool):
                    raise ExprError(f"Value '{fmt_v(v)}' cannot be used with the logical operator '||', it is not a bool")
            left = left or right
        return left

    def parse_and(self) -> Any:
        left = self.parse_cmp()
        while self.take_op("&&"):
            right = self.parse_cmp()
            for v in (left, right):
                if not isinstance(v, bool):
                    raise ExprError(f"Value '{fmt_v(v)}' cannot be used with the logical operator '&&', it is not a bool")
            left = left and right
        return left

    def parse_cmp(self) -> Any:
        left = self.parse_add()
        op = self.take_op("==", "!=", ">", "<", ">=", "<=", "=~", "!~", "in")
        if not op:
            return left
        right = self.parse_add()
        if op == "==":
            return _deep_equal(left, right)
        if op == "!=":
            return not _deep_equal(left, right)
        if op in ("=~", "!~"):
            if not isinstance(left, str) or not isinstance(right, str):
                raise ExprError(f"Value '{fmt_v(left)}' cannot be used with the comparator '{op}', it is not a string")
            try:
                m = go_regexp(right).search(left) is not None
            except GoRegexError as e:
                raise ExprError(f"Unable to compile regexp pattern '{right}': {e}") from None
            return m if op == "=~" else not m
        if op == "in":
            if not isinstance(right, list):
                raise ExprError("Value cannot be used with the comparator 'in', it is not an array")
            return any(_deep_equal(left, x) for x in right)
        both_num = isinstance(left, float) and not isinstance(left, bool) and isinstance(right, float) and not isinstance(right, bool)
        both_str = isinstance(left, str) and isinstance(right, str)
        if not (both_num or both_str):
            raise ExprError(f"Value '{fmt_v(left)}' cannot be used with the comparator '{op}', it is not a number")
        return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]

    def parse_add(self) -> Any:
        left = self.parse_mul()
        while True:
            op = self.take_op("+", "-")
            if not op:
                return left
            right = self.parse_mul()
            if op == "+" and (isinstance(left, str) or isinstance(right, str)):
                left = fmt_v(left) + fmt_v(right)
            else:
                left = self._num(left, op) + (self._num(right, op) if op == "+" else -self._num(right, op))

    def parse_mul(self) -> Any:
        left = self.parse_unary()
        while True:
            op = self.take_op("*", "/", "%")
            if not op:
                return left
            right = self.parse_unary()
            a, b = self._num(left, op), self._num(right, op)
            if op == "*":
                left = a * b
            elif op == "/":
                left = a / b if b != 0 else (float("inf") if a > 0 else float("-inf") if a < 0 else float("nan"))
            else:
                import math
                left = math.fmod(a, b)

    def parse_unary(self) -> Any:
        if self.take_op("!"):
            v = self.parse_unary()
            if not isinstance(v, bool):
                raise ExprError(f"Value '{fmt_v(v)}' cannot be used with the prefix '!', it is not a bool")
            return not v
        if self.take_op("-"):
            return -self._num(self.parse_unary(), "-")
        return self.parse_primary()

    def parse_primary(self) -> Any:
        tk = self.peek()
        if tk is None:
            raise ExprError("Unexpected end of expression")
        self.i += 1
        if tk[0] == "val":
            return tk[1]
        if tk[0] == "var":
            if tk[1] not in self.params:
                raise ExprError(f"No parameter '{tk[1]}' found.")
            return self.params[tk[1]]
        if tk == ("op", "("):
            first = self.parse_or()
            items = [first]
            while self.take_op(","):
                items.append(self.parse_or())
            if not self.take_op(")"):
                raise ExprError("Unbalanced parenthesis")
            return items if len(items) > 1 else first
        raise ExprError(f"Unexpected token '{tk[1]}'")

    @staticmethod
    def _num(v: Any, op: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ExprError(f"Value '{fmt_v(v)}' cannot be used with the modifier '{op}', it is not a number")
        return float(v)


def _deep_equal(a: Any, b: Any) -> bool:
    """reflect.DeepEqual on JSON-ish Go values (types must match: bool != float64, string != float64)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
