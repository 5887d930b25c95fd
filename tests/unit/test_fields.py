"""The declarative field-table checker (`mediaserver.fields`) that settings, SWML params and the
ai / ai_sidecar configs share: types, ranges, unknown keys, nested paths, all errors at once."""

from __future__ import annotations

from typing import Any

import pytest

from mediaserver.fields import MISSING, Field, FieldErrors, Table, check, check_value, is_expression, validate

SERVER = Table({"urls": Field("list", items=Field("str"), nonempty=True), "user": Field("str", "")})
SIP = Table(
    {
        "port": Field("int", 5060, lo=0, hi=65535),
        "mode": Field("str", "udp", choices=("udp", "tcp")),
        "servers": Field("list", [], items=Field("table", table=SERVER)),
        "users": Field("map", {}, items=Field("str", nonempty=True)),
    },
    noun="setting",
)
CONFIG = Table({"sip": Field("table", {}, table=SIP), "name": Field("str", required=True)})


def errors(table: Table, data: Any, path: str = "", **kw: Any) -> list[str]:
    return [str(error) for error in check(table, data, path, **kw)[1]]


def test_good_values_come_back_with_defaults_for_absent_keys() -> None:
    values = validate(CONFIG, {"name": "x", "sip": {"port": 5070, "servers": [{"urls": ["a"]}]}})
    assert values == {
        "name": "x",
        "sip": {"port": 5070, "servers": [{"urls": ["a"], "user": ""}], "mode": "udp", "users": {}},
    }


def test_bad_type_and_out_of_range_name_the_key() -> None:
    assert errors(SIP, {"port": "abc"}, "sip") == ["sip.port: expected an integer, got 'abc'"]
    assert errors(SIP, {"port": True}, "sip") == ["sip.port: expected an integer, got True"]
    assert errors(SIP, {"port": 70000}, "sip") == ["sip.port: 70000 is outside 0..65535"]
    assert errors(SIP, {"mode": "sctp"}, "sip") == ["sip.mode: expected one of udp, tcp, got 'sctp'"]


def test_nested_paths_through_tables_lists_and_maps() -> None:
    data = {"name": "x", "sip": {"servers": [{"urls": ["a"]}, {"urls": ["b", 5]}], "users": {"bob": ""}}}
    assert errors(CONFIG, data) == [
        "sip.servers[1].urls[1]: expected a string, got 5",
        "sip.users.bob: expected a non-empty string, got ''",
    ]
    assert errors(CONFIG, {"name": "x", "sip": {"servers": [3]}}) == ["sip.servers[0]: expected a table, got 3"]


def test_every_error_is_reported_in_one_pass() -> None:
    data = {"sip": {"port": -1, "mode": 1, "prot": 5}, "extra": True}  # mode: the type is checked first
    assert errors(CONFIG, data) == [
        "extra: unknown key",
        "missing required key 'name'",
        "sip.prot: unknown setting",
        "sip.port: -1 is outside 0..65535",
        "sip.mode: expected a string, got 1",
    ]
    with pytest.raises(FieldErrors) as info:
        validate(CONFIG, data)
    assert len(info.value.errors) == 5 and "sip.port: -1 is outside" in str(info.value)
    assert info.value.errors[1].problem == "missing" and info.value.errors[1].path == ""


@pytest.mark.parametrize(
    ("policy", "values", "problems"),
    [
        ("reject", {"a": 1}, ["b: unknown key"]),
        ("ignore", {"a": 1}, []),
        ("keep", {"b": 2, "a": 1}, []),  # kept keys stay in the caller's order
    ],
)
def test_unknown_key_policy(policy: Any, values: dict[str, Any], problems: list[str]) -> None:
    table = Table({"a": Field("int")}, unknown=policy)
    got, errs = check(table, {"b": 2, "a": 1})
    assert got == values and list(got) == list(values) and [str(e) for e in errs] == problems


def test_unknown_key_wording_can_name_the_key_and_the_known_ones() -> None:
    table = Table({"b": Field(), "a": Field()}, unknown_text="unknown field (allowed: {known})")
    assert errors(table, {"c": 1}) == ["c: unknown field (allowed: a, b)"]
    at_table = Table({"a": Field()}, unknown_text="unknown setting {key!r}", unknown_at_table=True)
    assert errors(at_table, {"url": 1}, "ice[0]") == ["ice[0]: unknown setting 'url'"]


