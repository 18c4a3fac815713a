"""The operator API's OpenAPI 3.1 document, served at /api/openapi.json.

Request and response bodies that are canonical model objects take their JSON Schema from the pydantic models
(docs/model.md), so the document cannot drift from what the API validates; the envelopes around them are written
here. tests/operator/test_openapi.py checks that every registered route is described and that answers validate.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from gateway import __version__
from gateway.model import Alarm, Directive, DirectiveState, StationCapabilities, StationOutcome

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _model_schemas() -> dict[str, Any]:
    """Each model's schema, with its nested definitions hoisted into components."""
    schemas: dict[str, Any] = {}
    models: list[tuple[type[BaseModel], str]] = [
        (Directive, "validation"),
        (StationOutcome, "serialization"),
        (Alarm, "serialization"),
        (StationCapabilities, "serialization"),
    ]
    for model, mode in models:
        schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_TIME = {"type": "string", "format": "date-time"}

_ENVELOPES: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "details": {}},
    },
    "DirectiveRecord": {
        "type": "object",
        "required": ["id", "number", "state", "created", "updated", "directive"],
        "properties": {
            "id": {"type": "string"},
            "number": {"type": "integer"},
            "state": {"enum": [s.value for s in DirectiveState]},
            "created": _TIME,
            "updated": _TIME,
            "directive": _ref("Directive"),
            "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
            "outcomes": {"type": "array", "items": _ref("StationOutcome")},
        },
    },
    "InForce": {
        "type": "object",
        "required": ["directive_id", "state", "priority", "controls"],
        "properties": {
            "directive_id": {"type": "string"},
            "state": {"enum": [DirectiveState.SCHEDULED.value, DirectiveState.ACTIVE.value]},
            "priority": {"type": "integer"},
            "controls": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Station": {
        "type": "object",
        "required": ["id", "groups", "connected", "version", "capabilities", "in_force"],
        "properties": {
            "id": {"type": "string"},
            "groups": {"type": "array", "items": {"type": "string"}},
            "connected": {"type": "boolean"},
            "version": _nullable({"enum": ["ocpp2.1", "ocpp2.0.1", "ocpp1.6"]}),
            "capabilities": _nullable(_ref("StationCapabilities")),
            "power_w": _nullable({"type": "number"}),
            "last_alarm": _nullable(_ref("Alarm")),
            "last_seen": _nullable(_TIME),
            "in_force": {"type": "array", "items": _ref("InForce")},
        },
    },
    "Link": {
        "type": "object",
        "required": ["protocol", "ok", "last_seen", "detail"],
        "properties": {
            "protocol": {"type": "string"},
            "ok": {"type": "boolean"},
            "last_seen": _nullable(_TIME),
            "detail": {"type": "string"},
        },
    },
    "Reload": {
        "type": "object",
        "required": ["added", "removed", "kept"],
        "properties": {k: {"type": "array", "items": {"type": "string"}} for k in ("added", "removed", "kept")},
    },
    "Probe": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: {"type": "array", "items": item}}}


_ERR = _ref("Error")
_UNAUTHORIZED = {"401": _json(_ERR, "missing or wrong bearer token")}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_SECURE: list[dict[str, list[str]]] = [{"bearer": []}]


