"""XML -> wire models. Every missing element, wrong type and out-of-range value raises InputError naming the path.

Elements in foreign namespaces (vendor extensions, CSIP-AUS elements we do not use) are ignored, as are 2030.5
elements the gateway has no use for: servers add them freely and they must not stop a control.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from lxml import etree

from protocols.ieee2030_5 import wire
from protocols.ieee2030_5.errors import InputError
from protocols.ieee2030_5.safexml import CSIPAUS_NS, NS, Element, parse

T = TypeVar("T")

_RANGES: dict[str, tuple[int, int]] = {
    "UInt8": (0, 0xFF),
    "UInt16": (0, 0xFFFF),
    "UInt32": (0, 0xFFFF_FFFF),
    "UInt40": (0, 0xFF_FFFF_FFFF),
    "Int8": (-128, 127),
    "Int16": (-32768, 32767),
    "Int32": (-(2**31), 2**31 - 1),
    "Int48": (-(2**47), 2**47 - 1),
    "Int64": (-(2**63), 2**63 - 1),
}
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


class Reader:
    """Typed access to one element's children, with the element path kept for error messages."""

    def __init__(self, element: Element, path: str) -> None:
        self.element = element
        self.path = path

    def _find(self, name: str, ns: str = NS) -> Element | None:
        return self.element.find(f"{{{ns}}}{name}")

    def child(self, name: str, ns: str = NS) -> Reader | None:
        found = self._find(name, ns)
        return None if found is None else Reader(found, f"{self.path}/{name}")

    def need(self, name: str, ns: str = NS) -> Reader:
        found = self.child(name, ns)
        if found is None:
            raise InputError("wire.missing", f"{self.path}: required element {name} is missing")
        return found

    def children(self, name: str) -> list[Reader]:
        return [Reader(e, f"{self.path}/{name}[{i}]") for i, e in enumerate(self.element.findall(f"{{{NS}}}{name}"))]

    def text(self, name: str, ns: str = NS) -> str | None:
        found = self._find(name, ns)
        return None if found is None else (found.text or "").strip()

    def integer(self, name: str, kind: str, ns: str = NS) -> int | None:
        raw = self.text(name, ns)
        return None if raw is None else _int(raw, kind, f"{self.path}/{name}")

    def need_int(self, name: str, kind: str, ns: str = NS) -> int:
        value = self.integer(name, kind, ns)
        if value is None:
            raise InputError("wire.missing", f"{self.path}: required element {name} is missing")
        return value

    def boolean(self, name: str) -> bool | None:
        raw = self.text(name)
        if raw is None:
            return None
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        raise InputError("wire.type", f"{self.path}/{name}: {raw!r} is not an xs:boolean")

    def need_bool(self, name: str) -> bool:
        value = self.boolean(name)
        if value is None:
            raise InputError("wire.missing", f"{self.path}: required element {name} is missing")
        return value

    def hex(self, name: str, max_bytes: int, *, exact: bool = False) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        where = f"{self.path}/{name}"
        if not _HEX.match(raw) or len(raw) % 2:
            raise InputError("wire.type", f"{where}: {raw!r} is not hexBinary")
        if len(raw) > 2 * max_bytes or (exact and len(raw) != 2 * max_bytes):
            size = f"exactly {max_bytes}" if exact else f"at most {max_bytes}"
            raise InputError("wire.range", f"{where}: {raw!r} must be {size} bytes")
        return raw.lower()

    def string(self, name: str, max_len: int) -> str | None:
        """Free text, kept exactly (numbers and codes are stripped of layout whitespace, text is not)."""
        found = self._find(name)
        raw = None if found is None else (found.text or "")
        if raw is not None and len(raw) > max_len:
            raise InputError("wire.range", f"{self.path}/{name}: {len(raw)} characters, at most {max_len} allowed")
        return raw

    def attr(self, name: str) -> str | None:
        value = self.element.get(name)
        return None if value is None else str(value)

    def attr_int(self, name: str, kind: str) -> int | None:
        raw = self.attr(name)
        return None if raw is None else _int(raw, kind, f"{self.path}@{name}")

    def link(self, name: str) -> wire.Link | None:
        found = self.child(name)
        return None if found is None else wire.Link(found.need_attr("href"))

    def list_link(self, name: str) -> wire.ListLink | None:
        found = self.child(name)
        return None if found is None else wire.ListLink(found.need_attr("href"), found.attr_int("all", "UInt32"))

    def need_attr(self, name: str) -> str:
        value = self.attr(name)
        if not value:
            raise InputError("wire.missing", f"{self.path}: required attribute {name} is missing")
        return value

    def mrid(self, name: str = "mRID") -> str:
        value = self.hex(name, 16, exact=True)
        if value is None:
            raise InputError("wire.missing", f"{self.path}: required element {name} is missing")
        return value


