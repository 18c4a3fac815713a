"""The OCPP-J endpoint over real WebSockets: handshake rules, security profile 1, and bad frames.

Requirement ids refer to OCPP 2.1 part 4 (OCPP-J) and part 2 (A00 security profiles).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidMessage, InvalidStatus
from websockets.typing import Subprotocol

from gateway.certs import DevPki, init_dev_pki
from gateway.config import GatewayConfig
from gateway.interfaces import ReplyKind
from gateway.tls import client_context
from tests.support import basic, call, make_config, raw_station, running, station_configs

V21 = [Subprotocol("ocpp2.1")]
BOOT_21 = {"chargingStation": {"model": "T", "vendorName": "V"}, "reason": "PowerUp"}
BOOT_16 = {"chargePointModel": "T", "chargePointVendor": "V"}


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return make_config(tmp_path, station_configs(["CS1", "CS2", "CS16"]), max_message_bytes=4096, call_timeout_s=1.0)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], "ocpp2.1"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp1.6"], "ocpp1.6"),
    ],
)
async def test_subprotocol_follows_gateway_preference(config: GatewayConfig, offered: list[str], chosen: str) -> None:
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1", offered) as ws:
        assert ws.subprotocol == chosen


async def test_no_common_subprotocol_completes_handshake_then_closes(config: GatewayConfig) -> None:
    """Part 4, 3.1.2: answer without Sec-WebSocket-Protocol, then close the connection at once."""
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1", ["ocpp1.5"]) as ws:
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert ws.close_code == 1002


@pytest.mark.parametrize("identity", ["NOPE", "bad:colon", "x" * 49])
async def test_unknown_or_malformed_identity_gets_404(config: GatewayConfig, identity: str) -> None:
    async with running(config) as gw:
        with pytest.raises(InvalidStatus) as exc:
            async with raw_station(gw.ocpp.url, identity):
                pass
        assert exc.value.response.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{}, basic("CS1", "wrong-password-wrong-password"), basic("CS2"), {"Authorization": "Basic !!notbase64"}],
    ids=["missing", "wrong-password", "other-username", "malformed"],
)
async def test_profile1_requires_matching_basic_auth(config: GatewayConfig, headers: dict[str, str]) -> None:
    """A00.FR.202-207: username = identity, password checked against the stored hash."""
    async with running(config) as gw:
        with pytest.raises(InvalidStatus) as exc:
            async with connect(f"{gw.ocpp.url}/CS1", subprotocols=V21, additional_headers=headers):
                pass
        assert exc.value.response.status_code == 401
        assert "Basic" in exc.value.response.headers["WWW-Authenticate"]


async def test_boot_and_heartbeat_are_answered(config: GatewayConfig) -> None:
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws:
        boot = await call(ws, "b1", "BootNotification", BOOT_21)
        assert boot[0] == 3
        assert boot[2]["status"] == "Accepted"
        assert boot[2]["interval"] == 60
        beat = await call(ws, "h1", "Heartbeat", {})
        assert beat[0] == 3
        assert beat[2]["currentTime"].endswith("Z")


BAD_FRAMES_21 = [
    ("not json", "-1", "RpcFrameworkError"),
    ('{"an": "object"}', "-1", "RpcFrameworkError"),
    ('[2, "m1", "Heartbeat"]', "m1", "RpcFrameworkError"),
    ('[9, "m2", "Heartbeat", {}]', "m2", "MessageTypeNotSupported"),
    ('[2, "m3", "NoSuchAction", {}]', "m3", "NotImplemented"),
    ('[2, "m4", "BootNotification", {"reason": "PowerUp"}]', "m4", "OccurrenceConstraintViolation"),
    (
        '[2, "m5", "BootNotification", {"reason": 5, "chargingStation": {"model": "T", "vendorName": "V"}}]',
        "m5",
        "TypeConstraintViolation",
    ),
    (
        '[2, "m6", "BootNotification", {"reason": "Bored", "chargingStation": {"model": "T", "vendorName": "V"}}]',
        "m6",
        "PropertyConstraintViolation",
    ),
    ('[2, "m7", "Heartbeat", {"extra": 1}]', "m7", "FormatViolation"),
    ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "-1", "RpcFrameworkError"),
]


@pytest.mark.parametrize(("text", "message_id", "code"), BAD_FRAMES_21)
async def test_bad_frames_get_callerror_and_connection_carries_on(
    config: GatewayConfig, text: str, message_id: str, code: str
) -> None:
    """Part 4, 4.2.3: CALLERROR with the right code, "-1" when the id cannot be read; the link stays up."""
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws, raw_station(gw.ocpp.url, "CS2") as other:
        await ws.send(text)
        error = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert error[:3] == [4, message_id, code]
        assert isinstance(error[3], str)
        assert error[4] == {}
        assert (await call(ws, "after", "Heartbeat", {}))[0] == 3
        assert (await call(other, "other", "Heartbeat", {}))[0] == 3
        rejected = gw.audit.query(station_id="CS1", kind="input.rejected")
        assert [e.data["code"] for e in rejected] == [code]


async def test_oversized_message_is_refused_with_its_id(config: GatewayConfig) -> None:
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws:
        big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "v", "data": "x" * 10_000}])
        await ws.send(big)
        error = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert error[:3] == [4, "big1", "FormatViolation"]
        assert "exceeds the limit of 4096 bytes" in error[3]
        assert (await call(ws, "after", "Heartbeat", {}))[0] == 3


async def test_duplicate_message_id_with_other_content_is_refused_but_a_retry_is_answered_again(
    config: GatewayConfig,
) -> None:
    """Part 4, 4.1.4: a retried message may reuse its id; another message may not."""
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws:
        first = await call(ws, "dup", "StatusNotification", _status(1))
        retry = await call(ws, "dup", "StatusNotification", _status(1))
        assert first == retry
        assert first[0] == 3
        clash = await call(ws, "dup", "StatusNotification", _status(2))
        assert clash[:3] == [4, "dup", "RpcFrameworkError"]


async def test_ocpp16_uses_its_own_error_code_spelling(config: GatewayConfig) -> None:
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS16", ["ocpp1.6"]) as ws:
        await ws.send("{broken")
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:3] == [4, "-1", "ProtocolError"]
        missing = await call(ws, "m1", "BootNotification", {"chargePointModel": "T"})
        assert missing[:3] == [4, "m1", "OccurenceConstraintViolation"]
        extra = await call(ws, "m2", "Heartbeat", {"x": 1})
        assert extra[:3] == [4, "m2", "FormationViolation"]
        boot = await call(ws, "b", "BootNotification", BOOT_16)
        assert boot[2]["status"] == "Accepted"


async def test_send_frame_gets_no_answer_and_callresulterror_is_recorded(config: GatewayConfig) -> None:
    """OCPP 2.1 SEND (6) is never answered; a station's CALLRESULTERROR (5) is audited."""
    stream = {"id": 1, "pending": 0, "basetime": "2026-01-01T00:00:00Z", "data": [{"t": 0, "v": "1"}]}
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws:
        await ws.send(json.dumps([6, "s1", "NotifyPeriodicEventStream", stream]))
        await ws.send(json.dumps([5, "r1", "FormatViolation", "bad result", {}]))
        # The next answer on the wire is the heartbeat's: nothing was sent for the SEND or the CALLRESULTERROR.
        assert (await call(ws, "h", "Heartbeat", {}))[:2] == [3, "h"]
        kinds = [
            (e.data["code"], e.data["by_station"]) for e in gw.audit.query(station_id="CS1", kind="input.rejected")
        ]
        assert kinds == [("FormatViolation", True)]


