"""One simulated charging station speaking OCPP-J (2.1, 2.0.1 or 1.6) to a CSMS over a real WebSocket.

It is a test counterpart first: every frame it sends is validated against the official schema (a failure lands in
`faults`), every frame it receives too (a CSMS mistake lands in `violations` and is answered as part 4 says). It
is cheap enough to run a thousand in one event loop: three tasks per station, timers only through its `Clock`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import ssl as ssl_module
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from gateway.model import OcppVersion
from protocols.ocpp import frames
from protocols.ocpp.frames import Call, CallError, CallResult, CallResultError, ErrorCode, Frame, FrameError
from protocols.ocpp.schemas import SchemaError, validate
from protocols.ocpp.simulator.clock import Clock, SystemClock
from protocols.ocpp.simulator.der_store import DerStore, StartStop, format_time, report_payloads
from protocols.ocpp.simulator.device_model import DeviceModel, StationSpec, build_variables
from protocols.ocpp.simulator.profiles import ProfileStore, Rates

#: Demand of the simulated EV in W at a given time (positive = charging); a float means constant demand.
PowerProfile = Callable[[datetime], float] | float
Payload = dict[str, Any]
#: A handler returns the response payload and, optionally, what to do once the response is on the wire.
Handled = tuple[Payload, Callable[[], Awaitable[None]] | None]

_DER_ACTIONS = frozenset({"SetDERControl", "GetDERControl", "ClearDERControl"})


@dataclass(frozen=True)
class SimBehaviour:
    """How a station misbehaves, per action name of a CSMS-initiated call."""

    #: Answer with status Rejected (GetVariables/SetVariables: every item Rejected).
    reject: frozenset[str] = frozenset()
    #: Answer with CALLERROR NotSupported.
    not_supported: frozenset[str] = frozenset()
    #: Never answer, so the CSMS times out.
    never_answer: frozenset[str] = frozenset()
    #: Wait this many (real) seconds before answering.
    delays: Mapping[str, float] = field(default_factory=dict)
    #: Drop the connection on receipt, without answering (the station then reconnects).
    disconnect_on: frozenset[str] = frozenset()
    #: Handle the call at once (a Set is applied), but hold the answer until the test sets the event; an answer
    #: whose connection has gone by then is dropped, as a real station's would be.
    hold: Mapping[str, asyncio.Event] = field(default_factory=dict)


class CsmsCallError(Exception):
    """The CSMS answered a station's CALL with a CALLERROR."""

    def __init__(self, action: str, error: CallError) -> None:
        super().__init__(f"{action}: {error.code} {error.description}")
        self.action = action
        self.error = error


