"""The sidecar's pure parts: back-off, the offline policy and conflict detection."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gateway.config import OcppConfig, UpstreamConfig
from gateway.model import OcppVersion
from protocols.ocpp import frames
from protocols.ocpp.frames import Call
from protocols.ocpp.sidecar.buffer import Backoff, BufferStore, offline_policy, queued_frame
from protocols.ocpp.sidecar.conflicts import GridHoldings

V21, V16 = OcppVersion.V21, OcppVersion.V16


def test_backoff_doubles_up_to_repeat_times_then_stays() -> None:
    """Part 4, 5.4: minimum plus random, doubled after each failure, at most RetryBackOffRepeatTimes times."""
    backoff = Backoff(wait_minimum_s=3, random_range_s=0, repeat_times=2)
    rng = random.Random(1)
    assert [backoff.delay(n, rng) for n in range(5)] == [3, 6, 12, 12, 12]
    jittered = Backoff(wait_minimum_s=3, random_range_s=2)
    assert all(3 <= jittered.delay(0, rng) <= 5 for _ in range(100))


def test_offline_policy_keeps_what_a_station_would_queue() -> None:
    assert offline_policy(V21, "TransactionEvent") == "buffer"
    assert offline_policy(V21, "NotifyDERAlarm") == "buffer"
    assert offline_policy(V21, "Heartbeat") == "answer"
    assert offline_policy(V21, "Authorize") == "refuse"  # the gateway never decides authorizations
    assert offline_policy(V16, "StartTransaction") == "refuse"  # only the CSMS can give the transaction id


def test_offline_buffer_drops_the_oldest_past_its_limit() -> None:
    store = BufferStore(":memory:")
    buffer, other = store.buffer("S1", limit=2), store.buffer("S2", limit=2)
    for n in range(3):
        buffer.append(f"m{n}", "MeterValues", "[]", {})
    other.append("x", "Heartbeat", "[]", {})
    assert buffer.dropped == 1
    assert len(buffer) == 2
    first = buffer.peek()
    assert first is not None
    assert first.message_id == "m1"
    buffer.pop(first)
    second = buffer.peek()
    assert second is not None
    assert second.message_id == "m2"
    assert len(other) == 1


def _tx(payload: dict[str, Any], text: str | None = None) -> str:
    call = Call("tx-1", "TransactionEvent", payload)
    return queued_frame(call, text if text is not None else frames.serialize(call))


def test_queued_transaction_events_carry_offline_true_and_keep_the_stations_spelling() -> None:
    """E12.FR.02 / E04.FR.03: queued TransactionEvents are delivered with offline true; nothing else changes."""
    text = r'[2, "tx-1", "TransactionEvent", {"seqNo": 0, "x": "gr\u00fc\u00dfe"} ]'  # the station's spelling
    marked = _tx({"seqNo": 0, "x": "grüße"}, text)
    assert marked == r'[2, "tx-1", "TransactionEvent", {"seqNo": 0, "x": "gr\u00fc\u00dfe","offline":true} ]'
    assert json.loads(marked)[3] == {"seqNo": 0, "x": "grüße", "offline": True}
    assert json.loads(_tx({"seqNo": 1, "offline": False}))[3] == {"seqNo": 1, "offline": True}
    already = frames.serialize(Call("tx-1", "TransactionEvent", {"seqNo": 2, "offline": True}))
    assert _tx({"seqNo": 2, "offline": True}, already) == already
    meter = '[2,"m-1","MeterValues",{"evseId":1}]'
    assert queued_frame(Call("m-1", "MeterValues", {"evseId": 1}), meter) == meter


def _profile_21(ident: int, purpose: str, stack: int, evse: int = 0) -> dict[str, Any]:
    return {
        "evseId": evse,
        "chargingProfile": {
            "id": ident,
            "stackLevel": stack,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [],
        },
    }


def _profile_16(ident: int, purpose: str, stack: int) -> dict[str, Any]:
    return {
        "connectorId": 0,
        "csChargingProfiles": {"chargingProfileId": ident, "stackLevel": stack, "chargingProfilePurpose": purpose},
    }


def test_charging_profile_conflicts_21() -> None:
    grid = _profile_21(21, "ChargingStationMaxProfile", 5)
    holdings = GridHoldings(V21)
    holdings.accepted("SetChargingProfile", grid)

    def kinds(action: str, payload: dict[str, Any]) -> list[str]:
        return [c.kind for c in holdings.conflicts(action, payload)]

    assert kinds("SetChargingProfile", _profile_21(21, "TxDefaultProfile", 1)) == ["replaces"]  # same id
    assert kinds("SetChargingProfile", _profile_21(9, "ChargingStationMaxProfile", 5)) == ["replaces"]
    assert kinds("SetChargingProfile", _profile_21(9, "ChargingStationMaxProfile", 6)) == ["overrides"]
    assert kinds("SetChargingProfile", _profile_21(9, "ChargingStationMaxProfile", 4)) == []
    assert kinds("SetChargingProfile", _profile_21(9, "TxDefaultProfile", 9, evse=1)) == []
    assert kinds("ClearChargingProfile", {"chargingProfileId": 21}) == ["clears"]
    assert kinds("ClearChargingProfile", {"chargingProfileCriteria": {"chargingProfilePurpose": "TxProfile"}}) == []
    assert kinds("ClearChargingProfile", {"chargingProfileCriteria": {"stackLevel": 5}}) == ["clears"]
    conflict = holdings.conflicts("ClearChargingProfile", {"chargingProfileId": 21})[0]
    assert conflict.reassert
    assert conflict.payload == grid
    holdings.accepted("ClearChargingProfile", {"chargingProfileId": 21})  # the gateway's own clear
    assert holdings.profiles == {}


def test_charging_profile_conflicts_16_clear_without_criteria_clears_all() -> None:
    holdings = GridHoldings(V16)
    holdings.accepted("SetChargingProfile", _profile_16(7, "ChargePointMaxProfile", 5))
    assert [c.kind for c in holdings.conflicts("ClearChargingProfile", {})] == ["clears"]
    assert [c.kind for c in holdings.conflicts("ClearChargingProfile", {"id": 8})] == []


@pytest.mark.parametrize(
    ("theirs", "expected"),
    [
        ({"controlId": "grid-1", "controlType": "VoltVar", "isDefault": False, "priority": 9}, ["replaces"]),
        ({"controlId": "csms-1", "controlType": "VoltVar", "isDefault": False, "priority": 3}, ["overrides"]),
        ({"controlId": "csms-1", "controlType": "VoltVar", "isDefault": False, "priority": 7}, []),
        ({"controlId": "csms-1", "controlType": "VoltVar", "isDefault": True, "priority": 0}, []),
        ({"controlId": "csms-1", "controlType": "FreqDroop", "isDefault": False, "priority": 0}, []),
    ],
)
def test_der_control_conflicts(theirs: dict[str, Any], expected: list[str]) -> None:
    def control(controlId: str, controlType: str, isDefault: bool, priority: int) -> dict[str, Any]:  # noqa: N803
        return {
            "controlId": controlId,
            "controlType": controlType,
            "isDefault": isDefault,
            "curve": {"priority": priority},
        }

    holdings = GridHoldings(V21)
    holdings.accepted("SetDERControl", control("grid-1", "VoltVar", False, 5))
    assert [c.kind for c in holdings.conflicts("SetDERControl", control(**theirs))] == expected
    cleared = holdings.conflicts("ClearDERControl", {"isDefault": False, "controlType": "VoltVar"})
    assert [c.kind for c in cleared] == ["clears"]
    assert holdings.conflicts("ClearDERControl", {"isDefault": True}) == []


def test_sidecar_mode_needs_an_upstream_and_tls_settings() -> None:
    with pytest.raises(ValueError, match="upstream"):
        OcppConfig(mode="sidecar")
    with pytest.raises(ValueError, match="wss"):
        UpstreamConfig(url="ws://csms.example/ocpp", security_profile=2)
    with pytest.raises(ValueError, match="client_cert"):
        UpstreamConfig(url="wss://csms.example/ocpp", security_profile=3, ca="ca.pem")
