"""The .oval container: bytes in, bytes out. Imports neither torch nor the models.

Layout (docs/bitstream.md is the specification):

    file   := MAGIC version:u8 unit*
    unit   := type:u8 length:varint payload[length] crc32(type + payload):u32le

Every unit carries its own CRC-32, so a decoder finds a damaged packet before it reaches the
entropy decoder (which cannot detect bad data by itself). Unknown unit types are skipped, so later
versions can add units (model updates, side information) without breaking older readers.
"""
import dataclasses
import enum
import struct
import zlib
from typing import BinaryIO, Iterator, Optional

MAGIC = b"OVAL"
FORMAT_VERSION = 1
FINGERPRINT_BYTES = 16


class FormatError(ValueError):
    """The bytes are not a valid .oval stream (or exceed the configured limits)."""


class TruncatedError(FormatError):
    """The stream ends in the middle of a unit."""


class UnitType(enum.IntEnum):
    STREAM_HEADER = 0x01
    FRAME = 0x02
    MODEL_UPDATE = 0x10  # decoder weight updates sent by online adaptation (see docs/bitstream.md)
    END = 0x7F


class FrameType(enum.IntEnum):
    INTRA = 0
    INTER = 1  # predicted from the previous decoded frame (temporal models)


class ColourSpace(enum.IntEnum):
    """The stream's colour space id; `label` is the name models and oval.kernels use for it."""
    RGB = 0
    YCBCR_BT601 = 1
    YCBCR_BT709 = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_label(cls, label: str) -> "ColourSpace":
        return cls[label.upper().replace("-", "_")]


@dataclasses.dataclass(frozen=True)
class Limits:
    """Checked before anything is allocated; a header that claims more is refused."""

    max_width: int = 16384
    max_height: int = 16384
    max_pixels: int = 7680 * 4320  # 8K UHD: decoding memory grows with the picture (README: bound per pixel)
    max_frames: int = 2**31 - 1
    max_unit_bytes: int = 256 * 2**20


# --- variable-length integers (LEB128, unsigned) ---------------------------------------------

def write_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Returns (value, new position). At most 10 bytes (64 bits), so hostile input cannot loop."""
    value = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise FormatError("varint runs past the end of its unit")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise FormatError("varint longer than 64 bits")


def zigzag(value: int) -> int:
    return 2 * value if value >= 0 else -2 * value - 1


def unzigzag(value: int) -> int:
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


class _Reader:
    """Cursor over one unit's payload; every read is bounds-checked."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def varint(self) -> int:
        value, self.pos = read_varint(self.data, self.pos)
        return value

    def u8(self) -> int:
        return self.raw(1)[0]

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError("field runs past the end of its unit")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def text(self, max_len: int = 256) -> str:
        n = self.varint()
        if n > max_len:
            raise FormatError(f"string of {n} bytes exceeds {max_len}")
        try:
            return self.raw(n).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError("string is not UTF-8") from e

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return write_varint(len(raw)) + raw


# --- units -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StreamHeader:
    """The stream's parameter set, written once before the first frame."""

    model_arch: str
    model_fingerprint: bytes
    width: int
    height: int
    fps_num: int = 25
    fps_den: int = 1
    frame_count: int = 0  # 0: unknown when the header was written (live sources)
    quality: int = 0
    colour_space: ColourSpace = ColourSpace.RGB
    intra_period: int = 1
    extensions: tuple = ()  # (key, bytes) pairs a later version may add; kept, not interpreted

    def pack(self) -> bytes:
        if len(self.model_fingerprint) != FINGERPRINT_BYTES:
            raise ValueError("fingerprint must be 16 bytes")
        out = [_text(self.model_arch), self.model_fingerprint,
               write_varint(self.width), write_varint(self.height),
               write_varint(self.fps_num), write_varint(self.fps_den),
               write_varint(self.frame_count), bytes([self.quality, int(self.colour_space)]),
               write_varint(self.intra_period), write_varint(len(self.extensions))]
        for key, value in self.extensions:
            out += [_text(key), write_varint(len(value)), value]
        return b"".join(out)

    @classmethod
    def unpack(cls, payload: bytes, limits: Limits) -> "StreamHeader":
        r = _Reader(payload)
        arch, fingerprint = r.text(), r.raw(FINGERPRINT_BYTES)
        width, height = r.varint(), r.varint()
        if not (1 <= width <= limits.max_width and 1 <= height <= limits.max_height):
            raise FormatError(f"frame size {width}x{height} is outside the limits "
                              f"(1x1 to {limits.max_width}x{limits.max_height})")
        if width * height > limits.max_pixels:
            raise FormatError(f"frame size {width}x{height} has {width * height} pixels, over the limit of "
                              f"{limits.max_pixels} (oval-decode --max-pixels raises it)")
        fps_num, fps_den, frame_count = r.varint(), r.varint(), r.varint()
        if fps_num == 0 or fps_den == 0:
            raise FormatError(f"invalid frame rate {fps_num}/{fps_den}")
        if frame_count > limits.max_frames:
            raise FormatError(f"frame count {frame_count} exceeds the limit {limits.max_frames}")
        quality, colour = r.u8(), r.u8()
        try:
            colour_space = ColourSpace(colour)
        except ValueError:
            raise FormatError(f"unknown colour space id {colour}") from None
        intra_period = r.varint()
        n_ext = r.varint()
        if n_ext > 64:
            raise FormatError(f"{n_ext} header extensions exceed the limit of 64")
        extensions = []
        for _ in range(n_ext):
            key = r.text()
            extensions.append((key, r.raw(r.varint())))
        return cls(arch, fingerprint, width, height, fps_num, fps_den, frame_count, quality,
                   colour_space, intra_period, tuple(extensions))


