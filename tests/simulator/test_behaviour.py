"""Behaviour knobs, framing errors and connection options, as the gateway's own tests will use them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from websockets.exceptions import InvalidStatus

from gateway.model import OcppVersion
from protocols.ocpp.frames import CallError
from protocols.ocpp.simulator import SimBehaviour, SimStation
from tests.simulator.conftest import StartStation
from tests.simulator.csms import MiniCsms

FREQ_DROOP = {
    "isDefault": True,
    "controlId": "fd",
    "controlType": "FreqDroop",
    "freqDroop": {
        "priority": 1,
        "overFreq": 50.2,
        "underFreq": 49.8,
        "overDroop": 0.05,
        "underDroop": 0.05,
        "responseTime": 2,
    },
}


async def test_reject_and_not_supported(start_station: StartStation) -> None:
    behaviour = SimBehaviour(
        reject=frozenset({"SetDERControl", "GetVariables"}), not_supported=frozenset({"ClearDERControl"})
    )
    station, conn = await start_station(behaviour=behaviour)
    assert await conn.call_ok("SetDERControl", FREQ_DROOP) == {"status": "Rejected"}
    assert not station.der.controls
    probe = {"getVariableData": [{"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "Enabled"}}]}
    [result] = (await conn.call_ok("GetVariables", probe))["getVariableResult"]
    assert result["attributeStatus"] == "Rejected"
    reply = await conn.call("ClearDERControl", {"isDefault": True})
    assert isinstance(reply, CallError)
    assert reply.code == "NotSupported"


async def test_never_answer_makes_the_csms_time_out(start_station: StartStation) -> None:
    station, conn = await start_station(behaviour=SimBehaviour(never_answer=frozenset({"SetDERControl"})))
    pending = asyncio.ensure_future(conn.call("SetDERControl", FREQ_DROOP))
    await station.wait_for("SetDERControl")
    await asyncio.sleep(0.1)  # the one place where time is the point: nothing may arrive
    assert not pending.done()
    pending.cancel()


async def test_delay_then_answer(start_station: StartStation) -> None:
    _, conn = await start_station(behaviour=SimBehaviour(delays={"SetDERControl": 0.05}))
    assert await conn.call_ok("SetDERControl", FREQ_DROOP) == {"status": "Accepted"}


async def test_hold_applies_at_once_and_answers_when_released(start_station: StartStation) -> None:
    release = asyncio.Event()
    station, conn = await start_station(behaviour=SimBehaviour(hold={"SetDERControl": release}))
    pending = asyncio.ensure_future(conn.call_ok("SetDERControl", FREQ_DROOP))
    await _until(lambda: any(c.control_id == "fd" for c in station.der))
    assert not pending.done()  # applied, answer held
    release.set()
    assert await pending == {"status": "Accepted"}


async def test_held_answer_is_dropped_once_its_connection_is_gone(start_station: StartStation, csms: MiniCsms) -> None:
    release = asyncio.Event()
    behaviour = SimBehaviour(hold={"SetDERControl": release})
    station, conn = await start_station(behaviour=behaviour, reconnect_delay=0)
    pending = asyncio.ensure_future(conn.call("SetDERControl", FREQ_DROOP))
    await _until(lambda: any(c.control_id == "fd" for c in station.der))
    await station.disconnect()
    await csms.wait_boots(station.station_id, 2)
    release.set()
    await station.wait_for("SetDERControl")
    again = await csms.connection(station.station_id)
    assert again is not conn
    assert await again.call_ok("SetDERControl", FREQ_DROOP) == {"status": "Accepted"}  # frames are in order
    assert again.unsolicited.empty()  # the held answer did not go out on the new connection
    pending.cancel()


async def _until(check: Callable[[], bool]) -> None:
    """Until `check()` holds: the station applies a held call in a task of its own, with nothing to wait on."""
    async with asyncio.timeout(5):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


async def test_disconnect_on_receipt_then_reconnect(start_station: StartStation, csms: MiniCsms) -> None:
    behaviour = SimBehaviour(disconnect_on=frozenset({"GetDERControl"}))
    station, conn = await start_station(behaviour=behaviour, reconnect_delay=0)
    pending = asyncio.ensure_future(conn.call("GetDERControl", {"requestId": 1}))
    await csms.wait_boots(station.station_id, 2)  # dropped without an answer, then back and booted again
    assert station.received[-1][0] == "GetDERControl"
    pending.cancel()


async def test_unknown_unsupported_and_invalid_calls(start_station: StartStation) -> None:
    station, conn = await start_station()
    await conn.ws.send('[2,"u1","FlyToTheMoon",{}]')
    await conn.ws.send('[2,"u2","UnlockConnector",{"evseId":1,"connectorId":1}]')
    await conn.ws.send('[2,"u3","SetDERControl",{"isDefault":true}]')
    await conn.ws.send("not json")
    errors = [await conn.unsolicited.get() for _ in range(4)]
    assert {(e.message_id, e.code) for e in errors if isinstance(e, CallError)} == {
        ("u1", "NotImplemented"),
        ("u2", "NotSupported"),
        ("u3", "OccurrenceConstraintViolation"),
        ("-1", "RpcFrameworkError"),
    }
    assert len(station.violations) == 2  # the invalid SetDERControl and the broken frame
    station.violations.clear()


async def test_send_raw_and_next_error(start_station: StartStation, csms: MiniCsms) -> None:
    station, _ = await start_station("CP16", OcppVersion.V16)
    await station.send_raw('[2,"x1","Heartbeat"]')
    error = await station.next_error()
    assert (error.message_id, error.code) == ("x1", "ProtocolError")  # RpcFrameworkError, 1.6 spelling
    assert csms.broken_frames
    assert station.received == []


async def test_basic_auth() -> None:
    async with MiniCsms(passwords={"CS1": "s3cret-password"}) as csms:
        good = SimStation(csms.url, "CS1", password="s3cret-password")
        await good.start()
        await good.stop()
        bad = SimStation(csms.url, "CS1", password="wrong")
        with pytest.raises(InvalidStatus) as exc:
            await bad.start()
        assert exc.value.response.status_code == 401
        await bad.stop()


async def test_offers_several_subprotocols() -> None:
    async with MiniCsms(versions=(OcppVersion.V201,)) as csms:
        station = SimStation(csms.url, "CS1", subprotocols=[OcppVersion.V21, OcppVersion.V201])
        await station.start()
        assert station.version is OcppVersion.V201
        assert station.device_model.find("DCDERCtrlr", "MaxW", 1) is None
        await station.stop()
