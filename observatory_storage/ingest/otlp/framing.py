"""Decompress an OTLP file and split it into messages, streaming (memory: one message).

Detected from bytes, never from the name (extensions are only hints):

- compression around the whole file: gzip (``1f 8b``; several members are read as one
  stream) or zstd (``28 b5 2f fd``; several frames are read across);
- then the first significant byte of the decompressed stream:
  ``{`` -> JSON: one document per line (JSON Lines, the fileexporter's ``format: json``),
  or one document spread over several lines (awss3exporter ``marshaler: otlp_json``,
  pretty-printed files);
  ``0a`` -> one protobuf message (awss3exporter ``marshaler: otlp_proto``: the first field
  of TracesData/MetricsData/LogsData is tag 1, length-delimited);
  otherwise a 4-byte big-endian length followed by a message that starts like one of the
  above or is zstd/gzip-compressed on its own -> length-prefixed messages (the
  fileexporter's ``format: proto``, and its framing whenever ``compression: zstd`` is set).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson
import zstandard

from observatory_storage.ingest.otlp.errors import OtlpError
from observatory_storage.ingest.plain import plain

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"

JSON = "json"
PROTO = "proto"


@dataclass(frozen=True)
class Message:
    """One OTLP message: ``where`` names it in errors ("line 3", "message 2")."""

    where: str
    encoding: str  # JSON or PROTO
    data: bytes
    parsed: object = None  # a JSON document already parsed while detecting the layout


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection while a document becomes objects.

    Parsing creates no reference cycles, but a big document allocates millions of
    containers, and every allocation threshold crossed starts a collection that walks all
    of them again: pausing made OTLP/JSON decoding ~4x faster (docs/otlp.md).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Stream:
    """A read-only stream with peek, exact reads and lines over any ``read(n)`` object."""

    def __init__(self, raw):
        self.raw = raw
        self.buf = b""
        self.pos = 0  # lines(): where the next line starts in buf
        self.eof = False

    def _fill(self, n: int) -> None:
        while len(self.buf) < n and not self.eof:
            chunk = self.raw.read(max(_CHUNK, n - len(self.buf)))
            if not chunk:
                self.eof = True
            else:
                self.buf += chunk

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self.buf[:n]

    def read(self, n: int) -> bytes:
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_all(self) -> bytes:
        parts = [self.buf]
        self.buf = b""
        while not self.eof:
            chunk = self.raw.read(_CHUNK)
            if not chunk:
                self.eof = True
            else:
                parts.append(chunk)
        return b"".join(parts)

    def lines(self) -> Iterator[bytes]:
        start = self.pos = 0
        while True:
            end = self.buf.find(b"\n", start)
            if end >= 0:
                self.pos = end + 1
                yield self.buf[start:end]
                start = end + 1
                continue
            rest = self.buf[start:]
            start = self.pos = 0
            if self.eof:
                self.buf = b""  # (consumed: rest_of_lines() has nothing left)
                if rest:
                    yield rest
                return
            # the rest of the line: chunks up to one holding a newline, joined once (a
            # line of many chunks was copied and searched again at every chunk)
            parts = [rest]
            while True:
                chunk = self.raw.read(_CHUNK)
                if not chunk:
                    self.eof = True
                    break
                parts.append(chunk)
                if b"\n" in chunk:
                    break
            self.buf = b"".join(parts)

    def rest_of_lines(self) -> list[bytes]:
        """What lines() has not yielded yet, as chunks, its line breaks kept except the
        file's last one (as joining the remaining lines with b"\\n" would give)."""
        parts = [self.buf[self.pos:]]
        self.buf, self.pos = b"", 0
        while not self.eof:
            chunk = self.raw.read(_CHUNK)
            if not chunk:
                self.eof = True
            else:
                parts.append(chunk)
        while parts and not parts[-1]:
            parts.pop()
        if parts and parts[-1].endswith(b"\n"):
            parts[-1] = parts[-1][:-1]
        return parts


def _decompressed(handle: BinaryIO) -> tuple[object, str | None]:
    head = handle.read(4)
    handle.seek(0)
    if head[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=handle, mode="rb"), "gzip"
    if head[:4] == ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True)
        return reader, "zstd"
    return handle, None


def decompress_frame(data: bytes, where: str) -> bytes:
    """A message compressed on its own (fileexporter ``compression: zstd``), or as is."""
    try:
        if data[:4] == ZSTD_MAGIC:
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if data[:2] == GZIP_MAGIC:
            return gzip.decompress(data)
    except (zstandard.ZstdError, OSError, EOFError, zlib.error) as exc:
        raise OtlpError(f"cannot decompress: {exc}", where=where) from None
    return data


