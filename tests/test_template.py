"""core.template: GJSON selection and String(), key extraction, filling, bound query parameters, Go JSON.

The expected values of the GJSON tests were checked against tidwall/gjson v1.14.4 (the version the Go procx and
pushx use); go_json was checked against Go's encoding/json.
"""

from __future__ import annotations

import datetime
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import UsageError
from core.template import (
    bind,
    fill,
    first_key,
    go_json,
    keys,
    lookup,
    original_params,
    select,
    substitute,
    translate_placeholders,
)

# procx.md §3.4 E: rows id=7, name="a<b", work="do it" and id=8, name="c", work="more", serialised per §3.2.
ROWS = [{"id": 7, "name": "a<b", "work": "do it"}, {"id": 8, "name": "c", "work": "more"}]
ROWS_JSON = '[{"id":7,"name":"a\\u003cb","work":"do it"},{"id":8,"name":"c","work":"more"}]'
# pushx.md §3.2 worked examples.
PAYLOAD = '{"id":1,"name":"John","price":9.90,"tags":["a","b"],"address":{"city":"Anytown"},"ok":true,"n":null}'
HOSTILE = '{"id":1,"name":"x\\"); DROP TABLE t; --"}'
FRIENDS = """{
  "name": {"first": "Tom", "last": "Anderson"},
  "age": 37,
  "children": ["Sara", "Alex", "Jack"],
  "fav.movie": "Deer Hunter",
  "friends": [
    {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
    {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
    {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
  ]
}"""


# ------------------------------------------------------------------------------------ procx.md §3.4 E
def test_rows_json_is_the_go_serialisation():
    assert go_json(ROWS) == ROWS_JSON


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("0.work", "do it"),
        ("1.id", "8"),
        ("#.id", "[7,8]"),
        ("0", '{"id":7,"name":"a\\u003cb","work":"do it"}'),
        ("#(id==8).work", "more"),
        ("5.id", ""),
    ],
)
def test_procx_retrieve_field(path, expected):
    assert select(ROWS_JSON, path) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (["done", "{{0.id}}"], ["done", "7"]),
        (["x{{1.name}}y"], ["c"]),
        (["{{procx_payload}}"], [ROWS_JSON.encode()]),
        (["{{0.nope}}"], [""]),
    ],
)
def test_procx_clear_params(params, expected):
    assert original_params(params, ROWS_JSON) == expected
    assert original_params(params, ROWS_JSON.encode()) == expected


def test_procx_payload_param_is_bytes():
    (value,) = original_params(["{{procx_payload}}"], ROWS_JSON.encode())
    assert isinstance(value, bytes) and value == ROWS_JSON.encode()


def test_procx_dynamo_bq_clear_statement():
    statement = "UPDATE t SET s='ok' WHERE id={{0.id}} AND n='{{0.name}}'"
    assert fill(statement, ROWS_JSON) == "UPDATE t SET s='ok' WHERE id=7 AND n='a<b'"
    # the same statement as a query: bound, never spliced
    assert bind(statement, ROWS_JSON, "named_at") == (
        "UPDATE t SET s='ok' WHERE id=@p1 AND n=@p2",
        [("p1", 7), ("p2", "a<b")],
    )


def test_procx_mongodb_clear_command():
    command = '{"delete":"jobs","deletes":[{"q":{"_id":{"$oid":"{{0._id}}"}},"limit":1}]}'
    payload = '[{"_id":"64ab12","s":"p"}]'
    assert fill(command, payload) == '{"delete":"jobs","deletes":[{"q":{"_id":{"$oid":"64ab12"}},"limit":1}]}'


def test_procx_etcd_fail_value():
    assert fill('{"hello":"{{hello}}","st":"failed"}', '{"hello":"world"}') == '{"hello":"world","st":"failed"}'


def test_procx_http_selectors_and_clear_url():
    body = '{"jobs":[{"id":"abc","work":"w"}]}'
    key, work = select(body, "jobs.0.id"), select(body, "jobs.0.work")
    assert (key, work) == ("abc", "w")
    assert substitute("https://x/jobs/{{key}}", {"key": key}) == "https://x/jobs/abc"


