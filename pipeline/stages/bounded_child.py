"""A persistent child process with a hard time limit per request.

Extraction (``extract.ExtractorProcess``) and user PII patterns
(``pii_custom.CustomScanner``) run code that an in-process limit cannot stop:
lxml's C code, a regex engine stuck backtracking, a validator in a blocking
call.  Both keep one child per worker, send it one length-prefixed request at
a time and read the answer with a deadline; past it the child is killed (the
only way to stop such code) and the next request starts a fresh one.

Wire format, both directions: a 4-byte big-endian length, then the body; an
answer starts with one status byte before its length.
"""
from __future__ import annotations

import os
import select
import struct
import subprocess
import time
from typing import Optional


class ChildTimeout(Exception):
    """The child did not answer before the deadline (it has been killed)."""


class ChildExited(Exception):
    """The child closed its output: it crashed or was killed (``code``: its exit status)."""

    def __init__(self, code: Optional[int]):
        super().__init__(f"exited (code {code})")
        self.code = code


def read_exact(stream, n: int) -> bytes:
    """In the child: exactly ``n`` bytes of a blocking stream; EOFError at its end."""
    first = stream.read(n)  # a buffered stream reads until it has n bytes: usually the whole request
    if len(first) == n:
        return first
    if not first:
        raise EOFError
    buf = bytearray(first)
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def write_answer(stream, status: bytes, body: bytes) -> None:
    """In the child: one answer (status byte, length, body)."""
    stream.write(status + struct.pack(">I", len(body)) + body)
    stream.flush()


class BoundedChild:
    """The parent's side: starts the child on first use (or after it died),
    sends requests, reads answers with a deadline."""

    def __init__(self, argv: list[str], env: Optional[dict] = None):
        self.argv, self.env = argv, env
        self._proc: subprocess.Popen | None = None

    def __getstate__(self):  # pickled with a DoFn: the child starts where it runs
        return {**self.__dict__, "_proc": None}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, bufsize=0, env=self.env)

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.kill()
                self._proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
            self._proc = None

    def send(self, *parts: bytes) -> None:
        """One request, the concatenation of ``parts`` (a large page is written as
        it is, not copied into one buffer); OSError (the child is closed first)
        when it died before reading it."""
        size = sum(len(p) for p in parts)
        try:
            if size < 65536:
                self._write(struct.pack(">I", size) + b"".join(parts))
            else:
                self._write(struct.pack(">I", size))
                for part in parts:
                    self._write(part)
        except OSError:
            self.close()
            raise

    def _write(self, data: bytes) -> None:
        # the pipe is unbuffered: a write that a signal interrupts can be partial
        view = memoryview(data)
        while view:
            view = view[self._proc.stdin.write(view):]

    def request(self, timeout_s: float, *parts: bytes) -> tuple[bytes, bytes]:
        """One request and its answer: (status byte, body) within ``timeout_s``.
        Raises ChildTimeout (the child has been killed), ChildExited (it died
        answering), or OSError (it had died before it read the request)."""
        self.send(*parts)
        return self.answer(timeout_s)

    def answer(self, timeout_s: float) -> tuple[bytes, bytes]:
        """(status byte, body) of the next answer, within ``timeout_s`` for both."""
        deadline = time.monotonic() + timeout_s
        head = self.read(5, deadline)
        return head[:1], self.read(struct.unpack(">I", head[1:])[0], deadline)

    def read(self, n: int, deadline: float) -> bytes:
        """Exactly ``n`` bytes before ``deadline`` (monotonic), or the child is killed
        and ChildTimeout raised; ChildExited when it closes its output first."""
        fd, buf = self._proc.stdout.fileno(), bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise ChildTimeout
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                code = self._proc.poll()
                self.close()
                raise ChildExited(code)
            buf += chunk
        return bytes(buf)
