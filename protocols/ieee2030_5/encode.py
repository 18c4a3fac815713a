"""Wire models -> XML, with elements in XSD sequence order (the gateway's reports and the counterpart's resources).

CSIP-AUS elements extend the 2018 types at the end of their sequence (csipaus-core.xsd redefines them so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from lxml import etree

from protocols.ieee2030_5 import wire
from protocols.ieee2030_5.safexml import CSIPAUS_NS, NS, Element, serialize

T = TypeVar("T")
_NSMAP = {None: NS, "csipaus": CSIPAUS_NS}


class Writer:
    """Appends children to one element; `None` values are skipped so optional elements stay absent."""

    def __init__(self, element: Element) -> None:
        self.element = element

    def sub(self, name: str, ns: str = NS) -> Writer:
        return Writer(etree.SubElement(self.element, f"{{{ns}}}{name}"))

    def value(self, name: str, value: object, ns: str = NS) -> None:
        if value is None:
            return
        self.sub(name, ns).element.text = ("true" if value else "false") if isinstance(value, bool) else str(value)

    def hex(self, name: str, value: int | None, width: int) -> None:
        if value is not None:
            self.value(name, format(value, f"0{width}X"))

    def attrs(self, **values: object) -> Writer:
        for key, value in values.items():
            if value is not None:
                self.element.set(key.rstrip("_"), str(value))
        return self

    def link(self, name: str, link: wire.Link | None) -> None:
        if link is not None:
            self.sub(name).attrs(href=link.href)

    def list_link(self, name: str, link: wire.ListLink | None) -> None:
        if link is not None:
            self.sub(name).attrs(href=link.href, all_=link.all)

    def power(self, name: str, power: wire.Power | None, ns: str = NS) -> None:
        if power is not None:
            w = self.sub(name, ns)
            w.value("multiplier", power.multiplier)
            w.value("value", power.value)


def _root(name: str) -> Writer:
    return Writer(etree.Element(f"{{{NS}}}{name}", nsmap=_NSMAP))


def _identified(w: Writer, mrid: str, description: str | None, version: int | None) -> None:
    w.value("mRID", mrid.upper())
    w.value("description", description)
    w.value("version", version)


def _pf(w: Writer, name: str, pf: wire.PowerFactorWithExcitation | None) -> None:
    if pf is not None:
        s = w.sub(name)
        s.value("displacement", pf.displacement)
        s.value("excitation", pf.excitation)
        s.value("multiplier", pf.multiplier)


def control_base(w: Writer, b: wire.ControlBase) -> None:
    links = dict(b.curve_links)
    w.value("opModConnect", b.op_mod_connect)
    w.value("opModEnergize", b.op_mod_energize)
    _pf(w, "opModFixedPFAbsorbW", b.fixed_pf_absorb)
    _pf(w, "opModFixedPFInjectW", b.fixed_pf_inject)
    if b.fixed_var is not None:
        s = w.sub("opModFixedVar")
        s.value("refType", b.fixed_var.ref_type)
        s.value("value", b.fixed_var.value)
    w.value("opModFixedW", b.fixed_w)
    if b.freq_droop is not None:
        d = w.sub("opModFreqDroop")
        for name, value in (
            ("dBOF", b.freq_droop.db_of),
            ("dBUF", b.freq_droop.db_uf),
            ("kOF", b.freq_droop.k_of),
            ("kUF", b.freq_droop.k_uf),
            ("openLoopTms", b.freq_droop.open_loop_tms),
        ):
            d.value(name, value)
    for name in wire.CURVE_LINKS:
        if name in links:
            w.sub(name).attrs(href=links[name])
    w.value("opModMaxLimW", b.max_lim_w)
    w.power("opModTargetVar", b.target_var)
    w.power("opModTargetW", b.target_w)
    for name in wire.CURVE_LINKS_LATE:
        if name in links:
            w.sub(name).attrs(href=links[name])
    w.value("rampTms", b.ramp_tms)
    w.power("opModImpLimW", b.imp_lim_w, CSIPAUS_NS)
    w.power("opModExpLimW", b.exp_lim_w, CSIPAUS_NS)
    w.power("opModGenLimW", b.gen_lim_w, CSIPAUS_NS)
    w.power("opModLoadLimW", b.load_lim_w, CSIPAUS_NS)


def _der_control(w: Writer, c: wire.DERControl) -> None:
    w.attrs(
        href=c.href,
        replyTo=c.reply_to,
        responseRequired=format(c.response_required, "02X") if c.reply_to else None,
    )
    _identified(w, c.mrid, c.description, c.version)
    w.value("creationTime", c.creation_time)
    s = w.sub("EventStatus")
    s.value("currentStatus", c.event_status.current_status)
    s.value("dateTime", c.event_status.date_time)
    s.value("potentiallySuperseded", c.event_status.potentially_superseded)
    s.value("potentiallySupersededTime", c.event_status.potentially_superseded_time)
    s.value("reason", c.event_status.reason)
    i = w.sub("interval")
    i.value("duration", c.duration)
    i.value("start", c.start)
    w.value("randomizeDuration", c.randomize_duration)
    w.value("randomizeStart", c.randomize_start)
    control_base(w.sub("DERControlBase"), c.base)


def _default(w: Writer, d: wire.DefaultDERControl) -> None:
    w.attrs(href=d.href)
    _identified(w, d.mrid, d.description, d.version)
    control_base(w.sub("DERControlBase"), d.base)
    w.value("setESDelay", d.set_es_delay)
    w.value("setESHighFreq", d.set_es_high_freq)
    w.value("setESHighVolt", d.set_es_high_volt)
    w.value("setESLowFreq", d.set_es_low_freq)
    w.value("setESLowVolt", d.set_es_low_volt)
    w.value("setESRampTms", d.set_es_ramp_tms)
    w.value("setESRandomDelay", d.set_es_random_delay)
    w.value("setGradW", d.set_grad_w)
    w.value("setSoftGradW", d.set_soft_grad_w)


def _curve(w: Writer, c: wire.DERCurve) -> None:
    w.attrs(href=c.href)
    _identified(w, c.mrid, c.description, c.version)
    w.value("autonomousVRefEnable", c.autonomous_v_ref_enable)
    w.value("autonomousVRefTimeConstant", c.autonomous_v_ref_time_constant)
    w.value("creationTime", c.creation_time)
    for p in c.points:
        d = w.sub("CurveData")
        d.value("excitation", p.excitation)
        d.value("xvalue", p.x)
        d.value("yvalue", p.y)
    w.value("curveType", c.curve_type)
    w.value("openLoopTms", c.open_loop_tms)
    w.value("vRef", c.v_ref)
    w.value("xMultiplier", c.x_multiplier)
    w.value("yMultiplier", c.y_multiplier)
    w.value("yRefType", c.y_ref_type)


def _program(w: Writer, p: wire.DERProgram) -> None:
    w.attrs(href=p.href)
    _identified(w, p.mrid, p.description, p.version)
    w.list_link("ActiveDERControlListLink", p.active_controls)
    w.link("DefaultDERControlLink", p.default_control)
    w.list_link("DERControlListLink", p.controls)
    w.list_link("DERCurveListLink", p.curves)
    w.value("primacy", p.primacy)


def _fsa(w: Writer, f: wire.FunctionSetAssignments) -> None:
    w.attrs(href=f.href)
    w.list_link("DERProgramListLink", f.programs)
    w.link("TimeLink", f.time)
    w.value("mRID", f.mrid.upper())
    w.value("description", f.description)


def _end_device(w: Writer, e: wire.EndDevice) -> None:
    w.attrs(href=e.href)
    w.list_link("DERListLink", e.der_list)
    w.value("deviceCategory", e.device_category)
    w.value("lFDI", e.lfdi.upper() if e.lfdi else None)
    w.list_link("LogEventListLink", e.log_events)
    w.value("sFDI", e.sfdi)
    w.value("changedTime", e.changed_time)
    w.value("enabled", e.enabled)
    w.list_link("FunctionSetAssignmentsListLink", e.fsa_list)
    w.value("postRate", e.post_rate)
    w.link("RegistrationLink", e.registration)
    w.list_link("SubscriptionListLink", e.subscriptions)


def _der(w: Writer, d: wire.DER) -> None:
    w.attrs(href=d.href)
    w.link("DERAvailabilityLink", d.availability)
    w.link("DERCapabilityLink", d.capability)
    w.link("DERSettingsLink", d.settings)
    w.link("DERStatusLink", d.status)


def document(name: str, fill: Callable[[Writer, T], None], item: T) -> bytes:
    w = _root(name)
    fill(w, item)
    return serialize(w.element)


def der_control(c: wire.DERControl) -> bytes:
    return document("DERControl", _der_control, c)


def default_der_control(d: wire.DefaultDERControl) -> bytes:
    return document("DefaultDERControl", _default, d)


def der_curve(c: wire.DERCurve) -> bytes:
    return document("DERCurve", _curve, c)


def der_program(p: wire.DERProgram) -> bytes:
    return document("DERProgram", _program, p)


def end_device(e: wire.EndDevice) -> bytes:
    return document("EndDevice", _end_device, e)


def function_set_assignments(f: wire.FunctionSetAssignments) -> bytes:
    return document("FunctionSetAssignments", _fsa, f)


def device_capability(d: wire.DeviceCapability) -> bytes:
    w = _root("DeviceCapability").attrs(href=d.href, pollRate=d.poll_rate)
    w.list_link("DERProgramListLink", d.programs)
    w.link("TimeLink", d.time)
    w.list_link("EndDeviceListLink", d.end_devices)
    w.list_link("MirrorUsagePointListLink", d.mirror_usage_points)
    return serialize(w.element)


def time(t: wire.Time) -> bytes:
    w = _root("Time").attrs(href=t.href, pollRate=t.poll_rate)
    w.value("currentTime", t.current_time)
    w.value("dstEndTime", t.dst_end_time)
    w.value("dstOffset", t.dst_offset)
    w.value("dstStartTime", t.dst_start_time)
    w.value("quality", t.quality)
    w.value("tzOffset", t.tz_offset)
    return serialize(w.element)


def registration(r: wire.Registration) -> bytes:
    w = _root("Registration").attrs(href=r.href, pollRate=r.poll_rate)
    w.value("dateTimeRegistered", r.date_time_registered)
    w.value("pIN", r.pin)
    return serialize(w.element)


def page(name: str, item: str, fill: Callable[[Writer, T], None], p: wire.Page[T]) -> bytes:
    """A list page; `pollRate` is written only on list types whose XSD has it (the caller passes None otherwise)."""
    w = _root(name).attrs(href=p.href, subscribable=p.subscribable, all_=p.all, results=p.results, pollRate=p.poll_rate)
    for entry in p.items:
        fill(w.sub(item), entry)
    return serialize(w.element)


def der_control_list(p: wire.Page[wire.DERControl]) -> bytes:
    return page("DERControlList", "DERControl", _der_control, p)


def der_curve_list(p: wire.Page[wire.DERCurve]) -> bytes:
    return page("DERCurveList", "DERCurve", _curve, p)


def der_program_list(p: wire.Page[wire.DERProgram]) -> bytes:
    return page("DERProgramList", "DERProgram", _program, p)


def der(d: wire.DER) -> bytes:
    return document("DER", _der, d)


def der_list(p: wire.Page[wire.DER]) -> bytes:
    return page("DERList", "DER", _der, p)


def end_device_list(p: wire.Page[wire.EndDevice]) -> bytes:
    return page("EndDeviceList", "EndDevice", _end_device, p)


def fsa_list(p: wire.Page[wire.FunctionSetAssignments]) -> bytes:
    return page("FunctionSetAssignmentsList", "FunctionSetAssignments", _fsa, p)


# -- what the gateway sends ------------------------------------------------------------------------------------------


def response(r: wire.Response) -> bytes:
    """A DERControlResponse for a control's replyTo."""
    w = _root("DERControlResponse").attrs(href=r.href)
    w.value("createdDateTime", r.created_date_time)
    w.value("endDeviceLFDI", r.end_device_lfdi.upper())
    w.value("status", r.status)
    w.value("subject", r.subject.upper())
    return serialize(w.element)


