"""A small IEEE 2030.5 / CSIP-AUS utility server for tests and the demo (the utility counterpart of the adapter)."""

from protocols.ieee2030_5.server.app import Counterpart, Received
from protocols.ieee2030_5.server.scenario import load_scenario

__all__ = ["Counterpart", "Received", "load_scenario"]