def test_procx_object_key_templates():
    assert substitute("done/{{key}}", {"key": "in/job-1.json"}) == "done/in/job-1.json"
    assert substitute("failed/{{key}}", {"key": "jobs-a"}) == "failed/jobs-a"
    assert substitute("{{other}}/{{key}}", {"key": "k"}) == "{{other}}/k"


# ------------------------------------------------------------------------------------ pushx.md §3.2
def test_pushx_bq_string_mode():
    query = 'INSERT INTO t (id, name) VALUES ({{id}}, "{{name}}")'
    assert fill(query, PAYLOAD) == 'INSERT INTO t (id, name) VALUES (1, "John")'
    assert bind(query, PAYLOAD, "named_at") == (
        "INSERT INTO t (id, name) VALUES (@p1, @p2)",
        [("p1", 1), ("p2", "John")],
    )


def test_pushx_bq_hostile_payload_injects_with_fill_but_not_with_bind():
    query = 'INSERT INTO t (id, name) VALUES ({{id}}, "{{name}}")'
    # fill is the original's string mode: it must never be used for queries
    assert fill(query, HOSTILE) == 'INSERT INTO t (id, name) VALUES (1, "x"); DROP TABLE t; --")'
    assert bind(query, HOSTILE, "named_at") == (
        "INSERT INTO t (id, name) VALUES (@p1, @p2)",
        [("p1", 1), ("p2", 'x"); DROP TABLE t; --')],
    )


def test_pushx_postgres_templated_query_is_bound():
    # the original sent this literally (an SQL error); templates in queries are bound parameters now
    query = "INSERT INTO t (id, name) VALUES ({{id}}, '{{name}}')"
    assert bind(query, PAYLOAD, "format") == ("INSERT INTO t (id, name) VALUES (%s, %s)", [1, "John"])


def test_pushx_postgres_dollar_params():
    params = original_params(["{{id}}", "{{name}}"], PAYLOAD)
    assert params == ["1", "John"]
    assert translate_placeholders("INSERT INTO t (id, name) VALUES ($1, $2)", params, "numeric_dollar", "format") == (
        "INSERT INTO t (id, name) VALUES (%s, %s)",
        ["1", "John"],
    )


def test_pushx_mysql_qmark_params():
    params = original_params(["{{id}}", " {{name}}"], PAYLOAD)
    assert params == ["1", "John"]
    assert translate_placeholders("INSERT INTO t VALUES (?, ?)", params, "qmark", "format") == (
        "INSERT INTO t VALUES (%s, %s)",
        ["1", "John"],
    )


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("{{pushx_payload}}", PAYLOAD),
        ("{{address.city}}", "Anytown"),
        ("{{tags}}", '["a","b"]'),
        ("{{tags.1}}", "b"),
        ("{{tags.#}}", "2"),
        ("{{price}}", "9.9"),
        ("{{ok}}", "true"),
        ("{{n}}", ""),
        ("{{missing}}", ""),
        ("{{ id }}", ""),
        ("x{{pushx_payload}}", ""),
        ("literal", "literal"),
        (" text", " text"),
    ],
)
def test_pushx_any_param(param, expected):
    assert original_params([param], PAYLOAD) == [expected]
    assert original_params([param], PAYLOAD.encode()) == [expected]


def test_pushx_payload_param_keeps_trailing_newline():
    assert original_params(["{{pushx_payload}}"], (PAYLOAD + "\n").encode()) == [PAYLOAD + "\n"]


def test_pushx_couchbase_id():
    assert fill("user::{{id}}::{{name}}", PAYLOAD) == "user::1::John"


# ------------------------------------------------------------------------------------ key extraction
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("", []),
        ("no keys", []),
        ("{{a}}", ["a"]),
        ("x{{a}}y{{b.c}}z{{a}}", ["a", "b.c", "a"]),
        ("{{ id }}", [" id "]),
        ("a}}{{b}}", ["a", "b"]),
        ("{{a{{b}}", ["b"]),
        ("{{a}}}", ["a"]),
        ("{{{a}}", ["{a"]),
        ("{{unclosed", []),
        ("{{}}", [""]),
    ],
)
def test_keys(template, expected):
    assert keys(template) == expected


