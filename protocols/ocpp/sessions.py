"""Whether a vehicle is at an EVSE, from the messages a station sends. Pure: the fleet registry keeps the state.

A vehicle counts from the moment one is plugged in (it is charging or ready to: an aggregate limit gives it a
share, docs/dispatch.md) until its transaction ends or the connector is free again:

- 2.x TransactionEvent: `Started`, `Updated` present; `Ended` gone.
- 2.x StatusNotification: `Occupied` present; `Available`, `Unavailable`, `Faulted`, `Reserved` gone.
- 1.6 StartTransaction present; StopTransaction gone.
- 1.6 StatusNotification (connector > 0): `Preparing`, `Charging`, `SuspendedEV`, `SuspendedEVSE` present;
  `Available`, `Finishing`, `Unavailable`, `Faulted`, `Reserved` gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.model import OcppVersion

_V16_PRESENT = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE"})
_V16_GONE = frozenset({"Available", "Finishing", "Unavailable", "Faulted", "Reserved"})
_V2_GONE = frozenset({"Available", "Unavailable", "Faulted", "Reserved"})


@dataclass(frozen=True, slots=True)
class SessionChange:
    #: EVSE (1.6: connector); None when the message does not say (a 2.x TransactionEvent after the first).
    evse: int | None
    #: The transaction the message is about, when it names one (1.6 StopTransaction names only this).
    transaction: str | None
    present: bool


def session_change(version: OcppVersion, action: str, payload: Mapping[str, Any]) -> SessionChange | None:
    """What `action` says about a vehicle at one of the station's EVSEs, None when it says nothing."""
    if version is OcppVersion.V16:
        if action == "StartTransaction":
            return SessionChange(_int(payload.get("connectorId")), str(transaction_id_16(payload)), True)
        if action == "StopTransaction":
            return SessionChange(None, str(payload.get("transactionId")), False)
        if action == "StatusNotification" and _int(payload.get("connectorId")):
            status = payload.get("status")
            if status in _V16_PRESENT or status in _V16_GONE:
                return SessionChange(_int(payload.get("connectorId")), None, status in _V16_PRESENT)
        return None
    if action == "TransactionEvent":
        info = payload.get("transactionInfo") or {}
        transaction = info.get("transactionId")
        return SessionChange(
            _int((payload.get("evse") or {}).get("id")),
            None if transaction is None else str(transaction),
            payload.get("eventType") != "Ended",
        )
    if action == "StatusNotification":
        status = payload.get("connectorStatus")
        if status == "Occupied" or status in _V2_GONE:
            return SessionChange(_int(payload.get("evseId")), None, status == "Occupied")
    return None


def transaction_id_16(payload: Mapping[str, Any]) -> int:
    """A 1.6 transaction id derived from the start message, stable for a retried StartTransaction (the gateway
    answers StartTransaction with it, so StopTransaction names it)."""
    key = f"{payload.get('connectorId')}|{payload.get('idTag')}|{payload.get('timestamp')}"
    return int.from_bytes(key.encode()[-4:].rjust(4, b"\0"), "big") & 0x7FFFFFFF or 1


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