async def test_invalid_answer_from_station_gets_callresulterror(config: GatewayConfig) -> None:
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws:
        pending = asyncio.create_task(
            gw.ocpp.call("CS1", "ClearDERControl", {"isDefault": False, "controlId": "c1"}, timeout=5)
        )
        frame = await _next_call(ws, "ClearDERControl")
        await ws.send(json.dumps([3, frame[1], {"status": "Maybe"}]))
        reply = await pending
        assert reply.kind is ReplyKind.ERROR
        assert reply.error_code == "PropertyConstraintViolation"
        error = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert error[:3] == [5, frame[1], "PropertyConstraintViolation"]


async def test_one_outstanding_call_per_station_and_a_dead_station_does_not_delay_others(config: GatewayConfig) -> None:
    """Part 4, 4.1.1: the second CALL to CS1 leaves only after the first is answered; CS2 is served meanwhile."""
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws1, raw_station(gw.ocpp.url, "CS2") as ws2:
        payload = {"isDefault": True, "controlType": "VoltVar"}
        first = asyncio.create_task(gw.ocpp.call("CS1", "ClearDERControl", payload, timeout=5))
        second = asyncio.create_task(gw.ocpp.call("CS1", "ClearDERControl", payload, timeout=5))
        frame1 = await _next_call(ws1, "ClearDERControl")
        # CS2 answers while CS1 still holds its first call: no head-of-line blocking across stations.
        other = asyncio.create_task(gw.ocpp.call("CS2", "ClearDERControl", payload, timeout=5))
        frame_other = await _next_call(ws2, "ClearDERControl")
        await ws2.send(json.dumps([3, frame_other[1], {"status": "NotFound"}]))
        assert (await other).kind is ReplyKind.RESULT
        assert not second.done()
        with pytest.raises(TimeoutError):  # bounded check that the second CALL has not been sent yet
            await asyncio.wait_for(_next_call(ws1, "ClearDERControl"), 0.3)
        await ws1.send(json.dumps([3, frame1[1], {"status": "Accepted"}]))
        assert (await first).payload == {"status": "Accepted"}
        frame2 = await _next_call(ws1, "ClearDERControl")
        assert frame2[1] != frame1[1]
        await ws1.send(json.dumps([3, frame2[1], {"status": "NotFound"}]))
        assert (await second).payload == {"status": "NotFound"}