def test_first_key():
    assert first_key("a}}{{b}}") == "a"
    assert first_key("id-{{0.id}}-{{1.id}}") == "0.id"
    assert first_key("{{") == ""


# ------------------------------------------------------------------------------------ GJSON paths
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("name.last", "Anderson"),
        ("age", "37"),
        ("children", '["Sara", "Alex", "Jack"]'),
        ("children.#", "3"),
        ("children.1", "Alex"),
        ("children.9", ""),
        ("child*.2", "Jack"),
        ("c?ildren.0", "Sara"),
        ("fav\\.movie", "Deer Hunter"),
        ("fav.movie", ""),
        ("friends.#.first", '["Dale","Roger","Jane"]'),
        ("friends.1.last", "Craig"),
        ('friends.#(last=="Murphy").first', "Dale"),
        ('friends.#(last=="Murphy")#.first', '["Dale","Jane"]'),
        ("friends.#(last=Murphy)#.first", '["Dale","Jane"]'),
        ("friends.#(age>45)#.last", '["Craig","Murphy"]'),
        ("friends.#(age>=47)#.age", "[68,47]"),
        ("friends.#(age<=47)#.age", "[44,47]"),
        ("friends.#(age!=44)#.first", '["Roger","Jane"]'),
        ('friends.#(first%"D*").last', "Murphy"),
        ('friends.#(first!%"D*")#.last', '["Craig","Murphy"]'),
        ('friends.#(nets.#(=="fb"))#.first', '["Dale","Roger"]'),
        ("friends.#(nets)#.first", '["Dale","Roger","Jane"]'),
        ("friends.#(nope)#.first", "[]"),
        ("friends.#(age==99).first", ""),
        ("friends.#(age==99)#", "[]"),
        ("friends.#.nets.#", "[3,2,2]"),
        ("friends.#.nets.0", '["ig","fb","ig"]'),
        ("friends.#.nets", '[["ig", "fb", "tw"],["fb", "tw"],["ig", "tw"]]'),
        ("friends.#.nets|1", '["fb", "tw"]'),
        ("friends.1|nets|0", "fb"),
        ('friends.#(last=="Murphy")#|#', "2"),
        ("friends.0", '{"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]}'),
        ("name.first.x", ""),
        ("missing", ""),
        ("", ""),
    ],
)
def test_gjson_paths(path, expected):
    assert select(FRIENDS, path) == expected


def test_queries_on_rows():
    assert select(ROWS_JSON, "#(id==8).work") == "more"
    assert select(ROWS_JSON, "#(id==8)") == '{"id":8,"name":"c","work":"more"}'
    assert select(ROWS_JSON, "#.id") == "[7,8]"
    assert select(ROWS_JSON, "#.name") == '["a\\u003cb","c"]'  # raw elements: escapes kept
    assert select(ROWS_JSON, "#(id>6)#.work") == '["do it","more"]'
    assert select(ROWS_JSON, '#(name=="a<b").id') == "7"
    assert select(ROWS_JSON, "#") == "2"


def test_keys_with_special_characters():
    doc = '{"a.b": 1, "a*b": 2, "a?b": 3, "x|y": 4, "": 5, "0": 6, "#": 7, "k\\u002ez": 8, "sp ace": 9}'
    assert select(doc, "a\\.b") == "1"
    assert select(doc, "a\\*b") == "2"
    assert select(doc, "a\\?b") == "3"
    assert select(doc, "x\\|y") == "4"
    assert select(doc, "0") == "6"
    assert select(doc, "#") == "7"  # on an object `#` is an ordinary key
    assert select(doc, "k\\.z") == "8"  # keys are compared unescaped
    assert select(doc, "sp ace") == "9"
    assert select(doc, "a?b") == "1"  # wildcard: the first key that matches


def test_duplicate_keys_first_match_then_later_ones():
    doc = '{"dup": 1, "dup": {"z": 2}}'
    assert select(doc, "dup") == "1"
    assert select(doc, "dup.z") == "2"


