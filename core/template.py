"""`{{path}}` templates: GJSON selection, string filling, query parameter binding, Go-style JSON.

GJSON subset (tidwall/gjson v1.14 semantics, the path language of the Go procx and pushx; checked against it):
  a.b.c            object keys; the first key that matches wins (a later duplicate is tried if the rest fails)
  items.0          a numeric component indexes an array (on an object it is the key "0")
  items.#          array length
  items.#.name     array of every element's `name` (elements without one are skipped); nests: `#.a.#.b`
  #(f==v)          first element whose path `f` compares to `v`; `#(f==v)#` = array of all matches; ops
                   == (or =) != < <= > >= and % !% (glob); `#(f)` = f exists; `#(=="x")` compares the element;
                   v is "quoted" or bare; numbers compare as floats, strings by code point; queries nest
  * ?              wildcards in key components (glob: * any run, ? one character)
  \\x               the next character is literal (`a\\.b` is the key "a.b", `\\*` a literal star)
  a|b              pipe: b applies to the result of a (unlike `.`, after `#.`/`#(...)#` it sees the whole array)
Not supported: @modifiers, multipaths ({a,b} [a,b]), `..` JSON Lines, `~` truthy queries, !literals. gjson 1.14
sometimes loses a pipe that follows `#.`/`#(...)#` (nothing matched, or `|` right after `.#`: `a.#(x>9)#|#` gives
`[]`); here the pipe always applies to the whole result (`0`). Documents are read leniently like gjson: from the
first { or [, only as far as the path needs; the empty path is the key "" (so usually "").

String() conversion (select): string -> unescaped value; integer literal -> the literal as written (any size);
other number -> shortest float text without exponent (1.50 -> 1.5, 1e3 -> 1000); true/false; null, missing path,
non-JSON document -> ""; object/array -> its raw text sliced from the document (spacing and escapes kept).

Templates: keys() and original_params() are the originals' algorithms; fill() is their string mode in one pass
(inserted values are never expanded again); bind() turns the templates of SQL/CQL/BigQuery queries into bound
parameters; translate_placeholders() maps the Go clients' $1/? placeholders to a Python paramstyle.
"""

from __future__ import annotations

import binascii
import json
import operator
import re
from collections import namedtuple
from collections.abc import Iterator
from functools import lru_cache

from core.errors import UsageError

PAYLOAD_KEYS = frozenset({"procx_payload", "pushx_payload"})
STYLES = ("format", "qmark", "numeric_dollar", "numeric", "named_at", "pyformat")
SOURCE_STYLES = ("qmark", "numeric_dollar", "numeric", "mssql")

# ---------------------------------------------------------------------------------------------- JSON scanning
_WS = re.compile(r"[\x00- ]*")
_SEP = re.compile(r"[\x00- ,:]*")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NUMBER = re.compile(r"[^\x00- ,\]}]*")  # as gjson: a number runs to whitespace, comma, ] or }
_WORD = re.compile(r"[a-z]*")
_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
_INTEGER = re.compile(r"-?[0-9]+")
_INDEX = re.compile(r"[0-9]+")
_OPENING = re.compile(r"[{\[]")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_LITERAL_KINDS = {"t": "t", "f": "f", "n": "z"}

Span = tuple[str, int, int]  # (kind, start, end) of a value inside the scanned text


def _value(t: str, i: int) -> Span | None:
    """The value at t[i] (after whitespace): kind s(tring) n(umber) t f z(null) j(object/array)."""
    i = _WS.match(t, i).end()
    if i >= len(t):
        return None
    c = t[i]
    if c in "{[":
        depth = 0
        for m in _BRACKETS.finditer(t, i):
            ch = t[m.start()]
            if ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if not depth:
                    return "j", i, m.end()
        return None
    if c == '"':
        m = _STRING.match(t, i)
        return ("s", i, m.end()) if m else None
    if c == "-" or "0" <= c <= "9":
        return "n", i, _NUMBER.match(t, i + 1).end()
    if c in _LITERAL_KINDS:
        return _LITERAL_KINDS[c], i, _WORD.match(t, i + 1).end()
    return None