@dataclasses.dataclass(frozen=True)
class FramePacket:
    index: int
    frame_type: FrameType
    quality: int
    payload: bytes  # the model's entropy-coded data; opaque to the container

    def pack(self) -> bytes:
        return (write_varint(self.index) + bytes([int(self.frame_type), self.quality]) + self.payload)

    @classmethod
    def unpack(cls, payload: bytes) -> "FramePacket":
        r = _Reader(payload)
        index = r.varint()
        frame_type, quality = r.u8(), r.u8()
        try:
            frame_type = FrameType(frame_type)
        except ValueError:
            raise FormatError(f"frame {index}: unknown frame type {frame_type}") from None
        return cls(index, frame_type, quality, r.rest())


@dataclasses.dataclass(frozen=True)
class EndOfStream:
    frame_count: int

    def pack(self) -> bytes:
        return write_varint(self.frame_count)

    @classmethod
    def unpack(cls, payload: bytes) -> "EndOfStream":
        return cls(_Reader(payload).varint())


# --- writing and reading ---------------------------------------------------------------------

def pack_unit(unit_type: UnitType, payload: bytes) -> bytes:
    head = bytes([int(unit_type)])
    crc = zlib.crc32(head + payload)
    return head + write_varint(len(payload)) + payload + struct.pack("<I", crc)


class StreamWriter:
    """Writes units as they come, so memory stays flat however long the stream."""

    def __init__(self, sink: BinaryIO, header: StreamHeader):
        self.sink = sink
        self.bytes_written = 0
        self.frames_written = 0
        self._write(MAGIC + bytes([FORMAT_VERSION]))
        self._write(pack_unit(UnitType.STREAM_HEADER, header.pack()))

    def _write(self, data: bytes) -> None:
        self.sink.write(data)
        self.bytes_written += len(data)

    def write_model_update(self, update: "ModelUpdate") -> int:
        unit = pack_unit(UnitType.MODEL_UPDATE, update.pack())
        self._write(unit)
        return len(unit)

    def write_frame(self, packet: FramePacket) -> int:
        unit = pack_unit(UnitType.FRAME, packet.pack())
        self._write(unit)
        self.frames_written += 1
        return len(unit)

    def close(self) -> None:
        self._write(pack_unit(UnitType.END, EndOfStream(self.frames_written).pack()))
        self.sink.flush()


@dataclasses.dataclass(frozen=True)
class Unit:
    type: int
    payload: bytes
    crc_ok: bool
    offset: int