def test_lenient_documents():
    assert select("hello", "a") == ""
    assert select("", "a") == ""
    assert select('"just a string"', "a") == ""
    assert select('{"a":1, "b":', "a") == "1"  # gjson reads only as far as it needs
    assert select('log prefix {"a":1}', "a") == "1"  # gjson starts at the first { or [
    assert select('[{"a":1}] trailing', "0.a") == "1"
    assert select(b'{"a":"\xc3\xa9"}', "a") == "é"


# ------------------------------------------------------------------------------------ String() rules
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7", "7"),
        ("-3", "-3"),
        ("0", "0"),
        ("-0", "-0"),
        ("12345678901234567890", "12345678901234567890"),
        ("123456789012345678901234567890123", "123456789012345678901234567890123"),
        ("1.50", "1.5"),
        ("1.0", "1"),
        ("9.90", "9.9"),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1.5e-7", "0.00000015"),
        ("-2.5e+2", "-250"),
        ("0.1", "0.1"),
        ("-0.0", "-0"),
        ("1e21", "1000000000000000000000"),
        ("123456789012345678901234567890.5", "123456789012345680000000000000"),
        ("5e-324", "0." + "0" * 323 + "5"),
        ("1e400", "+Inf"),
        ("true", "true"),
        ("false", "false"),
        ("null", ""),
        ('"plain"', "plain"),
        ('"a\\"b\\\\c\\/d\\n\\t"', 'a"b\\c/d\n\t'),
        ('"\\u00e9\\u4e2d"', "é中"),
        ('"\\ud83d\\ude00"', "😀"),
        ('"é中😀"', "é中😀"),
        ('"x\\ud800y"', "x\ufffdy"),
        ('"ab\\qcd"', "ab"),  # gjson stops at an invalid escape
        ('""', ""),
        ("{}", "{}"),
        ("[]", "[]"),
    ],
)
def test_string_conversion(raw, expected):
    assert select('{"v": ' + raw + "}", "v") == expected


def test_raw_json_keeps_original_spacing():
    doc = '{"a" : { "b" : [1,  2 ,\n 3], "c":"\\u003c" } , "d": 1}'
    assert select(doc, "a") == '{ "b" : [1,  2 ,\n 3], "c":"\\u003c" }'
    assert select(doc, "a.b") == "[1,  2 ,\n 3]"
    assert select(doc, "a.c") == "<"


def test_lookup_typed_values():
    doc = '{"i": 7, "big": 12345678901234567890, "f": 1.50, "t": true, "n": null, "s": "x", "o": {"a": [1]}}'
    assert lookup(doc, "i").value() == 7
    assert lookup(doc, "big").value() == 12345678901234567890
    assert lookup(doc, "f").value() == 1.5
    assert lookup(doc, "t").value() is True
    assert lookup(doc, "n").value() is None
    assert lookup(doc, "s").value() == "x"
    assert lookup(doc, "o").value() == '{"a": [1]}'
    assert lookup(doc, "nope") is None


# ------------------------------------------------------------------------------------ fill
def test_fill_is_single_pass():
    doc = '{"a": "{{b}}", "b": "secret"}'
    assert fill("x={{a}}", doc) == "x={{b}}"  # the original would expand it again to "secret"
    assert fill("{{procx_payload}}|{{a}}", '{"a":"{{procx_payload}}"}') == '{"a":"{{procx_payload}}"}|{{procx_payload}}'


def test_fill_payload_keys_and_missing_fields():
    assert fill("<{{pushx_payload}}>", "raw text") == "<raw text>"
    assert fill("<{{procx_payload}}>", b'{"a":1}') == '<{"a":1}>'
    assert fill("{{a}}-{{nope}}-{{}}", '{"a":1}') == "1--"
    assert fill("{{a}}", [{"a": 1}]) == ""  # a Python document is serialised with go_json first
    assert fill("{{0.a}}", [{"a": 1}]) == "1"


# ------------------------------------------------------------------------------------ bind
DOC = '{"id": 8, "name": "O\'Brien", "price": 9.5, "ok": false, "n": null, "tags": ["a", "b"], "pct": "50%"}'


