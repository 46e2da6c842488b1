"""Content coding of success bodies: negotiation, and bodies spliced from precompressed parts.

A success body is ``{"meta":…`` (built per request) followed by the sections (cached). The
sections' tail is compressed once, when the entry is computed, and each response only
wraps its meta around it, without compressing anything:

* ``gzip`` (RFC 1952): one gzip member whose deflate stream is the meta in *stored*
  (uncompressed) blocks, which end byte-aligned, followed by the tail's deflate blocks,
  compressed on their own and ending with the final block; the trailer's CRC-32 and length
  cover both. A single member, not two concatenated ones: httpx's and other decoders stop
  after the first member without a word.
* ``zstd`` (RFC 8878): a frame holding the meta in one raw block, then the tail's frame.
  A zstd body may be any number of frames, decoded as their concatenation.

The meta is left uncompressed because compressing ~200 bytes per request cost 12-25 µs
for ~30 bytes; a stored block costs half a microsecond. Bodies under ``MIN_BYTES`` are
sent as they are: the headers and framing would eat most of the gain.
"""

from __future__ import annotations

import functools
import struct
import zlib

import zstandard

# Akamai's and others' rule of thumb: below about one TCP segment's payload, compressing
# rarely saves a packet.
MIN_BYTES = 860

GZIP = "gzip"
ZSTD = "zstd"
IDENTITY = "identity"

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no mtime, unknown OS
_MAX_STORED = 0xFFFF
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Frame header: no content size, no checksum, no dictionary; a 128 KiB window descriptor,
# which bounds a raw block's size.
_ZSTD_RAW_FRAME_HEADER = _ZSTD_MAGIC + b"\x00\x38"
_ZSTD_MAX_BLOCK = 128 * 1024
# One compressor per process, reused: building one allocates its context, which cost
# more than compressing a body (60 µs against 14 µs at level 3 for a mobile home). Only
# the event loop's thread compresses, so it is never used concurrently.
_ZSTD = zstandard.ZstdCompressor(level=3)


@functools.lru_cache(maxsize=256)
def negotiate(accept_encoding: str) -> str:
    """The coding to send for an ``Accept-Encoding`` value: zstd, gzip or identity.

    Highest q-value wins; on a tie zstd, which is as small and cheaper to decode. ``*``
    stands for any coding not named; ``q=0`` refuses one. Memoised: clients send a few
    distinct values, over and over.
    """
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        params = params.strip().lower()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        weights["gzip" if coding == "x-gzip" else coding] = q
    star = weights.get("*", 0.0)
    best, best_q = IDENTITY, 0.0
    for coding in (ZSTD, GZIP):
        q = weights.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    return best


def precompress(tail: bytes) -> tuple[bytes, bytes]:
    """The tail as finished raw deflate blocks and as one zstd frame."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    blocks = deflate.compress(tail) + deflate.flush(zlib.Z_FINISH)
    return blocks, _ZSTD.compress(tail)


def gzip_body(head: bytes, tail: bytes, tail_blocks: bytes) -> bytes:
    """A gzip member of ``head + tail``; ``tail_blocks`` is ``precompress(tail)[0]``."""
    stored = []
    for start in range(0, max(len(head), 1), _MAX_STORED):
        chunk = head[start : start + _MAX_STORED]
        # BFINAL=0, BTYPE=00 (stored), padded to a byte; then LEN and its complement.
        stored.append(b"\x00" + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk)
    crc = zlib.crc32(tail, zlib.crc32(head))
    size = (len(head) + len(tail)) & 0xFFFFFFFF
    return b"".join((_GZIP_HEADER, *stored, tail_blocks, struct.pack("<II", crc, size)))


def zstd_body(head: bytes, tail_frame: bytes) -> bytes:
    """A zstd body of ``head + tail``; ``tail_frame`` is ``precompress(tail)[1]``."""
    parts = [_ZSTD_RAW_FRAME_HEADER]
    chunks = [head[i : i + _ZSTD_MAX_BLOCK] for i in range(0, len(head), _ZSTD_MAX_BLOCK)]
    chunks = chunks or [b""]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        # Block header, 3 bytes little-endian: Last_Block, Block_Type 0 (raw), Block_Size.
        parts.append((int(last) | len(chunk) << 3).to_bytes(3, "little") + chunk)
    parts.append(tail_frame)
    return b"".join(parts)


# A meta without degraded dependencies and with a 32-character trace id is ~190 bytes.
_META_BYTES = 180


def tail_of(sections: bytes) -> bytes:
    """What follows ``{"meta":{…}`` in a body: the sections object without its ``{``."""
    return b"}" if sections == b"{}" else b"," + sections[1:]


def compressed_forms(sections: bytes) -> tuple[bytes, bytes]:
    """``precompress`` of the sections' tail, or two empty parts for a small body."""
    if len(sections) + _META_BYTES < MIN_BYTES:
        return b"", b""
    return precompress(tail_of(sections))


def encode(head: bytes, sections: bytes, coding: str, gzip: bytes, zstd: bytes) -> bytes:
    """The body ``head + tail_of(sections)`` in ``coding``, from the precompressed tail."""
    tail = tail_of(sections)
    if coding == GZIP:
        return gzip_body(head, tail, gzip)
    if coding == ZSTD:
        return zstd_body(head, zstd)
    return head + tail