class SimStation:
    """A simulated station: connect, boot, heartbeat, meter, and answer the CSMS's calls for its version."""

    def __init__(
        self,
        url: str,
        station_id: str,
        version: OcppVersion = OcppVersion.V21,
        *,
        subprotocols: Sequence[OcppVersion] | None = None,
        password: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        der: bool = True,
        spec: StationSpec | None = None,
        behaviour: SimBehaviour | None = None,
        clock: Clock | None = None,
        power: PowerProfile = 7000.0,
        meter_interval: float = 60.0,
        phase: float = 1.0,
        transaction: bool = False,
        call_timeout: float = 30.0,
        reconnect_delay: float | None = 1.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.station_id = station_id
        self.offered = tuple(subprotocols or (version,))
        self.version = self.offered[0]
        self.password = password
        self.ssl = ssl
        self.der_enabled = der
        self.spec = spec or StationSpec()
        self.behaviour = behaviour or SimBehaviour()
        self.clock: Clock = clock or SystemClock()
        self.power_profile = power
        self.meter_interval = meter_interval
        if not 0.0 < phase <= 1.0:
            raise ValueError("phase must be in (0, 1]")
        #: The first heartbeat and meter value come this fraction of their interval after boot (then every
        #: interval): a fleet whose stations have different phases sends its traffic evenly, not in bursts.
        self.phase = phase
        self.transaction = transaction
        self.call_timeout = call_timeout
        self.reconnect_delay = reconnect_delay
        #: Every CALL the CSMS sent, in order: (action, payload).
        self.received: list[tuple[str, Payload]] = []
        #: Every CALL this station sent: (action, payload).
        self.sent: list[tuple[str, Payload]] = []
        #: Frames this station got wrong (a bug in the simulator).
        self.faults: list[str] = []
        #: Frames the CSMS got wrong (schema or framing), as seen by this station.
        self.violations: list[str] = []
        self.heartbeat_interval = 0
        self.boot_count = 0
        self.energy_wh: dict[int, float] = {}
        self.available = True
        self.configuration: dict[str, str] = {}
        self.der = DerStore(())
        self.profiles = self._new_profiles()
        self.device_model = DeviceModel(())
        self._built_for: OcppVersion | None = None
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._call_lock = asyncio.Lock()
        self._pending: tuple[str, asyncio.Future[Frame]] | None = None
        self._unsolicited: asyncio.Queue[Frame] = asyncio.Queue()
        self._handled: Counter[str] = Counter()
        self._sent_count: Counter[str] = Counter()
        self._waiters: list[tuple[Counter[str], str, int, asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._booted = asyncio.Event()
        self._stopping = False
        self._boot_reason = "PowerUp"
        self._der_outbox: list[StartStop] = []
        self._der_wake = asyncio.Event()
        self._der_task: asyncio.Task[None] | None = None
        self._last_meter: datetime | None = None
        self._booted_at: datetime | None = None
        self._tx_id: str | None = None
        self._tx_seq = 0

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def booted(self) -> bool:
        return self._booted.is_set()

    async def start(self) -> None:
        """Connect and boot; returns once the CSMS accepted the boot, raises the first attempt's failure. Starting
        again after `stop` is a power cycle: DER controls and charging profiles are kept (R01.FR.03)."""
        if self._runner is None:
            self._stopping = False
            self._first = asyncio.get_running_loop().create_future()
            self._runner = asyncio.create_task(self._run(), name=f"sim-{self.station_id}")
        assert self._first is not None
        await asyncio.shield(self._first)

    async def stop(self) -> None:
        """End any transaction, close the connection and cancel every task of this station."""
        self._stopping = True
        if self._tx_id is not None and self._ws is not None:
            with contextlib.suppress(ConnectionError, TimeoutError, CsmsCallError, ConnectionClosed):
                await self.end_transaction()
        tasks = [t for t in (self._runner, self._der_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self._runner = None

    async def wait_booted(self) -> None:
        await self._booted.wait()

    async def disconnect(self) -> None:
        """Drop the connection now (the station reconnects after `reconnect_delay` unless that is None)."""
        if self._ws is not None:
            await self._ws.close()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._session()
            except (OSError, WebSocketException, TimeoutError, CsmsCallError, SchemaError) as exc:
                if self._first is not None and not self._first.done():
                    self._first.set_exception(exc)
                    return
            finally:
                self._ws = None
                self._booted.clear()
            if self._stopping or self.reconnect_delay is None:
                return
            await asyncio.sleep(0 if self._boot_reason == "RemoteReset" else self.reconnect_delay)

    async def _session(self) -> None:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.station_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with connect(
            f"{self.url}/{quote(self.station_id, safe='')}",
            subprotocols=[Subprotocol(v.value) for v in self.offered],
            additional_headers=headers,
            ssl=self.ssl,
            compression=None,
            ping_interval=None,
            proxy=None,
            open_timeout=self.call_timeout,
        ) as ws:
            self._negotiated(OcppVersion(ws.subprotocol) if ws.subprotocol else self.offered[0])
            self._ws = ws
            reader = self._spawn(self._read(ws))
            periodic: asyncio.Task[None] | None = None
            try:
                await self._boot()
                periodic = self._spawn(self._periodic())
                await reader
            finally:
                for task in (reader, periodic):
                    if task is not None:
                        task.cancel()

    def _negotiated(self, version: OcppVersion) -> None:
        """Build the device model and stores for the negotiated version (kept across reconnects: R01.FR.03)."""
        self.version = version
        if self._built_for is version:
            return
        self._built_for = version
        der = self.der_enabled and version is OcppVersion.V21
        self.device_model = DeviceModel(build_variables(self.spec, version, der))
        self.der = DerStore(self.spec.der_modes if der else ())
        self.profiles = self._new_profiles()
        self.configuration = {
            "HeartbeatInterval": "0",
            "MeterValueSampleInterval": f"{self.meter_interval:g}",
        }

    def _new_profiles(self) -> ProfileStore:
        return ProfileStore(
            self.version,
            rate_units=self.spec.rate_units,
            operation_modes=self.spec.operation_modes if self.version is OcppVersion.V21 else frozenset(),
            max_stack_level=self.spec.profile_stack_level,
            volts=self.spec.v_nom,
            phases=self.spec.phases,
        )

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- boot, heartbeat, meter values, transactions -----------------------------------------------------------

    async def _boot(self) -> None:
        while True:
            reply = await self.call("BootNotification", self._boot_payload())
            if reply["status"] == "Accepted":
                break
            await self.clock.sleep_until(self.clock.now() + timedelta(seconds=reply["interval"] or 10))
        self.heartbeat_interval = reply["interval"]
        self.configuration["HeartbeatInterval"] = str(reply["interval"])
        self.boot_count += 1
        self._boot_reason = "PowerUp"
        self._booted_at = self.clock.now()
        await self.send_status()
        if self.transaction and self.version is not OcppVersion.V16 and self._tx_id is None:
            await self.start_transaction()
        self._booted.set()
        if self._first is not None and not self._first.done():
            self._first.set_result(None)

    def _boot_payload(self) -> Payload:
        if self.version is OcppVersion.V16:
            return {
                "chargePointVendor": self.spec.vendor[:20],
                "chargePointModel": self.spec.model[:20],
                "chargePointSerialNumber": self.station_id[:25],
                "firmwareVersion": self.spec.firmware[:50],
            }
        return {
            "reason": self._boot_reason,
            "chargingStation": {
                "vendorName": self.spec.vendor[:50],
                "model": self.spec.model[:20],
                "serialNumber": self.station_id[:25],
                "firmwareVersion": self.spec.firmware[:50],
            },
        }

    async def send_status(self, evse_id: int | None = None) -> None:
        """StatusNotification for every connector (or one EVSE's); 1.6 also reports connector 0."""
        now = format_time(self.clock.now())
        evses = [evse_id] if evse_id is not None else list(range(1, self.spec.evses + 1))
        for evse in evses:
            if self.version is OcppVersion.V16:
                status = "Available" if self.available else "Unavailable"
                for connector in (0, evse) if evse == 1 and evse_id is None else (evse,):
                    await self.call(
                        "StatusNotification", {"connectorId": connector, "errorCode": "NoError", "status": status}
                    )
            else:
                status = "Occupied" if self._tx_id else "Available"
                await self.call(
                    "StatusNotification",
                    {
                        "timestamp": now,
                        "connectorStatus": status if self.available else "Unavailable",
                        "evseId": evse,
                        "connectorId": 1,
                    },
                )

    async def _periodic(self) -> None:
        """Heartbeat at the boot interval and meter values at `meter_interval`, on the station's clock."""
        now = self._booted_at or self.clock.now()  # timed from the boot, however late this task first runs
        self._last_meter = now
        beat, meter = self.heartbeat_interval * self.phase, self.meter_interval * self.phase
        next_beat = now + timedelta(seconds=beat) if self.heartbeat_interval > 0 else None
        next_meter = now + timedelta(seconds=meter) if self.meter_interval > 0 else None
        while next_beat is not None or next_meter is not None:
            await self.clock.sleep_until(min(t for t in (next_beat, next_meter) if t is not None))
            now = self.clock.now()
            try:
                if next_meter is not None and now >= next_meter:
                    next_meter = now + timedelta(seconds=self.meter_interval)
                    await self.send_meter_values()
                if next_beat is not None and now >= next_beat:
                    next_beat = now + timedelta(seconds=self.heartbeat_interval)
                    await self._heartbeat()
            except (TimeoutError, CsmsCallError):
                continue

    def power_w(self, evse_id: int = 1, at: datetime | None = None) -> float:
        """What the EVSE draws now (or `at`): the EV's demand shaped by the charging profiles in force then."""
        when = at or self.clock.now()
        demand = self.power_profile(when) if callable(self.power_profile) else self.power_profile
        if not self.available:
            return 0.0
        return self.profiles.rates(evse_id, when).power(demand)

    def rates(self, evse_id: int = 1) -> Rates:
        return self.profiles.rates(evse_id, self.clock.now())

    def _sample(self, evse_id: int) -> Payload:
        """One meter value: energy since the last sample at the power drawn over that span (the power in force
        at its start: tests meter at the boundaries where profiles change), and the present power."""
        now = self.clock.now()
        power = self.power_w(evse_id)
        since = self._last_meter or now
        drawn = self.power_w(evse_id, since)
        elapsed = (now - since).total_seconds()
        self.energy_wh[evse_id] = self.energy_wh.get(evse_id, 0.0) + max(drawn, 0.0) * elapsed / 3600
        energy = round(self.energy_wh[evse_id], 1)
        values = [("Energy.Active.Import.Register", energy, "Wh"), ("Power.Active.Import", max(power, 0.0), "W")]
        if power < 0:
            values.append(("Power.Active.Export", -power, "W"))
        sampled: list[Payload]
        if self.version is OcppVersion.V16:
            sampled = [{"value": f"{v:g}", "measurand": m, "unit": u} for m, v, u in values]
        else:
            sampled = [{"value": v, "measurand": m, "unitOfMeasure": {"unit": u}} for m, v, u in values]
        return {"timestamp": format_time(now), "sampledValue": sampled}

    async def send_meter_values(self) -> None:
        """MeterValues per EVSE (or TransactionEvent Updated while a 2.x transaction runs)."""
        samples = {evse: self._sample(evse) for evse in range(1, self.spec.evses + 1)}
        self._last_meter = self.clock.now()
        for evse, sample in samples.items():
            if self._tx_id is not None and evse == 1:
                await self._transaction_event("Updated", "MeterValuePeriodic", [sample])
            elif self.version is OcppVersion.V16:
                await self.call("MeterValues", {"connectorId": evse, "meterValue": [sample]})
            else:
                await self.call("MeterValues", {"evseId": evse, "meterValue": [sample]})

    async def start_transaction(self) -> None:
        """TransactionEvent Started on EVSE 1 (OCPP 2.x)."""
        self._tx_id = f"{self.station_id}-{self.boot_count}-{next(self._ids)}"[-36:]
        self._tx_seq = 0
        await self._transaction_event("Started", "CablePluggedIn", [self._sample(1)])

    async def end_transaction(self) -> None:
        """TransactionEvent Ended for the running transaction."""
        await self._transaction_event("Ended", "EVDeparted", [self._sample(1)], stopped="EVDisconnected")
        self._tx_id = None

    async def _transaction_event(
        self, event: str, trigger: str, meter: list[Payload], stopped: str | None = None
    ) -> None:
        assert self._tx_id is not None
        info: Payload = {"transactionId": self._tx_id, "chargingState": "Charging" if not stopped else "EVConnected"}
        if stopped:
            info["stoppedReason"] = stopped
        payload: Payload = {
            "eventType": event,
            "timestamp": format_time(self.clock.now()),
            "triggerReason": trigger,
            "seqNo": self._tx_seq,
            "transactionInfo": info,
            "meterValue": meter,
        }
        if event == "Started":
            payload["evse"] = {"id": 1, "connectorId": 1}
        self._tx_seq += 1
        await self.call("TransactionEvent", payload)

    async def raise_alarm(
        self,
        control_type: str,
        grid_event_fault: str | None = None,
        *,
        ended: bool = False,
        extra_info: str | None = None,
    ) -> Payload:
        """Send NotifyDERAlarm (R05) and return the CSMS's response."""
        payload: Payload = {"controlType": control_type, "timestamp": format_time(self.clock.now())}
        if grid_event_fault is not None:
            payload["gridEventFault"] = grid_event_fault
        if ended:
            payload["alarmEnded"] = True
        if extra_info is not None:
            payload["extraInfo"] = extra_info
        return await self.call("NotifyDERAlarm", payload)

    # ---- wire --------------------------------------------------------------------------------------------------

    async def call(self, action: str, payload: Payload) -> Payload:
        """Send a CALL (validated first) and return the CSMS's CALLRESULT payload; one outstanding at a time."""
        self._check_out(action, payload, response=False)
        async with self._call_lock:
            ws = self._require_ws()
            message_id = f"{self.station_id[-20:]}-{next(self._ids)}"
            future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._pending = (message_id, future)
            try:
                await ws.send(frames.serialize(Call(message_id, action, payload)))
                self.sent.append((action, payload))
                self._bump(self._sent_count, action)
                async with asyncio.timeout(self.call_timeout):
                    reply = await future
            finally:
                self._pending = None
        if isinstance(reply, CallError):
            raise CsmsCallError(action, reply)
        assert isinstance(reply, CallResult)
        try:
            validate(self.version, action, reply.payload, response=True)
        except SchemaError as exc:
            self.violations.append(f"{self.station_id}: CSMS sent invalid {action}Response: {exc.description}")
        return reply.payload

    async def send_raw(self, text: str) -> None:
        """Send any text as it is (for the CSMS's malformed-frame tests)."""
        await self._require_ws().send(text)

    async def next_frame(self) -> Frame:
        """The next frame from the CSMS that is neither a CALL nor the answer to this station's CALL."""
        return await self._unsolicited.get()

    async def next_error(self) -> CallError | CallResultError:
        """The next CALLERROR/CALLRESULTERROR the CSMS sent that answers no CALL of this station."""
        while True:
            frame = await self.next_frame()
            if isinstance(frame, CallError | CallResultError):
                return frame

    def _require_ws(self) -> ClientConnection:
        if self._ws is None:
            raise ConnectionError(f"{self.station_id} is not connected")
        return self._ws

    def _check_out(self, action: str, payload: Payload, *, response: bool) -> None:
        try:
            validate(self.version, action, payload, response=response)
        except SchemaError as exc:
            self.faults.append(f"{self.station_id} built invalid {action}: {exc.description}")
            raise

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            if self._pending is not None and not self._pending[1].done():
                self._pending[1].set_exception(ConnectionError(f"{self.station_id}: connection closed"))

    def _on_message(self, text: str | bytes) -> None:
        try:
            frame = frames.parse(text, self.version)
        except FrameError as exc:
            self.violations.append(f"{self.station_id}: CSMS sent a broken frame: {exc.description}")
            self._spawn(self._send_error(exc.message_id, exc.code, exc.description))
            return
        if isinstance(frame, Call):
            self.received.append((frame.action, frame.payload))
            self._spawn(self._answer(frame))
        elif (
            isinstance(frame, CallResult | CallError)
            and self._pending is not None
            and self._pending[0] == frame.message_id
            and not self._pending[1].done()
        ):
            self._pending[1].set_result(frame)
        else:
            self._unsolicited.put_nowait(frame)

    async def _send_error(self, message_id: str, code: str, description: str) -> None:
        frame = CallError(message_id, frames.error_code(code, self.version), description)
        await self._require_ws().send(frames.serialize(frame))

    async def _answer(self, call: Call) -> None:
        action = call.action
        came_on = self._ws
        try:
            if action in self.behaviour.disconnect_on:
                await self.disconnect()
                return
            if action in self.behaviour.never_answer:
                return
            if delay := self.behaviour.delays.get(action):
                await asyncio.sleep(delay)
            if action in self.behaviour.not_supported:
                await self._send_error(call.message_id, ErrorCode.NOT_SUPPORTED, f"{action} is not supported")
                return
            try:
                validate(self.version, action, call.payload)
            except SchemaError as exc:
                if exc.code != ErrorCode.NOT_IMPLEMENTED:
                    self.violations.append(f"{self.station_id}: CSMS sent invalid {action}: {exc.description}")
                await self._send_error(call.message_id, exc.code, exc.description)
                return
            handler = self._handler(action)
            if handler is None:
                await self._send_error(call.message_id, ErrorCode.NOT_SUPPORTED, f"{action} is not supported")
                return
            result, follow_up = (
                (_rejected(action, call.payload), None) if action in self.behaviour.reject else handler(call.payload)
            )
            try:
                self._check_out(action, result, response=True)
            except SchemaError as exc:
                await self._send_error(call.message_id, ErrorCode.INTERNAL_ERROR, exc.description)
                return
            if (gate := self.behaviour.hold.get(action)) is not None:
                await gate.wait()
                if self._ws is not came_on:
                    return
            await self._require_ws().send(frames.serialize(CallResult(call.message_id, result)))
            if follow_up is not None:
                await follow_up()
        except (ConnectionError, ConnectionClosed, TimeoutError, CsmsCallError):
            pass  # the link went away or the CSMS refused a follow-up: nothing left to answer
        except Exception as exc:  # a simulator bug must show up in the test, not vanish with the task
            self.faults.append(f"{self.station_id} failed handling {action}: {exc!r}")
            raise
        finally:
            self._bump(self._handled, action)

    # ---- synchronisation for tests -----------------------------------------------------------------------------

    async def wait_for(self, action: str, count: int = 1) -> None:
        """Until the station has handled (answered, and sent any follow-up of) `count` CALLs of `action`."""
        await self._wait(self._handled, action, count)

    async def wait_sent(self, action: str, count: int = 1) -> None:
        """Until the station has sent `count` CALLs of `action`."""
        await self._wait(self._sent_count, action, count)

    async def _wait(self, counter: Counter[str], action: str, count: int) -> None:
        if counter[action] >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((counter, action, count, future))
        await future

    def _bump(self, counter: Counter[str], action: str) -> None:
        counter[action] += 1
        for waiter in list(self._waiters):
            if waiter[0] is counter and waiter[1] == action and counter[action] >= waiter[2]:
                self._waiters.remove(waiter)
                if not waiter[3].done():
                    waiter[3].set_result(None)

    # ---- handlers ----------------------------------------------------------------------------------------------

    def _handler(self, action: str) -> Callable[[Payload], Handled] | None:
        if action in _DER_ACTIONS and not self.der.supported:
            return None
        prefix = "_v16_" if self.version is OcppVersion.V16 else "_on_"
        handler: Callable[[Payload], Handled] | None = getattr(self, prefix + action, None)
        return handler

    def _on_GetVariables(self, p: Payload) -> Handled:  # noqa: N802 - named after the OCPP action
        return {"getVariableResult": [self.device_model.get(d) for d in p["getVariableData"]]}, None

    def _on_SetVariables(self, p: Payload) -> Handled:  # noqa: N802
        return {"setVariableResult": [self.device_model.set(d) for d in p["setVariableData"]]}, None

    def _on_GetBaseReport(self, p: Payload) -> Handled:  # noqa: N802
        chosen = self.device_model.select(None, configuration_only=p["reportBase"] == "ConfigurationInventory")
        return self._report(p["requestId"], chosen)

    def _on_GetReport(self, p: Payload) -> Handled:  # noqa: N802
        return self._report(p["requestId"], self.device_model.select(p.get("componentVariable"), False))

    def _report(self, request_id: int, chosen: Iterable[Any]) -> Handled:
        messages = DeviceModel.report_payloads(list(chosen), request_id, self.clock.now())
        if not messages:
            return {"status": "EmptyResultSet"}, None
        return {"status": "Accepted"}, self._sender("NotifyReport", messages)

    def _sender(self, action: str, payloads: list[Payload]) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            for payload in payloads:
                await self.call(action, payload)

        return send

    def _on_SetChargingProfile(self, p: Payload) -> Handled:  # noqa: N802
        rejection = self.profiles.set(p["evseId"], p["chargingProfile"], self.clock.now())
        if rejection is None:
            return {"status": "Accepted"}, None
        return {"status": "Rejected", "statusInfo": {"reasonCode": rejection[0], "additionalInfo": rejection[1]}}, None

    def _on_ClearChargingProfile(self, p: Payload) -> Handled:  # noqa: N802
        criteria = p.get("chargingProfileCriteria", {})
        found = self.profiles.find(
            profile_ids=[p["chargingProfileId"]] if "chargingProfileId" in p else None,
            evse_id=criteria.get("evseId"),
            purpose=criteria.get("chargingProfilePurpose"),
            stack_level=criteria.get("stackLevel"),
        )
        return {"status": "Accepted" if self.profiles.clear(found) else "Unknown"}, None

    def _on_GetChargingProfiles(self, p: Payload) -> Handled:  # noqa: N802
        criterion = p["chargingProfile"]
        if "chargingLimitSource" in criterion and "CSO" not in criterion["chargingLimitSource"]:
            return {"status": "NoProfiles"}, None
        found = self.profiles.find(
            profile_ids=criterion.get("chargingProfileId"),
            evse_id=p.get("evseId"),
            purpose=criterion.get("chargingProfilePurpose"),
            stack_level=criterion.get("stackLevel"),
        )
        if not found:
            return {"status": "NoProfiles"}, None
        by_evse: dict[int, list[Payload]] = {}
        for stored in found:
            by_evse.setdefault(stored.evse_id, []).append(stored.profile)
        reports: list[Payload] = [
            {"requestId": p["requestId"], "chargingLimitSource": "CSO", "evseId": evse, "chargingProfile": profiles}
            for evse, profiles in sorted(by_evse.items())
        ]
        for report in reports[:-1]:
            report["tbc"] = True
        return {"status": "Accepted"}, self._sender("ReportChargingProfiles", reports)

    def _on_TriggerMessage(self, p: Payload) -> Handled:  # noqa: N802
        message = p["requestedMessage"]
        evse = p.get("evse", {}).get("id")
        follow_ups: dict[str, Callable[[], Awaitable[None]]] = {
            "Heartbeat": self._heartbeat,
            "StatusNotification": lambda: self.send_status(evse),
            "MeterValues": self.send_meter_values,
            "BootNotification": self._triggered_boot,
        }
        if message not in follow_ups:
            return {"status": "NotImplemented"}, None
        return {"status": "Accepted"}, follow_ups[message]

    async def _heartbeat(self) -> None:
        await self.call("Heartbeat", {})

    async def _triggered_boot(self) -> None:
        self._boot_reason = "Triggered"
        await self.call("BootNotification", self._boot_payload())
        self._boot_reason = "PowerUp"

    def _on_ChangeAvailability(self, p: Payload) -> Handled:  # noqa: N802
        self.available = p["operationalStatus"] == "Operative"
        evse = p.get("evse", {}).get("id")
        return {"status": "Accepted"}, lambda: self.send_status(evse or None)

    def _on_Reset(self, p: Payload) -> Handled:  # noqa: N802
        return {"status": "Accepted"}, self._reset

    async def _reset(self) -> None:
        self._boot_reason = "RemoteReset"
        await self.disconnect()

    def _on_SetDERControl(self, p: Payload) -> Handled:  # noqa: N802
        now = self.clock.now()
        self._der_outbox += self.der.advance(now)
        return self.der.set(p, now).payload(), self._der_changed

    def _on_GetDERControl(self, p: Payload) -> Handled:  # noqa: N802
        self._der_outbox += self.der.advance(self.clock.now())
        status, found = self.der.get(p.get("isDefault"), p.get("controlType"), p.get("controlId"))
        if status != "Accepted":
            return {"status": status}, None
        return {"status": status}, self._sender("ReportDERControl", report_payloads(found, p["requestId"]))

    def _on_ClearDERControl(self, p: Payload) -> Handled:  # noqa: N802
        self._der_outbox += self.der.advance(self.clock.now())
        status = self.der.clear(p["isDefault"], p.get("controlType"), p.get("controlId"))
        return {"status": status}, self._der_changed

    async def _der_changed(self) -> None:
        """Wake the DER timer (started on first use): the next start or end may have moved."""
        if self._der_task is None or self._der_task.done():
            self._der_task = asyncio.create_task(self._der_timer())
        self._der_wake.set()

    async def _der_timer(self) -> None:
        """Send NotifyDERStartStop at each control's start and end (R04.FR.20-22), sleeping on the clock between.

        The alarm is set again only when the next start or end moved (or it rang): a fleet-wide SetDERControl that
        leaves it where it was costs one wake-up, not a new sleep."""
        alarm: asyncio.Task[None] | None = None
        armed: datetime | None = None
        try:
            while True:
                self._der_wake.clear()
                self._der_outbox += self.der.advance(self.clock.now())
                while self._der_outbox:
                    event = self._der_outbox.pop(0)
                    with contextlib.suppress(ConnectionError, TimeoutError, CsmsCallError):
                        await self.call("NotifyDERStartStop", event.payload())
                when = self.der.next_event()
                if alarm is None or alarm.done() or when != armed:
                    if alarm is not None:
                        alarm.cancel()
                    alarm = None if when is None else asyncio.ensure_future(self._ring_at(when))
                    armed = when
                await self._der_wake.wait()
        finally:
            if alarm is not None:
                alarm.cancel()

    async def _ring_at(self, when: datetime) -> None:
        await self.clock.sleep_until(when)
        self._der_wake.set()

    # ---- OCPP 1.6 handlers -------------------------------------------------------------------------------------

    def _v16_config(self) -> dict[str, tuple[str, bool]]:
        units = {"A": "Current", "W": "Power"}
        return {
            "HeartbeatInterval": (self.configuration["HeartbeatInterval"], False),
            "MeterValueSampleInterval": (self.configuration["MeterValueSampleInterval"], False),
            "ChargingScheduleAllowedChargingRateUnit": (",".join(units[u] for u in self.spec.rate_units), True),
            "ChargeProfileMaxStackLevel": (str(self.spec.profile_stack_level), True),
            "ChargingScheduleMaxPeriods": (str(self.spec.periods_per_schedule), True),
            "MaxChargingProfilesInstalled": ("16", True),
            "NumberOfConnectors": (str(self.spec.evses), True),
        }

    def _v16_GetConfiguration(self, p: Payload) -> Handled:  # noqa: N802
        config = self._v16_config()
        keys = p.get("key") or list(config)
        known = [{"key": k, "readonly": config[k][1], "value": config[k][0]} for k in keys if k in config]
        unknown = [k for k in keys if k not in config]
        result: Payload = {"configurationKey": known}
        if unknown:
            result["unknownKey"] = unknown
        return result, None

    def _v16_ChangeConfiguration(self, p: Payload) -> Handled:  # noqa: N802
        config = self._v16_config()
        key, value = p["key"], p["value"]
        if key not in config:
            return {"status": "NotSupported"}, None
        if config[key][1] or not value.isdigit():
            return {"status": "Rejected"}, None
        self.configuration[key] = value
        if key == "HeartbeatInterval":
            self.heartbeat_interval = int(value)
        return {"status": "Accepted"}, None

    def _v16_SetChargingProfile(self, p: Payload) -> Handled:  # noqa: N802
        rejection = self.profiles.set(p["connectorId"], p["csChargingProfiles"], self.clock.now())
        return {"status": "Accepted" if rejection is None else "Rejected"}, None

    def _v16_ClearChargingProfile(self, p: Payload) -> Handled:  # noqa: N802
        found = self.profiles.find(
            profile_ids=[p["id"]] if "id" in p else None,
            evse_id=p.get("connectorId"),
            purpose=p.get("chargingProfilePurpose"),
            stack_level=p.get("stackLevel"),
        )
        return {"status": "Accepted" if self.profiles.clear(found) else "Unknown"}, None

    def _v16_GetCompositeSchedule(self, p: Payload) -> Handled:  # noqa: N802
        """The composite limit now, held for the requested duration (a one-period schedule)."""
        connector = p["connectorId"]
        rates = self.rates(max(connector, 1))
        if rates.limit_w is None:
            return {"status": "Rejected"}, None
        unit = p.get("chargingRateUnit", "W")
        limit = rates.limit_w if unit == "W" else rates.limit_w / (self.spec.v_nom * self.spec.phases)
        schedule = {
            "duration": p["duration"],
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(limit, 1)}],
        }
        return {
            "status": "Accepted",
            "connectorId": connector,
            "scheduleStart": format_time(self.clock.now()),
            "chargingSchedule": schedule,
        }, None

    def _v16_TriggerMessage(self, p: Payload) -> Handled:  # noqa: N802
        message = p["requestedMessage"]
        connector = p.get("connectorId")
        follow_ups: dict[str, Callable[[], Awaitable[None]]] = {
            "Heartbeat": self._heartbeat,
            "StatusNotification": lambda: self.send_status(connector or None),
            "MeterValues": self.send_meter_values,
            "BootNotification": self._triggered_boot,
        }
        if message not in follow_ups:
            return {"status": "NotImplemented"}, None
        return {"status": "Accepted"}, follow_ups[message]

    def _v16_ChangeAvailability(self, p: Payload) -> Handled:  # noqa: N802
        self.available = p["type"] == "Operative"
        return {"status": "Accepted"}, lambda: self.send_status(p["connectorId"] or None)

    def _v16_Reset(self, p: Payload) -> Handled:  # noqa: N802
        return {"status": "Accepted"}, self._reset


def _rejected(action: str, payload: Payload) -> Payload:
    """The Rejected answer to `action` (for SimBehaviour.reject)."""
    if action in ("GetVariables", "SetVariables"):
        kind = action[:3].lower()
        return {
            f"{kind}VariableResult": [
                {"attributeStatus": "Rejected", "component": d["component"], "variable": d["variable"]}
                for d in payload[f"{kind}VariableData"]
            ]
        }
    return {"status": "Rejected"}
