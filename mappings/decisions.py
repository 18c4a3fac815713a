"""Every choice the sources leave open (MAPPING-FACTS.md, open questions 1-11), decided once, here.

The rule where the sources do not settle a question: prefer the reading that is safe for the grid (lower power, no
export, and `unsupported` reported upstream rather than a guess sent to a station). Each decision is data the
builders consume, with its reason beside it; docs/mappings.md repeats them for readers outside the code.
"""

from __future__ import annotations

from typing import Final

from gateway.model import CurveKind, CurveUnit, OperationMode

#: Q1 (trip-curve axes). IEEE 2030.5 gives trip curves as x = duration (s), y = Hz or %V; the only OCPP text (R04
#: scenario 3) reads "exceeds curveData.x Hz for more than curveData.y seconds" with yUnit Not_Applicable. OCPP's own
#: text wins: x and y are swapped for these kinds, point order kept (same polyline). PowerMonitoringMustTrip is not
#: swapped: its field description says x in seconds and y in percent.
SWAPPED_AXES: Final = frozenset(
    {
        CurveKind.HF_MUST_TRIP,
        CurveKind.HF_MAY_TRIP,
        CurveKind.LF_MUST_TRIP,
        CurveKind.HV_MUST_TRIP,
        CurveKind.HV_MAY_TRIP,
        CurveKind.HV_MOM_CESS,
        CurveKind.LV_MUST_TRIP,
        CurveKind.LV_MAY_TRIP,
        CurveKind.LV_MOM_CESS,
    }
)

#: Q2 (voltage x unit, PF y unit) and the y unit of every curve. Voltage axes are sent in percent of nominal, as in
#: IEEE 2030.5 from which the OCPP DER model derives (PctEffectiveV, the only voltage unit OCPP names, is a percent).
#: Power factor has no OCPP unit: Not_Applicable, sign unchanged (OCPP and the model both use + = absorbing). Trip
#: curves, whose y is seconds after the Q1 swap, are Not_Applicable as R04 scenario 3 shows. Absolute watts have no
#: DER unit at all (missing here on purpose): a freq-watt curve in W only reaches a station as a LocalFrequency
#: v2xFreqWattCurve.
DER_Y_UNIT: Final[dict[CurveUnit, str]] = {
    CurveUnit.PCT_MAX_W: "PctMaxW",
    CurveUnit.PCT_W_AVAIL: "PctWAvail",
    CurveUnit.PCT_MAX_VAR: "PctMaxVar",
    CurveUnit.PCT_VAR_AVAIL: "PctVarAvail",
    CurveUnit.POWER_FACTOR: "Not_Applicable",
    CurveUnit.HERTZ: "Not_Applicable",
    CurveUnit.VOLT_PCT: "PctEffectiveV",
    CurveUnit.SECONDS: "Not_Applicable",
}

#: Q3 (FreqDroop overFreq/underFreq): absolute Hz, the model's own convention. "Start of droop" is a frequency; a
#: dead-band reading (0.036) sent to a station expecting Hz would be absurd, the converse is not.
#:
#: Q4 (EnterService): voltages in percent of nominal, frequencies in Hz, delays in seconds. Safe side: a station
#: expecting volts that reads 105 never sees 230 V inside its window and stays out of service; the converse mistake
#: (volts read as percent) would always allow re-entry. A model `permitted=False` has no OCPP field: unsupported.
#:
#: Q5 (Gradients "ramp rate in seconds" against 2030.5 %/s): sent as the seconds a full 0-100 % ramp takes at that
#: rate, and 0 %/s (2030.5 "no limit") as 0 (OCPP "not applicable").
GRADIENT_FULL_RAMP_PCT: Final = 100.0
#: A ramp slower than a full ramp per year is sent as one year (the model's bound on seconds), not as an overflow.
GRADIENT_MAX_S: Final = 31_536_000.0

#: R04.FR.14: these exist only as defaults. A non-default directive with them is reported unsupported, never promoted
#: to a permanent default that would outlive the directive's window.
DEFAULT_ONLY_TYPES: Final = frozenset({"EnterService", "Gradients"})

#: Q6: DERControlEnumType has no LFMayTrip; such a curve is reported unsupported with this reason, never mapped to a
#: neighbouring type.
NO_OCPP_TYPE: Final[dict[CurveKind, str]] = {
    CurveKind.LF_MAY_TRIP: "OCPP 2.1 DERControlEnumType has no LFMayTrip (the enum lists only LFMustTrip)",
}