def _int(raw: str, kind: str, where: str) -> int:
    try:
        value = int(raw, 10)
    except ValueError:
        raise InputError("wire.type", f"{where}: {raw!r} is not an integer ({kind})") from None
    lo, hi = _RANGES[kind]
    if not lo <= value <= hi:
        raise InputError("wire.range", f"{where}: {value} is outside the {kind} range {lo}..{hi}")
    return value


def root(data: bytes, expected: str) -> Reader:
    """Parse `data` safely and check that its root element is `expected`."""
    element = parse(data)
    name = etree.QName(element).localname
    if name != expected:
        raise InputError("wire.root", f"expected a {expected} document, got {name}")
    return Reader(element, expected)


# -- value types -----------------------------------------------------------------------------------------------------


def _power(r: Reader | None) -> wire.Power | None:
    if r is None:
        return None
    return wire.Power(r.need_int("value", "Int16"), r.need_int("multiplier", "Int8"))


def _need_power(r: Reader, name: str) -> wire.Power:
    found = r.need(name)
    return wire.Power(found.need_int("value", "Int16"), found.need_int("multiplier", "Int8"))


def _pf(r: Reader | None) -> wire.PowerFactorWithExcitation | None:
    if r is None:
        return None
    return wire.PowerFactorWithExcitation(
        r.need_int("displacement", "UInt16"), r.need_int("multiplier", "Int8"), r.need_bool("excitation")
    )


def control_base(r: Reader) -> wire.ControlBase:
    fixed_var = r.child("opModFixedVar")
    droop = r.child("opModFreqDroop")
    links = tuple(
        (name, found.need_attr("href"))
        for name in (*wire.CURVE_LINKS, *wire.CURVE_LINKS_LATE)
        if (found := r.child(name)) is not None
    )
    return wire.ControlBase(
        op_mod_connect=r.boolean("opModConnect"),
        op_mod_energize=r.boolean("opModEnergize"),
        fixed_pf_absorb=_pf(r.child("opModFixedPFAbsorbW")),
        fixed_pf_inject=_pf(r.child("opModFixedPFInjectW")),
        fixed_var=None
        if fixed_var is None
        else wire.FixedVar(fixed_var.need_int("refType", "UInt8"), fixed_var.need_int("value", "Int16")),
        fixed_w=r.integer("opModFixedW", "Int16"),
        freq_droop=None
        if droop is None
        else wire.FreqDroop(
            droop.need_int("dBOF", "UInt32"),
            droop.need_int("dBUF", "UInt32"),
            droop.need_int("kOF", "UInt16"),
            droop.need_int("kUF", "UInt16"),
            droop.need_int("openLoopTms", "UInt16"),
        ),
        curve_links=links,
        max_lim_w=r.integer("opModMaxLimW", "UInt16"),
        target_var=_power(r.child("opModTargetVar")),
        target_w=_power(r.child("opModTargetW")),
        ramp_tms=r.integer("rampTms", "UInt16"),
        imp_lim_w=_power(r.child("opModImpLimW", CSIPAUS_NS)),
        exp_lim_w=_power(r.child("opModExpLimW", CSIPAUS_NS)),
        gen_lim_w=_power(r.child("opModGenLimW", CSIPAUS_NS)),
        load_lim_w=_power(r.child("opModLoadLimW", CSIPAUS_NS)),
    )