def _members(t: str, i: int) -> Iterator[tuple[str, Span]]:
    """(raw key, value) of the object at t[i] == "{", leniently, stopping at the first malformed member."""
    i += 1
    while True:
        i = _SEP.match(t, i).end()
        if i >= len(t) or t[i] != '"':
            return
        m = _STRING.match(t, i)
        v = _value(t, _SEP.match(t, m.end()).end()) if m else None
        if v is None:
            return
        yield t[i + 1 : m.end() - 1], v
        i = v[2]


def _elements(t: str, i: int) -> Iterator[Span]:
    """The values of the array at t[i] == "["."""
    i += 1
    while True:
        i = _SEP.match(t, i).end()
        v = None if i >= len(t) or t[i] == "]" else _value(t, i)
        if v is None:
            return
        yield v
        i = v[2]


def _unescape(s: str) -> str:
    """Resolve JSON escapes like gjson: surrogate pairs joined, lone surrogates -> U+FFFD, stop at a bad escape."""
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    while (j := s.find("\\", i)) >= 0:
        out.append(s[i:j])
        c = s[j + 1 : j + 2]
        if c and c in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[c])
            i = j + 2
            continue
        if c != "u" or not _HEX4.fullmatch(s, j + 2, j + 6):
            return "".join(out)
        cp, i = int(s[j + 2 : j + 6], 16), j + 6
        if 0xD800 <= cp < 0xE000:
            if s.startswith("\\u", i) and _HEX4.fullmatch(s, i + 2, i + 6):
                low, i = int(s[i + 2 : i + 6], 16), i + 6
                cp = 0x10000 + ((cp - 0xD800) << 10) + low - 0xDC00 if cp < 0xDC00 <= low < 0xE000 else 0xFFFD
            else:
                cp = 0xFFFD
        out.append(chr(cp))
    out.append(s[i:])
    return "".join(out)


def _to_float(raw: str) -> float:
    """Go's strconv.ParseFloat, errors ignored (0) as gjson does."""
    try:
        return 0.0 if "_" in raw else float(raw)
    except ValueError:
        return 0.0


def _positional(f: float) -> str:
    """strconv.FormatFloat(f, 'f', -1, 64): shortest round-trip digits, never an exponent."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    r = repr(f)
    if "e" not in r:
        return r[:-2] if r.endswith(".0") else r
    mantissa, exp = r.split("e")
    sign = "-" if mantissa[0] == "-" else ""
    whole, _, frac = mantissa.lstrip("-").partition(".")
    digits, point = whole + frac, len(whole) + int(exp)
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


class Result(namedtuple("Result", "kind raw")):
    """One selected value: its kind (s)tring (n)umber (t)rue (f)alse null (z) object/array (j), and raw JSON text."""

    __slots__ = ()

    def text(self) -> str:
        """gjson's Result.String()."""
        kind, raw = self.kind, self.raw
        if kind == "s":
            return _unescape(raw[1:-1])
        if kind == "n":
            return raw if _INTEGER.fullmatch(raw) else _positional(_to_float(raw))
        return {"t": "true", "f": "false", "j": raw}.get(kind, "")

    def value(self) -> object:
        """The typed value: int or float, bool, None, str; objects and arrays as their raw JSON text."""
        kind, raw = self.kind, self.raw
        if kind == "n":
            if _INTEGER.fullmatch(raw):
                try:
                    return int(raw)
                except ValueError:  # beyond Python's int-from-text digit limit
                    return raw
            return _to_float(raw)
        if kind in ("t", "f"):
            return kind == "t"
        return None if kind == "z" else self.text()


# ---------------------------------------------------------------------------------------------- paths
@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _skip_quoted(s: str, i: int) -> int:
    """Index of the closing quote of the string opened at s[i] (len(s) if none)."""
    i += 1
    while i < len(s) and s[i] != '"':
        i += 2 if s[i] == "\\" else 1
    return i


