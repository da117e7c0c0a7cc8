"""oval-encode / oval-decode end to end, on real clips and on every kind of bad input."""
import json

import numpy as np
import pytest

from oval import bitstream as bs
from oval.cli import decode_main, encode_main
from oval.io import read_frames


def run(main, args, capsys):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def tiny_stream(tmp_path_factory, tiny_model_path, bikes):
    """A 4-frame stream of bikes coded with the tiny model (fast), for the bad-input tests."""
    d = tmp_path_factory.mktemp("tiny")
    rc = encode_main([bikes, "-o", str(d / "s.oval"), "--model", tiny_model_path, "--max-frames", "4",
                      "--quiet"])
    assert rc == 0
    return d / "s.oval"


@pytest.mark.parametrize("clip,frames", [("bikes", 3), ("carphone", 3)])
def test_round_trip_decodes_to_recon_frames(clip, frames, tmp_path, capsys, request):
    src = request.getfixturevalue(clip)
    rc, out, err = run(encode_main, [src, "-o", tmp_path / "s.oval", "--recon", tmp_path / "recon.mkv",
                                     "--max-frames", frames, "--json"], capsys)
    assert rc == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["frames"] == frames and stats["bytes"] == (tmp_path / "s.oval").stat().st_size
    assert 0.01 < stats["bpp"] < 2.0 and stats["psnr"] > 24  # a trained model, not noise
    assert stats["intra_frames"] == 1 and 0 <= stats["skipped_frames"] <= frames - 1
    assert "bpp" in err and "PSNR" in err and "I-frames 1, skipped" in err

    for i in range(2):  # decoding twice gives the same frames
        rc, out, err = run(decode_main, [tmp_path / "s.oval", "-o", tmp_path / f"dec{i}.mkv", "--json"], capsys)
        assert rc == 0, err
        assert json.loads(out.strip().splitlines()[-1])["frames"] == frames
    recon, dec0, dec1 = (read_frames(str(tmp_path / n)) for n in ("recon.mkv", "dec0.mkv", "dec1.mkv"))
    source = read_frames(src, frames)
    assert len(recon) == len(dec0) == frames
    assert recon[0].shape == source[0].shape
    assert all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(recon, dec0, dec1, strict=True))


