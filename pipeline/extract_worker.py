"""Child process that runs trafilatura for ``extract.ExtractorProcess``.

Protocol over stdin/stdout, one request at a time:
  request:  4-byte big-endian length, then a JSON header line and the HTML (UTF-8)
  response: 1 status byte (O = text, N = no main text, M = memory limit, E = error), 4-byte length, UTF-8 body
Running extraction here lets the parent enforce a hard time limit (it kills this
process, which stops hangs inside lxml's C code too) and a memory limit
(RLIMIT_AS), without either reaching the Beam worker.
"""
from __future__ import annotations

import json
import struct
import sys


OPTION_KEYS = ("include_comments", "include_tables", "favor", "fast", "deduplicate")


def extraction_options(extract_cfg: dict) -> dict:
    """The trafilatura settings out of the ``extract`` config section."""
    return {k: extract_cfg[k] for k in OPTION_KEYS}


def extract_text(html: str, url: str | None, options: dict) -> str | None:
    import trafilatura

    return trafilatura.extract(
        html,
        url=url,
        output_format="txt",
        include_comments=bool(options.get("include_comments", False)),
        include_tables=bool(options.get("include_tables", True)),
        include_images=False,
        include_links=False,
        favor_precision=options.get("favor") == "precision",
        favor_recall=options.get("favor") == "recall",
        fast=bool(options.get("fast", False)),
        deduplicate=bool(options.get("deduplicate", False)),
    )


def _read_exact(stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def main() -> None:
    options = json.loads(sys.argv[1])
    memory_limit_mb = int(sys.argv[2])
    if memory_limit_mb > 0:
        import resource

        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import trafilatura  # noqa: F401 - import once, before the first page

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            (n,) = struct.unpack(">I", _read_exact(stdin, 4))
            body = _read_exact(stdin, n)
        except EOFError:
            return
        header, _, html = body.partition(b"\n")
        url = json.loads(header).get("url")
        try:
            text = extract_text(html.decode("utf-8", "surrogatepass"), url, options)
            status, out = (b"N", b"") if not text else (b"O", text.encode("utf-8", "surrogatepass"))
        except MemoryError:
            status, out = b"M", b"MemoryError: page exceeds the extractor's memory limit"
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a failure
            status, out = b"E", f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000]
        stdout.write(status + struct.pack(">I", len(out)) + out)
        stdout.flush()


if __name__ == "__main__":
    main()
