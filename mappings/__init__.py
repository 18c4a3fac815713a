"""Pure translation of canonical directives into OCPP 2.1, 2.0.1 and 1.6 commands (no I/O, no clock)."""

from mappings.commands import MappingResult, OcppCommand
from mappings.engine import map_clear, map_directive

__all__ = ["MappingResult", "OcppCommand", "map_clear", "map_directive"]
