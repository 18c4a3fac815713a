"""The canonical DER model: the contract between the protocol adapters, the mappings and the runtime."""

from gateway.model.controls import (
    CURVE_AXES,
    Controls,
    Curve,
    CurveKind,
    CurvePoint,
    CurveUnit,
    EnterService,
    FixedPowerFactor,
    FixedVar,
    FreqDroop,
    Gradients,
    OperationMode,
    Price,
    VarReference,
)
from gateway.model.directive import Directive, DirectiveState, Share, Source, SourceProtocol, Target, TargetScope
from gateway.model.outcome import Alarm, CommandOutcome, OutcomeStatus, StationOutcome, UnsupportedControl
from gateway.model.station import OcppVersion, RateUnit, StationCapabilities

__all__ = [
    "CURVE_AXES",
    "Alarm",
    "CommandOutcome",
    "Controls",
    "Curve",
    "CurveKind",
    "CurvePoint",
    "CurveUnit",
    "Directive",
    "DirectiveState",
    "EnterService",
    "FixedPowerFactor",
    "FixedVar",
    "FreqDroop",
    "Gradients",
    "OcppVersion",
    "OperationMode",
    "OutcomeStatus",
    "Price",
    "RateUnit",
    "Share",
    "Source",
    "SourceProtocol",
    "StationCapabilities",
    "StationOutcome",
    "Target",
    "TargetScope",
    "UnsupportedControl",
    "VarReference",
]
