"""station.answer data: common answers shared (encoded once per audit write), every answer still recorded in full."""

from __future__ import annotations

from gateway.audit.canonical import canonical_bytes
from gateway.dispatch import _control_names, answer_data
from gateway.interfaces import Reply, ReplyKind


def test_equal_flat_answers_share_one_object_with_the_same_content() -> None:
    a = answer_data(Reply(ReplyKind.RESULT, "m1", payload={"status": "Accepted"}), "Accepted")
    b = answer_data(Reply(ReplyKind.RESULT, "m2", payload={"status": "Accepted"}), "Accepted")
    assert a is b
    assert a == {"kind": ReplyKind.RESULT.value, "status": "Accepted", "payload": {"status": "Accepted"}}
    rejected = answer_data(Reply(ReplyKind.RESULT, "m3", payload={"status": "Rejected"}), "Rejected")
    assert rejected is not a
    assert rejected["payload"] == {"status": "Rejected"}


def test_answers_with_structure_and_errors_are_kept_whole() -> None:
    payload = {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidValue", "additionalInfo": "x"}}
    data = answer_data(Reply(ReplyKind.RESULT, "m1", payload=payload), "Rejected")
    assert data["payload"] == payload
    assert data["payload"] is not payload  # a copy: the entry never changes with the reply
    error = answer_data(Reply(ReplyKind.ERROR, "m2", error_code="NotSupported", description="no DER"), "NotSupported")
    assert error == {
        "kind": ReplyKind.ERROR.value,
        "status": "NotSupported",
        "error": {"code": "NotSupported", "description": "no DER"},
    }
    assert canonical_bytes(error) == canonical_bytes(dict(reversed(list(error.items()))))


def test_control_lists_are_shared_per_set_of_controls() -> None:
    assert _control_names(("freq_droop",)) is _control_names(("freq_droop",))
    assert _control_names(("freq_droop", "volt_var")) == ["freq_droop", "volt_var"]
