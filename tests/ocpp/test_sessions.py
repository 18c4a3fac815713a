"""Vehicle sessions from station messages (protocols.ocpp.sessions) and the fleet registry's view of them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import AuditLog
from gateway.fleet import Fleet
from gateway.model import OcppVersion
from gateway.store import Store
from protocols.ocpp.sessions import SessionChange, session_change, transaction_id_16

V21, V201, V16 = OcppVersion.V21, OcppVersion.V201, OcppVersion.V16
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
V16_STATUSES = ("Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing", "Reserved",
                "Unavailable", "Faulted")  # fmt: skip
V2_STATUSES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


@given(st.sampled_from([V21, V201]), st.sampled_from(["Started", "Updated", "Ended"]), st.integers(1, 9))
def test_a_2x_transaction_is_present_until_it_ends(version: OcppVersion, event: str, evse: int) -> None:
    payload = {"eventType": event, "transactionInfo": {"transactionId": "T-1"}, "evse": {"id": evse}}
    assert session_change(version, "TransactionEvent", payload) == SessionChange(evse, "T-1", event != "Ended")


@given(st.sampled_from(V2_STATUSES), st.integers(1, 9))
def test_a_2x_connector_is_occupied_or_free(status: str, evse: int) -> None:
    payload = {"connectorStatus": status, "evseId": evse, "connectorId": 1, "timestamp": "2026-06-01T12:00:00Z"}
    assert session_change(V201, "StatusNotification", payload) == SessionChange(evse, None, status == "Occupied")


@given(st.sampled_from(V16_STATUSES), st.integers(0, 9))
def test_a_16_connector_has_a_vehicle_while_preparing_charging_or_suspended(status: str, connector: int) -> None:
    change = session_change(V16, "StatusNotification", {"connectorId": connector, "status": status})
    if connector == 0:  # the whole charge point: says nothing about a vehicle
        assert change is None
    else:
        present = status in ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE")
        assert change == SessionChange(connector, None, present)


def test_messages_that_say_nothing_about_a_vehicle_are_ignored() -> None:
    assert session_change(V21, "MeterValues", {"evseId": 1, "meterValue": []}) is None
    assert session_change(V16, "Heartbeat", {}) is None


def test_the_registry_follows_transactions_by_id_across_evses(tmp_path: Path) -> None:
    """A later TransactionEvent and a 1.6 StopTransaction name only the transaction: the registry knows its EVSE."""
    db = tmp_path / "gw.db"
    fleet = Fleet([("S21", []), ("S16", [])], Store(db), AuditLog.open(db, tmp_path / "certs"))

    def charging(station_id: str) -> bool:
        return fleet.stations[station_id].charging

    fleet.station_session("S21", 1, "T-1", True, T0)
    fleet.station_session("S21", 2, "T-2", True, T0)
    fleet.station_session("S21", None, "T-1", False, T0)
    assert fleet.stations["S21"].sessions == {2: "T-2"}
    fleet.station_session("S21", None, "unknown", False, T0)  # a transaction it never saw start: nothing
    assert charging("S21")
    fleet.station_session("S21", None, "T-2", False, T0)
    assert not charging("S21")

    start = {"connectorId": 1, "idTag": "EV", "meterStart": 0, "timestamp": "2026-06-01T12:00:00Z"}
    begun = session_change(V16, "StartTransaction", start)
    assert begun is not None
    fleet.station_session("S16", begun.evse, begun.transaction, begun.present, T0)
    assert charging("S16")
    stop = {"transactionId": transaction_id_16(start), "meterStop": 10, "timestamp": "2026-06-01T13:00:00Z"}
    ended = session_change(V16, "StopTransaction", stop)
    assert ended is not None
    fleet.station_session("S16", ended.evse, ended.transaction, ended.present, T0)
    assert not charging("S16")