@lru_cache(maxsize=512)
def _pipes(path: str) -> tuple[str, ...]:
    """Split a path on the `|` that are not escaped and not inside a `#(...)` query."""
    parts, start, depth, i = [], 0, 0, 0
    while i < len(path):
        c = path[i]
        if c == "\\":
            i += 1
        elif c == "(" and (depth or path[i - 1 : i] == "#"):
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif c == '"' and depth:
            i = _skip_quoted(path, i)
        elif c == "|" and not depth:
            parts.append(path[start:i])
            start = i + 1
        i += 1
    parts.append(path[start:])
    return tuple(parts)


_COMPARE = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}
_BLANKS = "".join(map(chr, range(33)))  # gjson trims every byte <= " "
_QUERY_OPS = ("==", "!=", "<=", ">=", "!%", "=", "<", ">", "%")


def _parse_query(q: str) -> tuple[str, str, str]:
    """`f op v` -> (path, op with == as =, value unquoted); op "" means an existence test."""
    q = q.strip(_BLANKS)
    i, depth = 0, 0
    while i < len(q):
        c = q[i]
        if c == "\\":
            i += 1
        elif c == '"':
            i = _skip_quoted(q, i)
        elif c in "()":
            depth += 1 if c == "(" else -1
        elif not depth and (c <= " " or c in "!=<>%"):
            break
        i += 1
    path, rest = q[:i], q[i:].lstrip()
    op = next((o for o in _QUERY_OPS if rest.startswith(o)), rest[:1])
    value = rest[len(op) :].strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _unescape(value[1:-1])
    return path, "=" if op == "==" else op, value


@lru_cache(maxsize=512)
def _component(path: str) -> tuple[tuple, str | None]:
    """Split the first component off a pipe-free path: (component, rest of the path or None)."""
    if path.startswith("#("):
        i, depth = 1, 0
        while i < len(path):
            if path[i] == "\\":
                i += 1
            elif path[i] == '"':
                i = _skip_quoted(path, i)
            elif path[i] in "()":
                depth += 1 if path[i] == "(" else -1
                if not depth:
                    break
            i += 1
        tail = path[i + 1 :]
        every = tail.startswith("#")
        tail = tail[every:]
        if i >= len(path) or tail[:1] not in ("", "."):
            return ("bad",), None
        return ("query", *_parse_query(path[2:i]), every), (tail[1:] if tail else None)
    if path == "#":
        return ("count",), None
    if path.startswith("#."):
        return ("map",), path[2:]
    key, wild, i = [], [], 0
    while i < len(path) and path[i] != ".":
        c = path[i]
        if c == "\\":
            i += 1
            if i < len(path):
                key.append(path[i])
                wild.append(re.escape(path[i]))
        else:
            key.append(c)
            wild.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    pattern = re.compile("".join(wild), re.S) if any(p in (".*", ".") for p in wild) else None
    return ("key", "".join(key), pattern), (path[i + 1 :] if i < len(path) else None)


def _matches(res: Result | None, op: str, value: str) -> bool:
    """gjson's queryMatches."""
    if res is None:
        return False
    if not op:
        return True
    if res.kind == "s":
        s = res.text()
        if op in ("%", "!%"):
            return (_glob(value).fullmatch(s) is not None) == (op == "%")
        return _compare(s, op, value)
    if res.kind == "n":
        return _compare(_to_float(res.raw), op, _to_float(value))
    if res.kind == "t":
        return {"=": value == "true", "!=": value != "true", ">": value == "false", ">=": True}.get(op, False)
    if res.kind == "f":
        return {"=": value == "false", "!=": value != "false", "<": value == "true", "<=": True}.get(op, False)
    return False


def _compare(a, op: str, b) -> bool:
    compare = _COMPARE.get(op)
    return compare is not None and compare(a, b)


