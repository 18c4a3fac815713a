"""One station's OCPP-J connection: the reader loop and the single outstanding CALL (part 4, 4.1.1).

Station CALLs are answered in arrival order, inline in the reader, so a station's own stream is never reordered.
The gateway's CALLs to the station are serialized by a lock: at most one is outstanding, each with a timeout; a
slow station only ever delays its own next command.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.clock import Clock
from gateway.interfaces import Reply, ReplyKind, StationEvents
from gateway.model import OcppVersion
from protocols.ocpp import frames, handlers, schemas
from protocols.ocpp.frames import Call, CallError, CallResult, CallResultError, ErrorCode, FrameError, Send
from protocols.ocpp.message_ids import new_message_id

log = logging.getLogger(__name__)

#: How many answered station message ids are remembered to recognise retries and duplicates.
_ANSWERED_MEMORY = 64


class StationConnection:
    """Slots and a future for `booted` (an Event holds a deque): at 10,000 idle connections every object counts."""

    __slots__ = (
        "_answered",
        "_clock",
        "_closed",
        "_events",
        "_heartbeat_s",
        "_lock",
        "_max_bytes",
        "_on_boot",
        "_pending",
        "booted",
        "station_id",
        "version",
        "ws",
    )

    def __init__(
        self,
        station_id: str,
        version: OcppVersion,
        ws: ServerConnection,
        *,
        events: StationEvents,
        clock: Clock,
        max_message_bytes: int,
        heartbeat_s: int,
        on_boot: Callable[[StationConnection], None],
    ) -> None:
        self.station_id = station_id
        self.version = version
        self.ws = ws
        #: Done once BootNotification is answered.
        self.booted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events = events
        self._clock = clock
        self._max_bytes = max_message_bytes
        self._heartbeat_s = heartbeat_s
        self._on_boot = on_boot
        self._lock = asyncio.Lock()
        self._pending: tuple[str, str, asyncio.Future[Reply]] | None = None
        #: Answered station message ids, oldest first (dicts keep insertion order): (digest of the CALL, answer).
        self._answered: dict[str, tuple[bytes, str]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    # -- gateway -> station ------------------------------------------------------------------------------------

    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float,
        message_id: str | None = None,
        text: str | None = None,
    ) -> Reply:
        """Send one CALL and wait for its answer; never sends a payload that fails its schema. `text` is the
        payload's `frames.payload_text` when the caller has it already."""
        text = frames.payload_text(payload) if text is None else text
        try:
            schemas.validate_outgoing(self.version, action, payload, text)
        except schemas.SchemaError as exc:
            return Reply(ReplyKind.INVALID, error_code=exc.code, description=exc.description)
        async with self._lock:
            if self._closed:
                return Reply(ReplyKind.OFFLINE, description="station disconnected")
            message_id = message_id or new_message_id()
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Reply] = loop.create_future()
            self._pending = (message_id, action, future)
            try:
                await self.ws.send(frames.call_text(message_id, action, text))
                # A timer that answers for the station, rather than wait_for's extra future and callbacks per call.
                expiry = loop.call_later(timeout, _time_out, future, message_id, timeout)
                try:
                    return await future
                finally:
                    expiry.cancel()
            except ConnectionClosed:
                return Reply(ReplyKind.OFFLINE, message_id, description="station disconnected")
            finally:
                self._pending = None

    # -- station -> gateway ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the connection closes; a bad frame is answered and reading goes on."""
        try:
            async for message in self.ws:
                await self._receive(message)
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            if self._pending is not None and not self._pending[2].done():
                self._pending[2].set_result(Reply(ReplyKind.OFFLINE, self._pending[0], description="disconnected"))

    async def _receive(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self._reject(
                frames.peek_message_id(message), ErrorCode.RPC_FRAMEWORK_ERROR, "binary frames are not OCPP-J"
            )
            return
        if len(message) * 4 > self._max_bytes and len(message.encode()) > self._max_bytes:  # <= 4 UTF-8 bytes a char
            size = len(message.encode())
            await self._reject(
                frames.peek_message_id(message),
                ErrorCode.FORMAT_VIOLATION,
                f"message of {size} bytes exceeds the limit of {self._max_bytes} bytes",
            )
            return
        try:
            frame = frames.parse(message, self.version)
        except FrameError as exc:
            await self._reject(exc.message_id, exc.code, exc.description)
            return
        match frame:
            case Call():
                await self._on_call(frame, message)
            case Send():
                self._on_send(frame)
            case CallResult() | CallError():
                await self._on_answer(frame)
            case CallResultError():
                self._events.protocol_error(
                    self.station_id, frame.code, frame.description, frame.message_id, self._clock.now(), by_station=True
                )

    async def _reject(self, message_id: str, code: str, description: str) -> None:
        self._events.protocol_error(self.station_id, code, description, message_id, self._clock.now(), by_station=False)
        wire_code = frames.error_code(code, self.version)
        await self._send(frames.serialize(CallError(message_id, wire_code, description)))

    async def _send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            self._closed = True

    async def _on_call(self, call: Call, raw: str) -> None:
        digest = hashlib.blake2b(f"{call.action}\0{raw}".encode(), digest_size=16).digest()
        seen = self._answered.get(call.message_id)
        if seen is not None:
            if seen[0] == digest:  # a retry of a message already answered (part 4, 4.1.4): same answer again
                await self._send(seen[1])
            else:
                await self._reject(call.message_id, ErrorCode.RPC_FRAMEWORK_ERROR, "message id already used")
            return
        try:
            schemas.validate(self.version, call.action, call.payload)
        except schemas.SchemaError as exc:
            await self._reject(call.message_id, exc.code, exc.description)
            return
        now = self._clock.now()
        answer = handlers.answer(self.version, call.action, call.payload, now=now, heartbeat_s=self._heartbeat_s)
        if answer.payload is None:
            await self._reject(call.message_id, answer.error_code or ErrorCode.GENERIC_ERROR, answer.description)
            return
        schemas.validate(self.version, call.action, answer.payload, response=True)
        text = frames.serialize(CallResult(call.message_id, answer.payload))
        self._remember(call.message_id, digest, text)
        await self._send(text)
        self._observe(call.action, call.payload, call.message_id)

    def _remember(self, message_id: str, digest: bytes, text: str) -> None:
        answered = self._answered
        answered[message_id] = (digest, text)
        if len(answered) > _ANSWERED_MEMORY:
            del answered[next(iter(answered))]

    def _observe(self, action: str, payload: dict[str, Any], message_id: str) -> None:
        """Tell the runtime what the station said, after it has had its answer."""
        now = self._clock.now()
        events = self._events
        if action == "BootNotification":
            events.station_booted(self.station_id, payload, now)
            if not self.booted.done():
                self.booted.set_result(None)
            self._on_boot(self)
        else:
            handlers.report(events, self.version, self.station_id, action, payload, message_id, now)

    def _on_send(self, send: Send) -> None:
        try:
            schemas.validate(self.version, send.action, send.payload)
        except schemas.SchemaError as exc:  # SEND gets no answer: dropped, and recorded
            self._events.protocol_error(
                self.station_id, exc.code, exc.description, send.message_id, self._clock.now(), by_station=False
            )
            return
        self._events.station_message(self.station_id, send.action, send.payload, send.message_id, self._clock.now())

    async def _on_answer(self, frame: CallResult | CallError) -> None:
        pending = self._pending
        if pending is None or pending[0] != frame.message_id or pending[2].done():
            log.info("station %s: late or unknown answer %s ignored", self.station_id, frame.message_id)
            return
        message_id, action, future = pending
        if isinstance(frame, CallError):
            future.set_result(Reply(ReplyKind.ERROR, message_id, error_code=frame.code, description=frame.description))
            return
        try:
            schemas.validate(self.version, action, frame.payload, response=True)
        except schemas.SchemaError as exc:
            if self.version is OcppVersion.V21:  # tell the station its answer was unusable (part 4, 4.2.3)
                await self._send(frames.serialize(CallResultError(message_id, exc.code, exc.description)))
            self._events.protocol_error(
                self.station_id, exc.code, exc.description, message_id, self._clock.now(), by_station=False
            )
            future.set_result(Reply(ReplyKind.ERROR, message_id, error_code=exc.code, description=exc.description))
            return
        future.set_result(Reply(ReplyKind.RESULT, message_id, payload=frame.payload))


def _time_out(future: asyncio.Future[Reply], message_id: str, timeout: float) -> None:
    if not future.done():
        future.set_result(Reply(ReplyKind.TIMEOUT, message_id, description=f"no answer within {timeout:g} s"))
