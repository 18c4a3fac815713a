"""Typed wire models of the IEEE 2030.5 / CSIP-AUS resources the gateway reads and writes.

Values stay in their wire encoding here (value + multiplier, hundredths, Unix seconds); `normalize` converts.
Only the elements the gateway uses are modelled; anything else a server sends is ignored when decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class EventStatusCode(IntEnum):
    SCHEDULED = 0
    ACTIVE = 1
    CANCELLED = 2
    CANCELLED_RANDOMIZED = 3
    SUPERSEDED = 4


class ResponseStatus(IntEnum):
    """IEEE 2030.5 Table 27 (Response types), the values a DER client uses."""

    RECEIVED = 1
    STARTED = 2
    COMPLETED = 3
    OPT_OUT = 4
    CANCELLED = 6
    SUPERSEDED = 7
    REJECTED_NOT_APPLICABLE = 252
    REJECTED_INVALID = 253
    REJECTED_EXPIRED = 254


class CurveType(IntEnum):
    FREQ_WATT = 0
    HFRT_MAY_TRIP = 1
    HFRT_MUST_TRIP = 2
    HVRT_MAY_TRIP = 3
    HVRT_MOMENTARY_CESSATION = 4
    HVRT_MUST_TRIP = 5
    LFRT_MAY_TRIP = 6
    LFRT_MUST_TRIP = 7
    LVRT_MAY_TRIP = 8
    LVRT_MOMENTARY_CESSATION = 9
    LVRT_MUST_TRIP = 10
    VOLT_VAR = 11
    VOLT_WATT = 12
    WATT_PF = 13
    WATT_VAR = 14


#: DERControlBase curve-link elements, in XSD order, and the curve type each must point to.
CURVE_LINKS: dict[str, CurveType] = {
    "opModFreqWatt": CurveType.FREQ_WATT,
    "opModHFRTMayTrip": CurveType.HFRT_MAY_TRIP,
    "opModHFRTMustTrip": CurveType.HFRT_MUST_TRIP,
    "opModHVRTMayTrip": CurveType.HVRT_MAY_TRIP,
    "opModHVRTMomentaryCessation": CurveType.HVRT_MOMENTARY_CESSATION,
    "opModHVRTMustTrip": CurveType.HVRT_MUST_TRIP,
    "opModLFRTMayTrip": CurveType.LFRT_MAY_TRIP,
    "opModLFRTMustTrip": CurveType.LFRT_MUST_TRIP,
    "opModLVRTMayTrip": CurveType.LVRT_MAY_TRIP,
    "opModLVRTMomentaryCessation": CurveType.LVRT_MOMENTARY_CESSATION,
    "opModLVRTMustTrip": CurveType.LVRT_MUST_TRIP,
}
#: Curve links that come after opModMaxLimW/opModTargetVar/opModTargetW in the XSD sequence.
CURVE_LINKS_LATE: dict[str, CurveType] = {
    "opModVoltVar": CurveType.VOLT_VAR,
    "opModVoltWatt": CurveType.VOLT_WATT,
    "opModWattPF": CurveType.WATT_PF,
    "opModWattVar": CurveType.WATT_VAR,
}


def to_si(value: int, multiplier: int) -> float:
    """value x 10^multiplier, dividing for negative powers so 15000 x 10^-1 is exactly 1500.0."""
    return value / 10 ** (-multiplier) if multiplier < 0 else float(value * 10**multiplier)


@dataclass(frozen=True, slots=True)
class Link:
    href: str


@dataclass(frozen=True, slots=True)
class ListLink:
    href: str
    all: int | None = None


@dataclass(frozen=True, slots=True)
class Power:
    """ActivePower / ReactivePower: value x 10^multiplier W (or var)."""

    value: int
    multiplier: int = 0

    @property
    def si(self) -> float:
        return to_si(self.value, self.multiplier)


@dataclass(frozen=True, slots=True)
class PowerFactorWithExcitation:
    displacement: int
    multiplier: int
    excitation: bool


@dataclass(frozen=True, slots=True)
class FixedVar:
    ref_type: int
    value: int


@dataclass(frozen=True, slots=True)
class FreqDroop:
    db_of: int
    db_uf: int
    k_of: int
    k_uf: int
    open_loop_tms: int


@dataclass(frozen=True, slots=True)
class ControlBase:
    """DERControlBase, including the CSIP-AUS dynamic operating envelope limits."""

    op_mod_connect: bool | None = None
    op_mod_energize: bool | None = None
    fixed_pf_absorb: PowerFactorWithExcitation | None = None
    fixed_pf_inject: PowerFactorWithExcitation | None = None
    fixed_var: FixedVar | None = None
    fixed_w: int | None = None
    freq_droop: FreqDroop | None = None
    #: Curve-link element name (opModVoltVar, ...) -> DERCurve href.
    curve_links: tuple[tuple[str, str], ...] = ()
    max_lim_w: int | None = None
    target_var: Power | None = None
    target_w: Power | None = None
    ramp_tms: int | None = None
    imp_lim_w: Power | None = None
    exp_lim_w: Power | None = None
    gen_lim_w: Power | None = None
    load_lim_w: Power | None = None


@dataclass(frozen=True, slots=True)
class EventStatus:
    current_status: int
    date_time: int
    potentially_superseded: bool = False
    potentially_superseded_time: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DERControl:
    mrid: str
    creation_time: int
    event_status: EventStatus
    start: int
    duration: int
    base: ControlBase
    href: str | None = None
    description: str | None = None
    version: int | None = None
    reply_to: str | None = None
    #: HexBinary8 bit mask: 0x01 received, 0x02 specific response (started, completed, cancelled, ...).
    response_required: int = 0
    randomize_start: int | None = None
    randomize_duration: int | None = None


@dataclass(frozen=True, slots=True)
class DefaultDERControl:
    mrid: str
    base: ControlBase
    href: str | None = None
    description: str | None = None
    version: int | None = None
    set_es_delay: int | None = None
    set_es_high_freq: int | None = None
    set_es_high_volt: int | None = None
    set_es_low_freq: int | None = None
    set_es_low_volt: int | None = None
    set_es_ramp_tms: int | None = None
    set_es_random_delay: int | None = None
    set_grad_w: int | None = None
    set_soft_grad_w: int | None = None


@dataclass(frozen=True, slots=True)
class CurvePoint:
    x: int
    y: int
    excitation: bool | None = None


@dataclass(frozen=True, slots=True)
class DERCurve:
    mrid: str
    creation_time: int
    curve_type: int
    points: tuple[CurvePoint, ...]
    x_multiplier: int
    y_multiplier: int
    y_ref_type: int
    href: str | None = None
    description: str | None = None
    version: int | None = None
    autonomous_v_ref_enable: bool | None = None
    autonomous_v_ref_time_constant: int | None = None
    open_loop_tms: int | None = None
    v_ref: int | None = None


@dataclass(frozen=True, slots=True)
class DERProgram:
    mrid: str
    primacy: int
    href: str | None = None
    description: str | None = None
    version: int | None = None
    active_controls: ListLink | None = None
    default_control: Link | None = None
    controls: ListLink | None = None
    curves: ListLink | None = None


@dataclass(frozen=True, slots=True)
class FunctionSetAssignments:
    mrid: str
    href: str | None = None
    description: str | None = None
    programs: ListLink | None = None
    time: Link | None = None


@dataclass(frozen=True, slots=True)
class EndDevice:
    sfdi: int
    changed_time: int
    href: str | None = None
    lfdi: str | None = None
    der_list: ListLink | None = None
    log_events: ListLink | None = None
    enabled: bool | None = None
    fsa_list: ListLink | None = None
    post_rate: int | None = None
    registration: Link | None = None
    subscriptions: ListLink | None = None
    device_category: str | None = None


@dataclass(frozen=True, slots=True)
class DER:
    """One DER of an EndDevice's DERList: where its status, capability, settings and availability go."""

    href: str | None = None
    availability: Link | None = None
    capability: Link | None = None
    settings: Link | None = None
    status: Link | None = None