def test_every_preset_codes_a_stream_any_decoder_reads(carphone, tmp_path, capsys):
    """The presets change how hard the encoder searches, not the format: each stream decodes to
    its encoder's pictures; fast (the block search), slow (filter-aware) and slower (refined
    latents) choose differently."""
    from oval import cli, codec
    assert cli.PRESETS == tuple(codec.PRESETS) and codec.DEFAULT_PRESET == "medium"
    streams = {}
    for preset in ("fast", "slow", "slower"):
        stream, recon = tmp_path / f"{preset}.oval", tmp_path / f"{preset}.mkv"
        rc, out, err = run(encode_main, [carphone, "-o", stream, "--recon", recon, "--max-frames", 3,
                                         "--preset", preset, "--json"], capsys)
        assert rc == 0, err
        assert json.loads(out.strip().splitlines()[-1])["preset"] == preset
        rc, _, err = run(decode_main, [stream, "-o", tmp_path / f"{preset}-dec.mkv"], capsys)
        assert rc == 0, err
        decoded = read_frames(str(tmp_path / f"{preset}-dec.mkv"))
        assert all(np.array_equal(a, b) for a, b in zip(decoded, read_frames(str(recon)), strict=True))
        streams[preset] = stream.read_bytes()
    assert streams["fast"] != streams["slow"] != streams["slower"]
    with pytest.raises(SystemExit) as e:
        encode_main([str(carphone), "-o", str(tmp_path / "x.oval"), "--preset", "placebo"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="preset must be one of"):
        codec.Encoder(None, None, 16, 16, preset="placebo")


def test_odd_size_is_restored(odd_clip, tiny_model_path, tmp_path, capsys):
    rc, _, err = run(encode_main, [odd_clip, "-o", tmp_path / "s.oval", "--model", tiny_model_path,
                                   "--recon", tmp_path / "r.mkv"], capsys)
    assert rc == 0, err
    rc, _, err = run(decode_main, [tmp_path / "s.oval", "-o", tmp_path / "d.mkv", "--model", tiny_model_path], capsys)
    assert rc == 0, err
    dec, rec = read_frames(str(tmp_path / "d.mkv")), read_frames(str(tmp_path / "r.mkv"))
    assert dec[0].shape == (45, 71, 3) and all(np.array_equal(a, b) for a, b in zip(dec, rec, strict=True))


def assert_one_line_error(rc, err, pattern):
    assert rc != 0
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert pattern in lines[-1], lines[-1]


def test_unreadable_input(tmp_path, capsys):
    rc, _, err = run(encode_main, [tmp_path / "missing.mp4", "-o", tmp_path / "s.oval"], capsys)
    assert_one_line_error(rc, err, "input not found")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    rc, _, err = run(encode_main, [tmp_path / "noise.mp4", "-o", tmp_path / "s.oval"], capsys)
    assert_one_line_error(rc, err, "noise.mp4")
    assert not (tmp_path / "s.oval").exists()


def test_missing_output_directory(bikes, tmp_path, capsys):
    rc, _, err = run(encode_main, [bikes, "-o", tmp_path / "nowhere" / "s.oval"], capsys)
    assert_one_line_error(rc, err, "output directory does not exist")


def test_corrupt_stream_decodes_intact_frames_then_fails(tiny_stream, tiny_model_path, tmp_path, capsys):
    data = bytearray(tiny_stream.read_bytes())
    reader = bs.StreamReader(open(tiny_stream, "rb"))
    offsets = []
    while (unit := reader.read_unit()) is not None:
        if unit.type == bs.UnitType.FRAME:
            offsets.append(unit.offset)
    data[offsets[2] + 20] ^= 0xFF  # damage frame 2's payload
    bad = tmp_path / "bad.oval"
    bad.write_bytes(bytes(data))
    rc, _, err = run(decode_main, [bad, "-o", tmp_path / "out.mkv", "--model", tiny_model_path], capsys)
    assert_one_line_error(rc, err, "frame 2 is corrupt")
    assert not (tmp_path / "out.mkv").exists()
    partial = read_frames(str(tmp_path / "out.partial.mkv"))
    assert len(partial) == 4  # frames 0, 1, 3 decoded; 2 concealed


def test_truncated_stream(tiny_stream, tiny_model_path, tmp_path, capsys):
    data = tiny_stream.read_bytes()
    cut = tmp_path / "cut.oval"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    rc, _, err = run(decode_main, [cut, "-o", tmp_path / "out.mkv", "--model", tiny_model_path], capsys)
    assert_one_line_error(rc, err, "truncated")
    assert not (tmp_path / "out.mkv").exists()
    assert len(read_frames(str(tmp_path / "out.partial.mkv"))) >= 1


def test_wrong_model_is_refused(tiny_stream, tmp_path, capsys):
    rc, _, err = run(decode_main, [tiny_stream, "-o", tmp_path / "out.mkv", "--model", "default"], capsys)
    assert_one_line_error(rc, err, "stream was encoded with model")
    assert list(tmp_path.iterdir()) == []


def test_absurd_header_is_refused(tmp_path, capsys):
    import io
    sink = io.BytesIO()
    header = bs.StreamHeader("oval-factorized", bytes(16), width=200_000, height=200_000)
    bs.StreamWriter(sink, header).close()
    (tmp_path / "huge.oval").write_bytes(sink.getvalue())
    rc, _, err = run(decode_main, [tmp_path / "huge.oval", "-o", tmp_path / "out.mkv"], capsys)
    assert_one_line_error(rc, err, "outside the limits")


def test_not_a_stream(tmp_path, capsys, bikes):
    rc, _, err = run(decode_main, [bikes, "-o", tmp_path / "out.mkv"], capsys)
    assert_one_line_error(rc, err, "not an .oval stream")


def test_unavailable_quality_is_a_bad_argument(bikes, tmp_path, capsys):
    rc, _, err = run(encode_main, [bikes, "-o", tmp_path / "s.oval", "--quality", "99", "--max-frames", "1",
                                   "--model", "oval/weights/video-2026-11-25.safetensors"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--quality must be 1..6" in err
    assert not (tmp_path / "s.oval").exists()


def test_version_and_help_name_exit_codes(capsys):
    from oval import __version__
    with pytest.raises(SystemExit) as e:
        encode_main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        decode_main(["--help"])
    out = capsys.readouterr().out
    assert "exit status" in out and ".partial" in out


class _LiveSource:
    """Stands in for a camera: no known length, and the user presses Ctrl-C after 3 frames."""

    def __init__(self, frames):
        self.frames = frames

    def __call__(self, source, max_frames=None):
        from fractions import Fraction

        from oval.io import VideoInfo
        self.info = VideoInfo(self.frames[0].shape[1], self.frames[0].shape[0], Fraction(25), 0)
        return self

    def __iter__(self):
        yield from self.frames[:3]
        raise KeyboardInterrupt

    def close(self):
        pass


def test_ctrl_c_closes_a_live_stream_cleanly(odd_clip, tiny_model_path, tmp_path, capsys, monkeypatch):
    from oval import io as oval_io
    monkeypatch.setattr(oval_io, "VideoReader", _LiveSource(read_frames(odd_clip)))
    rc = encode_main(["/dev/video0", "-o", str(tmp_path / "live.oval"), "--model", tiny_model_path, "--quiet"])
    assert rc == 130 and "closed the live stream after 3 frames" in capsys.readouterr().err
    monkeypatch.undo()
    rc = decode_main([str(tmp_path / "live.oval"), "-o", str(tmp_path / "d.mkv"), "--model", tiny_model_path, "--quiet"])
    assert rc == 0 and len(read_frames(str(tmp_path / "d.mkv"))) == 3


def test_ctrl_c_on_a_file_keeps_nothing(odd_clip, tiny_model_path, tmp_path, capsys, monkeypatch):
    from oval import io as oval_io
    source = _LiveSource(read_frames(odd_clip))
    original = source.__call__

    def with_length(*a, **k):
        reader = original(*a, **k)
        reader.info.frame_count = 4  # a file: its length is known
        return reader

    monkeypatch.setattr(oval_io, "VideoReader", with_length)
    rc = encode_main([odd_clip, "-o", str(tmp_path / "f.oval"), "--model", tiny_model_path, "--quiet"])
    assert rc == 130 and list(tmp_path.iterdir()) == []