def _walk(t: str, v: Span, path: str) -> Result | None:
    """Apply a pipe-free path to the value v of text t."""
    comp, rest = _component(path)
    kind, start, _ = v
    if kind != "j":
        return None
    if t[start] == "{":
        if comp[0] in ("count", "map"):
            comp = ("key", "#", None)  # on an object `#` is an ordinary key, as in gjson
        if comp[0] != "key":
            return None
        for raw_key, member in _members(t, start):
            name = _unescape(raw_key)
            if comp[2].fullmatch(name) if comp[2] else name == comp[1]:
                found = Result(member[0], t[member[1] : member[2]]) if rest is None else _walk(t, member, rest)
                if found is not None:
                    return found
        return None
    if comp[0] == "count":
        return Result("n", str(sum(1 for _ in _elements(t, start))))
    if comp[0] == "map":
        found = (_walk(t, el, rest) for el in _elements(t, start))
        return Result("j", "[" + ",".join(r.raw for r in found if r is not None) + "]")
    if comp[0] == "query":
        _, qpath, op, qvalue, every = comp
        hits = []
        for el in _elements(t, start):
            element = Result(el[0], t[el[1] : el[2]])
            subject = _resolve(t, el, qpath) if el[0] == "j" else None if qpath else element
            if _matches(subject, op, qvalue):
                res = element if rest is None else _walk(t, el, rest)
                if not every:
                    return res
                if res is not None:
                    hits.append(res.raw)
        return Result("j", "[" + ",".join(hits) + "]") if every else None
    if comp[0] == "key" and comp[2] is None and _INDEX.fullmatch(comp[1]):
        index = int(comp[1])
        for n, el in enumerate(_elements(t, start)):
            if n == index:
                return Result(el[0], t[el[1] : el[2]]) if rest is None else _walk(t, el, rest)
    return None


def _resolve(t: str, v: Span, path: str) -> Result | None:
    res = None
    for n, segment in enumerate(_pipes(path)):
        if n:
            if res is None or res.kind != "j":
                return None
            t, v = res.raw, ("j", 0, len(res.raw))
        res = _walk(t, v, segment)
    return res


def _text(document: object) -> str:
    """The document as text: str as is, bytes decoded as UTF-8, anything else serialised by go_json."""
    if isinstance(document, str):
        return document
    if isinstance(document, (bytes, bytearray, memoryview)):
        return bytes(document).decode("utf-8", "replace")
    return go_json(document)


def lookup(document: object, path: str) -> Result | None:
    """The value at a GJSON path, or None when the path is empty or selects nothing."""
    t = _text(document)
    start = _OPENING.search(t)  # as gjson: the document starts at its first { or [
    if start is None:
        return None
    return _resolve(t, ("j", start.start(), len(t)), path)


def select(document: str | bytes, path: str) -> str:
    """gjson.Get(document, path).String(); "" when nothing is selected."""
    res = lookup(document, path)
    return "" if res is None else res.text()


# ---------------------------------------------------------------------------------------------- templates
_TEMPLATE = re.compile(r"\{\{((?:(?!\{\{).)*?)\}\}", re.S)


def keys(template: str) -> list[str]:
    """Every key in order: split on `{{`; a piece holding `}}` yields the text before its first `}}`."""
    return [piece[: piece.index("}}")] for piece in template.split("{{") if "}}" in piece]


def first_key(template: str) -> str:
    """The first key of keys(template), or ""."""
    found = keys(template)
    return found[0] if found else ""


def fill(template: str, document: object) -> str:
    """String templating (not for queries): payload keys insert the document, `{{k}}` -> select(document, k).

    One left-to-right pass: braces that come from inserted values are never expanded again.
    """
    text = _text(document)
    return _TEMPLATE.sub(lambda m: text if m[1] in PAYLOAD_KEYS else select(text, m[1]), template)


def substitute(template: str, values: dict[str, str]) -> str:
    """Plain substitution without GJSON (object keys, locations): `{{name}}` -> values[name], others kept."""
    return _TEMPLATE.sub(lambda m: values.get(m[1], m[0]), template)


def original_params(params: list[str], document: object) -> list:
    """The Go originals' parameter-list templating (ReplaceParams), values bound as strings.

    `{{procx_payload}}` -> the document as bytes; `{{pushx_payload}}` -> the document as text; a parameter holding
    `{{` -> select(document, its first key) replacing the whole parameter; anything else -> itself.
    """
    text = _text(document)
    out: list = []
    for p in params:
        if p == "{{procx_payload}}":
            out.append(bytes(document) if isinstance(document, (bytes, bytearray, memoryview)) else text.encode())
        elif p == "{{pushx_payload}}":
            out.append(text)
        else:
            out.append(select(text, first_key(p)) if "{{" in p else p)
    return out


