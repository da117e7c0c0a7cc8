"""Flip one bit at random positions of real streams: every corruption is caught with a one-line
message and confined to the frames it hit (the frames before it decode exactly; with the unit's
length intact, so do the frames after it, from the next I-frame on when the stream has P-frames)."""
import random

import numpy as np
import pytest

from oval import bitstream as bs
from oval.cli import decode_main, encode_main
from oval.io import read_frames


@pytest.fixture(scope="module", params=[("tiny_model_path", 1), ("tiny_video_model_path", 2)],
                ids=["intra", "p-frames"])
def stream(request, odd_clip, tmp_path_factory):
    model_name, period = request.param
    model_path = request.getfixturevalue(model_name)
    d = tmp_path_factory.mktemp("corrupt")
    args = ["--intra-period", str(period)] if period != 1 else []
    assert encode_main([odd_clip, "-o", str(d / "s.oval"), "--model", model_path, "--quiet", *args]) == 0
    assert decode_main([str(d / "s.oval"), "-o", str(d / "clean.mkv"), "--model", model_path, "--quiet"]) == 0
    data = (d / "s.oval").read_bytes()
    reader = bs.StreamReader(open(d / "s.oval", "rb"))
    units = []  # (start, end, frame index or None)
    index = 0
    while True:
        start = reader.offset
        unit = reader.read_unit()
        if unit is None:
            break
        frame = index if unit.type == bs.UnitType.FRAME else None
        index += unit.type == bs.UnitType.FRAME
        units.append((start, reader.offset, frame))
    return data, read_frames(str(d / "clean.mkv")), units, model_path, period


def test_random_bit_flips_are_caught_or_confined(stream, tmp_path, capsys):
    data, clean, units, model_path, period = stream
    header_end = units[0][1]  # the file header and stream header: damage there refuses the whole stream
    rng = random.Random(7)
    outcomes = {"refused": 0, "concealed": 0}
    for trial in range(40):
        pos = rng.randrange(len(data))
        bad = bytearray(data)
        bad[pos] ^= 1 << rng.randrange(8)
        path = tmp_path / f"bad{trial}.oval"
        path.write_bytes(bytes(bad))
        out = tmp_path / f"out{trial}.mkv"
        rc = decode_main([str(path), "-o", str(out), "--model", model_path, "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1, f"flip at byte {pos} went unnoticed"
        assert len(err) == 1 and "Traceback" not in err[0] and not out.exists()
        if pos < header_end:
            outcomes["refused"] += 1
            continue
        hit = next(frame for start, end, frame in units if start <= pos < end)
        partial_path = tmp_path / f"out{trial}.partial.mkv"
        if not partial_path.exists():  # nothing decodable before the damage
            assert hit == 0 and "no frame could be decoded" in err[0]
            continue
        partial = read_frames(str(partial_path))
        before = hit if hit is not None else len(clean)
        assert all(np.array_equal(a, b) for a, b in zip(partial[:before], clean[:before], strict=True))
        if hit is not None and len(partial) == len(clean):  # length intact: later GOPs untouched
            next_intra = (hit // period + 1) * period
            assert all(np.array_equal(partial[i], clean[i]) for i in range(len(clean)) if not hit <= i < next_intra)
        outcomes["concealed"] += 1
    assert outcomes["concealed"] > 20