def log_event(e: wire.LogEvent) -> bytes:
    w = _root("LogEvent").attrs(href=e.href)
    w.value("createdDateTime", e.created_date_time)
    w.value("details", e.details)
    w.value("extendedData", e.extended_data)
    w.value("functionSet", e.function_set)
    w.value("logEventCode", e.log_event_code)
    w.value("logEventID", e.log_event_id)
    w.value("logEventPEN", e.log_event_pen)
    w.value("profileID", e.profile_id)
    return serialize(w.element)


def _status(w: Writer, name: str, value: int | None, at: int, hex_width: int = 0) -> None:
    if value is not None:
        s = w.sub(name)
        s.value("dateTime", at)
        s.value("value", format(value, f"0{hex_width}X") if hex_width else value)


def der_status(s: wire.DERStatus) -> bytes:
    w = _root("DERStatus")
    w.hex("alarmStatus", s.alarm_status, 8)
    _status(w, "genConnectStatus", s.gen_connect_status, s.reading_time, 2)
    _status(w, "inverterStatus", s.inverter_status, s.reading_time)
    _status(w, "operationalModeStatus", s.operational_mode_status, s.reading_time)
    w.value("readingTime", s.reading_time)
    _status(w, "stateOfChargeStatus", s.state_of_charge, s.reading_time)
    return serialize(w.element)


