"""Sidecar mode end to end over real sockets: station <-> gateway proxy <-> an `ocpp`-library CSMS.

Byte-for-byte pass-through, gateway message ids and answer routing, the single outstanding CALL shared by the CSMS
and the gateway, refusals, the CSMS going away and coming back, station reconnects, and conflicts with the CSMS's
own charging profiles.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ocpp.v21 import call
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from gateway.config import UpstreamConfig
from gateway.model import Directive, OcppVersion, OutcomeStatus
from gateway.runtime import Gateway
from protocols.ocpp import schemas
from protocols.ocpp.sidecar import ids
from protocols.ocpp.simulator import SimStation
from tests.sidecar.conftest import proxy_of
from tests.sidecar.upstream_csms import UpstreamCsms
from tests.support import PASSWORD, make_config, raw_station, running, station_configs

V21 = OcppVersion.V21
LIMIT = {"id": "grid-1", "target": {"scope": "station", "ids": ["S1"]}, "duration_s": 600}


def limit(directive_id: str = "grid-1", watts: float = 4000) -> Directive:
    return Directive.model_validate({**LIMIT, "id": directive_id, "controls": {"import_limit_w": watts}})


async def station(gw: Gateway, station_id: str = "S1", **options: Any) -> SimStation:
    sim = SimStation(proxy_of(gw).url, station_id, V21, password=PASSWORD, meter_interval=3600, **options)
    await sim.start()
    await gw.fleet.stations[station_id].capabilities_ready.wait()
    return sim


def assert_gateway_frames_valid(gw: Gateway, sim: SimStation) -> None:
    """Every CALL the station received is schema-valid, and every gateway CALL carried a gateway id."""
    assert sim.violations == []
    assert sim.faults == []
    for action, payload in sim.received:
        jsonschema.validate(payload, schemas.schema(sim.version, action, False))
    sent = gw.audit.query(station_id=sim.station_id, kind="command.sent")
    assert sent
    assert all(e.message_id is not None and ids.is_gateway_id(e.message_id) for e in sent)


def assert_csms_never_saw_gateway_frames(csms: UpstreamCsms, station_id: str) -> None:
    """Part 4, 6.4: replies to the gateway's messages are never sent to the CSMS (nor its CALLs)."""
    assert not [t for t in csms.received_text(station_id) + csms.sent_text(station_id) if ids.PREFIX in t]


async def next_frame(ws: ClientConnection) -> list[Any]:
    return list(json.loads(await asyncio.wait_for(ws.recv(), 10)))


async def test_mixed_traffic_passes_byte_for_byte_while_a_directive_is_applied(
    sidecar: Gateway, csms: UpstreamCsms
) -> None:
    gw = sidecar
    sim = await station(gw, transaction=True)
    async with raw_station(proxy_of(gw).url, "RAW") as ws:
        await csms.until(lambda: "RAW" in csms.stations)
        record = await gw.dispatcher.submit(limit())
        texts = [  # spellings the gateway's own codec would never produce: spaces, escapes, non-ASCII
            '[2, "raw-1", "Authorize", {"idToken": {"idToken": "TAG\\u0031", "type": "ISO14443"}}]',
            '[2,"raw-2","DataTransfer",{"vendorId":"acme","data":"grüße"}]',
            '[2,"raw-3","TransactionEvent",{"eventType":"Started","timestamp":"2026-01-01T00:00:00Z",'
            '"triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"T-1"},'
            '"evse":{"id":1,"connectorId":1}}]',
        ]
        for text in texts:
            await ws.send(text)
            answer = await asyncio.wait_for(ws.recv(), 10)
            assert answer == csms.sent_text("RAW")[-1]  # the CSMS's answer, unchanged
        assert csms.received_text("RAW") == texts  # the station's frames, unchanged
        # The CSMS calls the station; the station's answer in its own spelling reaches the CSMS unchanged.
        asking = asyncio.create_task(
            csms.stations["RAW"].call(call.DataTransfer(vendor_id="csms"), unique_id="csms-1", suppress=False)
        )
        frame = await next_frame(ws)
        assert frame[:3] == [2, "csms-1", "DataTransfer"]
        reply = '[3 , "csms-1" , {"status" : "Rejected"}]'
        await ws.send(reply)
        assert (await asking).status == "Rejected"
        assert csms.received_text("RAW")[-1] == reply
    outcome = (await gw.dispatcher.wait(record.directive.id))[0]
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert sim.rates().limit_w == 4000
    await sim.stop()
    assert {"BootNotification", "StatusNotification", "TransactionEvent"} <= set(csms.actions("S1"))
    assert_gateway_frames_valid(gw, sim)
    for sid in ("S1", "RAW"):
        assert_csms_never_saw_gateway_frames(csms, sid)