# -- resources -------------------------------------------------------------------------------------------------------


def der_control(r: Reader) -> wire.DERControl:
    status = r.need("EventStatus")
    interval = r.need("interval")
    return wire.DERControl(
        mrid=r.mrid(),
        creation_time=r.need_int("creationTime", "Int64"),
        event_status=wire.EventStatus(
            current_status=status.need_int("currentStatus", "UInt8"),
            date_time=status.need_int("dateTime", "Int64"),
            potentially_superseded=status.need_bool("potentiallySuperseded"),
            potentially_superseded_time=status.integer("potentiallySupersededTime", "Int64"),
            reason=status.string("reason", 192),
        ),
        start=interval.need_int("start", "Int64"),
        duration=interval.need_int("duration", "UInt32"),
        base=control_base(r.need("DERControlBase")),
        href=r.attr("href"),
        description=r.string("description", 32),
        version=r.integer("version", "UInt16"),
        reply_to=r.attr("replyTo"),
        response_required=_response_required(r),
        randomize_start=r.integer("randomizeStart", "Int16"),
        randomize_duration=r.integer("randomizeDuration", "Int16"),
    )


def _response_required(r: Reader) -> int:
    raw = r.attr("responseRequired")
    if raw is None:
        return 0
    if not _HEX.match(raw) or not 1 <= len(raw) <= 2:
        raise InputError("wire.type", f"{r.path}@responseRequired: {raw!r} is not HexBinary8")
    return int(raw, 16)


def default_der_control(r: Reader) -> wire.DefaultDERControl:
    return wire.DefaultDERControl(
        mrid=r.mrid(),
        base=control_base(r.need("DERControlBase")),
        href=r.attr("href"),
        description=r.string("description", 32),
        version=r.integer("version", "UInt16"),
        set_es_delay=r.integer("setESDelay", "UInt32"),
        set_es_high_freq=r.integer("setESHighFreq", "UInt16"),
        set_es_high_volt=r.integer("setESHighVolt", "Int16"),
        set_es_low_freq=r.integer("setESLowFreq", "UInt16"),
        set_es_low_volt=r.integer("setESLowVolt", "Int16"),
        set_es_ramp_tms=r.integer("setESRampTms", "UInt32"),
        set_es_random_delay=r.integer("setESRandomDelay", "UInt32"),
        set_grad_w=r.integer("setGradW", "UInt16"),
        set_soft_grad_w=r.integer("setSoftGradW", "UInt16"),
    )


def der_curve(r: Reader) -> wire.DERCurve:
    points = tuple(
        wire.CurvePoint(p.need_int("xvalue", "Int32"), p.need_int("yvalue", "Int32"), p.boolean("excitation"))
        for p in r.children("CurveData")
    )
    if not 1 <= len(points) <= 10:
        raise InputError("wire.range", f"{r.path}: {len(points)} CurveData points, 1..10 allowed")
    return wire.DERCurve(
        mrid=r.mrid(),
        creation_time=r.need_int("creationTime", "Int64"),
        curve_type=r.need_int("curveType", "UInt8"),
        points=points,
        x_multiplier=r.need_int("xMultiplier", "Int8"),
        y_multiplier=r.need_int("yMultiplier", "Int8"),
        y_ref_type=r.need_int("yRefType", "UInt8"),
        href=r.attr("href"),
        description=r.string("description", 32),
        version=r.integer("version", "UInt16"),
        autonomous_v_ref_enable=r.boolean("autonomousVRefEnable"),
        autonomous_v_ref_time_constant=r.integer("autonomousVRefTimeConstant", "UInt32"),
        open_loop_tms=r.integer("openLoopTms", "UInt16"),
        v_ref=r.integer("vRef", "UInt16"),
    )


def der_program(r: Reader) -> wire.DERProgram:
    return wire.DERProgram(
        mrid=r.mrid(),
        primacy=r.need_int("primacy", "UInt8"),
        href=r.attr("href"),
        description=r.string("description", 32),
        version=r.integer("version", "UInt16"),
        active_controls=r.list_link("ActiveDERControlListLink"),
        default_control=r.link("DefaultDERControlLink"),
        controls=r.list_link("DERControlListLink"),
        curves=r.list_link("DERCurveListLink"),
    )


