"""SCADA client against the adapter's MMS server over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

from gateway.interfaces import AlarmReport, DirectiveEvent, DirectiveEventKind
from gateway.model import Alarm, CurveKind
from protocols.iec61850.clib import AddCause, ClientError, Fc
from protocols.iec61850.translate import StationReading
from tests.iec61850.conftest import NOW, Rig


async def test_written_limit_becomes_a_held_directive(rig: Rig) -> None:
    assert rig.scada.write_setting("DECP1.ExpLimW", 5000.0) == ClientError.OK
    await rig.sink.wait(lambda: bool(rig.sink.submitted))
    directive, signal = rig.sink.submitted[0]
    assert directive.id == "iec61850.DERGW.export_limit"
    assert directive.controls.export_limit_w == 5000
    assert (directive.priority, directive.start, directive.duration_s) == (1, NOW, 900)
    assert directive.source.server == signal.source
    assert signal.source.startswith("127.0.0.1")
    assert rig.scada.read("DECP1.ExpLimW.setMag.f", Fc.SP) == 5000.0


async def test_direct_and_sbo_operates(rig: Rig) -> None:
    result = rig.scada.operate("DWGC1.WSpt", -7000.0)
    assert result.ok
    result = rig.scada.operate("DWMX1.WLimSpt", 22000.0, select=True)
    assert result.ok
    await rig.sink.wait(lambda: len(rig.sink.submitted) == 2)
    (setpoint, _), (limit, _) = rig.sink.submitted
    assert setpoint.controls.active_power_setpoint_w == -7000
    assert limit.controls.import_limit_w == 22000
    assert rig.scada.read("DWMX1.WLimSpt.mxVal.f", Fc.MX) == 22000.0
    disconnect = rig.scada.operate("CSWI1.Pos", False, select=True)
    assert disconnect.ok
    await rig.sink.wait(lambda: len(rig.sink.submitted) == 3)
    assert rig.sink.submitted[2][0].controls.connect is False


async def test_bad_values_and_wrong_control_models_are_refused(rig: Rig) -> None:
    assert rig.scada.write_setting("DECP1.ImpLimW", -1.0) == ClientError.OBJECT_VALUE_INVALID
    out_of_range = rig.scada.operate("DWMX1.WLimSpt", 2e7, select=True)
    assert (out_of_range.ok, out_of_range.add_cause) == (False, AddCause.INCONSISTENT_PARAMETERS)
    direct_on_sbo = rig.scada.operate("DWMX1.WLimSpt", 1000.0)
    assert (direct_on_sbo.ok, direct_on_sbo.add_cause) == (False, AddCause.OBJECT_NOT_SELECTED)
    ctl_model = rig.scada.write("DWMX1.WLimSpt.ctlModel", Fc.CF, 3.0)
    assert ctl_model != ClientError.OK
    read_only = rig.scada.write("MMXU1.TotW.mag.f", Fc.MX, 1.0)
    assert read_only != ClientError.OK
    await rig.sink.wait(lambda: len(rig.sink.rejected) == 2)
    assert not rig.sink.submitted
    codes = [code for _, _, code in rig.sink.rejected]
    assert codes == ["iec61850:inconsistent_parameters"] * 2
    assert "outside [0, 1e+07] W" in rig.sink.rejected[0][1]


async def test_curve_applies_on_enable_and_inconsistent_curve_is_refused(rig: Rig) -> None:
    enable = rig.scada.operate("DVVR1.ModEna", True)
    assert (enable.ok, enable.add_cause) == (False, AddCause.INCONSISTENT_PARAMETERS)
    for i, (v, q) in enumerate([(92.0, 30.0), (98.0, 0.0), (102.0, 0.0), (108.0, -30.0)], start=1):
        assert rig.scada.write_setting(f"DVVR1.VPt{i}", v) == ClientError.OK
        assert rig.scada.write_setting(f"DVVR1.VArPt{i}", q) == ClientError.OK
    assert (rig.scada.operate("DVVR1.ModEna", True)).ok
    await rig.sink.wait(lambda: bool(rig.sink.submitted))
    curve = rig.sink.submitted[0][0].controls.curves[0]
    assert curve.kind is CurveKind.VOLT_VAR
    assert [p.x for p in curve.points] == [92, 98, 102, 108]
    # While enabled, a point that breaks the curve is refused rather than sent.
    assert rig.scada.write_setting("DVVR1.VPt2", 80.0) == ClientError.OBJECT_VALUE_INVALID
    await rig.adapter.directive_event(
        DirectiveEvent(curve_id := "iec61850.DERGW.volt_var", DirectiveEventKind.COMPLETED, NOW)
    )
    assert rig.scada.read("DVVR1.ModEna.stVal", Fc.ST) is False
    assert (rig.scada.operate("DVVR1.ModEna", False)).ok
    await rig.sink.wait(lambda: bool(rig.sink.cancelled))
    assert rig.sink.cancelled[0][0] == curve_id


async def test_measurements_follow_the_stations(rig: Rig) -> None:
    rig.fleet.stations.update(
        a=StationReading(True, watts=7000.0, vars=100.0, hz=50.0, phase_w=(2000.0, 2500.0, 2500.0)),
        b=StationReading(True, watts=11000.0, hz=50.1),
        c=StationReading(False, watts=99999.0),
    )
    rig.adapter.sample()
    read = rig.scada.read
    assert read("MMXU1.TotW.mag.f", Fc.MX) == 18000.0
    assert read("MMXU1.TotVAr.mag.f", Fc.MX) == 100.0
    assert abs(float(await asyncio.to_thread(read, "MMXU1.Hz.mag.f", Fc.MX)) - 50.05) < 1e-3
    assert read("MMXU1.W.phsB.cVal.mag.f", Fc.MX) == 2500.0
    assert read("GGIO1.IntIn2.stVal", Fc.ST) == 2
    rig.fleet.stations["b"] = StationReading(True, watts=3000.0)
    rig.adapter.sample()
    assert read("MMXU1.TotW.mag.f", Fc.MX) == 10000.0


async def test_station_alarm_is_visible(rig: Rig) -> None:
    alarm = Alarm(station_id="cs-7", control="HFMustTrip", grid_event_fault="OverFrequency", at=NOW)
    await rig.adapter.alarm(AlarmReport((alarm,), grid_event=False, at=NOW))
    read = rig.scada.read
    assert read("GGIO1.Ind1.stVal", Fc.ST) is True
    assert read("GGIO1.IntIn1.stVal", Fc.ST) == 1
    assert read("GGIO1.AlmTxt.stVal", Fc.ST) == "cs-7: HFMustTrip OverFrequency"
    assert read("LLN0.Health.stVal", Fc.ST) == 2
    ended = alarm.model_copy(update={"ended": True})
    await rig.adapter.alarm(AlarmReport((ended,), grid_event=False, at=NOW))
    assert read("GGIO1.Ind1.stVal", Fc.ST) is False
    assert rig.adapter.health().ok
