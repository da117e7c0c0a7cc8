"""benchmarks/rd.py against ffmpeg's encoders: a PNG, the numbers, and a BD-rate on a clip."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command (apt-get install ffmpeg)")


def load_rd():
    spec = importlib.util.spec_from_file_location("rd", Path(__file__).parents[1] / "benchmarks" / "rd.py")
    rd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rd)
    return rd


def test_bd_rate_of_known_curves():
    pytest.importorskip("bjontegaard")
    rd = load_rd()
    anchor = [{"bpp": b, "psnr": q} for b, q in ((0.1, 30), (0.2, 33), (0.4, 36), (0.8, 39))]
    better = [{"bpp": 0.9 * p["bpp"], "psnr": p["psnr"]} for p in anchor]
    value, note = rd.bd_rate(anchor, better)
    assert note is None and value == pytest.approx(-10.0, abs=0.1)
    assert rd.bd_rate(anchor, better[:1]) == (None, "needs two or more OVAL rate points")
    assert rd.bd_rate(anchor, [{"bpp": 0.1, "psnr": 7}, {"bpp": 0.2, "psnr": 8}])[0] is None


def test_bd_rate_takes_each_curve_on_its_front():
    """Flat content: x264's top CRFs cost more bits for less PSNR, and an OVAL level can code a
    flat frame in more bits than the level above it. Neither is a point anyone would pick: both
    curves are taken on their fronts (the measured tiktok-pexels-7247504 case), and the OVAL point
    left out is named."""
    pytest.importorskip("bjontegaard")
    rd = load_rd()
    anchor = [{"bpp": b, "psnr": q} for b, q in ((0.1, 30), (0.2, 33), (0.4, 36), (0.8, 39))]
    better = [{"bpp": 0.9 * p["bpp"], "psnr": p["psnr"], "quality": i + 1} for i, p in enumerate(anchor)]
    noisy_anchor = anchor + [{"bpp": 0.8, "psnr": 38.5}, {"bpp": 0.85, "psnr": 38.0}]
    assert rd.bd_rate(noisy_anchor, better)[0] == pytest.approx(-10.0, abs=0.1)
    off_front = better + [{"bpp": 0.25, "psnr": 31.0, "quality": 9}]
    value, note = rd.bd_rate(anchor, off_front)
    assert value == pytest.approx(-10.0, abs=0.1) and "q9 (0.250 bpp, 31.00 dB)" in note
    assert [p["quality"] for p in rd.front(off_front)] == [1, 2, 3, 4]


def test_rd_writes_plot_and_numbers(tmp_path, capsys):
    pytest.importorskip("bjontegaard")
    out = tmp_path / "out"
    assert load_rd().main(["carphone", "--out", str(out), "--frames", "3", "--codecs", "x264,svtav1",
                           "--gop", "3"]) == 0
    report = json.loads((out / "rd.json").read_text())
    result = report["clips"]["carphone"]
    assert report["summary"]["x264"]["clips"] == 1
    assert "x264_crf22_psnr" in result["top_level_vs_x264_crf22"]
    # The default model: one point per quality level, with P-frames and all intra.
    assert len(result["oval"]) == len(result["oval_intra"]) == 10 and len(result["codecs"]["x264"]) == 6
    for point in result["codecs"]["svtav1"] + result["oval"] + result["oval_intra"]:
        assert point["bpp"] > 0 and point["psnr"] > 0 and 0 < point["ms_ssim"] <= 1 and point["encode_fps"] > 0
    x264 = sorted(result["codecs"]["x264"], key=lambda p: p["crf"])
    assert x264[0]["bpp"] > x264[-1]["bpp"] and x264[0]["psnr"] > x264[-1]["psnr"]
    oval = sorted(result["oval"], key=lambda p: p["quality"])
    assert all(a["bpp"] < b["bpp"] and a["psnr"] < b["psnr"] for a, b in zip(oval, oval[1:]))
    # Two of three frames are P-frames: fewer bits than all intra at every level.
    assert all(t["bpp"] < i["bpp"] for t, i in zip(result["oval"], result["oval_intra"], strict=True))
    assert result["bd_rate_temporal_vs_intra"] < 0
    assert isinstance(result["bd_rate"]["x264"], float) and result["bd_rate_note"]["x264"] is None
    assert (out / "rd_carphone.png").stat().st_size > 5000
    text = capsys.readouterr().out
    assert "BD-rate of OVAL against x264" in text and "against OVAL all-intra" in text
    # Started again with the same settings, the measured points are reused, not coded again.
    assert load_rd().main(["carphone", "--out", str(out), "--frames", "3", "--codecs", "x264,svtav1",
                           "--gop", "3"]) == 0
    assert "reused" in capsys.readouterr().err
    assert json.loads((out / "rd.json").read_text())["clips"]["carphone"]["bd_rate"] == result["bd_rate"]
    # A run on other weights takes the classical codecs' points from the earlier rd.json where
    # the clip, frames and GOP match (nothing is coded again), and codes them where they do not.
    earlier = json.loads((out / "rd.json").read_text())["clips"]["carphone"]["codecs"]
    again = tmp_path / "again"
    assert load_rd().main(["carphone", "--out", str(again), "--frames", "3", "--codecs", "x264,svtav1",
                           "--gop", "3", "--qualities", "5,9", "--codec-points", str(out / "rd.json")]) == 0
    reused = json.loads((again / "rd.json").read_text())
    assert reused["clips"]["carphone"]["codecs"] == earlier
    assert reused["codec_points"] == str(out / "rd.json")
    assert not list((again / "streams" / "carphone").glob("x264_*")) and len(reused["clips"]["carphone"]["oval"]) == 2
    other_gop = tmp_path / "other-gop"
    assert load_rd().main(["carphone", "--out", str(other_gop), "--frames", "3", "--codecs", "x264",
                           "--gop", "2", "--qualities", "5,9", "--codec-points", str(out / "rd.json")]) == 0
    assert len(list((other_gop / "streams" / "carphone").glob("x264_*"))) == 6
    with pytest.raises(SystemExit, match="cannot read it"):
        load_rd().main(["carphone", "--out", str(other_gop), "--codec-points", str(tmp_path / "missing.json")])
