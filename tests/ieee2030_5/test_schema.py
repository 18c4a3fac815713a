"""Every document the gateway sends and every document the counterpart serves validates against the 2018 XSD
with the CSIP-AUS extensions."""

from __future__ import annotations

import pytest

from protocols.ieee2030_5 import encode, wire
from tests.ieee2030_5.conftest import SITE_LFDI, Link
from tests.ieee2030_5.xsd import problems

W = wire.Power(11, 3)
REPORTS = {
    "DERStatus": encode.der_status(
        wire.DERStatus(
            100,
            gen_connect_status=1,
            inverter_status=4,
            operational_mode_status=2,
            state_of_charge=5000,
            alarm_status=0,
        )
    ),
    "DERCapability": encode.der_capability(wire.DERCapability(0x1F, W, 4, 0x0F, W, W, wire.Power(5, 3))),
    "DERSettings": encode.der_settings(wire.DERSettings(27, W, 100, 0x1F, W, W, 50, 0x0F)),
    "DERAvailability": encode.der_availability(wire.DERAvailability(100, W, wire.Power(3, 3))),
    "MirrorUsagePoint": encode.mirror_usage_point(
        wire.MirrorUsagePoint(
            "ab" * 16,
            SITE_LFDI,
            readings=(wire.MirrorMeterReading("cd" * 16, wire.ReadingType(), "site W", 4200, 100, 60),),
            post_rate=60,
        )
    ),
    "MirrorMeterReading": encode.mirror_meter_reading(
        wire.MirrorMeterReading("cd" * 16, wire.ReadingType(), None, -1500, 100, 60)
    ),
}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_reports_are_schema_valid(name: str) -> None:
    assert problems(REPORTS[name]) == []


async def test_every_served_document_is_schema_valid(link: Link) -> None:
    link.server.add_curve(
        1,
        1,
        {"mrid": "11" * 16, "curveType": 11, "xMultiplier": -2, "yRefType": 2, "points": [[9200, 30], [10800, -30]]},
    )
    link.server.create_control(
        1,
        1,
        {
            "start_in_s": 0,
            "base": {
                "opModConnect": True,
                "opModFixedPFInjectW": {"displacement": 95, "multiplier": -2, "excitation": False},
                "opModFixedVar": {"refType": 2, "value": 1000},
                "opModFreqDroop": {"dBOF": 100, "dBUF": 100, "kOF": 50, "kUF": 50, "openLoopTms": 500},
                "opModMaxLimW": 5000,
                "opModTargetVar": {"value": 2, "multiplier": 3},
                "opModVoltVar": "11" * 16,
                "rampTms": 100,
                "opModGenLimW": {"value": 5, "multiplier": 3},
                "opModLoadLimW": {"value": 7, "multiplier": 3},
            },
        },
    )
    await link.adapter.run_due()
    paths = sorted({p for m, p, s in link.server.requests if m == "GET" and s == 200})
    assert any("/dc?" in p for p in paths)
    for path in paths:
        fetched = (
            await link.adapter.client.get(*path.split("?", 1)) if "?" in path else await link.adapter.client.get(path)
        )
        assert problems(fetched.body) == [], path
    assert not link.sink.rejected