def test_expression_strings_stand_in_for_numbers_and_booleans_where_allowed() -> None:
    swml = Table(
        {"max": Field("int", lo=1, hi=100), "beep": Field("bool"), "fmt": Field("any", choices=("wav",))}, expr=True
    )
    assert validate(swml, {"max": "${vars.n}", "beep": "%{call.x}"}) == {"max": "${vars.n}", "beep": "%{call.x}"}
    assert errors(swml, {"max": "{vars.n}"}) == ["max: expected an integer, got '{vars.n}'"]
    no_expr = Table({"fmt": Field("any", choices=("wav",), expr=False), "n": Field("int")})
    assert errors(no_expr, {"fmt": "${x}", "n": "${x}"}) == [
        "fmt: expected one of wav, got '${x}'",
        "n: expected an integer, got '${x}'",
    ]
    assert is_expression("${a}") and is_expression("%{b\nc}") and not is_expression("x ${a}")


def test_loose_tables_take_number_and_boolean_strings_strict_ones_do_not() -> None:
    fields = {"n": Field("int"), "x": Field("num"), "on": Field("bool")}
    loose = Table(fields, loose=True)
    assert validate(loose, {"n": " 12 ", "x": "1.5", "on": "yes"}) == {"n": 12, "x": 1.5, "on": True}
    assert validate(loose, {"n": 1000.0, "on": 0}) == {"n": 1000, "on": False}
    assert errors(loose, {"n": 1.5, "x": "nan", "on": "maybe"}) == [
        "n: expected an integer, got 1.5",
        "x: expected a number, got 'nan'",
        "on: expected true or false, got 'maybe'",
    ]
    assert errors(Table(fields), {"n": "12", "x": "1", "on": 1}) == [
        "n: expected an integer, got '12'",
        "x: expected a number, got '1'",
        "on: expected true or false, got 1",
    ]


def test_an_expected_text_rewords_the_errors_and_speaks_for_a_whole_list() -> None:
    table = Table(
        {
            "max": Field("int", lo=1, hi=100, expected="an integer from 1 to 100"),
            "hints": Field("list", items=Field("str"), expected="a list of strings"),
        }
    )
    assert errors(table, {"max": 101, "hints": ["a", 1]}) == [
        "max: expected an integer from 1 to 100, got 101",
        "hints: expected a list of strings, got ['a', 1]",
    ]
    error = check(table, {"max": "x"})[1][0]
    assert (error.problem, error.value, error.expected) == ("type", "x", "an integer from 1 to 100")


def test_missing_required_names_the_parent_and_a_check_hook_adds_a_rule() -> None:
    table = Table(
        {"url": Field("str", required=True, check=lambda v: None if v.startswith("http") else "not a URL")},
        noun="parameter",
    )
    assert errors(table, {}, "verb") == ["verb: missing required parameter 'url'"]
    assert errors(table, {"url": "ftp:x"}, "verb") == ["verb.url: not a URL"]
    assert errors(table, [1], "verb") == ["verb: expected a table, got [1]"]


def test_repair_puts_the_default_in_and_clamps_numbers() -> None:
    table = Table({"n": Field("num", 700, lo=250, hi=10_000), "t": Field("num", lo=0, hi=2), "b": Field("bool", False)})
    values, errs = check(table, {"n": 20_000, "t": "hot", "b": "maybe"}, "params", repair=True)
    assert values == {"n": 10_000, "b": False}
    assert [(e.path, e.problem, e.repaired) for e in errs] == [
        ("params.n", "range", 10_000),
        ("params.t", "type", MISSING),
        ("params.b", "type", False),
    ]


def test_check_value_checks_one_value() -> None:
    value, errs = check_value(Field("list", items=Field("str")), ["a"], "x.urls")
    assert value == ["a"] and errs == []
    assert [str(e) for e in check_value(Field("list", items=Field("str")), ["a", 2], "x.urls")[1]] == [
        "x.urls[1]: expected a string, got 2"
    ]
