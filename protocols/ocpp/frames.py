"""OCPP-J message frames (OCPP 2.1 part 4, section 4): parse and serialize, no I/O.

The `ocpp` package has no CALLRESULTERROR (5) or SEND (6) frames and its serializer mangles several 2.1 field
names, so framing is done here on plain dicts; the package is used only for its schemas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from gateway.model import OcppVersion

MAX_MESSAGE_ID = 36


class MessageType(IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5  # OCPP 2.1 only
    SEND = 6  # OCPP 2.1 only


class ErrorCode:
    """RPC framework error codes. OCPP 1.6 spells some differently (FormationViolation, OccurenceConstraint...)."""

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


_V16_CODES = {
    ErrorCode.FORMAT_VIOLATION: "FormationViolation",
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: "OccurenceConstraintViolation",
    ErrorCode.RPC_FRAMEWORK_ERROR: "ProtocolError",
    ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: "NotSupported",
}


def error_code(code: str, version: OcppVersion) -> str:
    """The wire spelling of an error code in `version` (1.6 has its own list)."""
    return _V16_CODES.get(code, code) if version is OcppVersion.V16 else code


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Send:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallResultError:
    message_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)


Frame = Call | Send | CallResult | CallError | CallResultError


class FrameError(Exception):
    """A frame that cannot be processed; `message_id` is "-1" when it could not be read (part 4, 4.2.3)."""

    def __init__(self, code: str, description: str, message_id: str = "-1") -> None:
        super().__init__(description)
        self.code = code
        self.description = description[:255]
        self.message_id = message_id


_ID_PREFIX = re.compile(r'^\s*\[\s*[2-6]\s*,\s*"([^"\\]{1,36})"')


def peek_message_id(text: str | bytes) -> str:
    """Best-effort message id from the head of a frame too large or broken to parse; "-1" when unreadable."""
    head = text[:128]
    if isinstance(head, bytes):
        head = head.decode("utf-8", errors="replace")
    match = _ID_PREFIX.match(head)
    return match.group(1) if match else "-1"


def parse(text: str | bytes, version: OcppVersion) -> Frame:
    """Decode one WebSocket text message into a frame; raise FrameError with the code to answer."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, f"message is not valid JSON: {exc}") from None
    if not isinstance(data, list) or len(data) < 3:
        raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, "message is not an OCPP-J array of at least 3 elements")
    kind, message_id = data[0], data[1]
    if not isinstance(message_id, str) or not message_id:
        raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, "message id is not a non-empty string")
    if len(message_id) > MAX_MESSAGE_ID:
        raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, f"message id longer than {MAX_MESSAGE_ID} characters")
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, "message type is not an integer", message_id)
    allowed = (2, 3, 4) if version is not OcppVersion.V21 else (2, 3, 4, 5, 6)
    if kind not in allowed:
        raise FrameError(ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED, f"message type {kind} is not supported", message_id)
    expected = {2: 4, 3: 3, 4: 5, 5: 5, 6: 4}[kind]
    if len(data) != expected:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"message type {kind} needs {expected} elements, got {len(data)}",
            message_id,
        )
    if kind in (MessageType.CALL, MessageType.SEND):
        action, payload = data[2], data[3]
        if not isinstance(action, str) or not action:
            raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, "action is not a string", message_id)
        if not isinstance(payload, dict):
            raise FrameError(ErrorCode.FORMAT_VIOLATION, "payload is not a JSON object", message_id)
        return (Call if kind == MessageType.CALL else Send)(message_id, action, payload)
    if kind == MessageType.CALLRESULT:
        if not isinstance(data[2], dict):
            raise FrameError(ErrorCode.FORMAT_VIOLATION, "payload is not a JSON object", message_id)
        return CallResult(message_id, data[2])
    code, description, details = data[2], data[3], data[4]
    if not isinstance(code, str) or not isinstance(description, str) or not isinstance(details, dict):
        raise FrameError(ErrorCode.FORMAT_VIOLATION, "error frame fields have the wrong types", message_id)
    return (CallError if kind == MessageType.CALLERROR else CallResultError)(message_id, code, description, details)


def payload_text(payload: dict[str, Any]) -> str:
    """A payload as compact JSON text, as `serialize` writes it inside a frame."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class PayloadTexts:
    """Payload texts (`payload_text`) by payload identity: a fan-out passes one payload object to every station, and
    it is serialized once rather than once per station (about 4 us for a SetDERControl).

    Callers never change a payload once they have passed it to be sent (gateway.interfaces.StationLink.call says
    so). Each entry holds its payload, so no id is reused while the entry is kept; the oldest go first."""

    __slots__ = ("_size", "_texts")

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._texts: dict[int, tuple[dict[str, Any], str]] = {}

    def text(self, payload: dict[str, Any]) -> str:
        hit = self._texts.get(id(payload))
        if hit is not None and hit[0] is payload:
            return hit[1]
        text = payload_text(payload)
        if len(self._texts) >= self._size:
            del self._texts[next(iter(self._texts))]
        self._texts[id(payload)] = (payload, text)
        return text


def call_text(message_id: str, action: str, payload: str) -> str:
    """The text of a CALL around a payload already serialized with `payload_text` (equal to `serialize`'s)."""
    return f"[{_CALL},{_string(message_id)},{_string(action)},{payload}]"


_string: Callable[[str], str] = json.encoder.encode_basestring
_CALL = int(MessageType.CALL)


def serialize(frame: Frame) -> str:
    """Encode a frame as compact JSON text (UTF-8 when sent)."""
    body: list[Any]
    match frame:
        case Call(message_id, action, payload):
            body = [MessageType.CALL, message_id, action, payload]
        case Send(message_id, action, payload):
            body = [MessageType.SEND, message_id, action, payload]
        case CallResult(message_id, payload):
            body = [MessageType.CALLRESULT, message_id, payload]
        case CallError(message_id, code, description, details):
            body = [MessageType.CALLERROR, message_id, code, description[:255], details]
        case CallResultError(message_id, code, description, details):
            body = [MessageType.CALLRESULTERROR, message_id, code, description[:255], details]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