async def test_one_outstanding_call_shared_by_the_csms_and_the_gateway(sidecar: Gateway, csms: UpstreamCsms) -> None:
    """A CSMS CALL waits while a gateway CALL is outstanding and the other way round; each side keeps its order."""
    proxy = proxy_of(sidecar)
    get = {"getVariableData": [{"component": {"name": "ChargingStation"}, "variable": {"name": "Model"}}]}
    async with raw_station(proxy.url, "RAW") as ws:
        await csms.until(lambda: "RAW" in csms.stations)
        upstream = csms.stations["RAW"]
        ours = [asyncio.create_task(proxy.call("RAW", "GetVariables", get, timeout=10)) for _ in range(2)]
        first = await next_frame(ws)
        assert ids.is_gateway_id(first[1])
        theirs = asyncio.create_task(upstream.call(call.DataTransfer(vendor_id="csms-a"), unique_id="csms-a"))
        await csms.until(lambda: any('"csms-a"' in t for t in csms.sent_text("RAW")))
        with pytest.raises(TimeoutError):  # nothing else may reach the station while the first CALL is open
            await asyncio.wait_for(ws.recv(), 0.3)
        item = {"attributeStatus": "Accepted", "attributeValue": "M", **get["getVariableData"][0]}
        result = {"getVariableResult": [item]}
        await ws.send(json.dumps([3, first[1], result]))
        assert (await ours[0]).payload == result
        # Turns are first come, first served: our second CALL was waiting before the CSMS's arrived.
        second = await next_frame(ws)
        assert ids.is_gateway_id(second[1])
        assert second[1] != first[1]
        await ws.send(json.dumps([3, second[1], result]))
        assert (await ours[1]).payload == result
        assert (await next_frame(ws))[:3] == [2, "csms-a", "DataTransfer"]
        # Now the CSMS's CALL is open: the gateway's waits for it.
        later = asyncio.create_task(proxy.call("RAW", "GetVariables", get, timeout=10))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
        await ws.send(json.dumps([3, "csms-a", {"status": "Accepted"}]))
        assert (await theirs).status == "Accepted"
        third = await next_frame(ws)
        assert ids.is_gateway_id(third[1])
        await ws.send(json.dumps([3, third[1], result]))
        assert (await later).payload == result
        # An answer that carries a gateway id but answers nothing is never passed to the CSMS.
        await ws.send(json.dumps([3, ids.new_id(), {}]))
        await ws.send('[2,"raw-hb","Heartbeat",{}]')
        assert (await next_frame(ws))[1] == "raw-hb"
    assert_csms_never_saw_gateway_frames(csms, "RAW")


def test_gateway_ids_are_distinct_and_fit_ocpp() -> None:
    made = {ids.new_id() for _ in range(1000)}
    assert len(made) == 1000
    assert all(len(i) == 36 and i.startswith("dergw-") for i in made)


@pytest.mark.parametrize("status", [HTTPStatus.UNAUTHORIZED, HTTPStatus.NOT_FOUND, HTTPStatus.FORBIDDEN])
async def test_station_refused_the_way_the_csms_refused_it(tmp_path: Path, status: HTTPStatus) -> None:
    async with UpstreamCsms(refuse=status) as csms:
        config = make_config(tmp_path, station_configs(["S1"]), mode="sidecar", upstream=UpstreamConfig(url=csms.url))
        async with running(config) as gw:
            with pytest.raises(InvalidStatus) as refused:
                async with raw_station(proxy_of(gw).url, "S1"):
                    pass
            assert refused.value.response.status_code == status
            assert not gw.fleet.stations["S1"].connected
            assert not gw.audit.query(kind="station.connected")


