"""The SCADA counterpart: an MMS client that reads the IED and writes settings and operates controls on it.

Calls block (libiec61850 is synchronous); async code runs them with `asyncio.to_thread`. They release the GIL
(ctypes), so a server in the same process keeps answering.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Self

from protocols.iec61850.clib import ClientError, Fc, lib
from protocols.iec61850.datamodel import LD_INST

_MMS_BOOLEAN, _MMS_BIT_STRING, _MMS_INTEGER, _MMS_FLOAT, _MMS_VISIBLE_STRING = 2, 3, 4, 6, 8
_REMOTE_CONTROL = 3
#: Associations tried before giving up on a stuck one (see `ScadaClient._connect`); each fails with p ~ 0.1-0.2.
_ASSOCIATE_ATTEMPTS = 8


class ScadaError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(f"{message} (IedClientError {code})")
        self.code = code


@dataclass(frozen=True, slots=True)
class ControlResult:
    """A select/operate outcome: `add_cause` is the IEC 61850-7-2 AddCause number the IED answered."""

    ok: bool
    add_cause: int = 0
    error: int = 0


class ScadaClient:
    def __init__(self, host: str, port: int, *, ied_name: str = "DERGW", origin: str = "scada") -> None:
        self._c = lib()
        self._prefix = f"{ied_name}{LD_INST}/"
        self._origin = origin.encode()
        self._con: int | None = None
        for _ in range(_ASSOCIATE_ATTEMPTS):
            self._connect(host, port)
            if self._usable():
                return
            self.close()
        raise ScadaError(f"{host}:{port}: every association was left unusable", ClientError.CONNECTION_LOST)

    def _connect(self, host: str, port: int) -> None:
        """Associate. libiec61850 1.6.1 has a lost-update race here: MmsConnection_connectAsync starts the
        connection's handling thread and the TCP/ISO association, and only then sets its state to CONNECTING. When
        the handling thread completes the association first (sets CONNECTED and wakes the waiting connect), that
        late CONNECTING overwrites CONNECTED: connect reports success, the socket is established, but every request
        is refused locally (never sent) with connection-lost, for the life of the association. Seen on about 1 in 8
        associations on a 2-CPU machine (docs/iec61850.md). `_usable` detects it and the caller re-associates."""
        c = self._c
        self._con = c.IedConnection_create()
        c.IedConnection_setRequestTimeout(self._con, 5000)
        err = ctypes.c_int(0)
        c.IedConnection_connect(self._con, ctypes.byref(err), host.encode(), port)
        if err.value != ClientError.OK:
            c.IedConnection_destroy(self._con)
            self._con = None
            raise ScadaError(f"cannot connect to {host}:{port}", err.value)

    def _usable(self) -> bool:
        """One read right after the association: connection-lost here means the association is stuck (the request
        was refused before it was sent, so nothing reached the IED). Any other answer means requests go out."""
        err = ctypes.c_int(0)
        ref = (self._prefix + "LLN0.Mod.stVal").encode()
        value = self._c.IedConnection_readObject(self._con, ctypes.byref(err), ref, int(Fc.ST))
        if value:
            self._c.MmsValue_delete(value)
        return err.value != ClientError.CONNECTION_LOST

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._con:
            self._c.IedConnection_close(self._con)
            self._c.IedConnection_destroy(self._con)
            self._con = None

    def read(self, ref: str, fc: Fc) -> float | bool | int | str:
        """One basic attribute ("LN.DO.DA") as a Python value."""
        c, err = self._c, ctypes.c_int(0)
        value = c.IedConnection_readObject(self._con, ctypes.byref(err), (self._prefix + ref).encode(), int(fc))
        if err.value != ClientError.OK or not value:
            raise ScadaError(f"read {ref}", err.value)
        try:
            kind = c.MmsValue_getType(value)
            if kind == _MMS_FLOAT:
                return float(c.MmsValue_toFloat(value))
            if kind == _MMS_BOOLEAN:
                return bool(c.MmsValue_getBoolean(value))
            if kind == _MMS_INTEGER:
                return int(c.MmsValue_toInt32(value))
            if kind == _MMS_BIT_STRING:
                return int(c.MmsValue_getBitStringAsInteger(value))
            if kind == _MMS_VISIBLE_STRING:
                return str(c.MmsValue_toString(value).decode())
            raise ScadaError(f"read {ref}: unexpected MMS type {kind}", 0)
        finally:
            c.MmsValue_delete(value)

    def write(self, ref: str, fc: Fc, value: float | bool) -> int:
        """Write a basic attribute; returns the IedClientError (0 = accepted)."""
        c, err = self._c, ctypes.c_int(0)
        mms = c.MmsValue_newBoolean(value) if isinstance(value, bool) else c.MmsValue_newFloat(value)
        try:
            c.IedConnection_writeObject(self._con, ctypes.byref(err), (self._prefix + ref).encode(), int(fc), mms)
        finally:
            c.MmsValue_delete(mms)
        return err.value

    def write_setting(self, ref: str, value: float | bool) -> int:
        """Write an ASG (setMag.f) or SPG (setVal) setting "LN.DO"."""
        attr = "setVal" if isinstance(value, bool) else "setMag.f"
        return self.write(f"{ref}.{attr}", Fc.SP, value)

    def operate(self, ref: str, value: float | bool, *, select: bool = False) -> ControlResult:
        """Operate control "LN.DO"; with `select`, select-before-operate (with value) first."""
        c = self._c
        ctl = c.ControlObjectClient_create((self._prefix + ref).encode(), self._con)
        if not ctl:
            raise ScadaError(f"no control object {ref}", 0)
        mms = c.MmsValue_newBoolean(value) if isinstance(value, bool) else _analogue(value)
        try:
            c.ControlObjectClient_setOrigin(ctl, self._origin, _REMOTE_CONTROL)
            if select and not c.ControlObjectClient_selectWithValue(ctl, mms):
                return _failed(ctl)
            if not c.ControlObjectClient_operate(ctl, mms, 0):
                return _failed(ctl)
            return ControlResult(True)
        finally:
            c.MmsValue_delete(mms)
            c.ControlObjectClient_destroy(ctl)


def _analogue(value: float) -> int:
    """An AnalogueValue ctlVal: a structure whose one element is the float `f`."""
    c = lib()
    mms = c.MmsValue_createEmptyStructure(1)
    c.MmsValue_setElement(mms, 0, c.MmsValue_newFloat(value))
    return int(mms)


def _failed(ctl: int) -> ControlResult:
    c = lib()
    appl = c.ControlObjectClient_getLastApplError(ctl)
    return ControlResult(False, add_cause=appl.add_cause, error=c.ControlObjectClient_getLastError(ctl))
