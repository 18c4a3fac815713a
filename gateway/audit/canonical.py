"""Canonical JSON in the style of RFC 8785 (JCS), so one value always hashes to the same bytes.

Objects have their keys sorted by UTF-16 code units, there is no whitespace, strings are escaped as
ECMAScript's ``JSON.stringify`` does, output is UTF-8, and numbers are written as ECMAScript writes an
IEEE 754 double. Anything the format cannot carry exactly is refused rather than approximated: NaN and
Infinity, integers outside +/-2**53 (a double would silently round them), lone surrogates, non-string
keys and non-JSON Python types.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_SAFE_INTEGER",
    "CanonicalError",
    "Memo",
    "canonical_bytes",
    "canonical_text",
    "format_number",
    "parse_json",
    "utf8",
]

MAX_SAFE_INTEGER = 2**53

# The C string encoder escapes exactly what JSON.stringify does: '"', '\\', and controls below 0x20
# (short forms for \b \t \n \f \r, lowercase \u00XX otherwise); everything else is emitted as is.
_encode_string: Any = json.encoder.encode_basestring


class CanonicalError(ValueError):
    """The value has no canonical JSON form."""


def format_number(value: float) -> str:
    """Write a finite double as ECMAScript's Number::toString does (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(value):
        raise CanonicalError(f"{value!r} has no JSON form")
    if value == 0:
        return "0"  # also for -0.0
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digit string that round-trips, which is what ECMAScript uses too.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # Value = 0.digits * 10**point: position of the decimal point relative to the first digit.
    point = len(int_part) + int(exp_text or "0")
    if int_part == "0":
        point -= len(frac_part) - len(frac_part.lstrip("0")) + 1
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        exponent = point - 1
        exp_sign = "+" if exponent >= 0 else "-"
        head = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{head}e{exp_sign}{abs(exponent)}"
    return sign + text


def _utf16_order(item: tuple[str, Any]) -> bytes:
    return item[0].encode("utf-16-be", "surrogatepass")


#: Containers met in one batch, by identity, with their canonical text once met twice; each entry holds its object,
#: so no id is reused while the memo lives.
Memo = dict[int, tuple[Any, str | None]]


def _encode(value: Any, out: list[str], memo: Memo | None = None) -> None:
    """Append the canonical text of ``value``; exact built-in types first, as they are the hot path."""
    kind = type(value)
    if kind is str:
        out.append(_encode_string(value))
    elif kind is dict or kind is list:
        if memo is None:
            (_encode_dict if kind is dict else _encode_list)(value, out, None)
            return
        hit = memo.get(id(value))
        if hit is None:  # first seen: remembered, but its text is kept only once it is met again
            memo[id(value)] = (value, None)
            (_encode_dict if kind is dict else _encode_list)(value, out, memo)
        elif hit[1] is None:
            start = len(out)
            (_encode_dict if kind is dict else _encode_list)(value, out, memo)
            memo[id(value)] = (value, "".join(out[start:]))
        else:
            out.append(hit[1])
    elif kind is tuple:
        _encode_list(value, out, memo)
    elif kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalError(f"integer {value} is outside +/-2**53 and would lose precision")
        out.append(str(value))
    elif kind is float:
        out.append(format_number(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):  # subclasses, e.g. StrEnum
        out.append(_encode_string(str(value)))
    elif isinstance(value, Mapping):
        _encode_dict(dict(value), out, memo)
    elif isinstance(value, list | tuple):
        _encode_list(list(value), out, memo)
    elif isinstance(value, int):
        _encode(int(value), out)
    elif isinstance(value, float):
        _encode(float(value), out)
    else:
        raise CanonicalError(f"{type(value).__name__} is not a JSON type")


def _encode_dict(value: dict[Any, Any], out: list[str], memo: Memo | None) -> None:
    ascii_keys = True
    for key in value:
        if type(key) is not str and not isinstance(key, str):
            raise CanonicalError(f"object key {key!r} is not a string")
        ascii_keys = ascii_keys and key.isascii()
    # Code point order equals UTF-16 code unit order for ASCII; otherwise sort as RFC 8785 says.
    items = sorted(value.items()) if ascii_keys else sorted(value.items(), key=_utf16_order)
    separator = "{"
    for key, item in items:
        out.append(separator)
        out.append(_encode_string(key))
        out.append(":")
        _encode(item, out, memo)
        separator = ","
    out.append("}" if items else "{}")


def _encode_list(value: list[Any] | tuple[Any, ...], out: list[str], memo: Memo | None) -> None:
    separator = "["
    for item in value:
        out.append(separator)
        _encode(item, out, memo)
        separator = ","
    out.append("]" if value else "[]")


def canonical_bytes(value: Any, memo: Memo | None = None) -> bytes:
    """Return the canonical UTF-8 JSON of ``value`` (dicts, lists, str, int, float, bool, None).

    Values encoded one after another (an audit write) often share parts, e.g. the payload every station of a
    fan-out gets: with a ``memo`` kept over the batch (and the values left unchanged meanwhile) a dict or list met
    again is not encoded again."""
    return utf8(canonical_text(value, memo))


def canonical_text(value: Any, memo: Memo | None = None) -> str:
    """The canonical JSON of ``value`` before UTF-8 encoding (``utf8``), to be placed inside a larger text."""
    out: list[str] = []
    _encode(value, out, memo)
    return "".join(out)


def utf8(text: str) -> bytes:
    """``text`` as UTF-8; CanonicalError for a lone surrogate."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError("string holds a lone surrogate, which UTF-8 cannot carry") from exc


def _parse_int(text: str) -> int | float:
    """Integers past 2**53 only arise as the canonical form of a large double (e.g. 1e20)."""
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else float(value)


def parse_json(data: bytes) -> Any:
    """Parse JSON so that ``canonical_bytes`` of the result reproduces canonical input exactly."""
    return json.loads(data, parse_int=_parse_int)