async def test_station_refused_when_the_csms_speaks_none_of_its_versions(sidecar: Gateway, csms: UpstreamCsms) -> None:
    """The test CSMS speaks only 2.1: a 1.6-only station is refused with the CSMS's own answer (400)."""
    with pytest.raises(InvalidStatus) as refused:
        async with raw_station(proxy_of(sidecar).url, "S1", subprotocols=("ocpp1.6",)):
            pass
    assert refused.value.response.status_code == HTTPStatus.BAD_REQUEST
    assert not sidecar.fleet.stations["S1"].connected


async def test_station_password_is_relayed_to_the_csms(tmp_path: Path) -> None:
    """Profile 1 upstream: the CSMS checks the station's own credentials; a wrong one is refused by both."""
    async with UpstreamCsms(password=PASSWORD) as csms:
        config = make_config(tmp_path, station_configs(["S1"]), mode="sidecar", upstream=UpstreamConfig(url=csms.url))
        async with running(config) as gw:
            async with raw_station(proxy_of(gw).url, "S1"):
                await csms.until(lambda: csms.connections.get("S1") == 1)
            with pytest.raises(InvalidStatus) as refused:
                async with raw_station(proxy_of(gw).url, "S1", password="wrong"):
                    pass
            assert refused.value.response.status_code == HTTPStatus.UNAUTHORIZED


async def test_csms_down_grid_duties_go_on_and_messages_arrive_in_order(sidecar: Gateway, csms: UpstreamCsms) -> None:
    gw, proxy = sidecar, proxy_of(sidecar)
    sim = await station(gw)
    session = proxy.session("S1")
    assert session is not None
    await session.online.wait()
    booted, before = len(csms.received("S1")), len(sim.sent)
    await csms.stop()
    await session.offline.wait()
    assert sim.connected  # the station stays connected
    # Station messages are answered and kept...
    await sim.start_transaction()
    await sim.send_meter_values()
    await sim.raise_alarm("HVMustTrip", "OverVoltage")
    await sim.end_transaction()
    # ... while the grid directive still reaches the station.
    record = await gw.dispatcher.submit(limit())
    assert (await gw.dispatcher.wait(record.directive.id))[0].status is OutcomeStatus.ACCEPTED
    assert gw.fleet.stations["S1"].last_alarm is not None
    kept = [a for a, _ in sim.sent[before:]]
    assert {"TransactionEvent", "NotifyDERAlarm"} <= set(kept)
    assert len(session.buffer) == len(kept)
    # A station that connects while the CSMS is away is accepted too.
    other = await station(gw, "S2")
    await csms.start()
    proxy.reconnect_now()
    await session.online.wait()
    delivered = csms.received("S1")[booted:]
    assert [f[2] for f in delivered] == kept
    # As the station would deliver them after being offline: TransactionEvents marked (E12.FR.02, E04.FR.03).
    queued = [{**p, "offline": True} if a == "TransactionEvent" else p for a, p in sim.sent[before:]]
    assert [f[3] for f in delivered] == queued
    assert len(session.buffer) == 0
    # And traffic flows again, straight through.
    await sim.send_meter_values()
    await csms.until(lambda: csms.actions("S1")[-1] == "MeterValues")
    s2 = proxy.session("S2")
    assert s2 is not None
    await s2.online.wait()
    assert csms.actions("S2")[:1] == ["BootNotification"]
    for s in (sim, other):
        await s.stop()
    assert_gateway_frames_valid(gw, sim)
    assert_csms_never_saw_gateway_frames(csms, "S1")


