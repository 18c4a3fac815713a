"""The fast path of an outgoing CALL: text spliced around a serialized payload, validation once per distinct text."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import OcppVersion
from protocols.ocpp import schemas
from protocols.ocpp.frames import Call, PayloadTexts, call_text, payload_text, serialize

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.text(), st.text(), st.dictionaries(st.text(), _json, max_size=5))
def test_call_text_is_what_serialize_writes(message_id: str, action: str, payload: dict[str, Any]) -> None:
    assert call_text(message_id, action, payload_text(payload)) == serialize(Call(message_id, action, payload))


@given(st.lists(st.dictionaries(st.text(), _json, max_size=5), max_size=6))
def test_payload_texts_are_the_payloads_texts(payloads: list[dict[str, Any]]) -> None:
    texts = PayloadTexts(size=3)
    for payload in payloads + payloads:
        assert texts.text(payload) == payload_text(payload)


def test_a_payload_sent_again_is_serialized_once_and_an_equal_new_one_again() -> None:
    """A fan-out's shared payload: the same object gets the very text made the first time (not an equal new one);
    an equal payload in another object is serialized for itself."""
    texts = PayloadTexts(size=2)
    shared = {"isDefault": False, "controlType": "FreqDroop", "controlId": "c-1", "freqDroop": _droop()}
    first = texts.text(shared)
    assert texts.text(shared) is first
    assert texts.text(copy.deepcopy(shared)) is not first
    # Bounded: two other payloads later the shared one is gone, and its text is made again.
    texts.text({"a": 1})
    texts.text({"b": 2})
    again = texts.text(shared)
    assert again == first
    assert again is not first


def _get_variables(name: str) -> dict[str, Any]:
    return {"getVariableData": [{"component": {"name": "DCInputPhaseControl"}, "variable": {"name": name}}]}


def test_outgoing_payloads_keep_what_was_built() -> None:
    """A schema default (NotifyReportRequest's tbc: false) is not added to a payload being sent, behind the audit's
    back, while a receiver's validation still fills it in."""
    payload = {"requestId": 1, "generatedAt": "2026-01-01T00:00:00Z", "seqNo": 0}
    built = copy.deepcopy(payload)
    schemas.validate_outgoing(OcppVersion.V21, "NotifyReport", payload, payload_text(payload))
    assert payload == built
    schemas.validate(OcppVersion.V21, "NotifyReport", payload)
    assert payload == {**built, "tbc": False}


def test_a_text_found_valid_is_not_validated_again_and_an_invalid_one_always_is() -> None:
    valid = {"isDefault": False, "controlType": "FreqDroop", "controlId": "c-1", "freqDroop": _droop()}
    text = payload_text(valid)
    schemas.validate_outgoing(OcppVersion.V21, "SetDERControl", valid, text)
    assert (OcppVersion.V21, "SetDERControl", text) in schemas._VALID_TEXTS
    # The same text again passes from the cache; a different one (here missing controlType) is checked.
    schemas.validate_outgoing(OcppVersion.V21, "SetDERControl", copy.deepcopy(valid), text)
    broken = {k: v for k, v in valid.items() if k != "controlType"}
    for _ in range(2):
        with pytest.raises(schemas.SchemaError, match="controlType"):
            schemas.validate_outgoing(OcppVersion.V21, "SetDERControl", broken, payload_text(broken))
    assert (OcppVersion.V21, "SetDERControl", payload_text(broken)) not in schemas._VALID_TEXTS
    # The same text is valid for one version and action, not for every one.
    with pytest.raises(schemas.SchemaError):
        schemas.validate_outgoing(OcppVersion.V21, "ClearDERControl", valid, text)


def test_the_cache_of_valid_texts_is_bounded() -> None:
    for i in range(schemas._VALID_TEXTS_MAX + 50):
        payload = _get_variables(f"V{i}")
        schemas.validate_outgoing(OcppVersion.V21, "GetVariables", payload, payload_text(payload))
    assert len(schemas._VALID_TEXTS) == schemas._VALID_TEXTS_MAX


def _droop() -> dict[str, Any]:
    return {
        "priority": 1,
        "overFreq": 50.2,
        "underFreq": 49.8,
        "overDroop": 5.0,
        "underDroop": 5.0,
        "responseTime": 1.0,
    }