# ---------------------------------------------------------------------------------------------- queries
_SPECIAL = re.compile(r"\{\{|['\"`]|--|/\*|(?<![\w$])\$(?:[A-Za-z_]\w*)?\$")
_BACKSLASH_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "Z": "\x1a", "%": "\\%", "_": "\\_"}


def _literal(query: str, start: int, backslash: bool) -> tuple[int, list]:
    """Scan the quoted literal at query[start]: (end, parts); parts are text pieces and (key,) templates."""
    quote, parts, buf, i = query[start], [], [], start + 1
    while i < len(query):
        c = query[i]
        if c == quote:
            if not query.startswith(quote, i + 1):
                return i + 1, [*parts, "".join(buf)]
            buf.append(quote)
            i += 2
        elif c == "\\" and backslash and i + 1 < len(query):
            buf.append(_BACKSLASH_ESCAPES.get(query[i + 1], query[i + 1]))
            i += 2
        elif c == "{" and (m := _TEMPLATE.match(query, i)):
            parts += ["".join(buf), (m[1],)]
            buf, i = [], m.end()
        else:
            buf.append(c)
            i += 1
    raise UsageError(f"unterminated {quote} literal in query: {query[start:start + 40]!r}")


def _scan(query: str, backslash: bool) -> Iterator[tuple[str, str, object]]:
    """Tokens (kind, raw text, detail): text; template (key); literal (parts); opaque (comments, `x`, $$..$$)."""
    i = 0
    while i < len(query):
        m = _SPECIAL.search(query, i)
        if m is None:
            yield "text", query[i:], None
            return
        j, tok = m.start(), m[0]
        if j > i:
            yield "text", query[i:j], None
        if tok == "{{":
            t = _TEMPLATE.match(query, j)
            end = t.end() if t else j + 2
            yield ("template", t[0], t[1]) if t else ("text", "{{", None)
        elif tok in ("'", '"'):
            end, parts = _literal(query, j, backslash)
            yield "literal", query[j:end], parts
        else:
            close = {"`": "`", "--": "\n", "/*": "*/"}.get(tok, tok)
            end = query.find(close, j + len(tok))
            end = len(query) if end < 0 else end + len(close)
            yield "opaque", query[j:end], None
        i = end


def _placeholder(style: str, n: int) -> str:
    return {"format": "%s", "qmark": "?", "numeric_dollar": f"${n}", "numeric": f":{n}",
            "named_at": f"@p{n}", "pyformat": f"%(p{n})s"}[style]


def _finish(style: str, out: list[str], params: list) -> tuple[str, list]:
    if style in ("named_at", "pyformat"):
        params = [(f"p{n}", v) for n, v in enumerate(params, 1)]
    return "".join(out), params


def _check_style(style: str, allowed: tuple[str, ...]) -> None:
    if style not in allowed:
        raise ValueError(f"unknown parameter style {style!r} (expected one of {', '.join(allowed)})")


def bind(query: str, document: object, style: str, *, backslash_escapes: bool | None = None) -> tuple[str, list]:
    """Turn the templates of a query into bound parameters of the given DB-API paramstyle.

    A bare `{{path}}` -> one typed parameter (int/float, bool, None for null or missing, str, raw JSON text for
    objects/arrays; the payload keys -> the document text). A '...' or "..." literal holding templates -> one str
    parameter: its text with doubled quotes un-doubled (and backslash escapes resolved when backslash_escapes,
    the default for named_at/BigQuery) and the fields filled in. Other literals, comments, `identifiers` and
    $$...$$ are kept. With format/pyformat every `%` of the query text is doubled, so always pass the returned
    list to execute(), even when empty. named_at/pyformat return (name, value) pairs (dict() them for pyformat).
    The returned query text depends on the query alone, never on the document.
    """
    _check_style(style, STYLES)
    backslash = style == "named_at" if backslash_escapes is None else backslash_escapes
    text = _text(document)
    out: list[str] = []
    params: list = []

    def field(key: str, typed: bool) -> object:
        if key in PAYLOAD_KEYS:
            return text
        if not typed:
            return select(text, key)
        res = lookup(text, key)
        return None if res is None else res.value()

    for kind, raw, detail in _scan(query, backslash):
        if kind == "template":
            params.append(field(detail, True))
        elif kind == "literal" and len(detail) > 1:
            params.append("".join(p if isinstance(p, str) else field(p[0], False) for p in detail))
        else:
            out.append(raw.replace("%", "%%") if style in ("format", "pyformat") else raw)
            continue
        out.append(_placeholder(style, len(params)))
    return _finish(style, out, params)


