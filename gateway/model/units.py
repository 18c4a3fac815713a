"""Shared value types and bounds of the canonical model.

Everything in the core is in SI units (W, var, VA, V, Hz, s) or plain percent (0-100). Power sign convention:
positive = into the station (import, charging, absorbing vars), negative = out of it (export, discharging,
injecting vars). Wire encodings are converted at the protocol edge, never here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: A real power or energy flow, W. Positive = import (charging), negative = export (discharging).
Watts = Annotated[float, Field(ge=-10_000_000, le=10_000_000, allow_inf_nan=False)]
#: A non-negative power magnitude, W (limits are magnitudes; the control name says the direction).
WattsMagnitude = Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)]
#: Reactive power, var. Positive = absorbing (inductive, under-excited), negative = injecting.
Vars = Annotated[float, Field(ge=-10_000_000, le=10_000_000, allow_inf_nan=False)]
#: Plain percent 0-100.
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
#: Signed percent -100..100.
SignedPercent = Annotated[float, Field(ge=-100, le=100, allow_inf_nan=False)]
#: Grid frequency, Hz. Bounds are far outside any real grid, they only catch unit mistakes (mHz, cHz).
Hertz = Annotated[float, Field(ge=40, le=70, allow_inf_nan=False)]
#: Voltage as percent of nominal (effective %V). 0-200 catches volts sent where percent was meant (230 -> error).
VoltPercent = Annotated[float, Field(ge=0, le=200, allow_inf_nan=False)]
#: A duration in seconds (non-negative).
Seconds = Annotated[float, Field(ge=0, le=31_536_000, allow_inf_nan=False)]
#: Randomization bound, s: IEEE 2030.5 RandomizableEvent allows +-3600.
RandomizeSeconds = Annotated[int, Field(ge=-3600, le=3600)]
#: Priority: lower wins (2030.5 primacy, OCPP priority 0 = highest).
Priority = Annotated[int, Field(ge=0, le=1_000_000)]
