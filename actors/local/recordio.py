"""RecordIO framing as Mesos streams it: ``<decimal length>\\n<bytes>`` per record."""

from __future__ import annotations

import json


def encode(record: bytes) -> bytes:
    """Frame one record."""
    return str(len(record)).encode("ascii") + b"\n" + record


def encode_json(obj: object) -> bytes:
    """Frame one JSON object (compact separators keep the stream small)."""
    return encode(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


class RecordIOError(ValueError):
    """The stream is not valid RecordIO."""


class Decoder:
    """Incremental decoder: feed bytes as they arrive, get back the complete records."""

    MAX_HEADER = 20  # a length longer than this many digits is garbage, not a slow header

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every record it completes, in order."""
        self._buffer += data
        records: list[bytes] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > self.MAX_HEADER:
                    raise RecordIOError("record length header too long")
                return records
            header = self._buffer[:newline]
            if not header.isdigit():
                raise RecordIOError(f"bad record length {header[:20]!r}")
            length = int(header)
            end = newline + 1 + length
            if len(self._buffer) < end:
                return records
            records.append(self._buffer[newline + 1 : end])
            self._buffer = self._buffer[end:]

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole record."""
        return len(self._buffer)