def _paths() -> dict[str, Any]:
    audit_params = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": what}
        for name, what in [
            ("directive", "directive id"),
            ("station", "station id"),
            ("kind", "entry kind, e.g. command.sent"),
            ("message", "OCPP message id"),
            ("signal", "utility signal id"),
        ]
    ] + [
        {"name": "since", "in": "query", "required": False, "schema": _TIME, "description": "inclusive"},
        {"name": "until", "in": "query", "required": False, "schema": _TIME, "description": "exclusive"},
        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
    ]
    return {
        "/livez": {"get": {"summary": "the process answers", "security": [], "responses": {
            "200": _json(_ref("Probe"), "alive")}}},
        "/readyz": {"get": {
            "summary": "store writable, OCPP endpoint listening, every configured utility link healthy",
            "security": [],
            "responses": {"200": _json(_ref("Probe"), "ready"), "503": _json(_ref("Probe"), "not ready")},
        }},
        "/metrics": {"get": {"summary": "Prometheus metrics (dergw_*)", "security": [], "responses": {
            "200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {
                "schema": {"type": "string"}}}}}}},
        "/": {"get": {"summary": "redirects to the dashboard", "security": [], "responses": {
            "302": {"description": "to /dashboard/"}}}},
        "/dashboard": {"get": {"summary": "redirects to /dashboard/", "security": [], "responses": {
            "302": {"description": "to /dashboard/"}}}},
        "/dashboard/": {"get": {"summary": "the operator dashboard page (docs/dashboard.md)", "security": [],
                                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
        "/dashboard/{name}": {"get": {
            "summary": "the dashboard's static files (app.js, style.css)", "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file"}, "404": {"description": "no such file"}}}},
        "/dashboard/events": {"get": {
            "summary": "live dashboard events (server-sent events); EventSource cannot send headers, so the bearer "
                       "token comes as ?token= here and only here",
            "security": [],
            "parameters": [{"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "text/event-stream", "content": {"text/event-stream": {}}},
                          "401": _json(_ERR, "missing or wrong token")}}},
        "/api/openapi.json": {"get": {"summary": "this document", "security": [], "responses": {
            "200": _json({"type": "object"}, "OpenAPI 3.1")}}},
        "/api/directives": {
            "post": {
                "summary": "submit a canonical directive (docs/model.md)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Directive")}}},
                "responses": {
                    "202": _json(_ref("DirectiveRecord"), "accepted; outcomes follow"),
                    "400": _json(_ERR, "not JSON"),
                    "409": _json(_ERR, "a directive with this id exists"),
                    "413": _json(_ERR, "body too large"),
                    "422": _json(_ERR, "invalid directive or unknown target; details list each problem"),
                    **_UNAUTHORIZED,
                },
            },
            "get": {"summary": "recent directives (newest first, at most 200)", "responses": {
                "200": _json(_list_of("directives", _ref("DirectiveRecord")), "directives"), **_UNAUTHORIZED}},
        },
        "/api/directives/{id}": {
            "parameters": _ID,
            "get": {"summary": "a directive with its per-station outcomes", "responses": {
                "200": _json(_ref("DirectiveRecord"), "the directive"), "404": _json(_ERR, "unknown"),
                **_UNAUTHORIZED}},
            "delete": {"summary": "cancel: clear it from every station that accepted it", "responses": {
                "200": _json(_ref("DirectiveRecord"), "cancelled"), "404": _json(_ERR, "unknown"),
                **_UNAUTHORIZED}},
        },
        "/api/stations": {"get": {"summary": "every configured station: state, version, capabilities, in-force "
                                             "controls", "responses": {
            "200": _json(_list_of("stations", _ref("Station")), "stations"), **_UNAUTHORIZED}}},
        "/api/stations/reload": {"post": {
            "summary": "re-read the station list from the configuration file (as SIGHUP does)",
            "responses": {
                "200": _json(_ref("Reload"), "added stations may connect, removed ones were disconnected"),
                "409": _json(_ERR, "the gateway was not started from a configuration file"),
                "422": _json(_ERR, "the file does not validate; nothing changed"),
                **_UNAUTHORIZED,
            },
        }},
        "/api/stations/{id}": {"parameters": _ID, "get": {"summary": "one station", "responses": {
            "200": _json(_ref("Station"), "the station"), "404": _json(_ERR, "unknown"), **_UNAUTHORIZED}}},
        "/api/alarms": {"get": {
            "summary": "recent station alarms (NotifyDERAlarm), oldest first",
            "parameters": [{"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": _json(_list_of("alarms", _ref("Alarm")), "alarms"),
                          "400": _json(_ERR, "bad limit"), **_UNAUTHORIZED},
        }},
        "/api/links": {"get": {"summary": "configured utility links and their health", "responses": {
            "200": _json(_list_of("links", _ref("Link")), "links"), **_UNAUTHORIZED}}},
        "/api/audit": {"get": {
            "summary": "audit entries (docs/audit.md) by directive, station, kind, message, signal and time",
            "parameters": audit_params,
            "responses": {"200": _json(_list_of("entries", {"type": "object"}), "entries"),
                          "400": _json(_ERR, "bad query"), **_UNAUTHORIZED},
        }},
    }  # fmt: skip


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "der-gateway operator API", "version": __version__},
        "components": {
            "schemas": {**_model_schemas(), **_ENVELOPES},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": _SECURE,
        "paths": _paths(),
    }