def _looks_framed(head: bytes) -> bool:
    """A plausible 4-byte length followed by the start of a message."""
    if len(head) < 5:
        return False
    return head[4:5] in (b"\x0a", b"{", ZSTD_MAGIC[:1], GZIP_MAGIC[:1]) and (
        head[4:5] != ZSTD_MAGIC[:1] or head[4:8] == ZSTD_MAGIC
    )


def messages(handle: BinaryIO, json_valid=None) -> tuple[str, Iterator[Message]]:
    """``(format description, messages)``; raises OtlpError when no format fits.

    ``json_valid(bytes) -> bool`` (the compiled decoder's validator, which accepts what
    orjson accepts) tells JSON Lines from a document without parsing the first line into
    objects; without it, the first line is parsed and handed on (``Message.parsed``)."""
    raw, compression = _decompressed(handle)
    stream = _Stream(raw)
    try:
        head = stream.peek(64)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise OtlpError(f"cannot decompress ({compression}): {exc}") from None
    significant = head.removeprefix(_BOM).lstrip(_WHITESPACE)
    prefix = f"{compression}-compressed " if compression else ""
    if not head:
        raise OtlpError(f"empty file{' after decompression (or a corrupt frame)' if compression else ''}")
    if significant[:1] == b"{":
        return f"{prefix}OTLP JSON", _json_messages(stream, json_valid)
    if head[:1] == b"\x0a":
        return f"{prefix}OTLP protobuf", _single(stream)
    if _looks_framed(head):
        return f"{prefix}length-prefixed OTLP messages", _framed(stream)
    if not significant:
        raise OtlpError("file holds only whitespace")
    raise OtlpError(
        f"not an OTLP file: starts with {plain(head[:8])} (expected OTLP JSON, a protobuf "
        "message, or 4-byte length-prefixed protobuf messages; gzip or zstd around any)"
    )


def _guard(iterator: Iterator[Message], what: str) -> Iterator[Message]:
    try:
        yield from iterator
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise OtlpError(f"corrupt {what}: {exc}") from None


def _single(stream: _Stream) -> Iterator[Message]:
    def gen():
        yield Message("message 1", PROTO, stream.read_all())

    return _guard(gen(), "compressed stream")


def _framed(stream: _Stream) -> Iterator[Message]:
    def gen():
        number = 0
        while True:
            prefix = stream.read(4)
            if not prefix:
                return
            number += 1
            where = f"message {number}"
            if len(prefix) < 4:
                raise OtlpError(
                    f"truncated length prefix ({len(prefix)} of 4 bytes) at the end of the file",
                    where=where,
                )
            length = int.from_bytes(prefix, "big")
            data = stream.read(length)
            if len(data) < length:
                raise OtlpError(
                    f"length prefix says {length} bytes but only {len(data)} remain "
                    "(truncated file, or not length-prefixed)",
                    where=where,
                )
            data = decompress_frame(data, where)
            encoding = JSON if data.lstrip(_WHITESPACE)[:1] == b"{" else PROTO
            yield Message(where, encoding, data)

    return _guard(gen(), "compressed stream")


def _json_messages(stream: _Stream, json_valid=None) -> Iterator[Message]:
    """JSON Lines, or one document over several lines.

    Told apart by the first non-empty line: a complete JSON value there means JSON Lines
    (every later line is one document; a bad line is an error naming it), anything else
    means one document spread over lines (read whole: it is one message anyway).
    """

    def gen():
        number = 0
        seen = False
        lines = stream.lines()
        for line in lines:
            number += 1
            text = line.strip()
            if not text:
                continue
            if not seen:
                seen = True
                if json_valid is not None:  # (JSON null counts as no document, as below)
                    parsed, complete = None, text != b"null" and json_valid(text)
                else:
                    try:
                        with gc_paused():
                            parsed = orjson.loads(text)
                    except orjson.JSONDecodeError:
                        parsed = None
                    complete = parsed is not None
                if not complete:  # one document over lines: the rest read whole, no line split
                    rest = stream.rest_of_lines()
                    yield Message("document", JSON, b"".join([text, b"\n", *rest]) if rest else text)
                    return
                yield Message(f"line {number}", JSON, text, parsed)
                continue
            yield Message(f"line {number}", JSON, text)

    return _guard(gen(), "compressed stream")
