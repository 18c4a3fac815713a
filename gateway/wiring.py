"""Utility adapters from configuration: one factory per configured link, each given the FleetView it reads.

The IEC 61850 adapter is imported only when its section is present: its binding is an optional, GPL-licensed
extra (pyproject.toml, `[iec61850]`).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.clock import Clock
from gateway.config import GatewayConfig, Ieee20305Section
from gateway.interfaces import UtilityAdapter
from gateway.utility import FleetView
from protocols.ieee2030_5.config import EndDeviceBinding, Ieee20305Config, Ratings

AdapterFactory = Callable[[FleetView], UtilityAdapter]


def ieee2030_5_config(section: Ieee20305Section) -> Ieee20305Config:
    devices = tuple(
        EndDeviceBinding(
            name=d.name,
            lfdi=d.lfdi.lower(),
            sfdi=d.sfdi,
            target=d.target,
            stations=tuple(d.stations),
            pin=d.pin,
            ratings=Ratings(d.ratings.max_w, d.ratings.max_charge_w) if d.ratings else None,
        )
        for d in section.devices
    )
    return Ieee20305Config(
        server=section.server,
        ca=section.ca,
        cert=section.cert,
        key=section.key,
        devices=devices,
        dcap_path=section.dcap_path,
        register=section.register_device,
        page_limit=section.page_limit,
        request_timeout_s=section.request_timeout_s,
        default_poll_s=section.default_poll_s,
        backoff_base_s=section.backoff_base_s,
        backoff_cap_s=section.backoff_cap_s,
        nominal_hz=section.nominal_hz,
        log_event_pen=section.log_event_pen,
    )


def configured_adapters(config: GatewayConfig, clock: Clock) -> list[AdapterFactory]:
    """A factory for each utility link the configuration names (none by default)."""
    factories: list[AdapterFactory] = []
    if (sep := config.ieee2030_5) is not None:
        from protocols.ieee2030_5.adapter import Ieee20305Adapter

        sep_config = ieee2030_5_config(sep)
        factories.append(lambda view: Ieee20305Adapter(sep_config, clock=clock, fleet=view))
    if (oa3 := config.openadr3) is not None:
        from protocols.openadr3.adapter import OpenAdr3Adapter

        factories.append(lambda view: OpenAdr3Adapter(oa3, clock=clock, fleet=view))
    if (oa2 := config.openadr2b) is not None:
        from protocols.openadr2b.adapter import OpenAdr2bAdapter

        factories.append(lambda view: OpenAdr2bAdapter(oa2, clock=clock, fleet=view))
    if (iec := config.iec61850) is not None:
        from protocols.iec61850.adapter import Iec61850Adapter, Iec61850Config

        iec_config = Iec61850Config(
            host=iec.host,
            port=iec.port,
            ied_name=iec.ied_name,
            priority=iec.priority,
            hold_s=iec.hold_s,
            sample_s=iec.sample_s,
        )
        factories.append(lambda view: Iec61850Adapter(iec_config, view, clock=clock.now))
    return factories