@pytest.mark.parametrize(
    ("style", "query"),
    [
        ("format", "SELECT * FROM t WHERE id = %s AND name = %s AND p = %s"),
        ("qmark", "SELECT * FROM t WHERE id = ? AND name = ? AND p = ?"),
        ("numeric_dollar", "SELECT * FROM t WHERE id = $1 AND name = $2 AND p = $3"),
        ("numeric", "SELECT * FROM t WHERE id = :1 AND name = :2 AND p = :3"),
        ("named_at", "SELECT * FROM t WHERE id = @p1 AND name = @p2 AND p = @p3"),
        ("pyformat", "SELECT * FROM t WHERE id = %(p1)s AND name = %(p2)s AND p = %(p3)s"),
    ],
)
def test_bind_styles(style, query):
    text, params = bind("SELECT * FROM t WHERE id = {{id}} AND name = '{{name}}' AND p = {{price}}", DOC, style)
    assert text == query
    values = [8, "O'Brien", 9.5]
    assert params == ([(f"p{n}", v) for n, v in enumerate(values, 1)] if style in ("named_at", "pyformat") else values)


def test_bind_typed_bare_parameters():
    text, params = bind("VALUES ({{id}}, {{price}}, {{ok}}, {{n}}, {{missing}}, {{tags}}, {{name}})", DOC, "qmark")
    assert text == "VALUES (?, ?, ?, ?, ?, ?, ?)"
    assert params == [8, 9.5, False, None, None, '["a", "b"]', "O'Brien"]
    assert type(params[0]) is int and type(params[2]) is bool


def test_bind_quoted_literals():
    text, params = bind("""SELECT 'id-{{id}}', "{{name}}!", 'it''s {{id}}', 'plain', "col", 'x''y'""", DOC, "qmark")
    assert text == """SELECT ?, ?, ?, 'plain', "col", 'x''y'"""
    assert params == ["id-8", "O'Brien!", "it's 8"]


def test_bind_payload_keys():
    payload = '{"a": 1}'
    assert bind("INSERT INTO t VALUES ({{procx_payload}}, '<{{pushx_payload}}>')", payload, "qmark") == (
        "INSERT INTO t VALUES (?, ?)",
        [payload, "<" + payload + ">"],
    )


def test_bind_escapes_percent_for_format_styles():
    query = "SELECT * FROM t WHERE a LIKE '50%' AND b = {{id}} AND c LIKE '%{{pct}}' -- 100%"
    assert bind(query, DOC, "format") == ("SELECT * FROM t WHERE a LIKE '50%%' AND b = %s AND c LIKE %s -- 100%%",
                                          [8, "%50%"])
    assert bind(query, DOC, "pyformat")[0] == (
        "SELECT * FROM t WHERE a LIKE '50%%' AND b = %(p1)s AND c LIKE %(p2)s -- 100%%"
    )
    assert bind(query, DOC, "qmark")[0] == "SELECT * FROM t WHERE a LIKE '50%' AND b = ? AND c LIKE ? -- 100%"


def test_bind_leaves_comments_identifiers_and_dollar_quotes_alone():
    query = "SELECT `{{id}}`, $$ {{id}} ' $$, $f$x$f$ /* {{id}} ' */ FROM t -- {{id}} '\nWHERE a = {{id}}"
    text, params = bind(query, DOC, "qmark")
    assert text == "SELECT `{{id}}`, $$ {{id}} ' $$, $f$x$f$ /* {{id}} ' */ FROM t -- {{id}} '\nWHERE a = ?"
    assert params == [8]


def test_bind_template_with_quotes_inside_a_literal():
    doc = '[{"name": "a", "id": 1}, {"name": "b", "id": 2}]'
    assert bind('SELECT "{{#(name=="b").id}}", {{#(name=="a").id}}', doc, "qmark") == ("SELECT ?, ?", ["2", 1])


def test_bind_backslash_escapes():
    query = r"SELECT '\'{{id}}\\', 'a\n{{id}}', 'x\%{{id}}'"
    assert bind(query, DOC, "named_at")[1] == [("p1", "'8\\"), ("p2", "a\n8"), ("p3", "x\\%8")]
    assert bind(query, DOC, "qmark", backslash_escapes=True)[1] == ["'8\\", "a\n8", "x\\%8"]
    with pytest.raises(UsageError, match="unterminated"):
        bind(query, DOC, "qmark")  # standard SQL: the backslash is an ordinary character


