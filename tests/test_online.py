"""python -m oval.online: streams the stock decoder reads, a watchable preview, flat memory."""
import json
import subprocess
import sys

import pytest

from conftest import moving_pattern, write_clip
from oval.cli import decode_main, encode_main
from oval.io import VideoReader, read_frames
from oval.online import main as online_main


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    frames = moving_pattern(16, 48, 64)
    return write_clip(tmp_path_factory.mktemp("online") / "long.mkv", frames * 10)  # 160 frames


def run(args, capsys):
    rc = online_main([str(a) for a in args] + ["--json", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_adapted_stream_decodes_with_the_stock_decoder(odd_clip, tiny_model_path, tmp_path, capsys):
    stats = run(["--source", odd_clip, "--model", tiny_model_path, "-o", tmp_path / "s.oval", "--preview",
                 tmp_path / "p.mp4", "--steps-per-frame", "2", "--lr", "1e-3"], capsys)
    assert stats["frames"] == 4 and stats["adaptation_steps"] == 8
    assert decode_main([str(tmp_path / "s.oval"), "-o", str(tmp_path / "d.mkv"), "--model", tiny_model_path,
                        "--quiet"]) == 0
    assert len(read_frames(str(tmp_path / "d.mkv"))) == 4
    with VideoReader(str(tmp_path / "p.mp4")) as preview:
        assert (preview.info.width, preview.info.height) == (2 * 71, 45)


def test_without_adaptation_it_is_the_plain_encoder(odd_clip, tiny_model_path, tmp_path, capsys):
    run(["--source", odd_clip, "--model", tiny_model_path, "-o", tmp_path / "o.oval", "--adapt", "none"], capsys)
    assert encode_main([odd_clip, "-o", str(tmp_path / "e.oval"), "--model", tiny_model_path, "--quiet"]) == 0
    assert (tmp_path / "o.oval").read_bytes() == (tmp_path / "e.oval").read_bytes()


def peak_mb(clip, model, frames, out):
    cmd = [sys.executable, "-m", "oval.online", "--source", clip, "--model", model, "-o", str(out),
           "--max-frames", str(frames), "--steps-per-frame", "1", "--json", "--quiet", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-1000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def test_peak_memory_does_not_grow_with_frames(long_clip, tiny_model_path, tmp_path):
    short = peak_mb(long_clip, tiny_model_path, 40, tmp_path / "a.oval")
    long = peak_mb(long_clip, tiny_model_path, 160, tmp_path / "b.oval")
    assert long < short * 1.05 + 8, (short, long)


def test_unreadable_source(tmp_path, capsys):
    rc = online_main(["--source", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "s.oval")])
    assert rc == 1 and "input not found" in capsys.readouterr().err
    assert not (tmp_path / "s.oval").exists()


@pytest.mark.parametrize("kind", ["tiny_rt_model_path", "tiny_rt_residual_model_path"])
def test_rt_model_adapts_with_decoder_updates(odd_clip, kind, tmp_path, capsys, request):
    tiny_rt_model_path = request.getfixturevalue(kind)  # without motion, and with motion and residual P-frames
    stats = run(["--source", odd_clip, "--model", tiny_rt_model_path, "-o", tmp_path / "s.oval", "--adapt", "full",
                 "--update-every", "2", "--steps-per-frame", "2", "--lr", "1e-2", "--quality", "7"], capsys)
    assert stats["frames"] == 4 and stats["update_bytes"] > 0
    assert decode_main([str(tmp_path / "s.oval"), "-o", str(tmp_path / "d.mkv"), "--model", tiny_rt_model_path,
                        "--quiet"]) == 0
    assert len(read_frames(str(tmp_path / "d.mkv"))) == 4
