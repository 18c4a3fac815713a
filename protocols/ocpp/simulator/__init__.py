"""Simulated OCPP charging stations (2.1, 2.0.1, 1.6) for tests, the demo and benchmarks."""

from protocols.ocpp.simulator.clock import Clock, ManualClock, SystemClock
from protocols.ocpp.simulator.der_store import DerControl, DerStore
from protocols.ocpp.simulator.device_model import StationSpec
from protocols.ocpp.simulator.fleet import Fleet
from protocols.ocpp.simulator.station import CsmsCallError, SimBehaviour, SimStation

__all__ = [
    "Clock",
    "CsmsCallError",
    "DerControl",
    "DerStore",
    "Fleet",
    "ManualClock",
    "SimBehaviour",
    "SimStation",
    "StationSpec",
    "SystemClock",
]
