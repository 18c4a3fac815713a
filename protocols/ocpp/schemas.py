"""Validation of OCPP payloads against the official OCA JSON schemas shipped in the `ocpp` package.

Validators are compiled once per (version, action, direction) with fastjsonschema and cached: validation stays on
for every frame the gateway sends, so it has to be cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from gateway.model import OcppVersion
from protocols.ocpp.frames import ErrorCode

_PACKAGE_DIR = {OcppVersion.V21: "v21", OcppVersion.V201: "v201", OcppVersion.V16: "v16"}

Validator = Callable[[Any], Any]


class SchemaError(Exception):
    """A payload that does not match its schema; `code` is the OCPP-J error code to answer with."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _schema_file(version: OcppVersion, action: str, response: bool) -> str:
    if response:
        return f"{action}Response.json"
    if version is OcppVersion.V16 or action in _SEND_ACTIONS:
        return f"{action}.json"
    return f"{action}Request.json"


#: OCPP 2.1 SEND (frame 6) messages: schema files without a Request/Response suffix.
_SEND_ACTIONS = frozenset({"NotifyPeriodicEventStream"})


@cache
def actions(version: OcppVersion) -> frozenset[str]:
    """Every action with a request schema in `version`."""
    folder = resources.files("ocpp") / _PACKAGE_DIR[version] / "schemas"
    names = [p.name for p in folder.iterdir() if p.name.endswith(".json")]
    if version is OcppVersion.V16:
        return frozenset(n[:-5] for n in names if not n.endswith("Response.json"))
    calls = {n[: -len("Request.json")] for n in names if n.endswith("Request.json")}
    return frozenset(calls | {a for a in _SEND_ACTIONS if f"{a}.json" in names})


def is_send(action: str) -> bool:
    """True for actions that travel only as OCPP 2.1 SEND frames (no response)."""
    return action in _SEND_ACTIONS


@cache
def schema(version: OcppVersion, action: str, response: bool) -> dict[str, Any]:
    """The raw JSON schema (for tests and documentation)."""
    path = resources.files("ocpp") / _PACKAGE_DIR[version] / "schemas" / _schema_file(version, action, response)
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@cache
def _validator(version: OcppVersion, action: str, response: bool, fill_defaults: bool = True) -> Validator:
    compiled: Validator = fastjsonschema.compile(
        schema(version, action, response), use_formats=True, use_default=fill_defaults
    )
    return compiled


_RULE_CODES = {
    "required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMAT_VIOLATION,
    "additionalItems": ErrorCode.FORMAT_VIOLATION,
}


def validate(
    version: OcppVersion, action: str, payload: dict[str, Any], *, response: bool = False, fill_defaults: bool = True
) -> None:
    """Raise SchemaError if `payload` is not valid for `action` in `version`; NotImplemented for unknown actions.

    With `fill_defaults` (what a receiver wants) absent fields that have a schema default are set in `payload`."""
    if action not in actions(version):
        raise SchemaError(ErrorCode.NOT_IMPLEMENTED, f"unknown action {action!r} in {version}")
    try:
        _validator(version, action, response, fill_defaults)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_CODES.get(str(exc.rule), ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
        raise SchemaError(code, f"{action}{'Response' if response else 'Request'}: {exc.message}") from None


#: Request texts already found valid, by (version, action, text): a fan-out sends one payload to thousands of
#: stations, so it is validated once per distinct text (the exact JSON, so the same value) rather than per frame.
_VALID_TEXTS: dict[tuple[OcppVersion, str, str], None] = {}
_VALID_TEXTS_MAX = 256


def validate_outgoing(version: OcppVersion, action: str, payload: dict[str, Any], text: str) -> None:
    """Raise SchemaError unless `payload`, whose JSON is `text`, is a valid `action` request; `payload` is left as it
    is (no defaults filled in: what is sent is what was built, and audited)."""
    key = (version, action, text)
    if key in _VALID_TEXTS:
        return
    validate(version, action, payload, fill_defaults=False)
    if len(_VALID_TEXTS) >= _VALID_TEXTS_MAX:
        del _VALID_TEXTS[next(iter(_VALID_TEXTS))]
    _VALID_TEXTS[key] = None
