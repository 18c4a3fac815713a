"""A gateway killed with SIGKILL mid-event and started again continues with no duplicate, lost or stale command.

A real process (`python -m gateway.cli run --config FILE`), simulated stations in the test process that reconnect to
the new process on their own; reconciliation decides what each gets. Assertions are on what the stations received.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from gateway.model import OcppVersion
from protocols.ocpp.simulator import SimBehaviour, SimStation
from tests.support import PASSWORD, TOKEN, password_hash

V21, V201 = OcppVersion.V21, OcppVersion.V201
#: How long `brief` lasts: enough for the first process to reach the kill under load; it ends while the gateway is
#: down (the process runs on the real clock, so the test waits for its end before the restart).
BRIEF_S = 10
SETS_AND_CLEARS = ("SetDERControl", "SetChargingProfile", "ClearDERControl", "ClearChargingProfile")
CURVE = {
    "kind": "volt_var",
    "x_unit": "pct_v_nominal",
    "y_unit": "pct_max_var",
    "points": [{"x": 92, "y": -30}, {"x": 108, "y": 30}],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(
    tmp_path: Path,
    ocpp_port: int,
    api_port: int,
    ids: list[str],
    call_timeout_s: float = 5.0,
    site: Mapping[str, float] | None = None,
) -> Path:
    """`site`: station id -> import rating in W, for stations in group "site"."""
    member = {sid: f'groups = ["site"]\nmax_w = {w}\n' for sid, w in (site or {}).items()}
    stations = "".join(
        f'[[stations]]\nid = "{sid}"\npassword_hash = "{password_hash()}"\n{member.get(sid, "")}\n' for sid in ids
    )
    text = (
        'data_dir = "data"\ncerts_dir = "certs"\n\n'
        f"[ocpp]\nport = {ocpp_port}\nsecurity_profile = 1\ncall_timeout_s = {call_timeout_s}\nheartbeat_s = 60\n\n"
        f'[api]\nport = {api_port}\ntoken = "{TOKEN}"\n\n{stations}'
    )
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


@asynccontextmanager
async def _process(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """The gateway as its own process, up once it prints its endpoints; killed (if still alive) on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while b"gateway started" not in (line := await proc.stdout.readline()):
                assert line, "gateway process ended before it was up"
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _until(check: Callable[[], Any], timeout_s: float = 20.0) -> None:
    """Until `check()` (sync or async) is true; a real process offers nothing else to wait on."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


def _sets_and_clears(sim: SimStation, since: int) -> list[tuple[str, dict[str, Any]]]:
    return [(a, p) for a, p in sim.received[since:] if a in SETS_AND_CLEARS]


def _held(sim: SimStation) -> set[str]:
    return {c.control_id for c in sim.der if not c.is_default} | {str(p.profile_id) for p in sim.profiles.profiles}


async def test_sigkill_mid_event_then_restart_resends_only_what_is_missing(tmp_path: Path) -> None:
    ocpp_port, api_port = _free_port(), _free_port()
    ids = ["A21", "B201", "C201"]
    config = _write_config(tmp_path, ocpp_port, api_port, ids)
    url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
    api = f"http://127.0.0.1:{api_port}/api"
    sims = {
        "A21": SimStation(url, "A21", V21, password=PASSWORD, meter_interval=3600, reconnect_delay=0.1),
        "B201": SimStation(url, "B201", V201, password=PASSWORD, meter_interval=3600, reconnect_delay=0.1),
        "C201": SimStation(url, "C201", V201, password=PASSWORD, meter_interval=3600, reconnect_delay=0.1),
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def show(did: str) -> dict[str, Any]:
            async with http.get(f"{api}/directives/{did}") as response:
                body: dict[str, Any] = await response.json()
                return body

        async def settled(did: str, expected: dict[str, str]) -> bool:
            body = await show(did)
            got = {o["station_id"]: o["status"] for o in body.get("outcomes", [])}
            return body["state"] != "received" and got == expected

        async def reconciled() -> set[str]:
            async with http.get(f"{api}/audit", params={"kind": "station.reconciled"}) as response:
                return {e.get("station_id") for e in (await response.json())["entries"]}

        try:
            async with _process(config) as first:
                await asyncio.gather(sims["A21"].start(), sims["B201"].start())
                event = {"id": "event", "priority": 2, "duration_s": 3600,
                         "controls": {"import_limit_w": 5000, "curves": [CURVE]}}  # fmt: skip
                gone = {"id": "gone", "priority": 5, "duration_s": 3600, "controls": {"import_limit_w": 4000}}
                for raw in (event, gone):
                    async with http.post(f"{api}/directives", json=raw) as response:
                        assert response.status == 202, await response.text()
                # 2.0.1 stations take the limit, not the curve: partial.
                await _until(lambda: settled("event", {"A21": "accepted", "B201": "partial", "C201": "offline-queued"}))
                await _until(lambda: settled("gone", {"A21": "accepted", "B201": "accepted", "C201": "offline-queued"}))
                async with http.delete(f"{api}/directives/gone") as response:
                    assert response.status == 200
                number = (await show("event"))["number"]
                gone_number = (await show("gone"))["number"]
                assert not any(h.startswith(f"g{gone_number}-") for s in sims.values() for h in _held(s))
                before = {sid: _held(sims[sid]) for sid in ("A21", "B201")}
                marks = {sid: len(s.received) for sid, s in sims.items()}
                first.send_signal(signal.SIGKILL)
                await first.wait()
            await _until(lambda: not sims["A21"].connected and not sims["B201"].connected)
            async with _process(config) as second:
                await sims["C201"].start()
                await _until(lambda: _has_all(reconciled(), set(ids)))
                # Connected stations already held everything: asked, nothing sent again, nothing stale left.
                for sid in ("A21", "B201"):
                    assert _sets_and_clears(sims[sid], marks[sid]) == [], sid
                    assert _held(sims[sid]) == before[sid], sid
                asked = [
                    a for a, _ in sims["A21"].received[marks["A21"] :] if a in ("GetDERControl", "GetChargingProfiles")
                ]
                assert asked == ["GetDERControl", "GetChargingProfiles"]
                # The station that was away gets the event once, and nothing of the cancelled directive.
                got = _sets_and_clears(sims["C201"], marks["C201"])
                assert [a for a, _ in got] == ["SetChargingProfile"]
                assert got[0][1]["chargingProfile"]["id"] // 16 == number
                assert (await show("event"))["state"] == "active"
                await _until(lambda: settled("event", {"A21": "accepted", "B201": "partial", "C201": "partial"}))
                # The restarted gateway goes on with the event: a cancel clears it everywhere.
                async with http.delete(f"{api}/directives/event") as response:
                    assert response.status == 200
                await _until(lambda: settled("event", {sid: "cleared" for sid in ids}))
                # DER controls are cleared; limits are replaced by their restore ramps, which lapse by themselves
                # (docs/dispatch.md, "Restore").
                assert all(not [c for c in s.der if not c.is_default] for s in sims.values())
                held = [p for s in sims.values() for p in s.profiles.profiles]
                assert all(len(p.schedules()[0]["chargingSchedulePeriod"]) > 1 for p in held)
                second.send_signal(signal.SIGTERM)
                await second.wait()
        finally:
            await asyncio.gather(*(s.stop() for s in sims.values()))


async def _has_all(found: Any, wanted: set[str]) -> bool:
    got: set[str] = await found
    return wanted <= got


def _number(held: str) -> int:
    """The directive number of an id the gateway gave: controlId `g{number}-...` or profile id number x 16 + slot."""
    return int(held[1 : held.index("-")]) if held.startswith("g") else int(held) // 16


def _sets(sim: SimStation, since: int) -> list[tuple[str, int]]:
    """(action, directive number) of every Set* the station received since `since`."""
    found: list[tuple[str, int]] = []
    for action, payload in sim.received[since:]:
        if action == "SetDERControl":
            found.append((action, _number(payload["controlId"])))
        elif action == "SetChargingProfile":
            found.append((action, payload["chargingProfile"]["id"] // 16))
    return found


async def test_sigkill_mid_fanout_then_restart_sends_each_station_only_what_it_lacks(tmp_path: Path) -> None:
    """The kill comes when stations are at different points of one fan-out, chosen from what they have received:
    A21 and B201 answered everything; G21 applied its first command (the curve) and holds the answer, so its second
    (the limit, command.sent already on disk) never left; H201 applied its only command and holds the answer; W201
    is connected but holds its capability read, so the fan-out had not planned it; C201 is away. A second directive,
    `brief`, reached every station but W201 (its fan-out is cut short too) and ends while the gateway is down: no
    station may get it afterwards."""
    ocpp_port, api_port = _free_port(), _free_port()
    ids = ["A21", "G21", "B201", "H201", "W201", "C201"]
    # A long call timeout: the held answers must not time out before the kill under load.
    config = _write_config(tmp_path, ocpp_port, api_port, ids, call_timeout_s=60.0)
    url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
    api = f"http://127.0.0.1:{api_port}/api"
    release = asyncio.Event()  # set once the first process is dead: held answers then find their connection gone
    sims = {
        sid: SimStation(url, sid, V21 if sid.endswith("21") else V201, password=PASSWORD, meter_interval=3600,
                        reconnect_delay=0.1)
        for sid in ids
    }  # fmt: skip
    sims["W201"].behaviour = SimBehaviour(hold={"GetVariables": release})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def show(did: str) -> dict[str, Any]:
            async with http.get(f"{api}/directives/{did}") as response:
                body: dict[str, Any] = await response.json()
                return body

        async def statuses(did: str) -> dict[str, str]:
            return {o["station_id"]: o["status"] for o in (await show(did)).get("outcomes", [])}

        async def audit(**query: str) -> list[dict[str, Any]]:
            async with http.get(f"{api}/audit", params=query) as response:
                entries: list[dict[str, Any]] = (await response.json())["entries"]
                return entries

        async def reconciled() -> set[str]:
            return {e["station_id"] for e in await audit(kind="station.reconciled")}

        def received(sid: str, action: str, since: int) -> bool:
            return any(a == action for a, _ in sims[sid].received[since:])

        try:
            async with _process(config) as first:
                await asyncio.gather(*(sims[sid].start() for sid in ids if sid != "C201"))
                await _until(lambda: received("W201", "GetVariables", 0))
                brief_start = datetime.now(UTC)
                brief_end = brief_start + timedelta(seconds=BRIEF_S)
                brief = {"id": "brief", "priority": 5, "start": brief_start.isoformat(), "duration_s": BRIEF_S,
                         "controls": {"import_limit_w": 4000}}  # fmt: skip
                async with http.post(f"{api}/directives", json=brief) as response:
                    assert response.status == 202, await response.text()
                answered = {"A21": "accepted", "G21": "accepted", "B201": "accepted", "H201": "accepted"}
                await _until(lambda: _includes(statuses("brief"), answered))
                sims["G21"].behaviour = SimBehaviour(hold={"SetDERControl": release})
                sims["H201"].behaviour = SimBehaviour(hold={"SetChargingProfile": release})
                marks = {sid: len(s.received) for sid, s in sims.items()}
                event = {"id": "event", "priority": 2, "duration_s": 3600,
                         "controls": {"import_limit_w": 5000, "curves": [CURVE]}}  # fmt: skip
                async with http.post(f"{api}/directives", json=event) as response:
                    assert response.status == 202, await response.text()
                # The kill moment, from what the stations have received.
                await _until(lambda: _includes(statuses("event"), {"A21": "accepted", "B201": "partial"}))
                await _until(lambda: received("G21", "SetDERControl", marks["G21"]))
                await _until(lambda: received("H201", "SetChargingProfile", marks["H201"]))
                number, brief_number = (await show("event"))["number"], (await show("brief"))["number"]
                assert _sets(sims["G21"], marks["G21"]) == [("SetDERControl", number)]
                assert _sets(sims["W201"], 0) == []
                # G21's limit is on disk as sent, though it never left: the gateway waits for the curve's answer.
                g21_sent = [e["data"]["action"] for e in await audit(directive="event", station="G21",
                                                                    kind="command.sent")]  # fmt: skip
                assert g21_sent == ["SetDERControl", "SetChargingProfile"]
                # Both fan-outs are cut short; brief has not ended yet.
                assert [(await show(d))["state"] for d in ("brief", "event")] == ["received", "received"]
                assert datetime.now(UTC) < brief_end
                killed = {sid: len(s.received) for sid, s in sims.items()}
                first.send_signal(signal.SIGKILL)
                await first.wait()
            release.set()
            await _until(lambda: not any(s.connected for s in sims.values()))
            await _until(lambda: datetime.now(UTC) > brief_end, timeout_s=BRIEF_S + 5)  # the process's clock is real
            async with _process(config) as second:
                await sims["C201"].start()
                await _until(lambda: _has_all(reconciled(), set(ids)))
                assert (await show("brief"))["state"] == "completed"
                assert (await show("event"))["state"] == "active"
                # Only what each lacked, once; nothing of the directive that ended while the gateway was down (its
                # items the stations still reported are cleared: nothing wants them).
                assert {sid: _sets(sims[sid], killed[sid]) for sid in ids} == {
                    "A21": [],
                    "B201": [],
                    "H201": [],
                    "G21": [("SetChargingProfile", number)],
                    "W201": [("SetChargingProfile", number)],
                    "C201": [("SetChargingProfile", number)],
                }
                assert {n for sid in ids for n in _clears(sims[sid], killed[sid])} <= {brief_number}
                # Every station holds exactly the event: 2.1 the curve and the limit, 2.0.1 the limit.
                v21, v201 = _held(sims["A21"]), _held(sims["B201"])
                assert {_number(h) for h in v21 | v201} == {number}
                assert len([h for h in v21 if h.startswith("g")]) == 1
                assert (len(v21), len(v201)) == (2, 1)
                for sid, sim in sims.items():
                    assert _held(sim) == (v21 if sid.endswith("21") else v201), sid
                expected = {sid: "accepted" if sid.endswith("21") else "partial" for sid in ids}
                await _until(lambda: _includes(statuses("event"), expected))
                assert await statuses("event") == expected
                # Every station of the ended directive has a final outcome, also the one its fan-out never reached.
                brief_outcomes = await statuses("brief")
                assert brief_outcomes.keys() == set(ids)
                assert brief_outcomes["W201"] == brief_outcomes["C201"] == "offline-queued"
                second.send_signal(signal.SIGTERM)
                await second.wait()
        finally:
            await asyncio.gather(*(s.stop() for s in sims.values()))
    for sim in sims.values():
        assert sim.faults == [], sim.station_id
        assert sim.violations == [], sim.station_id
    db, keys = str(tmp_path / "data" / "dergw.sqlite"), str(tmp_path / "certs")
    code, output = await _cli("audit", "verify", "--keys", keys, db)
    assert code == 0, output
    code, output = await _cli("audit", "report", "--db", db, "--json", "event")
    assert code == 0, output
    report = json.loads(output)
    # In the trail, unanswered are exactly the commands the kill cut off; each of those stations is settled after.
    unanswered = sorted((c["station_id"], c["action"]) for c in report["stations"] if c["status"] == "no answer")
    assert unanswered == [("G21", "SetChargingProfile"), ("G21", "SetDERControl"), ("H201", "SetChargingProfile")]
    resent = [(c["station_id"], c["action"], c["status"]) for c in report["stations"] if c["station_id"] == "G21"]
    assert resent[-1] == ("G21", "SetChargingProfile", "Accepted")
    notes = Counter(e["data"].get("note") for e in report["other"] if e["kind"] == "directive.outcome")
    assert notes == {
        "station offline: kept, sent when it reconnects": 1,  # C201, before the kill
        "fan-out cut short by a restart: kept, sent when the station reconnects": 3,  # G21, H201, W201
        "held by the station (reconciled)": 1,  # H201
    }


async def _cli(*args: str) -> tuple[int, str]:
    """`dergw ARGS` as its own process: exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, output.decode()


