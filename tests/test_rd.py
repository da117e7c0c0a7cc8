"""benchmarks/rd.py against ffmpeg's encoders: a PNG, the numbers, and a BD-rate on a clip."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

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


def test_rd_writes_plot_and_numbers(tmp_path, capsys):
    pytest.importorskip("bjontegaard")
    from oval.models.store import build_model, save_model
    torch.manual_seed(0)
    model = build_model("oval-factorized", {"N": 8, "M": 8}).eval()
    model.update()
    save_model(model, tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    assert load_rd().main(["carphone", "--out", str(out), "--frames", "3", "--codecs", "x264,svtav1",
                           "--models", f"default,{tmp_path / 'tiny.safetensors'}"]) == 0
    result = json.loads((out / "rd.json").read_text())["carphone"]
    assert len(result["oval"]) == 2 and len(result["codecs"]["x264"]) == 6
    for point in result["codecs"]["svtav1"] + result["oval"]:
        assert point["bpp"] > 0 and point["psnr"] > 0 and 0 < point["ms_ssim"] <= 1 and point["encode_fps"] > 0
    x264 = sorted(result["codecs"]["x264"], key=lambda p: p["crf"])
    assert x264[0]["bpp"] > x264[-1]["bpp"] and x264[0]["psnr"] > x264[-1]["psnr"]
    assert isinstance(result["bd_rate"]["x264"], float) and result["bd_rate_note"]["x264"] is None
    assert (out / "rd_carphone.png").stat().st_size > 5000
    assert "BD-rate of OVAL against x264" in capsys.readouterr().out