async def test_station_reconnect_gets_a_new_upstream_connection(sidecar: Gateway, csms: UpstreamCsms) -> None:
    gw, proxy = sidecar, proxy_of(sidecar)
    sim = await station(gw, reconnect_delay=0)
    await csms.until(lambda: csms.connections.get("S1") == 1)
    first = proxy.session("S1")
    await sim.disconnect()
    await csms.until(lambda: csms.connections.get("S1") == 2)
    await sim.wait_booted()
    second = proxy.session("S1")
    assert second is not None
    assert second is not first
    await second.online.wait()
    record = await gw.dispatcher.submit(limit())
    assert (await gw.dispatcher.wait(record.directive.id))[0].status is OutcomeStatus.ACCEPTED
    kinds = [e.kind for e in gw.audit.query(station_id="S1") if e.kind.startswith("station.")]
    assert kinds.count("station.connected") == 2
    assert "station.disconnected" in kinds
    await sim.stop()
    assert_gateway_frames_valid(gw, sim)


async def test_csms_profile_replacing_a_grid_limit_is_audited_and_the_limit_restored(
    sidecar: Gateway, csms: UpstreamCsms
) -> None:
    gw = sidecar
    sim = await station(gw)
    record = await gw.dispatcher.submit(limit(watts=4000))
    outcome = (await gw.dispatcher.wait(record.directive.id))[0]
    grid = next(c for c in outcome.commands if c.action == "SetChargingProfile")
    held = next(p for a, p in sim.received if a == "SetChargingProfile")
    profile = held["chargingProfile"]
    # The CSMS sets its own station maximum at the same purpose and stack level: it would replace the grid's.
    theirs = {**profile, "id": 777, "chargingSchedule": [{**profile["chargingSchedule"][0], "id": 777}]}
    theirs["chargingSchedule"][0]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 22000}]
    answer = await csms.stations["S1"].call(call.SetChargingProfile(evse_id=0, charging_profile=theirs))
    assert answer.status == "Accepted"
    session = proxy_of(gw).session("S1")
    assert session is not None
    await session.settled()
    assert [a for a, _ in sim.received].count("SetChargingProfile") == 3  # ours, theirs, ours again
    assert sim.rates().limit_w == 4000
    conflict = gw.audit.query(station_id="S1", kind="station.message")[-1]
    assert conflict.data["from"] == "csms"
    assert [c["kind"] for c in conflict.data["conflict"]] == ["replaces"]
    assert conflict.data["conflict"][0]["grid_payload"] == held
    reasserted = gw.audit.query(station_id="S1", kind="command.sent")[-1]
    assert reasserted.data["reassert_after"] == conflict.message_id
    answers = gw.audit.query(message_id=reasserted.message_id, kind="station.answer")
    assert answers[0].data["status"] == "Accepted"
    assert grid.message_id != reasserted.message_id
    # A CSMS clear that would remove the grid limit is passed on, then the limit is set again.
    await csms.stations["S1"].call(call.ClearChargingProfile(charging_profile_id=profile["id"]))
    await session.settled()
    assert [a for a, _ in sim.received].count("SetChargingProfile") == 4
    assert sim.rates().limit_w == 4000
    kinds = [c["kind"] for c in gw.audit.query(station_id="S1", kind="station.message")[-1].data["conflict"]]
    assert kinds == ["clears"]
    await sim.stop()
    assert_gateway_frames_valid(gw, sim)
    assert_csms_never_saw_gateway_frames(csms, "S1")


async def test_shutdown_refuses_new_stations_and_keeps_the_open_ones(sidecar: Gateway, csms: UpstreamCsms) -> None:
    """Gateway.stop's first step in sidecar mode as in CSMS mode: no new station, in-flight traffic goes on."""
    gw, proxy = sidecar, proxy_of(sidecar)
    sim = await station(gw)
    url = proxy.url
    proxy.stop_accepting()
    assert not proxy.listening
    with pytest.raises(ConnectionRefusedError):
        async with raw_station(url, "S2"):
            pass
    assert await sim.call("Heartbeat", {})
    await csms.until(lambda: "Heartbeat" in csms.actions("S1"))
    await sim.stop()
