"""Pure scheduling rules: which directive is in force per station and control, and each station's randomized window.

No I/O and no clock reads: every function takes `now`. The runtime's dispatcher applies them (docs/dispatch.md).
"""

from gateway.schedule.arbitration import Candidate, in_force
from gateway.schedule.randomize import Window, station_directive, station_fraction, station_window

__all__ = ["Candidate", "Window", "in_force", "station_directive", "station_fraction", "station_window"]