@dataclass(frozen=True, slots=True)
class DeviceCapability:
    href: str | None = None
    poll_rate: int | None = None
    programs: ListLink | None = None
    time: Link | None = None
    end_devices: ListLink | None = None
    mirror_usage_points: ListLink | None = None


@dataclass(frozen=True, slots=True)
class Time:
    current_time: int
    dst_end_time: int = 0
    dst_offset: int = 0
    dst_start_time: int = 0
    quality: int = 4
    tz_offset: int = 0
    href: str | None = None
    poll_rate: int | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    date_time_registered: int
    pin: int
    href: str | None = None
    poll_rate: int | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a 2030.5 list: `all` is the server's total, `results` the count on this page."""

    items: tuple[T, ...]
    all: int
    results: int
    href: str | None = None
    poll_rate: int | None = None
    subscribable: int | None = None


@dataclass(frozen=True, slots=True)
class Response:
    end_device_lfdi: str
    subject: str
    status: int
    created_date_time: int
    href: str | None = None


@dataclass(frozen=True, slots=True)
class LogEvent:
    created_date_time: int
    function_set: int
    log_event_code: int
    log_event_id: int
    log_event_pen: int
    profile_id: int
    details: str | None = None
    extended_data: int | None = None
    href: str | None = None


@dataclass(frozen=True, slots=True)
class DERStatus:
    reading_time: int
    gen_connect_status: int | None = None
    inverter_status: int | None = None
    operational_mode_status: int | None = None
    state_of_charge: int | None = None
    alarm_status: int | None = None


