"""The MMS server: libiec61850's IedServer on its own C thread, with Python write/check/operate handlers.

The handlers run on the library's thread and must answer synchronously, so they only validate (pure code) and
hand accepted commands to the owner, which bridges them to asyncio with `call_soon_threadsafe`.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass

from protocols.iec61850.clib import (
    CHECK_HANDLER,
    CONTROL_HANDLER,
    WRITE_HANDLER,
    AccessError,
    AddCause,
    CheckResult,
    ControlResult,
    Fc,
    lib,
)
from protocols.iec61850.datamodel import LD_INST, NODES, Cdc, build_model, find, node_at
from protocols.iec61850.translate import Refusal, Value, value_attribute

_ACCESS_POLICY_DENY = 1
_DBPOS_OFF, _DBPOS_ON = 1, 2


@dataclass(frozen=True, slots=True)
class Command:
    """A write (`select` False, `service` "write") or a select/operate that reached the server."""

    ref: str
    value: Value
    peer: str
    service: str


class Handlers:
    """What the server asks its owner. Called on the library's thread: answer fast, never block on asyncio."""

    def check(self, command: Command) -> Refusal | None:
        raise NotImplementedError

    def accepted(self, command: Command) -> None:
        raise NotImplementedError


class MmsServer:
    """One virtual IED served over MMS on `host:port` (use port 0 only through `free_port` in tests)."""

    def __init__(self, ied_name: str, handlers: Handlers) -> None:
        self._c = lib()
        self.ied_name = ied_name
        self._handlers = handlers
        self._model = build_model(ied_name)
        self._server = self._c.IedServer_create(ctypes.c_void_p(self._model))
        # Callbacks must outlive the server: ctypes frees a CFUNCTYPE object's trampoline with the object.
        self._callbacks: list[object] = []
        for fc in (Fc.CF, Fc.DC, Fc.SP, Fc.SV, Fc.SE):
            self._c.IedServer_setWriteAccessPolicy(self._server, int(fc), _ACCESS_POLICY_DENY)
        for ln in NODES:
            for do in ln.data:
                if do.function is None:
                    continue
                ref = f"{ln.name}.{do.name}"
                if do.cdc in (Cdc.ASG, Cdc.SPG):
                    self._install_write(ref, do.cdc)
                else:
                    self._install_control(ref, do.cdc)
        self.started_at: float | None = None

    def full(self, ref: str) -> str:
        return f"{self.ied_name}{LD_INST}/{ref}"

    def _node(self, ref: str) -> ctypes.c_void_p:
        return ctypes.c_void_p(node_at(self._model, self.full(ref)))

    def _install_write(self, ref: str, cdc: Cdc) -> None:
        c = self._c

        def on_write(_da: int | None, value: int | None, conn: int | None, _p: int | None) -> int:
            v: Value = bool(c.MmsValue_getBoolean(value)) if cdc is Cdc.SPG else float(c.MmsValue_toFloat(value))
            command = Command(ref, v, _peer(conn), "write")
            refusal = self._handlers.check(command)
            if refusal is not None:
                return int(refusal.access_error)
            self._handlers.accepted(command)
            return int(AccessError.SUCCESS)

        cb = WRITE_HANDLER(on_write)
        self._callbacks.append(cb)
        attr = "setVal" if cdc is Cdc.SPG else "setMag.f"
        c.IedServer_handleWriteAccess(self._server, self._node(f"{ref}.{attr}"), ctypes.cast(cb, ctypes.c_void_p), None)

    def _install_control(self, ref: str, cdc: Cdc) -> None:
        c = self._c

        def ctl_value(value: int | None) -> Value:
            if cdc is Cdc.APC:
                return float(c.MmsValue_toFloat(c.MmsValue_getElement(value, 0)))
            return bool(c.MmsValue_getBoolean(value))

        def on_check(action: int | None, _p: int | None, value: int | None, test: bool, _ilk: bool) -> int:
            service = "select" if c.ControlAction_isSelect(action) else "operate"
            refusal = (
                Refusal("test commands are not supported", AddCause.NOT_SUPPORTED)
                if test
                else self._handlers.check(Command(ref, ctl_value(value), _peer(_conn(action)), service))
            )
            if refusal is None:
                return int(CheckResult.ACCEPTED)
            c.ControlAction_setAddCause(action, int(refusal.add_cause))
            return int(CheckResult.VALUE_INVALID)

        def on_operate(action: int | None, _p: int | None, value: int | None, _test: bool) -> int:
            v = ctl_value(value)
            self._set_status(ref, cdc, v)
            self._handlers.accepted(Command(ref, v, _peer(_conn(action)), "operate"))
            return int(ControlResult.OK)

        check, operate = CHECK_HANDLER(on_check), CONTROL_HANDLER(on_operate)
        self._callbacks += [check, operate]
        node = self._node(ref)
        c.IedServer_setPerformCheckHandler(self._server, node, ctypes.cast(check, ctypes.c_void_p), None)
        c.IedServer_setControlHandler(self._server, node, ctypes.cast(operate, ctypes.c_void_p), None)

    def _set_status(self, ref: str, cdc: Cdc, value: Value) -> None:
        c = self._c
        if cdc is Cdc.APC:
            c.IedServer_updateFloatAttributeValue(self._server, self._node(f"{ref}.mxVal.f"), float(value))
        elif cdc is Cdc.DPC:
            c.IedServer_updateDbposValue(self._server, self._node(f"{ref}.stVal"), _DBPOS_ON if value else _DBPOS_OFF)
        else:
            c.IedServer_updateBooleanAttributeValue(self._server, self._node(f"{ref}.stVal"), bool(value))
        self._stamp(ref)

    def _stamp(self, ref: str) -> None:
        try:
            t = self._node(f"{ref}.t")
        except KeyError:
            return
        self._c.IedServer_updateUTCTimeAttributeValue(self._server, t, int(time.time() * 1000))

    def set_value(self, ref: str, value: Value | int | str) -> None:
        """Publish a value on data object `ref` ("LN.DO", or "LN.DO.DA" for a sub-attribute)."""
        c = self._c
        if ref.count(".") > 1:
            node, owner = self._node(ref), ".".join(ref.split(".", 2)[:2])
        else:
            _, do = find(ref)
            if do.cdc in (Cdc.APC, Cdc.DPC, Cdc.SPC):
                assert isinstance(value, bool | float | int)
                self._set_status(ref, do.cdc, value)
                return
            node, owner = self._node(f"{ref}.{value_attribute(do)}"), ref
        c.IedServer_lockDataModel(self._server)
        try:
            if isinstance(value, bool):
                c.IedServer_updateBooleanAttributeValue(self._server, node, value)
            elif isinstance(value, int):
                c.IedServer_updateInt32AttributeValue(self._server, node, value)
            elif isinstance(value, float):
                c.IedServer_updateFloatAttributeValue(self._server, node, value)
            else:
                c.IedServer_updateVisibleStringAttributeValue(self._server, node, value.encode()[:255])
            self._stamp(owner)
        finally:
            c.IedServer_unlockDataModel(self._server)

    def start(self, host: str, port: int) -> None:
        self._c.IedServer_setLocalIpAddress(self._server, host.encode())
        self._c.IedServer_start(self._server, port)
        if not self._c.IedServer_isRunning(self._server):
            raise OSError(f"IEC 61850 server could not listen on {host}:{port}")
        self.started_at = time.time()

    @property
    def running(self) -> bool:
        return bool(self._c.IedServer_isRunning(self._server))

    def connections(self) -> int:
        return int(self._c.IedServer_getNumberOfOpenConnections(self._server))

    def close(self) -> None:
        """Stop serving (joins the library's threads) and free the model; idempotent."""
        if self._server:
            self._c.IedServer_stop(self._server)
            self._c.IedServer_destroy(self._server)
            self._c.IedModel_destroy(ctypes.c_void_p(self._model))
            self._server = None


def _conn(action: int | None) -> int | None:
    return lib().ControlAction_getClientConnection(action)  # type: ignore[no-any-return]


def _peer(conn: int | None) -> str:
    if not conn:
        return "unknown"
    raw = lib().ClientConnection_getPeerAddress(conn)
    return raw.decode() if raw else "unknown"