_SOURCE_PATTERNS = {
    "qmark": re.compile(r"\?(\d*)"),
    "numeric_dollar": re.compile(r"\$(\d+)"),
    "numeric": re.compile(r"(?<!:):(\d+)"),
    "mssql": re.compile(r"\?(\d*)|(?:\$|(?<!:):)(\d+)"),  # go-mssqldb: ? ?nnn $nnn :nnn
}


def translate_placeholders(query: str, params: list, source_style: str, target_style: str) -> tuple[str, list]:
    """Rewrite the Go clients' placeholders ($1, ?, ?2, :3) into a Python paramstyle, reordering params.

    Each placeholder becomes the next target placeholder and takes its parameter ($2 before $1 swaps them; a
    repeated $1 repeats it). Quoted literals, comments and templates are left alone; for format/pyformat targets
    a literal `%` is doubled. A placeholder without a parameter, or a parameter no placeholder uses, is a
    UsageError (the Go drivers refuse both too).
    """
    _check_style(source_style, SOURCE_STYLES)
    _check_style(target_style, STYLES)
    pattern, escape = _SOURCE_PATTERNS[source_style], target_style in ("format", "pyformat")
    out: list[str] = []
    ordered: list = []
    used: set[int] = set()
    sequence = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal sequence
        number = next((g for g in m.groups() if g), "")
        if not number:
            sequence += 1
        index = int(number) if number else sequence
        if not 1 <= index <= len(params):
            raise UsageError(f"query placeholder {m[0]} has no parameter ({len(params)} given)")
        used.add(index)
        ordered.append(params[index - 1])
        return _placeholder(target_style, len(ordered))

    for kind, raw, _ in _scan(query, False):
        raw = raw.replace("%", "%%") if escape else raw
        out.append(pattern.sub(replace, raw) if kind == "text" else raw)
    if len(used) != len(params):
        unused = ", ".join(str(n) for n in range(1, len(params) + 1) if n not in used)
        raise UsageError(f"query parameter {unused} is not used by any placeholder of the query")
    return _finish(target_style, out, ordered)


# ---------------------------------------------------------------------------------------------- Go JSON
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_SURROGATES = re.compile("[\ud800-\udfff]")
_GO_ESCAPE = re.compile(r"\\(?:u[0-9a-f]{4}|.)")


def _go_string(s: str) -> str:
    """A JSON string as Go (before 1.22) writes it: HTML-safe, raw UTF-8, \\b and \\f as \\u0008 \\u000c."""
    out = json.dumps(_SURROGATES.sub("\ufffd", s), ensure_ascii=False).translate(_HTML_SAFE)
    if "\b" in s or "\f" in s:
        out = _GO_ESCAPE.sub(lambda m: {"\\b": "\\u0008", "\\f": "\\u000c"}.get(m[0], m[0]), out)
    return out


def _go_float(f: float) -> str:
    """encoding/json's float64: plain decimal for 1e-6 <= |f| < 1e21, else exponent with e-07 -> e-7."""
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError(f"json: unsupported value: {f}")
    if f == 0 or 1e-6 <= abs(f) < 1e21:
        return _positional(f)
    r = repr(f)
    return re.sub(r"e-0(\d)$", r"e-\1", r)


def _go_time(dt) -> str:
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"  # %Y: no zeros
    if dt.microsecond:
        text += "." + f"{dt.microsecond:06d}".rstrip("0")
    offset = dt.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _go_key(k: object) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, int) and not isinstance(k, bool):
        return str(int(k))
    raise TypeError(f"go_json: cannot use {type(k).__name__} as an object key")


