"""End to end over real sockets: directive -> mapping -> OCPP commands -> simulated stations -> outcomes.

Every frame a station receives is validated again here with `jsonschema` (an implementation independent of the
gateway's fastjsonschema validators) against the official schema of its version.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway.demo import SAMPLE_DIRECTIVE
from gateway.model import Directive, OcppVersion, OutcomeStatus, StationOutcome
from gateway.runtime import Gateway
from mappings.naming import DER_CONTROL_TYPES
from protocols.ocpp import schemas
from protocols.ocpp.simulator import SimBehaviour, SimStation, StationSpec
from tests.support import PASSWORD, make_config, running, station_configs

Spec = tuple[str, OcppVersion, dict[str, Any]]
V21, V201, V16 = OcppVersion.V21, OcppVersion.V201, OcppVersion.V16
ALL_DER_MODES = frozenset(DER_CONTROL_TYPES)


def assert_schema_valid(station: SimStation) -> None:
    """Every CALL the gateway sent this station validates against the official schema (jsonschema)."""
    assert station.violations == []
    assert station.faults == []
    for action, payload in station.received:
        jsonschema.validate(payload, schemas.schema(station.version, action, False))


@asynccontextmanager
async def fleet(gw: Gateway, specs: Sequence[Spec]) -> AsyncIterator[dict[str, SimStation]]:
    stations = {
        sid: SimStation(gw.ocpp.url, sid, version, password=PASSWORD, meter_interval=3600, **options)
        for sid, version, options in specs
    }
    try:
        await asyncio.gather(*(s.start() for s in stations.values()))
        await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in stations))
        yield stations
    finally:
        await asyncio.gather(*(s.stop() for s in stations.values()))


async def submit(gw: Gateway, raw: dict[str, Any]) -> dict[str, StationOutcome]:
    record = await gw.dispatcher.submit(Directive.model_validate(raw))
    return {o.station_id: o for o in await gw.dispatcher.wait(record.directive.id)}


def _config(tmp_path: Path, ids: Sequence[str], **ocpp: Any):  # type: ignore[no-untyped-def]
    return make_config(tmp_path, station_configs(ids, groups=["site"]), **ocpp)


async def test_mixed_fleet_sample_directive(tmp_path: Path) -> None:
    """2.1 DER stations accept every control; 2.0.1 and 1.6 get the import limit and report the rest."""
    specs: list[Spec] = [("A21", V21, {}), ("B201", V201, {}), ("C16", V16, {})]
    async with running(_config(tmp_path, ["A21", "B201", "C16"])) as gw, fleet(gw, specs) as stations:
        outcomes = await submit(gw, SAMPLE_DIRECTIVE)
        assert outcomes["A21"].status is OutcomeStatus.ACCEPTED
        for sid in ("B201", "C16"):
            o = outcomes[sid]
            assert o.status is OutcomeStatus.PARTIAL
            applied = {c for cmd in o.commands if cmd.status is OutcomeStatus.ACCEPTED for c in cmd.controls}
            assert applied == {"import_limit_w"}
            assert {u.control for u in o.unsupported} == {"export_limit_w", "freq_droop", "curve:volt_var"}
            assert all(u.reason for u in o.unsupported)
        assert {a for a, _ in stations["A21"].received} >= {"SetDERControl", "SetChargingProfile"}
        assert "SetDERControl" not in {a for a, _ in stations["B201"].received}
        for station in stations.values():
            assert_schema_valid(station)
        # The station really holds what it accepted: the volt-var curve and the droop are stored (R01.FR.03).
        held = {c.control_type for c in stations["A21"].der}
        assert {"VoltVar", "FreqDroop"} <= held


def _every_control() -> dict[str, Any]:
    def curve(kind: str, xu: str, yu: str, pts: list[tuple[float, float]]) -> dict[str, Any]:
        return {"kind": kind, "x_unit": xu, "y_unit": yu, "points": [{"x": x, "y": y} for x, y in pts]}

    trips_f = [curve(k, "s", "Hz", [(0.16, 62.0), (300, 61.2)]) for k in ("hf_must_trip", "hf_may_trip")]
    trips_f += [curve(k, "s", "Hz", [(0.16, 57.0), (300, 58.5)]) for k in ("lf_must_trip", "lf_may_trip")]
    trips_v = [
        curve(k, "s", "pct_v_nominal", [(0.16, 120), (13, 110)]) for k in ("hv_must_trip", "hv_may_trip", "hv_mom_cess")
    ]
    trips_v += [
        curve(k, "s", "pct_v_nominal", [(0.16, 45), (21, 88)]) for k in ("lv_must_trip", "lv_may_trip", "lv_mom_cess")
    ]
    return {
        "id": "every-control",
        "priority": 3,
        "duration_s": 600,
        "controls": {
            "import_limit_w": 6000,
            "export_limit_w": 2000,
            "max_discharge_pct": 50,
            "active_power_setpoint_w": 3000,
            "reactive_power_setpoint_var": 500,
            "fixed_pf_absorb": {"displacement": 0.95, "absorbing_vars": True},
            "fixed_pf_inject": {"displacement": 0.9, "absorbing_vars": False},
            "fixed_var": {"percent": 20, "reference": "pct_max_var"},
            "freq_droop": {"over_freq_hz": 60.036, "under_freq_hz": 59.964, "over_droop": 0.05, "under_droop": 0.05,
                           "response_time_s": 2},
            "curves": [
                curve("volt_var", "pct_v_nominal", "pct_max_var", [(92, -30), (108, 30)]),
                curve("volt_watt", "pct_v_nominal", "pct_max_w", [(106, 100), (110, 0)]),
                curve("freq_watt", "Hz", "pct_max_w", [(60.036, 100), (61, 0)]),
                curve("watt_pf", "pct_max_w", "pf", [(0, 1), (100, 0.9)]),
                curve("watt_var", "pct_max_w", "pct_max_var", [(0, 0), (100, -40)]),
                curve("power_monitoring_must_trip", "s", "pct_max_w", [(1, 50)]),
                *trips_f,
                *trips_v,
            ],
            "operation_mode": "central_setpoint",
        },
    }  # fmt: skip


@pytest.mark.parametrize("version", [V21, V201, V16])
async def test_every_control_type_reaches_each_version_as_valid_frames(tmp_path: Path, version: OcppVersion) -> None:
    """Every canonical control is either sent (schema-valid) or reported not-supported with a reason."""
    spec = StationSpec(der_modes=ALL_DER_MODES)
    async with running(_config(tmp_path, ["S1"])) as gw, fleet(gw, [("S1", version, {"spec": spec})]) as stations:
        raw = _every_control()
        outcome = (await submit(gw, raw))["S1"]
        station = stations["S1"]
        assert_schema_valid(station)
        carried = [c for cmd in outcome.commands for c in cmd.controls]
        reported = [u.control for u in outcome.unsupported]
        assert sorted(carried + reported) == sorted(Directive.model_validate(raw).controls.present())
        if version is V21:
            sent_types = {p["controlType"] for a, p in station.received if a == "SetDERControl"}
            # Gradients and EnterService are default-only (R04.FR.14/15): a timed directive cannot carry them.
            assert sent_types >= ALL_DER_MODES - {"Gradients", "EnterService"}
        else:
            assert all(a != "SetDERControl" for a, _ in station.received)


async def test_outcomes_rejected_not_supported_timeout_and_offline(tmp_path: Path) -> None:
    ids = ["REJ", "NSUP", "SLOW", "GONE", "OK"]
    specs: list[Spec] = [
        ("REJ", V21, {"behaviour": SimBehaviour(reject=frozenset({"SetDERControl"}))}),
        ("NSUP", V21, {"behaviour": SimBehaviour(not_supported=frozenset({"SetDERControl"}))}),
        ("SLOW", V21, {"behaviour": SimBehaviour(never_answer=frozenset({"SetDERControl"}))}),
        ("OK", V21, {}),
    ]
    directive = {"id": "curve-only", "controls": {"curves": [SAMPLE_DIRECTIVE["controls"]["curves"][0]]}}
    async with running(_config(tmp_path, ids, call_timeout_s=0.5)) as gw, fleet(gw, specs):
        outcomes = await submit(gw, directive)
        assert outcomes["REJ"].status is OutcomeStatus.REJECTED
        assert outcomes["REJ"].commands[0].answer == "Rejected"
        assert outcomes["NSUP"].status is OutcomeStatus.NOT_SUPPORTED
        assert outcomes["NSUP"].commands[0].answer == "NotSupported"
        assert outcomes["SLOW"].status is OutcomeStatus.TIMEOUT
        assert outcomes["GONE"].status is OutcomeStatus.OFFLINE
        assert outcomes["OK"].status is OutcomeStatus.ACCEPTED
        answers = [e.data for e in gw.audit.query(directive_id="curve-only", kind="station.answer")]
        assert sorted(a["kind"] for a in answers) == ["error", "result", "result", "timeout"]


async def test_offline_station_gets_the_directive_when_it_connects(tmp_path: Path) -> None:
    directive = {"id": "while-away", "duration_s": 3600, "controls": {"import_limit_w": 5000}}
    async with running(_config(tmp_path, ["LATE"])) as gw:
        outcomes = await submit(gw, directive)
        assert outcomes["LATE"].status is OutcomeStatus.OFFLINE
        async with fleet(gw, [("LATE", V201, {})]) as stations:
            await stations["LATE"].wait_for("SetChargingProfile")
            assert_schema_valid(stations["LATE"])
        outcome = gw.store.outcomes("while-away")[0]
        assert outcome.status is OutcomeStatus.ACCEPTED


async def test_commands_are_persisted_before_they_are_sent(tmp_path: Path) -> None:
    """While the station sits on the command, the SQLite file already holds it (command.sent, with its frame); its
    pending outcome is in flight: read like a stored one (API, dashboard counts), written once the answer comes."""
    config = _config(tmp_path, ["HOLD"], call_timeout_s=30)
    specs: list[Spec] = [("HOLD", V201, {"behaviour": SimBehaviour(never_answer=frozenset({"SetChargingProfile"}))})]
    async with running(config) as gw, fleet(gw, specs) as stations:
        record = await gw.dispatcher.submit(Directive.model_validate({"id": "held", "controls": {"import_limit_w": 1}}))
        await stations["HOLD"].wait_for("SetChargingProfile")
        with sqlite3.connect(config.database) as db:
            frames = [
                json.loads(body)["data"]["frame"]
                for (body,) in db.execute(
                    "SELECT body FROM audit_entries WHERE kind='command.sent' AND directive_id='held'"
                )
            ]
            rows = db.execute("SELECT count(*) FROM outcomes WHERE directive_id='held'").fetchone()[0]
        assert [f[2] for f in frames] == ["SetChargingProfile"]
        assert rows == 0
        (seen,) = gw.store.outcomes(record.directive.id)
        assert seen.status is OutcomeStatus.PENDING
        assert [c.message_id for c in seen.commands] == [frames[0][1]]
        assert gw.store.outcome_counts(record.directive.id) == {"pending": 1}


async def test_cancel_clears_what_each_station_holds(tmp_path: Path) -> None:
    specs: list[Spec] = [("A21", V21, {}), ("C16", V16, {})]
    async with running(_config(tmp_path, ["A21", "C16"])) as gw, fleet(gw, specs) as stations:
        await submit(gw, SAMPLE_DIRECTIVE)
        assert {c.control_type for c in stations["A21"].der} >= {"VoltVar"}
        record = await gw.dispatcher.cancel(SAMPLE_DIRECTIVE["id"])
        assert record.state.value == "cancelled"
        outcomes = {o.station_id: o for o in gw.store.outcomes(SAMPLE_DIRECTIVE["id"])}
        assert outcomes["A21"].status is OutcomeStatus.CLEARED
        assert outcomes["C16"].status is OutcomeStatus.CLEARED
        assert not [c for c in stations["A21"].der if not c.is_default]
        # The import limit is not cleared but replaced in place by its restore ramp (same id, K01.FR.05), which
        # lapses by itself (docs/dispatch.md, "Restore").
        received = stations["C16"].received
        assert "ClearChargingProfile" not in {a for a, _ in received}
        sets = [p["csChargingProfiles"] for a, p in received if a == "SetChargingProfile"]
        assert len(sets) == 2
        assert sets[0]["chargingProfileId"] == sets[1]["chargingProfileId"]
        periods = sets[1]["chargingSchedule"]["chargingSchedulePeriod"]
        assert len(periods) > 2
        assert periods[0] == sets[0]["chargingSchedule"]["chargingSchedulePeriod"][0]
        for station in stations.values():
            assert_schema_valid(station)


async def test_cancel_clears_at_once_when_the_operator_chose_no_restore(tmp_path: Path) -> None:
    config = _config(tmp_path, ["C16"])
    config.dispatch.restore_ramp_pct_per_s = config.dispatch.restore_max_delay_s = 0
    async with running(config) as gw, fleet(gw, [("C16", V16, {})]) as stations:
        await submit(gw, SAMPLE_DIRECTIVE)
        await gw.dispatcher.cancel(SAMPLE_DIRECTIVE["id"])
        assert [a for a, _ in stations["C16"].received][-2:] == ["SetChargingProfile", "ClearChargingProfile"]
        assert not [e for e in gw.audit.trail(SAMPLE_DIRECTIVE["id"]) if e.kind == "restore.planned"]


async def test_default_controls_reach_a_21_station_as_isdefault_settings(tmp_path: Path) -> None:
    """Gradients and EnterService exist only as defaults (R04.FR.14/15); defaults carry no time (R04.FR.12/13)."""
    raw = {
        "id": "defaults",
        "is_default": True,
        "controls": {
            "gradients": {"ramp_pct_per_s": 10, "soft_start_pct_per_s": 2},
            "enter_service": {"high_voltage_pct": 105, "low_voltage_pct": 91.7, "high_freq_hz": 60.1,
                              "low_freq_hz": 59.5, "delay_s": 300, "random_delay_s": 60, "ramp_time_s": 300},
            "fixed_pf_inject": {"displacement": 0.95, "absorbing_vars": True},
        },
    }  # fmt: skip
    spec = StationSpec(der_modes=ALL_DER_MODES)
    async with running(_config(tmp_path, ["D1"])) as gw, fleet(gw, [("D1", V21, {"spec": spec})]) as stations:
        outcome = (await submit(gw, raw))["D1"]
        assert outcome.status is OutcomeStatus.ACCEPTED
        sent = [p for a, p in stations["D1"].received if a == "SetDERControl"]
        assert {p["controlType"] for p in sent} == {"Gradients", "EnterService", "FixedPFInject"}
        assert all(p["isDefault"] is True for p in sent)
        for p in sent:
            setting = p[
                {"Gradients": "gradient", "EnterService": "enterService", "FixedPFInject": "fixedPFInject"}[
                    p["controlType"]
                ]
            ]
            assert "startTime" not in setting
            assert "duration" not in setting
        assert {c.control_type for c in stations["D1"].der if c.is_default} == {
            "Gradients",
            "EnterService",
            "FixedPFInject",
        }
        assert_schema_valid(stations["D1"])