#: Q7 (opModMaxLimW): max_discharge_pct goes to SetDERControl LimitMaxDischarge.pctMaxDischargePower, as OCPP's own
#: comparison table (Table 160) maps it; it is already a percent of the rating, so no rating is guessed.
#:
#: Q8 (station-wide export cap): OCPP 2.1 gives the CSMS none (ChargingStationMaxProfile is ChargingOnly,
#: K01.FR.111). An export limit is carried by the directive's TxDefaultProfile period: as dischargeLimit where the
#: mode allows it (ExternalSetpoint), by clamping the setpoint where Q03.FR.02/Q07.FR.03 forbid dischargeLimit, and
#: otherwise by a ChargingOnly period (no discharge at all: stricter than asked, never looser). On 2.0.1/1.6, and on
#: 2.1 stations without a bidirectional mode, it is unsupported: there is no discharge control to tell.
#:
#: Q9 (limit/dischargeLimit with CentralSetpoint/CentralFrequency): the requirements win over the table. Q03.FR.02 and
#: Q07.FR.03 forbid both fields, so limits sharing a period with a setpoint clamp the setpoint into [-export, import].
#: Station-wide import limits live in ChargingStationMaxProfile anyway, where they bound any setpoint.
#:
#: Q10 (signs): the model is load-signed (+ = import, + var = absorbing); charging profiles are load-signed too
#: (setpoint + = charging, setpointReactive + = inductive), so no flip there. OCPP DER settings are generator-signed
#: ("FixedVar: a negative value refers to charging, positive to discharging"), so every W or var percent on a
#: SetDERControl axis or setpoint is negated; power factors are not. When a curve's x axis is negated the point order
#: is reversed so x stays increasing.
GENERATOR_SIGNED_UNITS: Final = frozenset(
    {CurveUnit.PCT_MAX_W, CurveUnit.PCT_W_AVAIL, CurveUnit.PCT_MAX_VAR, CurveUnit.PCT_VAR_AVAIL}
)

#: Q11a (duration None = until cancelled): non-default DER controls need startTime and duration (schema text), so they
#: get this duration (one year, the model's own bound on duration_s) and are removed by map_clear on cancel. Charging
#: profiles get no schedule duration: the last period runs until the profile is cleared.
UNTIL_CANCELLED_DER_DURATION_S: Final = 31_536_000

#: Q11b (randomize*): randomize_start_s > 0 becomes chargingSchedule.randomizedDelay on 2.1 TxDefaultProfiles when the
#: station reports SmartChargingCtrlr.SupportsRandomizedDelay (the field exists only there and only delays). Otherwise
#: (DER controls, ChargingStationMaxProfile, 2.0.1/1.6, negative values, randomize_duration_s) the scheduler randomizes
#: by shifting start and end itself.
#:
#: Q11c (opModConnect/opModEnergize): connect=False or energize=False become a 0 W charging limit (on 2.1 a
#: ChargingOnly period with limit 0, which forbids discharge as well): no power exchange is the safe reading, and OCPP
#: gives the CSMS no disconnect command. connect=True/energize=True need no command (a station is connected unless a
#: disconnect is in force, which ends when its directive is cleared) and are reported unsupported, honestly.
#:
#: Q11d (rampTms, %setMaxDischargeRateW): the model carries neither, and no rating is guessed: percent-to-watt
#: conversion belongs to the protocol edge.
#:
#: Operation modes a period can carry for the model, with the reason a mode may not be sent (K01.FR.115): a station
#: rejects any mode but ChargingOnly that it does not list in V2XChargingCtrlr.SupportedOperationModes.
ALWAYS_SUPPORTED_MODES: Final = frozenset({OperationMode.CHARGING_ONLY})

#: stackLevel = clamp(STACK_LEVEL_CEILING - priority, 1, STACK_LEVEL_CEILING) for scheduled directives, 0 for
#: defaults. OCPP: a higher stackLevel wins; the model: a lower priority wins. Defaults sit below everything, as a 2.1
#: default DER control does (R04.FR.11). 10 stays inside the ProfileStackLevel of common stations; priorities from 9
#: up share band 1. This is the band: the runtime moves each profile to the level nearest it that keeps arbitration's
#: order on the station and never shares a level K01.FR.06 (1.6: stackLevel+purpose) forbids (gateway/stacks.py).
STACK_LEVEL_CEILING: Final = 10

#: Prices: OCPP carries prices only as ISO 15118-20 price schedules inside a charging schedule (absolutePriceSchedule,
#: priceLevelSchedule), which need a tariff structure and signatures the canonical price lacks. Reported unsupported
#: on every version; the scheduler may turn prices into limits.
PRICE_REASON: Final = (
    "{version} carries prices only as ISO 15118-20 price schedules inside a charging schedule; a bare per-kWh price "
    "has no OCPP field"
)

#: Per-directive profile id slots: profile id = number * PROFILE_SLOTS + slot, schedule id = profile id.
PROFILE_SLOTS: Final = 16
SLOT_STATION_MAX: Final = 0
SLOT_TX_DEFAULT: Final = 1
#: The largest `number` whose profile ids stay within int32.
MAX_NUMBER: Final = (2**31 - 1 - (PROFILE_SLOTS - 1)) // PROFILE_SLOTS
#: Decimal places OCPP 2.x accepts (part 2 data types: decimals have at most 6 places).
DECIMALS_2X: Final = 6
#: OCPP 1.6 charging limits are multipleOf 0.1.
DECIMALS_16: Final = 1