class StreamReader:
    """Reads a stream unit by unit from a file object, checking limits before reading payloads.

    `header` is parsed on construction. Iterating yields FramePacket and ModelUpdate objects, or a
    CorruptFrame / LostUpdate marker for a unit whose CRC fails (the caller decides how to conceal
    it); it raises TruncatedError when the stream ends without its END unit.
    """

    def __init__(self, source: BinaryIO, limits: Limits = Limits()):
        self.source, self.limits = source, limits
        self.offset = 0
        magic = self._read_exact(len(MAGIC) + 1, "file header")
        if magic[:4] != MAGIC:
            raise FormatError("not an .oval stream (bad magic bytes)")
        self.version = magic[4]
        if self.version != FORMAT_VERSION:
            raise FormatError(f"stream format version {self.version} is not supported "
                              f"(this decoder reads version {FORMAT_VERSION})")
        unit = self.read_unit()
        if unit is None or unit.type != UnitType.STREAM_HEADER:
            raise FormatError("stream header missing")
        if not unit.crc_ok:
            raise FormatError("stream header is corrupt (CRC mismatch)")
        self.header = StreamHeader.unpack(unit.payload, limits)
        self.end: Optional[EndOfStream] = None

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self.source.read(n)
        if len(data) != n:
            raise TruncatedError(f"stream truncated in {what} at byte {self.offset + len(data)}")
        self.offset += n
        return data

    def read_unit(self) -> Optional[Unit]:
        """Next unit, or None at a clean end of file."""
        start = self.offset
        head = self.source.read(1)
        if not head:
            return None
        self.offset += 1
        length = shift = 0
        for _ in range(10):
            byte = self._read_exact(1, "unit length")[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        else:
            raise FormatError(f"unit length at byte {start} is not a valid varint")
        if length > self.limits.max_unit_bytes:
            raise FormatError(f"unit at byte {start} claims {length} bytes, over the limit of "
                              f"{self.limits.max_unit_bytes}")
        payload = self._read_exact(length, "unit payload")
        (crc,) = struct.unpack("<I", self._read_exact(4, "unit CRC"))
        return Unit(head[0], payload, zlib.crc32(head + payload) == crc, start)

    def __iter__(self) -> Iterator["FramePacket | CorruptFrame"]:
        expected_index = 0
        while True:
            unit = self.read_unit()
            if unit is None:
                raise TruncatedError(f"stream truncated after {expected_index} frames (no end marker)")
            if not unit.crc_ok:
                reason = f"CRC mismatch in unit at byte {unit.offset}"
                if unit.type == UnitType.MODEL_UPDATE:
                    yield LostUpdate(expected_index, reason)
                    continue
                yield CorruptFrame(expected_index, reason)
                expected_index += 1
                continue
            if unit.type == UnitType.END:
                self.end = EndOfStream.unpack(unit.payload)
                return
            if unit.type == UnitType.MODEL_UPDATE:
                yield ModelUpdate.unpack(unit.payload)
                continue
            if unit.type != UnitType.FRAME:
                continue  # unknown or reserved unit: skipped, for forward compatibility
            packet = FramePacket.unpack(unit.payload)
            if packet.index != expected_index:
                raise FormatError(f"frame {packet.index} found where frame {expected_index} was expected")
            expected_index += 1
            yield packet


@dataclasses.dataclass(frozen=True)
class CorruptFrame:
    index: int
    reason: str


@dataclasses.dataclass(frozen=True)
class LostUpdate:
    """A MODEL_UPDATE unit whose CRC failed; `before_frame` is the index of the next frame."""
    before_frame: int
    reason: str


@dataclasses.dataclass(frozen=True)
class ModelUpdate:
    """New values for a model's updatable decoder parameters (online adaptation, --adapt full).

    Payload: parameter_set:u8 step_log2:u8 count:varint deflate(zigzag-varint deltas). The decoder
    adds delta * 2**-step_log2 to each parameter of the set, in the model's order, before the frames
    that follow. Parameter set 1: every parameter that only shapes pixels (never the entropy model
    or the references), so a lost update costs quality, not decodability.
    """
    parameter_set: int
    step_log2: int
    deltas: tuple

    MAX_COUNT = 1 << 20

    def pack(self) -> bytes:
        body = b"".join(write_varint(zigzag(int(d))) for d in self.deltas)
        return bytes([self.parameter_set, self.step_log2]) + write_varint(len(self.deltas)) + zlib.compress(body, 9)

    @classmethod
    def unpack(cls, payload: bytes) -> "ModelUpdate":
        r = _Reader(payload)
        parameter_set, step_log2, count = r.u8(), r.u8(), r.varint()
        if count > cls.MAX_COUNT or step_log2 > 30:
            raise FormatError(f"model update claims {count} parameters at step 2^-{step_log2}")
        try:
            inflater = zlib.decompressobj()
            body = inflater.decompress(r.rest(), 10 * count + 16)  # bounded: no decompression bomb
        except zlib.error:
            raise FormatError("model update payload is not valid deflate data") from None
        deltas, pos = [], 0
        for _ in range(count):
            raw, pos = read_varint(body, pos)
            deltas.append(unzigzag(raw))
        if pos != len(body) or inflater.unconsumed_tail or inflater.unused_data or not inflater.eof:
            raise FormatError("model update payload has trailing data")
        if any(abs(d) > 1 << 30 for d in deltas):
            raise FormatError("model update delta out of range")
        return cls(parameter_set, step_log2, tuple(deltas))