def test_bind_errors():
    with pytest.raises(UsageError, match="unterminated"):
        bind("SELECT 'abc", DOC, "qmark")
    with pytest.raises(ValueError, match="unknown parameter style"):
        bind("SELECT 1", DOC, "bogus")


def test_bind_without_templates_and_unclosed_braces():
    assert bind("SELECT 1", DOC, "qmark") == ("SELECT 1", [])
    assert bind("SELECT '{{' , {{", DOC, "qmark") == ("SELECT '{{' , {{", [])


def test_bind_seed_injection_stays_data():
    name = 'x"); DROP TABLE t; --'
    document = go_json({"id": 1, "name": name})
    text, params = bind('INSERT INTO t (id, name) VALUES ({{id}}, "{{name}}")', document, "format")
    assert text == "INSERT INTO t (id, name) VALUES (%s, %s)"
    assert params == [1, name]


QUERY_PIECES = ["{{id}}", "{{name}}", "{{0.x}}", "'", '"', "''", "%", " ", "x", ",", "--", "\n", "/*", "*/", "`",
                "{{", "}}", "?", "$1", "$$", "\\"]


@given(
    query=st.lists(st.sampled_from(QUERY_PIECES), max_size=25).map("".join),
    value=st.text(),
    number=st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
    style=st.sampled_from(["format", "qmark", "numeric_dollar", "named_at", "pyformat"]),
)
def test_bind_query_text_never_depends_on_the_data(query, value, number, style):
    document = go_json({"id": number, "name": value, "0": {"x": value}})
    try:
        baseline = bind(query, "{}", style)
    except UsageError:
        with pytest.raises(UsageError):
            bind(query, document, style)
        return
    text, params = bind(query, document, style)
    assert text == baseline[0]
    assert len(params) == len(baseline[1])


@given(value=st.text(), quote=st.sampled_from(["'", '"']), style=st.sampled_from(["format", "qmark", "named_at"]))
def test_bind_quoted_value_round_trips(value, quote, style):
    text, params = bind(f"INSERT INTO t VALUES ({quote}{{{{v}}}}{quote}, {{{{v}}}})", go_json({"v": value}), style)
    first, second = ({"format": "%s", "qmark": "?", "named_at": f"@p{n}"}[style] for n in (1, 2))
    assert text == f"INSERT INTO t VALUES ({first}, {second})"
    values = [p[1] for p in params] if style == "named_at" else params
    assert values == [value, value]


# ------------------------------------------------------------------------------------ translate_placeholders
def test_translate_reorders_and_repeats():
    query = "UPDATE t SET a = $2, b = $1 WHERE c = $2 AND d = '$1' AND e LIKE '5%'"
    assert translate_placeholders(query, ["one", "two"], "numeric_dollar", "format") == (
        "UPDATE t SET a = %s, b = %s WHERE c = %s AND d = '$1' AND e LIKE '5%%'",
        ["two", "one", "two"],
    )
    assert translate_placeholders(query, ["one", "two"], "numeric_dollar", "qmark") == (
        "UPDATE t SET a = ?, b = ? WHERE c = ? AND d = '$1' AND e LIKE '5%'",
        ["two", "one", "two"],
    )


def test_translate_qmark_respects_literals_and_comments():
    query = "SELECT '?', \"?\" FROM t WHERE a = ? AND b = ? -- ?\n /* ? */ AND c = `?`"
    assert translate_placeholders(query, [1, 2], "qmark", "format") == (
        "SELECT '?', \"?\" FROM t WHERE a = %s AND b = %s -- ?\n /* ? */ AND c = `?`",
        [1, 2],
    )
    assert translate_placeholders(query, [1, 2], "qmark", "named_at")[1] == [("p1", 1), ("p2", 2)]