@dataclass(frozen=True, slots=True)
class DERCapability:
    modes_supported: int
    rtg_max_w: Power
    der_type: int
    doe_modes_supported: int
    rtg_max_charge_rate_w: Power | None = None
    rtg_max_discharge_rate_w: Power | None = None
    rtg_max_var: Power | None = None


@dataclass(frozen=True, slots=True)
class DERSettings:
    set_grad_w: int
    set_max_w: Power
    updated_time: int
    modes_enabled: int | None = None
    set_max_charge_rate_w: Power | None = None
    set_max_discharge_rate_w: Power | None = None
    set_soft_grad_w: int | None = None
    doe_modes_enabled: int | None = None


@dataclass(frozen=True, slots=True)
class DERAvailability:
    reading_time: int
    stat_w_avail: Power | None = None
    stat_var_avail: Power | None = None


@dataclass(frozen=True, slots=True)
class ReadingType:
    kind: int = 37  # power
    uom: int = 38  # W
    power_of_ten_multiplier: int = 0
    flow_direction: int = 1  # forward (import)
    phase: int = 0
    accumulation_behaviour: int = 12  # instantaneous
    commodity: int = 1  # electricity secondary metered
    data_qualifier: int = 2  # average
    interval_length: int = 0


@dataclass(frozen=True, slots=True)
class MirrorMeterReading:
    mrid: str
    reading_type: ReadingType | None = None
    description: str | None = None
    #: Latest reading: value (x 10^power_of_ten_multiplier) and its time period.
    value: int | None = None
    time_start: int | None = None
    time_duration: int | None = None


@dataclass(frozen=True, slots=True)
class MirrorUsagePoint:
    mrid: str
    device_lfdi: str
    #: RoleFlagsType bits: 0x01 isMirror, 0x02 isPremisesAggregationPoint (the site's connection point).
    role_flags: int = 0x03
    service_category_kind: int = 0  # electricity
    status: int = 1
    description: str | None = None
    readings: tuple[MirrorMeterReading, ...] = field(default=())
    post_rate: int | None = None
    href: str | None = None
