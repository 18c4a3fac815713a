"""Buffered station messages survive a gateway restart and reach the CSMS as a station delivers its offline queue.

A real restart in-process: the first Gateway stops (its station connection drops with it) and a new one is built on
the same data directory; the CSMS (an `ocpp`-library CSMS) is down meanwhile and back before the station returns.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, UpstreamConfig
from tests.sidecar.conftest import proxy_of
from tests.sidecar.upstream_csms import UpstreamCsms
from tests.support import answer_to, make_config, raw_station, running, station_configs

TX = '"timestamp":"2026-01-01T00:0{n}:00Z","transactionInfo":{{"transactionId":"T-9"}}'
QUEUED = [
    '[2,"q-0","TransactionEvent",{"eventType":"Started","triggerReason":"Authorized","seqNo":0,'
    + TX.format(n=0)
    + ',"idToken":{"idToken":"BLOCKED","type":"ISO14443"},"evse":{"id":1,"connectorId":1}}]',
    '[2, "q-1", "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:01:00Z", '
    '"sampledValue": [{"value": 1.5, "measurand": "Energy.Active.Import.Register"}]}]}]',
    '[2,"q-2","TransactionEvent",{"eventType":"Updated","triggerReason":"MeterValuePeriodic","seqNo":1,'
    + TX.format(n=2)
    + "}]",
    '[2,"q-3","TransactionEvent",{"eventType":"Ended","triggerReason":"EVDeparted","seqNo":2,"offline":false,'
    + TX.format(n=3)
    + "}]",
]
STATUS = (
    '[2,"after","StatusNotification",{"timestamp":"2026-01-01T00:04:00Z","connectorStatus":"Available",'
    '"evseId":1,"connectorId":1}]'
)


def stored(config: GatewayConfig) -> list[str]:
    """The buffer as another reader of the gateway's SQLite file sees it."""
    with sqlite3.connect(config.database) as db:
        return [r[0] for r in db.execute("SELECT frame FROM sidecar_buffer WHERE station_id = 'S1' ORDER BY seq")]


def as_delivered(text: str) -> list[Any]:
    """What a station delivers after being offline: its TransactionEvents say so (E12.FR.02, E04.FR.03)."""
    frame = json.loads(text)
    if frame[2] == "TransactionEvent":
        frame[3]["offline"] = True
    return list(frame)


async def test_buffer_survives_a_gateway_restart_and_is_delivered_in_order(tmp_path: Path, csms: UpstreamCsms) -> None:
    upstream = UpstreamConfig(url=csms.url, retry_wait_minimum_s=3600, retry_random_range_s=0)
    config = make_config(tmp_path, station_configs(["S1"]), mode="sidecar", upstream=upstream)
    csms.blocked.add("BLOCKED")
    async with running(config) as gw, raw_station(proxy_of(gw).url, "S1") as ws:
        await ws.send('[2,"hb-1","Heartbeat",{}]')
        assert (await answer_to(ws, "hb-1"))[0] == 3
        session = proxy_of(gw).session("S1")
        assert session is not None
        await session.online.wait()
        before = len(csms.received("S1"))
        await csms.stop()
        await session.offline.wait()
        for n, text in enumerate(QUEUED):
            await ws.send(text)
            local = await answer_to(ws, json.loads(text)[1])
            assert local == [3, json.loads(text)[1], {}]  # the CSMS-mode answer, given in the CSMS's place
            # Committed before the station was answered: another connection to the file sees it already.
            assert len(stored(config)) == n + 1
    # The gateway is gone; the CSMS comes back; the station reconnects to a new gateway on the same data dir.
    assert [json.loads(t) for t in stored(config)] == [as_delivered(t) for t in QUEUED]
    await csms.start()
    async with running(config) as gw, raw_station(proxy_of(gw).url, "S1") as ws:
        await ws.send(STATUS)  # new traffic: it reaches the CSMS only after the queue
        seen = [json.loads(await ws.recv())]
        while seen[-1][1] != "after":
            seen.append(json.loads(await ws.recv()))
        session = proxy_of(gw).session("S1")
        assert session is not None
        await session.online.wait()  # the queue, with the message that arrived meanwhile, is delivered
        delivered = csms.received_text("S1")[before:]
        assert [json.loads(t) for t in delivered] == [as_delivered(t) for t in QUEUED] + [json.loads(STATUS)]
        assert delivered[1] == QUEUED[1]  # all but the flag exactly as sent: MeterValues untouched
        assert delivered[0] == QUEUED[0][:-2] + ',"offline":true}]'
        # The CSMS's answers to the replayed messages were the gateway's to consume: the station never saw them.
        assert not [f for f in seen if f[1].startswith("q-")]
        assert stored(config) == []
        # The one answer that told something else than the station was told is in the audit log.
        audited = [e for e in gw.audit.query(station_id="S1", kind="station.message") if e.data.get("replayed")]
        assert [(e.message_id, e.data["station_got"], e.data["csms_answer"]) for e in audited] == [
            ("q-0", {}, {"idTokenInfo": {"status": "Blocked"}})
        ]