def function_set_assignments(r: Reader) -> wire.FunctionSetAssignments:
    return wire.FunctionSetAssignments(
        mrid=r.mrid(),
        href=r.attr("href"),
        description=r.string("description", 32),
        programs=r.list_link("DERProgramListLink"),
        time=r.link("TimeLink"),
    )


def end_device(r: Reader) -> wire.EndDevice:
    return wire.EndDevice(
        sfdi=r.need_int("sFDI", "UInt40"),
        changed_time=r.need_int("changedTime", "Int64"),
        href=r.attr("href"),
        lfdi=r.hex("lFDI", 20, exact=True),
        der_list=r.list_link("DERListLink"),
        log_events=r.list_link("LogEventListLink"),
        enabled=r.boolean("enabled"),
        fsa_list=r.list_link("FunctionSetAssignmentsListLink"),
        post_rate=r.integer("postRate", "UInt32"),
        registration=r.link("RegistrationLink"),
        subscriptions=r.list_link("SubscriptionListLink"),
        device_category=r.hex("deviceCategory", 4),
    )


def der(r: Reader) -> wire.DER:
    return wire.DER(
        href=r.attr("href"),
        availability=r.link("DERAvailabilityLink"),
        capability=r.link("DERCapabilityLink"),
        settings=r.link("DERSettingsLink"),
        status=r.link("DERStatusLink"),
    )


def der_capability(r: Reader) -> wire.DERCapability:
    return wire.DERCapability(
        modes_supported=int(r.hex("modesSupported", 4) or "0", 16),
        rtg_max_w=_need_power(r, "rtgMaxW"),
        der_type=r.need_int("type", "UInt8"),
        doe_modes_supported=int(r.text("doeModesSupported", CSIPAUS_NS) or "0", 16),
        rtg_max_charge_rate_w=_power(r.child("rtgMaxChargeRateW")),
        rtg_max_discharge_rate_w=_power(r.child("rtgMaxDischargeRateW")),
        rtg_max_var=_power(r.child("rtgMaxVar")),
    )


def _status_value(r: Reader, name: str, hex_bytes: int = 0) -> int | None:
    s = r.child(name)
    if s is None:
        return None
    if hex_bytes:
        return int(s.hex("value", hex_bytes) or "0", 16)
    return s.need_int("value", "UInt8")


def der_status(r: Reader) -> wire.DERStatus:
    alarm = r.hex("alarmStatus", 4)
    return wire.DERStatus(
        reading_time=r.need_int("readingTime", "Int64"),
        gen_connect_status=_status_value(r, "genConnectStatus", 1),
        inverter_status=_status_value(r, "inverterStatus"),
        operational_mode_status=_status_value(r, "operationalModeStatus"),
        state_of_charge=_status_value(r, "stateOfChargeStatus"),
        alarm_status=int(alarm, 16) if alarm is not None else None,
    )


def mirror_meter_reading(r: Reader) -> wire.MirrorMeterReading:
    reading = r.child("Reading")
    period = reading.child("timePeriod") if reading is not None else None
    rt = r.child("ReadingType")
    return wire.MirrorMeterReading(
        mrid=r.mrid(),
        reading_type=None
        if rt is None
        else wire.ReadingType(
            kind=rt.integer("kind", "UInt8") or 0,
            uom=rt.integer("uom", "UInt8") or 0,
            power_of_ten_multiplier=rt.integer("powerOfTenMultiplier", "Int8") or 0,
            flow_direction=rt.integer("flowDirection", "UInt8") or 0,
        ),
        description=r.string("description", 32),
        value=reading.integer("value", "Int48") if reading is not None else None,
        time_start=period.integer("start", "Int64") if period is not None else None,
        time_duration=period.integer("duration", "UInt32") if period is not None else None,
    )


