"""A lint for C++ kernel source: what Vitis HLS cannot synthesize, or cannot bound.

``hls_rule_violations(source)`` returns one message per violation, ``"line N: rule: detail"``.
It reads the text the way the synthesizer sees it: comments and string literals are blanked
(line numbers kept), and code that only C simulation compiles is skipped: the branch under
``#ifndef __SYNTHESIS__`` / ``#if !defined(__SYNTHESIS__)`` / ``#ifdef FILMQNN_NATIVE_PE``
(the C-sim library's native build; the kernel refuses it under ``__SYNTHESIS__``) and the
``#else`` branch of ``#ifdef __SYNTHESIS__`` / ``#if defined(__SYNTHESIS__)``.

Rules (UG1399, "Unsupported C/C++ Constructs"):

* ``dynamic-memory``: ``new``, ``delete`` (not ``= delete`` on a function), ``malloc``,
  ``calloc``, ``realloc``, ``free`` calls.
* ``stl``: ``std::`` containers and smart pointers (vector, map, string, list, deque,
  unique_ptr, shared_ptr, ...), the same templates unqualified (``vector<``; ``hls::vector``
  is fine), and ``#include`` of their headers.
* ``recursion``: a function whose body calls itself by name (direct recursion only).
  Definitions are found with a regex that fits the generated code: ``name(params) {`` with
  optional ``const``; template recursion ``f<N - 1>(...)`` is compile-time and not flagged.
* ``goto``.
* ``unbounded-loop``: a ``for`` / ``while`` / ``do`` loop whose bound is not a compile-time
  constant needs ``#pragma HLS loop_tripcount`` or a full ``#pragma HLS unroll`` (no
  ``factor=``) among the pragmas at the top of its body (before any nested loop, within the
  body's first 8 lines); ``#pragma HLS pipeline`` alone does not bound it. A bound is a
  compile-time constant C (integer literals, ALL_CAPS identifiers, integer template
  parameters, ``const`` / ``constexpr`` variables initialized from constants, combined by
  operators, ``?:`` and integer casts: ``N``, ``ROWS * COLS - 1``, ``(W == 4 ? 2 : 1)``;
  a plain ``int per = BEAT_BYTES / 4;`` is not one) that caps the counter from above in
  the condition (``i < C``, ``i <= C``, ``i != C``; one ``&&`` term is enough, ``||``
  never is), or from below when the ``for`` also starts at a constant
  (``for (int i = N - 1; i >= 0; --i)``); ``while (n > 0)`` counts down from an unknown
  start and needs the pragma. A range-for (over an array: containers are already
  rejected) is bounded. Constant names are collected by name, not by scope.

The check is textual, not a C++ parser: it is written for the kernel filmqnn generates
(templates/engine.cpp.j2) and the snippets in tests/hls/test_rules.py; unusual layouts
(macros that hide loops, loops split across preprocessor branches) may be missed or misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PRAGMA_LINES = 8  # how far into a loop body its pragmas are looked for

_STL_TYPES = tuple(
    (
        "vector map multimap unordered_map set multiset unordered_set list forward_list deque "
        "queue priority_queue stack string wstring basic_string unique_ptr shared_ptr "
        "weak_ptr make_unique make_shared function"
    ).split()
)
# Unqualified (after ``using namespace std``) only where the name is rarely anything else.
_STL_BARE = tuple(
    (
        "vector map multimap unordered_map unordered_set multiset list forward_list deque "
        "priority_queue unique_ptr shared_ptr weak_ptr"
    ).split()
)
_STL_HEADERS = tuple(
    (
        "vector map unordered_map set unordered_set list forward_list deque queue stack "
        "string memory functional"
    ).split()
)
_NOT_FUNCTIONS = set(
    (
        "if for while switch catch return sizeof alignof decltype "
        "static_assert defined do else new delete throw case"
    ).split()
)

_RE_STL_QUALIFIED = re.compile(r"\bstd\s*::\s*(" + "|".join(_STL_TYPES) + r")\b")
_RE_STL_BARE = re.compile(r"(?<![\w:])(" + "|".join(_STL_BARE) + r")\s*<")
_RE_INCLUDE = re.compile(r"^\s*#\s*include\s*<\s*(" + "|".join(_STL_HEADERS) + r")\s*>")
_RE_NEW = re.compile(r"\bnew\b")
_RE_DELETE = re.compile(r"\bdelete\b")
_RE_DELETED_FN = re.compile(r"=\s*$")
_RE_ALLOC = re.compile(r"\b(malloc|calloc|realloc|free)\s*\(")
_RE_GOTO = re.compile(r"\bgoto\b")
_RE_FUNC_HEAD = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_RE_LOOP = re.compile(r"\b(for|while|do)\b")
_RE_PRAGMA = re.compile(r"^\s*#\s*pragma\s+HLS\s+(\w+)(.*)$", re.IGNORECASE | re.MULTILINE)
# Tokens of a constant expression: numbers, names (checked separately), operators.
_EXPR_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*)|(?P<name>[A-Za-z_]\w*)"
    r"|<<|>>|<=|>=|==|!=|[-+*/%()<>?:~&|^!])\s*"
)
_CAST_WORDS = frozenset("int unsigned signed long short char bool size_t true false".split())
_RE_CONST_DECL = re.compile(
    r"\b(?:const|constexpr)\b[^;=(){}]*?\b([A-Za-z_]\w*)\s*=(?!=)\s*([^;{}]+);"
)
_RE_TEMPLATE = re.compile(r"\btemplate\s*<([^<>]*)>")
_RE_TEMPLATE_PARAM = re.compile(r"\b(?:int|unsigned|bool|long|short|size_t|char)\s+(\w+)")
# The first comparison operator that is not part of a shift.
_COMPARISON = re.compile(r"^(.*?)(<=|>=|!=|(?<![<>])<(?!<)|(?<![<>])>(?!>))(.*)$", re.DOTALL)


@dataclass(frozen=True)
class _Views:
    code: str  # comments, strings and every preprocessor line blanked
    loops: str  # as ``code`` but ``#pragma`` lines kept (for the loop rule)
    directives: list[tuple[int, str]]  # (line, text) of the preprocessor lines that count


def _blank(s: str) -> str:
    """``s`` with every character but newlines turned into a space."""
    return re.sub(r"[^\n]", " ", s)


def _strip_comments_and_strings(src: str) -> str:
    """Comments and the contents of string / char literals blanked; offsets preserved."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(_blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(_blank(src[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j, n - 1)
            out.append(c + _blank(src[i + 1 : j]) + (src[j] if j > i else ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


_RE_IF_NSYN = re.compile(
    r"^\s*#\s*(ifndef\s+__SYNTHESIS__\b|if\s+!\s*defined\s*\(?\s*__SYNTHESIS__"
    r"|ifdef\s+FILMQNN_NATIVE_PE\b)"
)
_RE_IF_SYN = re.compile(r"^\s*#\s*(ifdef\s+__SYNTHESIS__\b|if\s+defined\s*\(?\s*__SYNTHESIS__)")
_RE_IF = re.compile(r"^\s*#\s*if")
_RE_ELSE = re.compile(r"^\s*#\s*(else|elif)\b")
_RE_ENDIF = re.compile(r"^\s*#\s*endif\b")
_RE_DIRECTIVE = re.compile(r"^\s*#")


def _views(source: str) -> _Views:
    """Split the stripped source into the views the rules read."""
    lines = _strip_comments_and_strings(source).split("\n")
    # Each open #if: [kind, excluded now]; kind "nsyn" (C-sim first), "syn" (C-sim in
    # #else) or "other".
    stack: list[list] = []
    code, loops, directives = [], [], []
    continued = False  # the previous directive line ended with a backslash
    for number, line in enumerate(lines, start=1):
        excluded = any(frame[1] for frame in stack)
        is_directive = continued or bool(_RE_DIRECTIVE.match(line))
        if is_directive and not continued:
            if _RE_IF_NSYN.match(line):
                stack.append(["nsyn", True])
            elif _RE_IF_SYN.match(line):
                stack.append(["syn", False])
            elif _RE_IF.match(line):
                stack.append(["other", False])
            elif _RE_ELSE.match(line) and stack:
                kind = stack[-1][0]
                stack[-1][1] = kind == "syn"  # the #else of "nsyn" is synthesized
            elif _RE_ENDIF.match(line) and stack:
                stack.pop()
            elif not excluded:
                directives.append((number, line))
        continued = is_directive and line.rstrip().endswith("\\")
        if excluded or is_directive:
            code.append("")
            keep = not excluded and re.match(r"^\s*#\s*pragma\b", line) and not continued
            loops.append(line if keep else "")
        else:
            code.append(line)
            loops.append(line)
    return _Views("\n".join(code), "\n".join(loops), directives)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _match(text: str, pos: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one at ``pos`` (len(text) if none)."""
    depth = 0
    for i in range(pos, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _is_constant_expr(expr: str, consts: frozenset[str] = frozenset()) -> bool:
    """Only integer literals, ALL_CAPS names, names in ``consts`` and operators (arithmetic,
    shifts, comparisons, ``?:``, casts to integer types): a compile-time constant."""
    expr = expr.strip()
    if not expr:
        return False
    pos, operands = 0, 0
    while pos < len(expr):
        m = _EXPR_TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            return False
        name = m.group("name")
        if name is not None:
            if not (re.fullmatch(r"[A-Z][A-Z0-9_]*", name) or name in consts):
                if name not in _CAST_WORDS:
                    return False
                operands -= 1  # a cast word is not an operand
            operands += 1
        elif m.group("num") is not None:
            operands += 1
        pos = m.end()
    return operands > 0


def _constants(code: str) -> frozenset[str]:
    """Lower-case names that are compile-time constants: integer template parameters, and
    ``const`` / ``constexpr`` variables initialized from constants (in source order; by name,
    so a constant in one function also covers a same-named one elsewhere)."""
    names: set[str] = set()
    for m in _RE_TEMPLATE.finditer(code):
        names.update(_RE_TEMPLATE_PARAM.findall(m.group(1)))
    for m in _RE_CONST_DECL.finditer(code):
        if _is_constant_expr(m.group(2), frozenset(names)):
            names.add(m.group(1))
    return frozenset(names)


def _bound_sides(cond: str, consts: frozenset[str]) -> tuple[bool, bool]:
    """(upper, lower): does an ``&&`` term cap the counter from above / below by a constant?

    Upper: ``i < C``, ``i <= C``, ``i != C``, ``C > i``, ``C >= i``; lower: ``i > C``,
    ``i >= C``, ``C < i``, ``C <= i`` (C a compile-time constant expression).
    """
    upper = lower = False
    cond = cond.strip()
    if not cond or "||" in cond:
        return False, False
    for term in cond.split("&&"):
        term = term.strip()
        while term.startswith("(") and _match(term, 0, "(", ")") == len(term):
            term = term[1:-1].strip()
        m = _COMPARISON.match(term)
        if not m:
            continue
        lhs, op, rhs = m.groups()
        if _is_constant_expr(rhs, consts):
            upper |= op in ("<", "<=", "!=")
            lower |= op in (">", ">=")
        elif _is_constant_expr(lhs, consts):
            upper |= op in (">", ">=", "!=")
            lower |= op in ("<", "<=")
    return upper, lower


def _constant_init(init: str | None, consts: frozenset[str]) -> bool:
    """Every declarator of a for-init starts at a compile-time constant (``int i = N - 1``)."""
    if not init or not init.strip():
        return False
    for decl in _top_level_split(init, ","):
        m = re.match(r"^[^=]*=(?!=)(.*)$", decl.strip(), re.DOTALL)
        if not m or not _is_constant_expr(m.group(1), consts):
            return False
    return True


def _constant_bound(cond: str, init: str | None, consts: frozenset[str]) -> bool:
    """A compile-time trip-count bound: a counter rising to a constant (``i < N``), or one
    falling to a constant from a constant start (``for (int i = N - 1; i >= 0; --i)``)."""
    upper, lower = _bound_sides(cond, consts)
    return upper or (lower and _constant_init(init, consts))


def _top_level_split(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _body(text: str, pos: int) -> tuple[int, int]:
    """(start, end) of the statement starting at ``pos``: a ``{}`` block or up to ``;``."""
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "{":
        return pos + 1, _match(text, pos, "{", "}") - 1
    depth = 0
    for i in range(pos, len(text)):
        if text[i] in "([{":
            depth += 1
        elif text[i] in ")]}":
            depth -= 1
        elif text[i] == ";" and depth <= 0:
            return pos, i
    return pos, len(text)


def _bounding_pragma(body: str) -> bool:
    """A loop_tripcount or a full unroll among the pragmas at the top of ``body``."""
    nested = _RE_LOOP.search(body)
    head = body[: nested.start()] if nested else body
    head = "\n".join(head.split("\n")[:_PRAGMA_LINES])
    for m in _RE_PRAGMA.finditer(head):
        name, rest = m.group(1).lower(), m.group(2).lower()
        if name == "loop_tripcount":
            return True
        if name == "unroll" and "factor" not in rest and "off" not in rest:
            return True
    return False


def _loop_violations(text: str, consts: frozenset[str]) -> list[str]:
    out = []
    for m in _RE_LOOP.finditer(text):
        kind, line = m.group(1), _line(text, m.start())
        init: str | None = None
        after = _skip_ws(text, m.end())
        if kind == "do":
            start, end = _body(text, after)
            tail = re.compile(r"\s*\}?\s*while\s*\(").match(text, end)
            if not tail:
                continue
            paren = text.index("(", tail.start())
            cond = text[paren + 1 : _match(text, paren, "(", ")") - 1]
            body = text[start:end]
        else:
            if after >= len(text) or text[after] != "(":
                continue
            close = _match(text, after, "(", ")")
            header = text[after + 1 : close - 1]
            if kind == "while":
                nxt = _skip_ws(text, close)
                if nxt < len(text) and text[nxt] == ";":
                    before = text[: m.start()].rstrip()
                    if before.endswith("}"):
                        continue  # the tail of a do-while, checked at its ``do``
                cond = header
            else:
                parts = _top_level_split(header, ";")
                if len(parts) == 1:  # range-for: for (x : array)
                    continue
                init, cond = parts[0], parts[1]
            start, end = _body(text, close)
            body = text[start:end]
        if _constant_bound(cond, init, consts) or _bounding_pragma(body):
            continue
        shown = " ".join(cond.split()) or "(none)"
        out.append(
            f"line {line}: unbounded-loop: {kind} loop condition '{shown}' has no "
            "compile-time bound and no '#pragma HLS loop_tripcount' (or full unroll)"
        )
    return out


def _recursion_violations(code: str) -> list[str]:
    out = []
    for m in _RE_FUNC_HEAD.finditer(code):
        name = m.group(1)
        if name in _NOT_FUNCTIONS:
            continue
        close = _match(code, m.end() - 1, "(", ")")
        rest = re.compile(r"\s*(?:const\b\s*)?(?:noexcept\b\s*)?(?:override\b\s*)?\{").match(
            code, close
        )
        if not rest:
            continue
        before = code[: m.start()].rstrip()
        if before.endswith((".", "->", "=", ",", "(", "return")):
            continue  # a call, not a definition
        brace = rest.end() - 1
        end = _match(code, brace, "{", "}")
        body = code[brace + 1 : end - 1]
        call = re.search(r"(?<![\w.>])" + re.escape(name) + r"\s*\(", body)
        if call:
            line = _line(code, brace + 1 + call.start())
            out.append(f"line {line}: recursion: function '{name}' calls itself")
    return out


def hls_rule_violations(source: str) -> list[str]:
    """Violations of the HLS rules in C++ ``source``, sorted by line (see the module doc)."""
    views = _views(source)
    code = views.code
    found: list[tuple[int, str]] = []

    def add(pos: int, msg: str) -> None:
        line = _line(code, pos)
        found.append((line, f"line {line}: {msg}"))

    for m in _RE_NEW.finditer(code):
        add(m.start(), "dynamic-memory: 'new' (allocate statically sized arrays instead)")
    for m in _RE_DELETE.finditer(code):
        if not _RE_DELETED_FN.search(code[: m.start()]):
            add(m.start(), "dynamic-memory: 'delete'")
    for m in _RE_ALLOC.finditer(code):
        add(m.start(), f"dynamic-memory: '{m.group(1)}()'")
    for m in _RE_STL_QUALIFIED.finditer(code):
        add(m.start(), f"stl: 'std::{m.group(1)}' (not synthesizable)")
    for m in _RE_STL_BARE.finditer(code):
        add(m.start(), f"stl: '{m.group(1)}<...>' (not synthesizable)")
    for number, text in views.directives:
        inc = _RE_INCLUDE.match(text)
        if inc:
            found.append((number, f"line {number}: stl: '#include <{inc.group(1)}>'"))
    for m in _RE_GOTO.finditer(code):
        add(m.start(), "goto: 'goto' is not supported")
    for msg in _recursion_violations(code) + _loop_violations(views.loops, _constants(code)):
        found.append((int(msg.split(":", 1)[0].split()[1]), msg))
    return [msg for _, msg in sorted(found, key=lambda t: t[0])]