def der_capability(c: wire.DERCapability) -> bytes:
    w = _root("DERCapability")
    w.hex("modesSupported", c.modes_supported, 8)
    w.power("rtgMaxChargeRateW", c.rtg_max_charge_rate_w)
    w.power("rtgMaxDischargeRateW", c.rtg_max_discharge_rate_w)
    w.power("rtgMaxVar", c.rtg_max_var)
    w.power("rtgMaxW", c.rtg_max_w)
    w.value("type", c.der_type)
    w.value("doeModesSupported", format(c.doe_modes_supported, "02X"), CSIPAUS_NS)
    return serialize(w.element)


def der_settings(s: wire.DERSettings) -> bytes:
    w = _root("DERSettings")
    w.hex("modesEnabled", s.modes_enabled, 8)
    w.value("setGradW", s.set_grad_w)
    w.power("setMaxChargeRateW", s.set_max_charge_rate_w)
    w.power("setMaxDischargeRateW", s.set_max_discharge_rate_w)
    w.power("setMaxW", s.set_max_w)
    w.value("setSoftGradW", s.set_soft_grad_w)
    w.value("updatedTime", s.updated_time)
    if s.doe_modes_enabled is not None:
        w.value("doeModesEnabled", format(s.doe_modes_enabled, "02X"), CSIPAUS_NS)
    return serialize(w.element)


