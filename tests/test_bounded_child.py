"""bounded_child: requests in several parts arrive whole, partial reads and
partial writes of the pipe are completed, the deadline holds."""
from __future__ import annotations

import hashlib
import io
import sys
import types

import pytest

from mdfs.pipeline.stages.bounded_child import BoundedChild, ChildTimeout, read_exact

# answers each request with its length and SHA-1; "sleep" makes it hang
ECHO = """
import hashlib, struct, sys, time
from mdfs.pipeline.stages.bounded_child import read_exact, write_answer
while True:
    try:
        (n,) = struct.unpack(">I", read_exact(sys.stdin.buffer, 4))
        body = read_exact(sys.stdin.buffer, n)
    except EOFError:
        break
    if body == b"sleep":
        time.sleep(60)
    write_answer(sys.stdout.buffer, b"O", f"{n} {hashlib.sha1(body).hexdigest()}".encode())
"""


class Trickle(io.RawIOBase):
    """A stream that gives at most 3 bytes per read, as a pipe may."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, n=-1):
        out, self.data = self.data[:min(n, 3)], self.data[min(n, 3):]
        return out


def test_read_exact_completes_partial_reads_and_sees_the_end():
    assert read_exact(Trickle(b"abcdefghij"), 7) == b"abcdefg"
    assert read_exact(io.BytesIO(b"abc"), 0) == b""
    with pytest.raises(EOFError):
        read_exact(Trickle(b"abcde"), 7)
    with pytest.raises(EOFError):
        read_exact(io.BytesIO(b""), 4)


@pytest.mark.parametrize("sizes", [(10, 20), (40, 300_000), (70_000, 0, 5)])
def test_a_request_in_parts_arrives_whole(sizes):
    parts = [bytes([65 + i]) * n for i, n in enumerate(sizes)]
    child = BoundedChild([sys.executable, "-c", ECHO])
    child.start()
    try:
        child.send(*parts)
        status, body = child.answer(30)
        whole = b"".join(parts)
        assert (status, body.decode()) == (b"O", f"{len(whole)} {hashlib.sha1(whole).hexdigest()}")
        child.send(b"sleep")
        with pytest.raises(ChildTimeout):
            child.answer(0.5)
        assert not child.running  # killed at the deadline
    finally:
        child.close()


def test_partial_writes_are_completed():
    written = bytearray()

    class Stingy:
        def write(self, data):  # a write that a signal cut short
            written.extend(bytes(data[:1000]))
            return min(len(data), 1000)

    child = BoundedChild([])
    child._proc = types.SimpleNamespace(stdin=Stingy())
    child.send(b"h" * 10, b"p" * 100_000)
    assert bytes(written) == (100_010).to_bytes(4, "big") + b"h" * 10 + b"p" * 100_000
