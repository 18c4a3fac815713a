"""One station behind the sidecar: its WebSocket, the gateway's connection to the CSMS for it, and the traffic
between them.

Frames pass through unchanged (the exact text) in both directions except the gateway's own: its CALLs to the
station and the station's answers to them, which never reach the CSMS (part 4, 6.4). On the station link at most one
CALL is outstanding (part 4, 4.1.1): CSMS CALLs and gateway CALLs take turns through one FIFO slot, so each side's
stream keeps its order. Station messages the gateway needs are read on the way through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.clock import Clock
from gateway.interfaces import AuditSink, Reply, ReplyKind, StationEvents
from gateway.model import OcppVersion
from protocols.ocpp import frames, handlers, schemas
from protocols.ocpp.frames import Call, CallError, CallResult, CallResultError, ErrorCode, FrameError, Send
from protocols.ocpp.server import EndpointSettings, read_capabilities
from protocols.ocpp.sidecar import ids
from protocols.ocpp.sidecar.buffer import Buffered, OfflineBuffer, offline_policy, queued_frame
from protocols.ocpp.sidecar.conflicts import Conflict, GridHoldings
from protocols.ocpp.sidecar.upstream import (
    UpstreamRefusedError,
    UpstreamSettings,
    UpstreamUnreachableError,
    open_upstream,
)

log = logging.getLogger(__name__)

GATEWAY, CSMS = "gateway", "csms"


@dataclass(frozen=True, slots=True)
class SessionDeps:
    """What every session shares, handed down by the proxy."""

    events: StationEvents
    audit: AuditSink
    clock: Clock
    endpoint: EndpointSettings
    upstream: UpstreamSettings
    upstream_ssl: ssl.SSLContext | None
    #: Waits out one back-off delay (or less, when the proxy is told to reconnect now).
    wait_retry: Callable[[float], Awaitable[None]]
    rng: random.Random


@dataclass(slots=True)
class _Outstanding:
    owner: str
    message_id: str
    action: str
    future: asyncio.Future[Reply]


@dataclass(frozen=True, slots=True)
class _StationCall:
    call: Call
    raw: str | bytes
    valid: bool


class ProxySession:
    def __init__(
        self,
        deps: SessionDeps,
        station_id: str,
        version: OcppVersion,
        ws: ServerConnection,
        upstream: ClientConnection | None,
        *,
        authorization: str | None,
        buffer: OfflineBuffer,
        holdings: GridHoldings,
    ) -> None:
        self.station_id = station_id
        self.version = version
        self.ws = ws
        self.booted = asyncio.Event()
        #: Set while the CSMS is connected and every buffered message has been delivered.
        self.online = asyncio.Event()
        #: Set while there is no CSMS connection (station messages are being buffered).
        self.offline = asyncio.Event()
        self.buffer = buffer
        self.holdings = holdings
        self._deps = deps
        self._authorization = authorization
        self._pending_upstream = upstream
        self._up: ClientConnection | None = None
        self._slot = asyncio.Lock()
        self._outstanding: _Outstanding | None = None
        self._station_call: _StationCall | None = None
        self._replay_wait: tuple[str, asyncio.Future[CallResult | CallError]] | None = None
        self._csms_calls: asyncio.Queue[tuple[Call, str | bytes]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reasserts: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: Why the gateway ended the session (`end`): the CSMS connection is then closed as going away.
        self._ended: str | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Relay until the station goes away; then close the CSMS side too (part 4, 6.3)."""
        if self._pending_upstream is not None:
            self._attach(self._pending_upstream)
        else:
            self.offline.set()
            self._spawn(self._reconnect())
        self._spawn(self._forward_csms_calls())
        self._spawn(self._await_boot())
        try:
            async for message in self.ws:
                await self._from_station(message)
        except ConnectionClosed:
            pass
        finally:
            await self._close()

    async def end(self, reason: str) -> None:
        """End the session for good (the station left the configuration): the station's socket is closed with
        1008 (policy violation) and `reason`; `run` then closes the CSMS side with 1001 (going away) and `reason`."""
        self._ended = reason
        await self.ws.close(1008, reason)

    async def _close(self) -> None:
        self._closed = True
        self.online.clear()
        outstanding = self._outstanding
        if outstanding is not None and not outstanding.future.done():
            outstanding.future.set_result(Reply(ReplyKind.OFFLINE, outstanding.message_id, description="disconnected"))
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._up is not None:
            await (self._up.close(1001, self._ended) if self._ended is not None else self._up.close())
            self._up = None

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- upstream connection -----------------------------------------------------------------------------------

    def _attach(self, up: ClientConnection) -> None:
        self._up = up
        self.offline.clear()
        self._spawn(self._read_upstream(up))
        self._spawn(self._replay(up))

    async def _reconnect(self) -> None:
        """Reconnect to the CSMS with back-off (part 4, 5.4), offering only the version the station speaks."""
        attempt = 0
        settings = self._deps.upstream
        while not self._closed:
            await self._deps.wait_retry(settings.backoff.delay(attempt, self._deps.rng))
            try:
                up = await open_upstream(
                    settings,
                    self.station_id,
                    [self.version],
                    authorization=self._authorization,
                    ssl_context=self._deps.upstream_ssl,
                    max_size=4 * self._deps.endpoint.max_message_bytes,
                )
            except (UpstreamRefusedError, UpstreamUnreachableError) as exc:
                log.info("station %s: CSMS reconnection %d failed: %s", self.station_id, attempt + 1, exc)
                attempt += 1
                continue
            if up.subprotocol != self.version.value or self._closed:
                await up.close()
                attempt += 1
                continue
            log.info("station %s: CSMS connection restored (%d buffered)", self.station_id, len(self.buffer))
            self._attach(up)
            return

    async def _read_upstream(self, up: ClientConnection) -> None:
        try:
            async for message in up:
                await self._from_csms(message)
        except ConnectionClosed:
            pass
        finally:
            if self._up is up and not self._closed:
                await self._upstream_lost()

    async def _upstream_lost(self) -> None:
        log.warning("station %s: CSMS connection lost; buffering station messages", self.station_id)
        self._up = None
        self.online.clear()
        self.offline.set()
        while not self._csms_calls.empty():  # calls from a connection that is gone can no longer be answered
            self._csms_calls.get_nowait()
        if self._replay_wait is not None and not self._replay_wait[1].done():
            self._replay_wait[1].set_exception(ConnectionError("CSMS connection lost"))
        pending, self._station_call = self._station_call, None
        if pending is not None:  # the station still waits for this answer: give it the offline one
            await self._offline(pending)
        self._spawn(self._reconnect())

    async def _replay(self, up: ClientConnection) -> None:
        """Deliver buffered station messages in order, one CALL at a time, before anything new goes up."""
        while (item := self.buffer.peek()) is not None:
            future: asyncio.Future[CallResult | CallError] = asyncio.get_running_loop().create_future()
            self._replay_wait = (item.message_id, future)
            try:
                await up.send(item.frame)
                self._replayed(item, await asyncio.wait_for(future, self._deps.endpoint.call_timeout_s))
            except (ConnectionClosed, ConnectionError):
                return  # the connection went away: the reconnection replays from this message again
            except TimeoutError:
                log.warning("station %s: CSMS did not answer buffered %s; dropped", self.station_id, item.action)
            finally:
                self._replay_wait = None
            self.buffer.pop(item)
        if self._up is up:
            self.online.set()

    def _replayed(self, item: Buffered, frame: CallResult | CallError) -> None:
        """The CSMS's answer to a replayed message goes nowhere: the station had the gateway's long ago. One that
        says something else than the station was told (an error, a blocked idToken, a boot not accepted) is
        audited, so an operator can see what the station never learnt; a different clock reading is not news."""
        theirs: dict[str, Any] = (
            {"error": {"code": frame.code, "description": frame.description}}
            if isinstance(frame, CallError)
            else frame.payload
        )
        if _without_clock(theirs) == _without_clock(item.answer):
            return
        self._deps.audit.append(
            "station.message",
            {
                "action": item.action,
                "from": "csms",
                "replayed": True,
                "station_got": item.answer,
                "csms_answer": theirs,
            },
            at=self._now(),
            station_id=self.station_id,
            message_id=item.message_id,
        )

    async def _send_up(self, message: str | bytes) -> bool:
        up = self._up
        if up is None:
            return False
        try:
            await up.send(message)
        except ConnectionClosed:
            return False
        return True

    # -- station -> CSMS ---------------------------------------------------------------------------------------

    async def _from_station(self, message: str | bytes) -> None:
        try:
            frame = frames.parse(message, self.version)
        except FrameError as exc:
            if self.online.is_set():  # not ours to judge: the CSMS answers it
                await self._send_up(message)
            else:
                await self._reject(exc.message_id, exc.code, exc.description)
            return
        match frame:
            case Call():
                await self._station_calls(frame, message)
            case Send():
                if self._valid(frame.action, frame.payload):
                    self._report(frame.action, frame.payload, frame.message_id)
                if self.online.is_set():
                    await self._send_up(message)
            case CallResult() | CallError():
                await self._station_answers(frame, message)
            case CallResultError():
                if ids.is_gateway_id(frame.message_id):
                    self._deps.events.protocol_error(
                        self.station_id, frame.code, frame.description, frame.message_id, self._now(), by_station=True
                    )
                else:
                    await self._send_up(message)

    async def _station_calls(self, call: Call, raw: str | bytes) -> None:
        valid = self._valid(call.action, call.payload)
        if valid and call.action != "BootNotification":
            self._report(call.action, call.payload, call.message_id)
        pending = _StationCall(call, raw, valid)
        if self.online.is_set():
            self._station_call = pending
            if await self._send_up(raw):
                return
            self._station_call = None
        await self._offline(pending)

    async def _offline(self, pending: _StationCall) -> None:
        """Answer a station CALL the CSMS cannot: as the station's offline queue would keep it (buffer.py)."""
        call = pending.call
        if not pending.valid:
            try:
                schemas.validate(self.version, call.action, call.payload)
            except schemas.SchemaError as exc:
                await self._reject(call.message_id, exc.code, exc.description)
            return
        policy = offline_policy(self.version, call.action)
        if policy == "refuse":
            await self._to_station(
                frames.serialize(
                    CallError(
                        call.message_id,
                        frames.error_code(ErrorCode.GENERIC_ERROR, self.version),
                        "upstream CSMS unreachable",
                    )
                )
            )
            return
        now = self._now()
        answer = handlers.answer(
            self.version, call.action, call.payload, now=now, heartbeat_s=self._deps.endpoint.heartbeat_s
        )
        assert answer.payload is not None, f"{call.action} is buffered but has no offline answer"
        schemas.validate(self.version, call.action, answer.payload, response=True)
        if policy == "buffer":  # committed before the station is answered: then the gateway holds the only copy
            raw = pending.raw if isinstance(pending.raw, str) else pending.raw.decode()
            self.buffer.append(call.message_id, call.action, queued_frame(call, raw), answer.payload)
        await self._to_station(frames.serialize(CallResult(call.message_id, answer.payload)))
        if call.action == "BootNotification":
            self._booted(call)

    async def _station_answers(self, frame: CallResult | CallError, raw: str | bytes) -> None:
        outstanding = self._outstanding
        if outstanding is not None and outstanding.message_id == frame.message_id and not outstanding.future.done():
            if outstanding.owner == CSMS:
                outstanding.future.set_result(_reply(frame))
                await self._send_up(raw)
            else:
                outstanding.future.set_result(await self._judge(outstanding, frame))
        elif ids.is_gateway_id(frame.message_id):
            log.info("station %s: late answer %s to the gateway ignored", self.station_id, frame.message_id)
        else:  # a late answer to a CSMS call: the CSMS decides what it means
            await self._send_up(raw)

    async def _judge(self, outstanding: _Outstanding, frame: CallResult | CallError) -> Reply:
        """The station's answer to a gateway CALL, schema-checked as in CSMS mode (connection.py)."""
        message_id = outstanding.message_id
        if isinstance(frame, CallError):
            return Reply(ReplyKind.ERROR, message_id, error_code=frame.code, description=frame.description)
        try:
            schemas.validate(self.version, outstanding.action, frame.payload, response=True)
        except schemas.SchemaError as exc:
            if self.version is OcppVersion.V21:
                await self._to_station(frames.serialize(CallResultError(message_id, exc.code, exc.description)))
            self._deps.events.protocol_error(
                self.station_id, exc.code, exc.description, message_id, self._now(), by_station=False
            )
            return Reply(ReplyKind.ERROR, message_id, error_code=exc.code, description=exc.description)
        return Reply(ReplyKind.RESULT, message_id, payload=frame.payload)

    # -- CSMS -> station ---------------------------------------------------------------------------------------

    async def _from_csms(self, message: str | bytes) -> None:
        try:
            frame = frames.parse(message, self.version)
        except FrameError:
            await self._to_station(message)  # not ours to judge: the station answers it
            return
        match frame:
            case Call():
                self._csms_calls.put_nowait((frame, message))
            case CallResult() | CallError():
                replay = self._replay_wait
                if replay is not None and replay[0] == frame.message_id:
                    if not replay[1].done():
                        replay[1].set_result(frame)  # the station had its answer while the CSMS was away
                    return
                pending = self._station_call
                if pending is not None and pending.call.message_id == frame.message_id:
                    self._station_call = None
                await self._to_station(message)
                if pending is not None and pending.call.message_id == frame.message_id:
                    self._answered(pending, frame)
            case _:
                await self._to_station(message)

    def _answered(self, pending: _StationCall, frame: CallResult | CallError) -> None:
        """The CSMS answered a station CALL: a boot it accepted means the station's abilities may be new."""
        if (
            pending.valid
            and pending.call.action == "BootNotification"
            and isinstance(frame, CallResult)
            and frame.payload.get("status") == "Accepted"
        ):
            self._booted(pending.call)

    async def _forward_csms_calls(self) -> None:
        while True:
            call, raw = await self._csms_calls.get()
            conflicts = self._conflicts(call)
            async with self._slot:
                if self._closed:
                    return
                future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
                self._outstanding = _Outstanding(CSMS, call.message_id, call.action, future)
                try:
                    await self.ws.send(raw)
                    reply = await asyncio.wait_for(future, self._deps.endpoint.call_timeout_s)
                except TimeoutError:
                    reply = Reply(ReplyKind.TIMEOUT, call.message_id)
                except ConnectionClosed:
                    return
                finally:
                    self._outstanding = None
            if conflicts and _accepted(reply):
                task = self._spawn(self._reassert(call, [c for c in conflicts if c.reassert]))
                self._reasserts.add(task)
                task.add_done_callback(self._reasserts.discard)

    # -- grid directives versus the CSMS -----------------------------------------------------------------------

    def _conflicts(self, call: Call) -> list[Conflict]:
        """Audit how a CSMS command touches what the gateway holds on the station (conflicts.py)."""
        if call.action not in ("SetChargingProfile", "ClearChargingProfile", "SetDERControl", "ClearDERControl"):
            return []
        if not self._valid(call.action, call.payload):
            return []
        found = self.holdings.conflicts(call.action, call.payload)
        if found:
            self._deps.audit.append(
                "station.message",
                {
                    "action": call.action,
                    "from": "csms",
                    "payload": call.payload,
                    "conflict": [c.describe() for c in found],
                    "policy": "passed on unchanged; replaced or cleared grid commands are sent again once accepted",
                },
                at=self._now(),
                station_id=self.station_id,
                message_id=call.message_id,
            )
        return found

    async def settled(self) -> None:
        """Until the grid commands being sent again after CSMS conflicts have been answered."""
        await asyncio.gather(*self._reasserts, return_exceptions=True)

    async def _reassert(self, cause: Call, conflicts: list[Conflict]) -> None:
        """Send the grid commands the CSMS replaced or cleared again, each audited like any gateway command."""
        for conflict in conflicts:
            message_id = ids.new_id()
            self._deps.audit.append(
                "command.sent",
                {
                    "action": conflict.action,
                    "frame": [2, message_id, conflict.action, conflict.payload],
                    "reassert_after": cause.message_id,
                },
                at=self._now(),
                station_id=self.station_id,
                message_id=message_id,
            )
            reply = await self.call(
                conflict.action, conflict.payload, timeout=self._deps.endpoint.call_timeout_s, message_id=message_id
            )
            data: dict[str, Any] = {"kind": reply.kind.value, "status": (reply.payload or {}).get("status")}
            if reply.kind is not ReplyKind.RESULT:
                data["error"] = {"code": reply.error_code, "description": reply.description}
            self._deps.audit.append(
                "station.answer", data, at=self._now(), station_id=self.station_id, message_id=message_id
            )

    # -- gateway -> station ------------------------------------------------------------------------------------

    async def call(
        self, action: str, payload: dict[str, Any], *, timeout: float, message_id: str | None = None
    ) -> Reply:
        """A gateway CALL: schema-checked, then sent when the station link is free (after any CSMS CALL)."""
        try:
            schemas.validate(self.version, action, payload)
        except schemas.SchemaError as exc:
            return Reply(ReplyKind.INVALID, error_code=exc.code, description=exc.description)
        async with self._slot:
            if self._closed:
                return Reply(ReplyKind.OFFLINE, description="station disconnected")
            message_id = message_id or ids.new_id()
            future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
            self._outstanding = _Outstanding(GATEWAY, message_id, action, future)
            try:
                await self.ws.send(frames.serialize(Call(message_id, action, payload)))
                reply = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                reply = Reply(ReplyKind.TIMEOUT, message_id, description=f"no answer within {timeout:g} s")
            except ConnectionClosed:
                reply = Reply(ReplyKind.OFFLINE, message_id, description="station disconnected")
            finally:
                self._outstanding = None
        if reply.kind is ReplyKind.RESULT and (action.startswith("Clear") or _accepted(reply)):
            self.holdings.accepted(action, payload)
        return reply

    # -- what the gateway reads on the way through -------------------------------------------------------------

    def _booted(self, call: Call) -> None:
        self._deps.events.station_booted(self.station_id, call.payload, self._now())
        self.booted.set()
        self._spawn(self._read_capabilities())

    async def _await_boot(self) -> None:
        """A station that reconnects without booting (part 4, 5.3) still gets its capabilities read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.booted.wait(), self._deps.endpoint.boot_wait_s)
            return
        await self._read_capabilities()

    async def _read_capabilities(self) -> None:
        async def send(action: str, payload: dict[str, Any], timeout: float) -> Reply:
            return await self.call(action, payload, timeout=timeout)

        caps = await read_capabilities(send, self.station_id, self.version, self._deps.endpoint.call_timeout_s)
        if not self._closed:
            self._deps.events.station_capabilities(self.station_id, caps, self._now())

    def _report(self, action: str, payload: dict[str, Any], message_id: str) -> None:
        handlers.report(self._deps.events, self.version, self.station_id, action, payload, message_id, self._now())

    # -- helpers -----------------------------------------------------------------------------------------------

    def _valid(self, action: str, payload: dict[str, Any]) -> bool:
        try:
            schemas.validate(self.version, action, payload)
        except schemas.SchemaError:
            return False
        return True

    async def _reject(self, message_id: str, code: str, description: str) -> None:
        self._deps.events.protocol_error(self.station_id, code, description, message_id, self._now(), by_station=False)
        await self._to_station(
            frames.serialize(CallError(message_id, frames.error_code(code, self.version), description))
        )

    async def _to_station(self, message: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(message)

    def _now(self) -> datetime:
        return self._deps.clock.now()


def _reply(frame: CallResult | CallError) -> Reply:
    if isinstance(frame, CallError):
        return Reply(ReplyKind.ERROR, frame.message_id, error_code=frame.code, description=frame.description)
    return Reply(ReplyKind.RESULT, frame.message_id, payload=frame.payload)


def _without_clock(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "currentTime"}


def _accepted(reply: Reply) -> bool:
    return reply.kind is ReplyKind.RESULT and (reply.payload or {}).get("status") == "Accepted"
