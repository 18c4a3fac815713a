"""Child processes that take one command per line on stdin and answer one JSON object per line on stdout.

Every wait has a deadline, so a stuck child fails the bench instead of hanging it; stderr is passed through.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

Message = dict[str, Any]


class ChildError(RuntimeError):
    """A child process died, answered with an error, or did not answer in time."""


class Child:
    """`python -m <module> <args>`, driven over its standard input and output."""

    def __init__(self, name: str, module: str, args: Sequence[str], cpus: set[int] | None = None) -> None:
        """`cpus`: the CPUs the child may run on (Linux), before it starts its work."""
        self.name = name
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        if cpus is not None:
            os.sched_setaffinity(self._proc.pid, cpus)
        assert self._proc.stdout is not None
        self._fd = self._proc.stdout.fileno()
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def read(self, timeout: float) -> Message:
        """The next message; progress lines (`{"progress": ...}`) are printed and skipped."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self._buffer:  # own buffer: a buffered reader would hide lines from select()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._selector.select(remaining):
                    raise ChildError(f"{self.name}: no answer within {timeout:g} s")
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    raise ChildError(f"{self.name}: exited with {self._proc.wait()}")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            message: Message = json.loads(line)
            if "error" in message:
                raise ChildError(f"{self.name}: {message['error']}")
            if "progress" in message:
                print(f"  {self.name}: {message['progress']}", flush=True)
                continue
            return message

    def request(self, command: str, timeout: float) -> Message:
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self.read(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Ask the child to quit (close its stdin), and kill it if it does not."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self._proc.kill()
                self._proc.wait()
        self._selector.close()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def say(**message: Any) -> None:
    """Write one message to the parent."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def commands() -> AsyncIterator[str]:
    """Lines from the parent, as an async iterator; ends when the parent closes our stdin."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode().strip()
