"""Golden inputs: the shared CSIP-AUS server documents parse, normalize and validate as expected."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.model import SourceProtocol, TargetScope
from protocols.ieee2030_5 import decode, encode, wire
from protocols.ieee2030_5.normalize import EventAction, control_directive, default_directive, event_action
from tests.ieee2030_5.conftest import DATA, binding
from tests.ieee2030_5.xsd import problems

SERVER_NOW = datetime.fromtimestamp(1795551919, UTC)


def _read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _control() -> wire.DERControl:
    return decode.page(
        decode.root(_read("edev_1_derp_1_derc.xml"), "DERControlList"), "DERControl", decode.der_control
    ).items[0]


def _program() -> wire.DERProgram:
    return decode.page(decode.root(_read("edev_1_derp.xml"), "DERProgramList"), "DERProgram", decode.der_program).items[
        0
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.xml") if p.name != "edev_1_der_1_dercap.xml"))
def test_shared_samples_are_schema_valid(name: str) -> None:
    assert problems(_read(name)) == []


def test_dercap_sample_is_out_of_range_and_says_so() -> None:
    # The server's fixture uses multipliers like 130, outside Int8: the schema says so precisely.
    assert any("multiplier" in p and "Int8" in p for p in problems(_read("edev_1_der_1_dercap.xml")))


def test_der_control_sample() -> None:
    c = _control()
    assert c.mrid == "30000000000000000000000600000000"
    assert (c.start, c.duration, c.randomize_start) == (1795551792, 3600, 30)
    assert c.reply_to == "/edev/1/rsps/site_control/rsp"
    assert c.response_required == 3
    assert c.base.imp_lim_w == wire.Power(7000, 0)
    assert c.base.exp_lim_w == wire.Power(15000, -1)
    assert c.base.ramp_tms == 6000
    assert event_action(c) == (EventAction.SUBMIT, 0)


def test_der_control_sample_normalizes() -> None:
    n = control_directive(_control(), _program(), binding(), {}, server="https://s", offset_s=0, now=SERVER_NOW)
    d = n.directive
    assert d.id == "sep2:site1:30000000000000000000000600000000"
    assert d.controls.import_limit_w == 7000
    assert d.controls.export_limit_w == 1500
    assert d.start == datetime.fromtimestamp(1795551792, UTC)
    assert d.duration_s == 3600
    assert d.randomize_start_s == 30
    assert d.priority == 0
    assert d.source.protocol is SourceProtocol.IEEE2030_5
    assert d.source.signal_id == _control().mrid
    assert d.target.scope is TargetScope.GROUP
    assert d.target.ids == ["site1"]
    assert n.unexpressed == ("rampTms=60s",)


def test_default_der_control_sample_normalizes() -> None:
    dflt = decode.default_der_control(decode.root(_read("edev_1_derp_1_dderc.xml"), "DefaultDERControl"))
    d = default_directive(dflt, _program(), binding(), {}, server="https://s").directive
    assert d.is_default
    assert d.start is None
    # Imp 10.10 W vs Load 7.77 W and Exp 9.99 W vs Gen 8.88 W: the tighter cap of each pair wins.
    assert d.controls.import_limit_w == pytest.approx(7.77)
    assert d.controls.export_limit_w == pytest.approx(8.88)
    assert d.controls.gradients is not None
    assert d.controls.gradients.ramp_pct_per_s == pytest.approx(0.06)


def test_other_samples_decode() -> None:
    dcap = decode.device_capability(decode.root(_read("dcap.xml"), "DeviceCapability"))
    assert dcap.poll_rate == 300
    assert dcap.time == wire.Link("/tm")
    assert dcap.end_devices == wire.ListLink("/edev", 4)
    edev = decode.end_device(decode.root(_read("edev_1.xml"), "EndDevice"))
    assert edev.lfdi == "1a" * 20
    assert edev.sfdi == 1111
    assert edev.registration == wire.Link("/edev/1/rg")
    assert decode.time(decode.root(_read("tm.xml"), "Time")).current_time == 1795551919
    fsa = decode.page(
        decode.root(_read("edev_1_fsa.xml"), "FunctionSetAssignmentsList"),
        "FunctionSetAssignments",
        decode.function_set_assignments,
    )
    assert fsa.all == 2
    assert fsa.items[0].programs == wire.ListLink("/edev/1/fsa/1/derp", 3)
    rsp = decode.page(
        decode.root(_read("edev_1_rsps_site_control_rsp.xml"), "ResponseList"), "Response", decode.response
    )
    assert rsp.items[0].status == 2


def test_reencoded_control_list_is_schema_valid_and_equal() -> None:
    page = decode.page(decode.root(_read("edev_1_derp_1_derc.xml"), "DERControlList"), "DERControl", decode.der_control)
    again = encode.der_control_list(page)
    assert problems(again) == []
    assert decode.page(decode.root(again, "DERControlList"), "DERControl", decode.der_control) == page
