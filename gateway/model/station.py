"""What the gateway knows about a station: protocol version and the DER capabilities it reported."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from gateway.model.controls import OperationMode, Strict


class OcppVersion(StrEnum):
    """Negotiated OCPP-J subprotocol, in preference order of the gateway."""

    V21 = "ocpp2.1"
    V201 = "ocpp2.0.1"
    V16 = "ocpp1.6"


class RateUnit(StrEnum):
    W = "W"
    A = "A"


class StationCapabilities(Strict):
    """Capabilities from BootNotification, the subprotocol and the device model (DCDERCtrlr, V2XChargingCtrlr,
    SmartChargingCtrlr). Absent knowledge stays empty/None: the mapping then chooses the safe reading."""

    version: OcppVersion
    #: DCDERCtrlr.ModesSupported: OCPP DERControlEnumType names, e.g. "VoltVar", "FreqDroop".
    der_modes: frozenset[str] = frozenset()
    #: V2XChargingCtrlr.SupportedOperationModes.
    operation_modes: frozenset[OperationMode] = frozenset()
    #: SmartChargingCtrlr.RateUnit; 1.6 stations report ChargingScheduleAllowedChargingRateUnit.
    rate_units: frozenset[RateUnit] = frozenset({RateUnit.A})
    #: DCDERCtrlr.MaxW: max active power at unity power factor (W).
    max_w: float | None = Field(default=None, ge=0)
    #: DCDERCtrlr.MaxChargeRateW.
    max_charge_rate_w: float | None = Field(default=None, ge=0)
    #: Discharge rating where known (ConnectedEV.DischargePower.maxSet, or MaxW).
    max_discharge_rate_w: float | None = Field(default=None, ge=0)
    max_var: float | None = Field(default=None, ge=0)
    max_var_neg: float | None = Field(default=None, ge=0)
    #: Nominal phase voltage for W <-> A conversion (DCDERCtrlr.VNom or configuration).
    nominal_voltage_v: float = Field(default=230.0, gt=0)
    phases: int = Field(default=3, ge=1, le=3)
    supports_randomized_delay: bool = False
    #: SmartChargingCtrlr.ProfileStackLevel (1.6: ChargeProfileMaxStackLevel): the highest stackLevel accepted.
    max_stack_level: int | None = Field(default=None, ge=0)
    #: SmartChargingCtrlr.PeriodsPerSchedule (1.6: ChargingScheduleMaxPeriods): the most periods one schedule holds.
    periods_per_schedule: int | None = Field(default=None, ge=1)
    evse_ids: tuple[int, ...] = (1,)

    @property
    def der(self) -> bool:
        """True when the station speaks OCPP 2.1 DER control (SetDERControl)."""
        return self.version is OcppVersion.V21 and bool(self.der_modes)
