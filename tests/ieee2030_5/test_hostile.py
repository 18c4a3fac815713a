"""Hostile and broken XML is refused before it can do harm, with a precise code."""

from __future__ import annotations

import pytest

from protocols.ieee2030_5 import decode
from protocols.ieee2030_5.errors import InputError
from protocols.ieee2030_5.safexml import parse

NS = 'xmlns="urn:ieee:std:2030.5:ns"'
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><Time '
    + NS.encode()
    + b"><currentTime>&lol3;</currentTime></Time>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<Time " + NS.encode() + b"><currentTime>&xxe;</currentTime></Time>"
)
DOCTYPE = b"<!DOCTYPE Time><Time " + NS.encode() + b"/>"
UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Time><Time xmlns="urn:ieee:std:2030.5:ns"/>'.encode(
    "utf-16"
)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (LAUGHS, "xml.doctype"),
        (XXE, "xml.doctype"),
        (DOCTYPE, "xml.doctype"),
        (UTF16_DOCTYPE, "xml.doctype"),
        (b"<Time " + NS.encode() + b">" + b"<x/>" * 300_000 + b"</Time>", "xml.too_large"),
        (b'<Time xmlns="urn:ieee:std:2030.5:wrong"/>', "xml.namespace"),
        (b"<Time>", "xml.malformed"),
        (b"", "xml.malformed"),
    ],
)
def test_refused(data: bytes, code: str) -> None:
    with pytest.raises(InputError) as err:
        parse(data)
    assert err.value.code == code


def test_wrong_root_missing_element_and_out_of_range() -> None:
    with pytest.raises(InputError, match=r"expected a DERControlList document, got Time"):
        decode.root(b"<Time " + NS.encode() + b"/>", "DERControlList")
    with pytest.raises(InputError, match=r"Time: required element currentTime is missing"):
        decode.time(decode.root(b"<Time " + NS.encode() + b"/>", "Time"))
    power = (
        b"<DefaultDERControl "
        + NS.encode()
        + b' xmlns:c="https://csipaus.org/ns"><mRID>'
        + b"AB" * 16
        + b"</mRID><DERControlBase><c:opModExpLimW><multiplier>0</multiplier><value>40000</value>"
        b"</c:opModExpLimW></DERControlBase></DefaultDERControl>"
    )
    with pytest.raises(InputError, match=r"opModExpLimW/value: 40000 is outside the Int16 range") as err:
        decode.default_der_control(decode.root(power, "DefaultDERControl"))
    assert err.value.code == "wire.range"


def test_foreign_elements_are_ignored() -> None:
    doc = (
        b"<Time " + NS.encode() + b' xmlns:v="urn:vendor"><v:extra><v:deep/></v:extra><currentTime>5</currentTime>'
        b"<dstEndTime>0</dstEndTime><dstOffset>0</dstOffset><dstStartTime>0</dstStartTime><quality>4</quality>"
        b"<tzOffset>0</tzOffset><v:tail>1</v:tail></Time>"
    )
    assert decode.time(decode.root(doc, "Time")).current_time == 5
