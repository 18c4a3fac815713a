"""Configuration of the 2030.5 link: server, certificates, and which EndDevice stands for which stations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.model import Target

#: Cipher suites offered over TLS 1.2: the 2030.5 mandatory CCM_8 suite first, then the CSIP-AUS GCM suite.
CIPHERS = "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256"


@dataclass(frozen=True, slots=True)
class Ratings:
    """Fleet ratings behind one EndDevice, needed to turn percent-of-rating controls (opModFixedW) into watts."""

    max_w: float
    max_charge_w: float


@dataclass(frozen=True, slots=True)
class EndDeviceBinding:
    """One 2030.5 EndDevice and the stations it stands for.

    A site (one connection point, CSIP-AUS style) is `Target(scope=group, ids=[site])` with its `stations` listed
    so alarms reach the right EndDevice; a single station is `Target(scope=station, ids=[station])`.
    """

    name: str
    lfdi: str
    sfdi: int
    target: Target
    stations: tuple[str, ...] = ()
    #: Registration PIN the server must show for this device (None: not checked).
    pin: int | None = None
    ratings: Ratings | None = None

    def covers(self, station_id: str) -> bool:
        return station_id in self.stations or station_id in self.target.ids


@dataclass(frozen=True, slots=True)
class Ieee20305Config:
    #: Server base URL, e.g. https://utility.example:8443
    server: str
    ca: Path
    cert: Path
    key: Path
    devices: tuple[EndDeviceBinding, ...]
    dcap_path: str = "/dcap"
    #: Create our EndDevice on the server when it is not listed (servers that allow client registration).
    register: bool = True
    #: Page size asked for with `l` when reading lists.
    page_limit: int = 25
    request_timeout_s: float = 10.0
    #: pollRate when a resource gives none (IEEE 2030.5 default: 900 s).
    default_poll_s: int = 900
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    #: Nominal grid frequency for FreqDroop dead bands.
    nominal_hz: float = 50.0
    #: IANA private enterprise number used for vendor LogEvents (0 = not assigned).
    log_event_pen: int = 0