def mirror_usage_point(r: Reader) -> wire.MirrorUsagePoint:
    return wire.MirrorUsagePoint(
        mrid=r.mrid(),
        device_lfdi=r.hex("deviceLFDI", 20, exact=True) or "",
        role_flags=int(r.hex("roleFlags", 2) or "0", 16),
        service_category_kind=r.need_int("serviceCategoryKind", "UInt8"),
        status=r.need_int("status", "UInt8"),
        description=r.string("description", 32),
        readings=tuple(mirror_meter_reading(m) for m in r.children("MirrorMeterReading")),
        post_rate=r.integer("postRate", "UInt32"),
        href=r.attr("href"),
    )


def device_capability(r: Reader) -> wire.DeviceCapability:
    return wire.DeviceCapability(
        href=r.attr("href"),
        poll_rate=r.attr_int("pollRate", "UInt32"),
        programs=r.list_link("DERProgramListLink"),
        time=r.link("TimeLink"),
        end_devices=r.list_link("EndDeviceListLink"),
        mirror_usage_points=r.list_link("MirrorUsagePointListLink"),
    )


def time(r: Reader) -> wire.Time:
    return wire.Time(
        current_time=r.need_int("currentTime", "Int64"),
        dst_end_time=r.need_int("dstEndTime", "Int64"),
        dst_offset=r.need_int("dstOffset", "Int32"),
        dst_start_time=r.need_int("dstStartTime", "Int64"),
        quality=r.need_int("quality", "UInt8"),
        tz_offset=r.need_int("tzOffset", "Int32"),
        href=r.attr("href"),
        poll_rate=r.attr_int("pollRate", "UInt32"),
    )


def registration(r: Reader) -> wire.Registration:
    return wire.Registration(
        date_time_registered=r.need_int("dateTimeRegistered", "Int64"),
        pin=r.need_int("pIN", "UInt32"),
        href=r.attr("href"),
        poll_rate=r.attr_int("pollRate", "UInt32"),
    )


def response(r: Reader) -> wire.Response:
    lfdi = r.hex("endDeviceLFDI", 20, exact=True)
    if lfdi is None:
        raise InputError("wire.missing", f"{r.path}: required element endDeviceLFDI is missing")
    return wire.Response(
        end_device_lfdi=lfdi,
        subject=r.mrid("subject"),
        status=r.integer("status", "UInt8") or 0,
        created_date_time=r.integer("createdDateTime", "Int64") or 0,
        href=r.attr("href"),
    )


def log_event(r: Reader) -> wire.LogEvent:
    return wire.LogEvent(
        created_date_time=r.need_int("createdDateTime", "Int64"),
        function_set=r.need_int("functionSet", "UInt8"),
        log_event_code=r.need_int("logEventCode", "UInt8"),
        log_event_id=r.need_int("logEventID", "UInt16"),
        log_event_pen=r.need_int("logEventPEN", "UInt32"),
        profile_id=r.need_int("profileID", "UInt8"),
        details=r.string("details", 32),
        extended_data=r.integer("extendedData", "UInt32"),
        href=r.attr("href"),
    )


def page(r: Reader, item: str, decode_item: Callable[[Reader], T]) -> wire.Page[T]:
    """A list document: its items (decoded with `decode_item`) and the paging attributes."""
    all_ = r.attr_int("all", "UInt32")
    results = r.attr_int("results", "UInt32")
    if all_ is None or results is None:
        raise InputError("wire.missing", f"{r.path}: list attributes 'all' and 'results' are required")
    items = tuple(decode_item(child) for child in r.children(item))
    if len(items) != results:
        raise InputError("wire.range", f"{r.path}: results={results} but {len(items)} {item} elements")
    return wire.Page(
        items=items,
        all=all_,
        results=results,
        href=r.attr("href"),
        poll_rate=r.attr_int("pollRate", "UInt32"),
        subscribable=r.attr_int("subscribable", "UInt8"),
    )


def parse_root_name(data: bytes) -> str:
    """The local name of a document's root, after the same hardened parse (for servers that dispatch on it)."""
    return str(etree.QName(parse(data)).localname)
