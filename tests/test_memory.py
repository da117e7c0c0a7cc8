"""Decoding memory is bounded: a 4K frame of oval-rt decodes within 2.5 GB, empty or oversized
streams are refused in one line before allocating, and running out of memory is one line too."""
import resource
import subprocess
import sys

import numpy as np
import pytest
import torch

from oval import bitstream
from oval.models.rt import RTModel
from oval.models.store import load_model, save_model

# VmHWM is this process's own peak (ru_maxrss would carry the forking test process's size).
PEAK = """
import sys
from oval.cli import decode_main
rc = decode_main(sys.argv[1:])
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("PEAK_KB", peak, "RC", rc)
"""


@pytest.fixture(scope="module")
def rt_model_path(tmp_path_factory):
    torch.manual_seed(0)
    model = RTModel().eval()  # full size: memory follows the architecture, not the training
    model.update()
    path = tmp_path_factory.mktemp("rt") / "rt.safetensors"
    save_model(model, path)
    return str(path)


def _decode(args, limit_bytes=None):
    def cap():
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, preexec_fn=cap)


@pytest.fixture(scope="module")
def stream_4k(rt_model_path, tmp_path_factory):
    from oval import codec
    model = load_model(rt_model_path)
    h, w = 2160, 3840
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.clip(np.stack([128 + 60 * np.sin(0.01 * xx + c) for c in range(3)], -1), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("s") / "uhd.oval"
    with open(path, "wb") as sink:
        encoder = codec.Encoder(model, sink, w, h, 25, 1, quality=6, intra_period=1)
        encoder.encode(frame)
        encoder.close()
    return str(path)


def test_a_4k_frame_decodes_within_2_5_gb(stream_4k, rt_model_path, tmp_path):
    result = _decode([stream_4k, "-o", str(tmp_path / "o.mkv"), "--model", rt_model_path, "--quiet"])
    peak_kb = int(result.stdout.split("PEAK_KB")[1].split()[0])
    assert "RC 0" in result.stdout and peak_kb < 2.5 * 2**20, (peak_kb, result.stderr)


def test_out_of_memory_is_one_line(stream_4k, rt_model_path, tmp_path):
    result = _decode([stream_4k, "-o", str(tmp_path / "o.mkv"), "--model", rt_model_path, "--quiet"],
                     limit_bytes=1300 * 2**20)
    assert "RC 1" in result.stdout and "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "out of memory" in lines[0]
    assert not list(tmp_path.iterdir())  # nothing that looks complete


def _header_stream(path, model, width, height, payload=b""):
    with open(path, "wb") as sink:
        header = bitstream.StreamHeader(model_arch=model.arch, model_fingerprint=model.fingerprint,
                                        width=width, height=height, quality=6, intra_period=1)
        writer = bitstream.StreamWriter(sink, header)
        writer.write_frame(bitstream.FramePacket(0, bitstream.FrameType.INTRA, 6, payload))
        writer.close()


def test_empty_and_oversized_frames_are_refused_in_one_line(rt_model_path, tmp_path):
    model = load_model(rt_model_path)
    for (w, h), expected, limit in (((2048, 2048), "frame 0: frame payload is too short", 600),
                                    ((16384, 16384), "over the limit", 400)):
        stream = tmp_path / f"s{w}.oval"
        _header_stream(stream, model, w, h)
        result = _decode([str(stream), "-o", str(tmp_path / "o.mkv"), "--model", rt_model_path, "--quiet"])
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert "RC 1" in result.stdout and len(lines) == 1 and expected in lines[0], result.stderr
        assert int(result.stdout.split("PEAK_KB")[1].split()[0]) < limit * 2**10