async def test_unanswered_call_times_out_and_late_answer_is_ignored(config: GatewayConfig) -> None:
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1") as ws:
        payload = {"isDefault": True}
        reply = await gw.ocpp.call("CS1", "ClearDERControl", payload, timeout=0.2)
        assert reply.kind is ReplyKind.TIMEOUT
        frame = await _next_call(ws, "ClearDERControl")
        await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        assert (await call(ws, "h", "Heartbeat", {}))[0] == 3
        nxt = asyncio.create_task(gw.ocpp.call("CS1", "ClearDERControl", payload, timeout=5))
        frame2 = await _next_call(ws, "ClearDERControl")
        await ws.send(json.dumps([3, frame2[1], {"status": "NotFound"}]))
        assert (await nxt).payload == {"status": "NotFound"}


async def test_gateway_never_sends_a_payload_that_fails_its_schema(config: GatewayConfig) -> None:
    async with running(config) as gw, raw_station(gw.ocpp.url, "CS1"):
        reply = await gw.ocpp.call("CS1", "SetDERControl", {"isDefault": False, "controlId": "x"}, timeout=1)
        assert reply.kind is ReplyKind.INVALID
        assert reply.error_code == "OccurrenceConstraintViolation"


async def test_offline_station_reply(config: GatewayConfig) -> None:
    async with running(config) as gw:
        reply = await gw.ocpp.call("CS1", "ClearDERControl", {"isDefault": True}, timeout=1)
        assert reply.kind is ReplyKind.OFFLINE


def _status(connector: int) -> dict[str, object]:
    return {
        "timestamp": "2026-01-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": connector,
    }


async def _next_call(ws: ClientConnection, action: str) -> list[object]:
    """The next CALL with `action` the gateway sends (capability reads may come first)."""
    while True:
        frame = json.loads(await ws.recv())
        if frame[0] == 2 and frame[2] == action:
            return list(frame)
        if frame[0] == 2:  # answer the gateway's other calls (GetVariables) so they do not block ours
            await ws.send(json.dumps([4, frame[1], "NotSupported", "", {}]))


@pytest.fixture
def pki(tmp_path: Path) -> DevPki:
    return init_dev_pki(tmp_path / "pki", stations=["CS1", "CS2"], now=datetime.now(UTC))


async def test_profile2_basic_auth_over_tls(tmp_path: Path, pki: DevPki) -> None:
    """A00.FR.301-324: TLS server certificate, HTTP Basic inside it."""
    config = make_config(
        tmp_path, station_configs(["CS1"]), security_profile=2, tls_cert=pki.server.cert, tls_key=pki.server.key
    )
    tls = client_context(pki.ca.cert, cert=None, key=None)
    async with running(config) as gw:
        assert gw.ocpp.url.startswith("wss://")
        async with connect(
            f"{gw.ocpp.url}/CS1",
            subprotocols=V21,
            additional_headers=basic("CS1"),
            ssl=tls,
        ) as ws:
            assert (await call(ws, "h", "Heartbeat", {}))[0] == 3
        with pytest.raises(InvalidStatus) as exc:
            async with connect(f"{gw.ocpp.url}/CS1", subprotocols=V21, ssl=tls):
                pass
        assert exc.value.response.status_code == 401


async def test_profile3_mutual_tls_checks_certificate_and_identity(tmp_path: Path, pki: DevPki) -> None:
    """Profile 3: a client certificate from the configured CA whose CN is the station identity."""
    config = make_config(
        tmp_path,
        station_configs(["CS1", "CS2"]),
        security_profile=3,
        tls_cert=pki.server.cert,
        tls_key=pki.server.key,
        client_ca=pki.ca.cert,
    )
    own = client_context(pki.ca.cert, cert=pki.stations["CS1"].cert, key=pki.stations["CS1"].key)
    async with running(config) as gw:
        async with connect(f"{gw.ocpp.url}/CS1", subprotocols=V21, ssl=own) as ws:
            assert (await call(ws, "h", "Heartbeat", {}))[0] == 3
        with pytest.raises(InvalidStatus) as exc:  # CS1's certificate presented for CS2
            async with connect(f"{gw.ocpp.url}/CS2", subprotocols=V21, ssl=own):
                pass
        assert exc.value.response.status_code == 403
        anonymous = client_context(pki.ca.cert, cert=None, key=None)
        with pytest.raises((ssl.SSLError, ConnectionError, InvalidMessage)):
            async with connect(f"{gw.ocpp.url}/CS1", subprotocols=V21, ssl=anonymous):
                pass
