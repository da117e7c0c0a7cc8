"""Golden streams: committed .oval files decode to frames whose MD5s match tests/golden/expected.json,
or, on a CPU whose float kernels round otherwise, within a level or two of the reference frames kept
beside them (regenerate on purpose with `python tests/golden/generate.py`)."""
import importlib.util
import json
from pathlib import Path

import pytest

from oval import bitstream
from oval.models.store import load_model

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())


def _generator():
    spec = importlib.util.spec_from_file_location("golden_generate", GOLDEN / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_expected_matches_the_format_version():
    assert EXPECTED["format_version"] == bitstream.FORMAT_VERSION, \
        "the format version changed: regenerate the golden streams (python tests/golden/generate.py)"


def test_golden_set_covers_frame_types_qualities_and_colour_spaces():
    """What the recorded streams hold (read from their headers), not what generate.py meant to write."""
    streams = EXPECTED["streams"]
    assert {t for s in streams.values() for t in s["frame_types"]} == {"INTRA", "INTER"}
    for name, entry in streams.items():
        with open(GOLDEN / f"{name}.oval", "rb") as f:
            header = bitstream.StreamReader(f).header
        assert (header.quality, header.colour_space.name, header.model_arch) == \
            (entry["quality"], entry["colour_space"], entry["arch"])
        assert [header.width, header.height] == entry["size"]
    assert {s["quality"] for s in streams.values()} >= {0, 1, 2, 3, 4, 5, 6, 10}
    assert {s["colour_space"] for s in streams.values()} == {"RGB", "YCBCR_BT601", "YCBCR_BT709"}
    assert {s["arch"] for s in streams.values()} == {"oval-factorized", "oval-video", "oval-rt"}
    assert any(min(s["size"]) % 8 for s in streams.values())  # a size off the stride
    root = GOLDEN.parents[1]
    configs = {name: getattr(load_model(s["model_file"] if s["model_file"] == "default" else str(root / s["model_file"])),
                             "config", None) for name, s in streams.items() if "INTER" in s["frame_types"]}
    motion = [name for name, config in configs.items() if getattr(config, "motion", False)]
    assert motion, "no golden stream has P-frames with explicit motion"
    from oval.models.rt import SKIP_FLAG

    def has_skips(name):
        with open(GOLDEN / f"{name}.oval", "rb") as f:
            return any(p.frame_type == bitstream.FrameType.INTER and p.payload[0] & SKIP_FLAG
                       for p in bitstream.StreamReader(f))
    assert any(has_skips(name) for name in motion if getattr(configs[name], "skip_frames", False)), \
        "no golden stream has skipped P-frames"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(EXPECTED["streams"]))
def test_golden_stream_decodes_to_the_recorded_frames(name, threads):
    import torch
    gen = _generator()
    entry = EXPECTED["streams"][name]
    spec = entry["model_file"]  # as python -m oval.doctor reads it
    model = load_model(spec if spec == "default" else str(GOLDEN.parents[1] / spec))
    assert model.fingerprint.hex() == entry["fingerprint"], f"{entry['model']} changed: regenerate the goldens"
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        frames = gen.decode_frames(GOLDEN / f"{name}.oval", model)
    finally:
        torch.set_num_threads(before)
    assert not gen.unlike_reference(name, frames, entry["frame_md5"])


def test_a_decode_unlike_its_reference_is_caught(tmp_path, monkeypatch):
    """The tolerance is not a pass for anything: one pixel changed by more than it, or many pixels
    by one level, is a failure, named."""
    gen = _generator()
    name, entry = "default", EXPECTED["streams"]["default"]
    with __import__("numpy").load(gen.reference_path(name)) as kept:
        frames = list(kept["frames"])
    assert not gen.unlike_reference(name, frames, ["not the recorded md5"] * len(frames))
    bumped = [f.copy() for f in frames]
    bumped[1][5, 7, 0] = (int(bumped[1][5, 7, 0]) + 40) % 256
    assert "up to" in gen.unlike_reference(name, bumped, entry["frame_md5"])
    shifted = [(f.astype(int) + 1).clip(0, 255).astype(f.dtype) for f in frames]
    assert "levels" in gen.unlike_reference(name, shifted, entry["frame_md5"])
    monkeypatch.setattr(gen, "HERE", tmp_path)
    assert "no reference" in gen.unlike_reference(name, bumped, entry["frame_md5"])


def test_other_format_versions_are_refused_by_name(tmp_path):
    data = bytearray((GOLDEN / "factorized_intra.oval").read_bytes())
    data[4] = bitstream.FORMAT_VERSION + 1
    with pytest.raises(bitstream.FormatError, match=f"version {bitstream.FORMAT_VERSION + 1} is not supported"):
        bitstream.StreamReader(__import__("io").BytesIO(bytes(data)))