def der_availability(a: wire.DERAvailability) -> bytes:
    w = _root("DERAvailability")
    w.value("readingTime", a.reading_time)
    w.power("statVarAvail", a.stat_var_avail)
    w.power("statWAvail", a.stat_w_avail)
    return serialize(w.element)


def _reading_type(w: Writer, t: wire.ReadingType) -> None:
    w.value("accumulationBehaviour", t.accumulation_behaviour)
    w.value("commodity", t.commodity)
    w.value("dataQualifier", t.data_qualifier)
    w.value("flowDirection", t.flow_direction)
    w.value("intervalLength", t.interval_length)
    w.value("kind", t.kind)
    w.value("phase", t.phase)
    w.value("powerOfTenMultiplier", t.power_of_ten_multiplier)
    w.value("uom", t.uom)


def _mirror_meter_reading(w: Writer, m: wire.MirrorMeterReading) -> None:
    _identified(w, m.mrid, m.description, None)
    if m.value is not None:
        r = w.sub("Reading")
        if m.time_start is not None:
            p = r.sub("timePeriod")
            p.value("duration", m.time_duration or 0)
            p.value("start", m.time_start)
        r.value("value", m.value)
    if m.reading_type is not None:
        _reading_type(w.sub("ReadingType"), m.reading_type)


def mirror_meter_reading(m: wire.MirrorMeterReading) -> bytes:
    return document("MirrorMeterReading", _mirror_meter_reading, m)


def _mirror_usage_point(w: Writer, m: wire.MirrorUsagePoint) -> None:
    w.attrs(href=m.href)
    _identified(w, m.mrid, m.description, None)
    w.hex("roleFlags", m.role_flags, 4)
    w.value("serviceCategoryKind", m.service_category_kind)
    w.value("status", m.status)
    w.value("deviceLFDI", m.device_lfdi.upper())
    for reading in m.readings:
        _mirror_meter_reading(w.sub("MirrorMeterReading"), reading)
    w.value("postRate", m.post_rate)


def mirror_usage_point(m: wire.MirrorUsagePoint) -> bytes:
    return document("MirrorUsagePoint", _mirror_usage_point, m)


def mirror_usage_point_list(p: wire.Page[wire.MirrorUsagePoint]) -> bytes:
    return page("MirrorUsagePointList", "MirrorUsagePoint", _mirror_usage_point, p)
