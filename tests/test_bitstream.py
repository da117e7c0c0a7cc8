import io
import struct

import pytest

from oval import bitstream as bs


def header(**kw):
    args = dict(model_arch="oval-factorized", model_fingerprint=bytes(range(16)), width=640, height=272,
                fps_num=30000, fps_den=1001, frame_count=3)
    args.update(kw)
    return bs.StreamHeader(**args)


def make_stream(n_frames=3, close=True, **kw):
    sink = io.BytesIO()
    writer = bs.StreamWriter(sink, header(**kw))
    for i in range(n_frames):
        writer.write_frame(bs.FramePacket(i, bs.FrameType.INTRA, 0, bytes([i]) * (10 + i)))
    if close:
        writer.close()
    return sink.getvalue()


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63])
def test_varint_round_trip(value):
    data = bs.write_varint(value)
    assert bs.read_varint(data, 0) == (value, len(data))


def test_varint_rejects_overlong():
    with pytest.raises(bs.FormatError):
        bs.read_varint(b"\xff" * 11, 0)


@pytest.mark.parametrize("value", [0, 1, -1, 5, -1000, 2**40, -(2**40)])
def test_zigzag_round_trip(value):
    assert bs.unzigzag(bs.zigzag(value)) == value


def test_stream_round_trip():
    data = make_stream(extensions=(("note", b"hello"),))
    reader = bs.StreamReader(io.BytesIO(data))
    assert reader.header == header(extensions=(("note", b"hello"),))
    packets = list(reader)
    assert [p.index for p in packets] == [0, 1, 2]
    assert packets[2].payload == bytes([2]) * 12
    assert reader.end.frame_count == 3


def test_crc_catches_flipped_payload_bit():
    data = bytearray(make_stream())
    # The second frame's payload is a run of 0x01 bytes: flip a bit inside it.
    pos = data.index(bytes([1]) * 11)
    data[pos + 3] ^= 0x10
    items = list(bs.StreamReader(io.BytesIO(bytes(data))))
    assert isinstance(items[1], bs.CorruptFrame) and items[1].index == 1
    assert isinstance(items[0], bs.FramePacket) and isinstance(items[2], bs.FramePacket)


def test_truncated_stream_yields_intact_frames_then_raises():
    data = make_stream()
    cut = data[:len(data) - 12]  # inside the END unit / last frame
    reader = bs.StreamReader(io.BytesIO(cut))
    got = []
    with pytest.raises(bs.TruncatedError):
        for item in reader:
            got.append(item)
    assert len(got) >= 2


def test_stream_without_end_marker_is_truncated():
    reader = bs.StreamReader(io.BytesIO(make_stream(close=False)))
    with pytest.raises(bs.TruncatedError, match="after 3 frames"):
        list(reader)


def test_absurd_size_refused_before_allocation():
    data = make_stream(width=1_000_000, height=1_000_000)
    with pytest.raises(bs.FormatError, match="outside the limits"):
        bs.StreamReader(io.BytesIO(data))


def test_configurable_limits():
    data = make_stream(width=640, height=272)
    with pytest.raises(bs.FormatError):
        bs.StreamReader(io.BytesIO(data), bs.Limits(max_width=320))


def test_huge_unit_length_refused_before_reading():
    data = bs.MAGIC + bytes([bs.FORMAT_VERSION]) + bytes([bs.UnitType.STREAM_HEADER]) + bs.write_varint(2**40)
    with pytest.raises(bs.FormatError, match="over the limit"):
        bs.StreamReader(io.BytesIO(data))


def test_bad_magic_and_future_version():
    with pytest.raises(bs.FormatError, match="not an .oval stream"):
        bs.StreamReader(io.BytesIO(b"RIFF" + bytes(20)))
    data = bytearray(make_stream())
    data[4] = 99
    with pytest.raises(bs.FormatError, match="version 99"):
        bs.StreamReader(io.BytesIO(bytes(data)))


def test_unknown_units_are_skipped():
    data = make_stream(n_frames=1, close=False)
    data += bs.pack_unit(0x55, b"future side information")
    data += bs.pack_unit(bs.UnitType.END, bs.EndOfStream(1).pack())
    assert len(list(bs.StreamReader(io.BytesIO(data)))) == 1


def test_unit_layout_is_as_specified():
    unit = bs.pack_unit(bs.UnitType.FRAME, b"abc")
    assert unit[0] == 0x02 and unit[1] == 3 and unit[2:5] == b"abc"
    import zlib
    assert struct.unpack("<I", unit[5:])[0] == zlib.crc32(b"\x02abc")