def _encode(o: object, emit) -> None:
    if o is None or isinstance(o, bool):
        emit({None: "null", True: "true", False: "false"}[o])
    elif isinstance(o, str):
        emit(_go_string(o))
    elif isinstance(o, int):
        emit(str(int(o)))
    elif isinstance(o, float):
        emit(_go_float(o))
    elif isinstance(o, dict):
        items = sorted(((_go_key(k), v) for k, v in o.items()), key=lambda kv: kv[0])
        emit("{")
        for n, (k, v) in enumerate(items):
            emit(("," if n else "") + _go_string(k) + ":")
            _encode(v, emit)
        emit("}")
    elif isinstance(o, (list, tuple)):
        emit("[")
        for n, v in enumerate(o):
            if n:
                emit(",")
            _encode(v, emit)
        emit("]")
    elif isinstance(o, (bytes, bytearray, memoryview)):
        emit('"' + binascii.b2a_base64(bytes(o), newline=False).decode() + '"')
    elif hasattr(o, "utcoffset") and hasattr(o, "hour"):
        emit(f'"{_go_time(o)}"')
    else:
        raise TypeError(f"go_json: cannot encode {type(o).__name__}")


def go_json(obj: object) -> str:
    """JSON as procx's Go encoding/json writes it: sorted keys, compact, HTML-safe, raw UTF-8, Go floats.

    bytes -> base64; datetime -> RFC 3339 with trimmed fraction ("Z" for UTC or naive). None -> null (a nil list).
    """
    parts: list[str] = []
    _encode(obj, parts.append)
    return "".join(parts)


# -- JSON documents with templates (mongodb, elasticsearch, couchbase) -------------------------------------
_STRING_OR_TEMPLATE = re.compile(r'"(?:[^"\\]|\\.)*"|\{\{((?:(?!\{\{).)*?)\}\}', re.S)
_SLOT = "\x00procx-template\x00"


class _Slot:
    """A bare `{{path}}` of a JSON template: replaced by one typed value."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class JsonTemplate:
    """A JSON text holding `{{path}}` templates, bound as values (never spliced into the text).

    The text is parsed once. A template inside a JSON string fills that string (core.template.fill: one pass, the
    inserted text is never expanded again); a bare template becomes the typed value it selects (number, bool,
    null, string, or the selected object/array as JSON data; `{{procx_payload}}` the whole document as a string).
    Templates in object keys are refused. `flag` names the option in error messages.
    """

    def __init__(self, text: str, flag: str) -> None:
        self.flag = flag
        pieces, end = [], 0
        for m in _STRING_OR_TEMPLATE.finditer(text):
            if m[0].startswith('"'):
                continue
            pieces += [text[end:m.start()], json.dumps({_SLOT: m[1]})]
            end = m.end()
        pieces.append(text[end:])
        try:
            self.tree = json.loads("".join(pieces), object_pairs_hook=self._object)
        except json.JSONDecodeError as exc:
            raise ValueError(f"-{flag}: invalid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(self.tree, dict):
            raise ValueError(f"-{flag}: must be a JSON object")

    def _object(self, pairs: list[tuple[str, object]]) -> object:
        if len(pairs) == 1 and pairs[0][0] == _SLOT:
            return _Slot(str(pairs[0][1]))
        for key, _ in pairs:
            if "{{" in key:
                raise ValueError(f"-{self.flag}: templates go in values, not in keys ({key!r})")
        return dict(pairs)

    def render(self, document: str, guard=None) -> object:
        """The JSON value with every template filled from `document` (JSON text); `guard(value, key)` may refuse a
        value a bare template selected."""

        def walk(node: object) -> object:
            if isinstance(node, _Slot):
                value = _typed(document, node.key)
                if guard is not None:
                    guard(value, node.key)
                return value
            if isinstance(node, str):
                return fill(node, document) if "{{" in node else node
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        return walk(self.tree)


def _typed(document: str, key: str) -> object:
    if key in PAYLOAD_KEYS:
        return document
    found = lookup(document, key)
    if found is None:
        return None
    if found.kind == "j":
        return json.loads(found.raw)
    return found.value()