def test_translate_mssql_forms_and_casts():
    assert translate_placeholders("SELECT ?2, $1, :2, ?, x::int", ["a", "b"], "mssql", "qmark") == (
        "SELECT ?, ?, ?, ?, x::int",
        ["b", "a", "b", "a"],
    )
    assert translate_placeholders("SELECT $1::text, $$ $2 $$", ["a"], "numeric_dollar", "format") == (
        "SELECT %s::text, $$ $2 $$",
        ["a"],
    )


def test_translate_errors():
    with pytest.raises(UsageError, match=r"\$3 has no parameter"):
        translate_placeholders("SELECT $1, $3", ["a", "b"], "numeric_dollar", "format")
    with pytest.raises(UsageError, match="parameter 2 is not used"):
        translate_placeholders("SELECT $1", ["a", "b"], "numeric_dollar", "format")
    with pytest.raises(UsageError, match="no parameter"):
        translate_placeholders("SELECT ?, ?", ["a"], "qmark", "format")
    with pytest.raises(ValueError, match="unknown parameter style"):
        translate_placeholders("SELECT 1", [], "postgres", "format")


@given(order=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12))
def test_translate_any_order(order):
    count = max(order)
    params = [f"v{n}" for n in range(1, count + 1)]
    query = "SELECT " + ", ".join(f"${n}" for n in order) + " WHERE x = '%$1'"
    if set(order) != set(range(1, count + 1)):
        with pytest.raises(UsageError):
            translate_placeholders(query, params, "numeric_dollar", "format")
        return
    text, ordered = translate_placeholders(query, params, "numeric_dollar", "format")
    assert text == "SELECT " + ", ".join("%s" for _ in order) + " WHERE x = '%%$1'"
    assert ordered == [params[n - 1] for n in order]


# ------------------------------------------------------------------------------------ go_json
def test_go_json_rules():
    assert go_json({"b": 1, "a": [True, None, "x"], "é": "<&>\u2028\u2029é"}) == (
        '{"a":[true,null,"x"],"b":1,"é":"\\u003c\\u0026\\u003e\\u2028\\u2029é"}'
    )
    assert go_json(None) == "null"
    assert go_json([]) == "[]"
    assert go_json({2: "x", 10: "y"}) == '{"10":"y","2":"x"}'  # keys sorted as text
    assert go_json("\b\f\n\t\x01\ud800") == '"\\u0008\\u000c\\n\\t\\u0001\ufffd"'
    assert go_json(b"\x00\xff") == '"AP8="'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e-100, "1e-100"),
        (123456789.0, "123456789"),
        (12345678901234567890, "12345678901234567890"),
    ],
)
def test_go_json_numbers(value, expected):
    assert go_json(value) == expected


def test_go_json_times_and_errors():
    utc = datetime.UTC
    assert go_json(datetime.datetime(2022, 10, 21, 18, 44, 52, 500000, tzinfo=utc)) == '"2022-10-21T18:44:52.5Z"'
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert go_json(datetime.datetime(2022, 10, 21, 18, 44, 52, tzinfo=plus2)) == '"2022-10-21T18:44:52+02:00"'
    with pytest.raises(ValueError):
        go_json(math.nan)
    with pytest.raises(TypeError):
        go_json({1.5: "x"})
    with pytest.raises(TypeError):
        go_json(object())


# ------------------------------------------------------------------------------------ properties
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


def expected_text(value: object) -> str:
    """What gjson's String() gives for a value serialised by go_json (floats are checked by value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    return go_json(value)


@given(value=JSON_VALUES)
def test_select_round_trips_go_json(value):
    for document, path in ((go_json({"k": value, "z": 1}), "k"), (go_json([value]), "0")):
        text = select(document, path)
        if isinstance(value, float):
            assert float(text) == value
        else:
            assert text == expected_text(value)


@given(value=JSON_VALUES, indent=st.sampled_from([None, 1, 4]))
def test_select_slices_raw_json_from_any_layout(value, indent):
    document = json.dumps({"k": value}, indent=indent)
    res = lookup(document, "k")
    assert res is not None and json.loads(res.raw) == value
    if isinstance(value, (dict, list)):
        assert res.raw in document


@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_is_shortest_positional(number):
    text = select(f'{{"v":{number!r}}}', "v")
    assert "e" not in text and float(text) == number
    assert float(json.loads(go_json(number))) == number
