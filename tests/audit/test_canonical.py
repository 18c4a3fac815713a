"""Canonical JSON against RFC 8785's own examples, plus properties over arbitrary JSON values."""

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalError,
    Memo,
    canonical_bytes,
    format_number,
    parse_json,
)

# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialisations.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_numbers_match_rfc8785_appendix_b(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert format_number(value) == expected
    assert canonical_bytes(value) == expected.encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (-7400.0, "-7400"),
        (0.5, "0.5"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1.5e300, "1.5e+300"),
    ],
)
def test_integral_and_boundary_floats_use_ecmascript_form(value: float, expected: str) -> None:
    assert format_number(value) == expected


def test_rfc8785_section_3_2_4_example() -> None:
    # The input of RFC 8785 section 3.2.4 (whitespace aside) and the output it gives.
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_bytes(json.loads(source)) == expected.encode()


def test_keys_sort_by_utf16_code_units_as_in_rfc8785_section_3_2_3() -> None:
    source = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = list(json.loads(canonical_bytes(source)).values())
    assert order == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        MAX_SAFE_INTEGER + 1,
        -MAX_SAFE_INTEGER - 1,
        "\ud800",
        {1: "int key"},
        {"a": {1, 2}},
        b"bytes",
    ],
)
def test_values_without_an_exact_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalError):
        canonical_bytes(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=20,
)


@given(json_values)
def test_canonical_form_is_json_that_parses_back_to_the_value_and_is_a_fixed_point(value: Any) -> None:
    text = canonical_bytes(value)
    parsed = parse_json(text)
    assert parsed == value
    assert canonical_bytes(parsed) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_double_round_trips_through_its_text(value: float) -> None:
    assert float(format_number(value)) == value


def test_subclasses_of_json_types_encode_as_their_base() -> None:
    from enum import IntEnum, StrEnum

    class Colour(StrEnum):
        RED = "red"

    class Level(IntEnum):
        HIGH = 3

    assert canonical_bytes({Colour.RED: [Colour.RED, Level.HIGH, (1, 2)]}) == b'{"red":["red",3,[1,2]]}'


@given(st.lists(json_values, max_size=4), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=6))
def test_a_batch_memo_of_shared_parts_changes_no_encoding(parts: list[Any], picks: list[tuple[int, int]]) -> None:
    """Values of one batch that share dicts and lists (one object in several places, as a fan-out's payload is in
    every command.sent) encode exactly as they do one by one."""
    if not parts:
        return
    values = [
        {"a": parts[i % len(parts)], "b": [parts[j % len(parts)], {"c": parts[i % len(parts)]}]} for i, j in picks
    ]
    memo: Memo = {}
    assert [canonical_bytes(v, memo) for v in values] == [canonical_bytes(v) for v in values]


def test_a_batch_memo_refuses_what_it_would_refuse_alone() -> None:
    memo: Memo = {}
    shared = {"x": [1.5, "y"]}
    assert canonical_bytes({"p": shared}, memo) == b'{"p":{"x":[1.5,"y"]}}'
    with pytest.raises(CanonicalError):
        canonical_bytes({"p": shared, "bad": float("nan")}, memo)
    assert canonical_bytes([shared, shared], memo) == b'[{"x":[1.5,"y"]},{"x":[1.5,"y"]}]'
