"""Reading a request's body off the socket, as a front end does: chunked or by Content-Length,
and never more than API Gateway's payload limit (a larger one is answered 413 unread)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO

# API Gateway's payload limit; larger requests get the REQUEST_TOO_LARGE gateway response.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


class FramingError(ValueError):
    """The request's body cannot be delimited (Content-Length or chunked encoding broken)."""


def read_body(headers: Mapping[str, str], stream: BinaryIO,
              limit: int = MAX_PAYLOAD_BYTES) -> tuple[bytes, int]:
    """The request body and its length as declared. A body declared over `limit` is not read
    (the answer is 413 anyway); chunked bodies are read up to `limit` + 1 bytes."""
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        return _read_chunked(stream, limit)
    declared = (headers.get("content-length") or "0").strip()
    if not declared.isdigit():
        raise FramingError(f"Content-Length {declared[:40]!r}")
    length = int(declared)
    return (stream.read(length) if 0 < length <= limit else b""), length


def _read_chunked(stream: BinaryIO, limit: int) -> tuple[bytes, int]:
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1026)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise FramingError(f"chunk size line {line[:40]!r}") from error
        if size < 0:
            raise FramingError(f"chunk size {size}")
        if size == 0:
            while stream.readline(65537).strip():  # trailer fields, up to the blank line
                pass
            return b"".join(parts), total
        if total + size > limit:
            return b"", total + size  # too large: the rest stays unread
        chunk = stream.read(size)
        if len(chunk) != size or stream.read(2) != b"\r\n":
            raise FramingError("chunk shorter than its size")
        parts.append(chunk)
        total += size
