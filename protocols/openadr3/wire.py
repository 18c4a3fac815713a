"""Typed OpenADR 3 wire objects, parsed tolerantly: what real VTNs send, not only what the definition allows.

Tolerated on input: snake_case keys (`program_id`, `interval_period`), bodies JSON-encoded twice (a JSON string
holding the JSON), 3.0.1 targets (valuesMap objects) and 3.1 targets (strings), naive datetimes (taken as UTC),
unknown fields (ignored). Everything else that is wrong raises `WireError` naming the field.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

#: Bodies larger than this are refused before parsing (a VTN event with 1000 intervals is well under it).
MAX_BODY_BYTES = 1_048_576
#: OpenADR's "infinity" (User Guide 7.3): P9999Y; anything this long or longer means "until cancelled".
INFINITE_S = 9999 * 365 * 86_400.0

_DURATION = re.compile(
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_BEGINNING_OF_TIME = "0001-01-01"


class WireError(ValueError):
    """Input that is not a usable OpenADR 3 object; the message names the field."""


def parse_duration(text: str) -> float:
    """ISO 8601 duration (the definition's pattern) in seconds. Years are 365 days and months 30 days (the User
    Guide advises against months); a negative duration is refused."""
    m = _DURATION.match(text)
    if m is None:
        raise WireError(f"not an ISO 8601 duration: {text!r}")
    sign, years, months, days, unit, hours, minutes, seconds = m.groups()
    if sign:
        raise WireError(f"negative duration: {text!r}")
    total = int(years or 0) * 365 * 86_400.0 + int(months or 0) * 30 * 86_400.0
    total += int(days or 0) * (7 if unit == "W" else 1) * 86_400.0
    total += int(hours or 0) * 3600.0 + int(minutes or 0) * 60.0 + float(seconds or 0)
    return total


def parse_start(text: str) -> datetime | None:
    """RFC 3339 start; None for OpenADR's "beginning of time" (0001-01-01), which means "now / follow on"."""
    if text.startswith(_BEGINNING_OF_TIME):
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise WireError(f"not an RFC 3339 date-time: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _camel(key: str) -> str:
    if key == "url":
        return "URL"
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    words = [w.upper() if w in ("id", "url") else w.capitalize() for w in rest]
    if words and words[-1] == "URL" and head == "callback":
        words[-1] = "Url"
    return head + "".join(words)


def camel_keys(data: Any) -> Any:
    """snake_case keys to the definition's camelCase (program_id -> programID, callback_url -> callbackUrl)."""
    if isinstance(data, dict):
        return {_camel(k) if isinstance(k, str) else k: camel_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [camel_keys(v) for v in data]
    return data


def decode_body(raw: bytes, *, max_bytes: int = MAX_BODY_BYTES, camel: bool = True) -> Any:
    """JSON body -> Python data with camelCase keys (unless `camel` is False, for RFC 6749 token responses); a body
    that is a JSON string holding JSON is decoded again."""
    if len(raw) > max_bytes:
        raise WireError(f"body of {len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        data = json.loads(raw)
        if isinstance(data, str) and data.lstrip()[:1] in ("{", "["):
            data = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WireError(f"body is not JSON: {exc}") from exc
    return camel_keys(data) if camel else data


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


Model = TypeVar("Model", bound=Wire)


def parse(model: type[Model], data: Any) -> Model:
    """Validate decoded data as `model`, turning pydantic's errors into one located WireError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors())
        raise WireError(f"{model.__name__}: {problems}") from exc


class Point(Wire):
    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)


Value = StrictBool | StrictInt | StrictFloat | StrictStr | Point | list[Point]


class ValuesMap(Wire):
    type: Annotated[str, Field(min_length=1, max_length=128)]
    values: list[Value]


def _start(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    return parse_start(value)


def _duration(value: Any) -> float | None:
    if value is None or isinstance(value, float):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 duration string")
    return parse_duration(value)


Start = Annotated[datetime | None, BeforeValidator(_start)]
Duration = Annotated[float | None, BeforeValidator(_duration)]


class IntervalPeriod(Wire):
    """`start` None = now (or: right after the previous interval); durations in seconds, None = not given."""

    start: Start = None
    duration_s: Duration = Field(default=None, alias="duration")
    randomize_start_s: Duration = Field(default=None, alias="randomizeStart")


class Interval(Wire):
    id: int = Field(ge=-(2**31), lt=2**31)
    interval_period: IntervalPeriod | None = Field(default=None, alias="intervalPeriod")
    payloads: list[ValuesMap]


class EventPayloadDescriptor(Wire):
    payload_type: str = Field(alias="payloadType", min_length=1, max_length=128)
    units: str | None = None
    currency: str | None = None


def _flatten_targets(value: Any) -> Any:
    """3.1 targets are strings; 3.0.1 targets are valuesMaps ({type: GROUP, values: [...]}): we keep the values."""
    if value is None:
        return []
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, dict) and "values" in item:
            out.extend(item["values"] if isinstance(item["values"], list) else [item["values"]])
        else:
            out.append(item)
    return out


Targets = Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], BeforeValidator(_flatten_targets)]


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


class ReportDescriptor(Wire):
    payload_type: str = Field(alias="payloadType", min_length=1, max_length=128)
    reading_type: str | None = Field(default=None, alias="readingType")
    units: str | None = None
    targets: Targets = Field(default_factory=list)
    aggregate: bool = False
    start_interval: int = Field(default=-1, alias="startInterval")
    num_intervals: int = Field(default=-1, alias="numIntervals")
    historical: bool = True
    frequency: int = -1
    repeat: int = 1


class Event(Wire):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]*$")
    program_id: str = Field(alias="programID", min_length=1, max_length=128)
    event_name: str | None = Field(default=None, alias="eventName")
    modification_date_time: str | None = Field(default=None, alias="modificationDateTime")
    priority: int | None = Field(default=None, ge=0)
    targets: Targets = Field(default_factory=list)
    report_descriptors: Annotated[list[ReportDescriptor], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list, alias="reportDescriptors"
    )
    payload_descriptors: Annotated[list[EventPayloadDescriptor], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list, alias="payloadDescriptors"
    )
    interval_period: IntervalPeriod | None = Field(default=None, alias="intervalPeriod")
    intervals: Annotated[list[Interval], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list, max_length=10_000
    )
    duration_s: Duration = Field(default=None, alias="duration")


class Program(Wire):
    id: str = Field(min_length=1, max_length=128)
    program_name: str = Field(alias="programName", min_length=1, max_length=128)
    #: Event payload descriptors only: report descriptors carry readingType/accuracy and are not needed here.
    payload_descriptors: list[EventPayloadDescriptor] = Field(default_factory=list, alias="payloadDescriptors")
    targets: Targets = Field(default_factory=list)

    @field_validator("payload_descriptors", mode="before")
    @classmethod
    def _event_descriptors(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return [] if value is None else value
        return [d for d in value if not (isinstance(d, dict) and d.get("objectType") == "REPORT_PAYLOAD_DESCRIPTOR")]


#: 3.0.1 notifications name the operation with the HTTP verb; 3.1 with CRUD (changeLog issue 209).
_OPERATIONS = {"GET": "READ", "POST": "CREATE", "PUT": "UPDATE", "DELETE": "DELETE"}


class Notification(Wire):
    object_type: Literal["PROGRAM", "EVENT", "REPORT", "SUBSCRIPTION", "VEN", "RESOURCE"] = Field(alias="objectType")
    operation: Literal["READ", "CREATE", "UPDATE", "DELETE"]
    object: dict[str, Any]

    @field_validator("operation", mode="before")
    @classmethod
    def _crud(cls, value: Any) -> Any:
        return _OPERATIONS.get(value, value) if isinstance(value, str) else value


class TokenResponse(Wire):
    """RFC 6749 keys stay snake_case: decode its body with `camel=False`."""

    access_token: str = Field(min_length=1, max_length=4096)
    token_type: str
    expires_in: int | None = Field(default=None, ge=0)

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError(f"token_type must be Bearer, not {value!r}")
        return value