def _clears(sim: SimStation, since: int) -> list[int]:
    """Directive numbers of every Clear* the station received since `since`."""
    found: list[int] = []
    for action, payload in sim.received[since:]:
        if action == "ClearDERControl":
            found.append(_number(payload["controlId"]))
        elif action == "ClearChargingProfile":
            found.append(payload["chargingProfileId"] // 16)
    return found


async def _includes(found: Any, wanted: dict[str, str]) -> bool:
    got: dict[str, str] = await found
    return all(got.get(k) == v for k, v in wanted.items())


SITE_CAP = 22_000
#: Import ratings of the site's stations, W.
SITE = {"A21": 22_000.0, "B201": 11_000.0, "D21": 11_000.0}


async def test_sigkill_mid_reshare_never_lets_the_site_exceed_its_cap(tmp_path: Path) -> None:
    """A and B share a 22 kW site cap (14.666 / 7.333 kW). A vehicle arrives at D: A and B are lowered to 11 / 5.5
    kW first; A answers, B applies it but its answer is held, so D's raise waits. SIGKILL then. The restarted
    gateway reads the last decision back and, as the stations come back, shares again (A 11, B 5.5, D 5.5 kW);
    replaying both processes' audit, what the stations may hold never adds up to more than the cap."""
    ocpp_port, api_port = _free_port(), _free_port()
    ids = list(SITE)
    config = _write_config(tmp_path, ocpp_port, api_port, ids, call_timeout_s=60.0, site=SITE)
    url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
    api = f"http://127.0.0.1:{api_port}/api"
    release = asyncio.Event()
    sims = {
        sid: SimStation(url, sid, V21 if sid.endswith("21") else V201, password=PASSWORD, meter_interval=3600,
                        reconnect_delay=0.1, power=50_000.0, transaction=sid != "D21")
        for sid in ids
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def audit() -> list[dict[str, Any]]:
            async with http.get(f"{api}/audit", params={"directive": "site-cap", "limit": "10000"}) as response:
                entries: list[dict[str, Any]] = (await response.json())["entries"]
                return entries

        def limits(sid: str) -> list[float]:
            found = [_site_limit_w(p) for a, p in sims[sid].received if a == "SetChargingProfile"]
            return [w for w in found if w is not None]

        async def draws(expected: Mapping[str, float]) -> bool:
            return all(abs(sims[sid].power_w() - w) < 1.0 for sid, w in expected.items())

        try:
            async with _process(config) as first:
                await asyncio.gather(*(s.start() for s in sims.values()))
                cap = {"id": "site-cap", "target": {"scope": "group", "ids": ["site"], "share": "total"},
                       "controls": {"import_limit_w": SITE_CAP}}  # fmt: skip
                async with http.post(f"{api}/directives", json=cap) as response:
                    assert response.status == 202, await response.text()
                await _until(lambda: draws({"A21": 14_666, "B201": 7_333}))
                sims["B201"].behaviour = SimBehaviour(hold={"SetChargingProfile": release})
                await sims["D21"].start_transaction()
                # The kill moment: both decreases received, A's answered, B's answer held, D not raised.
                await _until(lambda: limits("A21")[-1:] == [11_000] and limits("B201")[-1:] == [5_500])
                assert limits("D21") == [0]  # its share before the vehicle came
                first.send_signal(signal.SIGKILL)
                await first.wait()
            release.set()
            await _until(lambda: not any(s.connected for s in sims.values()))
            async with _process(config) as second:
                await _until(lambda: draws({"A21": 11_000, "B201": 5_500, "D21": 5_500}))
                entries = sorted(await audit(), key=lambda e: int(e["seq"]))
                second.send_signal(signal.SIGTERM)
                await second.wait()
        finally:
            await asyncio.gather(*(s.stop() for s in sims.values()))
    held: dict[str, float] = {}
    in_flight: dict[str, tuple[str, float]] = {}
    for entry in entries:
        sid, message = entry.get("station_id"), entry.get("message_id")
        w = _site_limit_w(entry["data"]["frame"][3]) if entry["kind"] == "command.sent" else None
        if w is not None and sid and message:
            in_flight[message] = (sid, w)
            exposure = dict(held)
            for s, limit in in_flight.values():  # unanswered (also those the kill cut off): may be held
                exposure[s] = max(exposure.get(s, 0.0), limit)
            assert sum(exposure.values()) <= SITE_CAP + 1e-6, (entry["seq"], exposure)
        elif entry["kind"] == "station.answer" and message in in_flight:
            s, limit = in_flight.pop(message)
            if entry["data"]["status"] == "Accepted":
                held[s] = limit

    reasons = [e["data"]["reason"] for e in entries if e["kind"] == "allocation.decided"]
    assert "restored" in reasons  # the last decision before the kill was read back


def _site_limit_w(payload: Mapping[str, Any]) -> float | None:
    """The station-wide limit a SetChargingProfile carries, in W (amperes at 230 V x 3 phases); None for others."""
    profile = payload.get("chargingProfile") or {}
    if profile.get("chargingProfilePurpose") != "ChargingStationMaxProfile":
        return None
    schedule = profile["chargingSchedule"][0]
    limit = float(schedule["chargingSchedulePeriod"][0]["limit"])
    return limit if schedule["chargingRateUnit"] == "W" else limit * 230 * 3
