"""python -m oval.export and the codec's --backend: ONNX validity, ONNX Runtime parity, cross-backend
decoding both ways, and the clear message where TensorRT is missing."""
import json

import numpy as np
import onnx
import pytest

from oval.cli import decode_main, encode_main
from oval.metrics import psnr
from oval.export import tensorrt as trt_export
from oval.export.__main__ import main as export_main
from oval.export.onnx import SizeProfile, parse_size
from oval.io import read_frames


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("OVAL_CACHE", str(tmp_path_factory.getbasetemp() / "oval-cache"))


def _check_graph(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node), "custom ops"
    return {n.op_type for n in model.graph.node}


def test_export_default_writes_valid_onnx_close_to_torch(tmp_path, capsys):
    """The default (oval-rt): its five float graphs, each in ONNX Runtime within 1e-4 of torch, and
    its integer prior networks and tables beside them."""
    assert export_main(["default", "--out", str(tmp_path), "--frames", "2"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["arch"] == "oval-rt" and len(manifest["fingerprint"]) == 32
    assert set(manifest["graphs"]) == {"g_a_intra", "g_s_intra", "g_a_inter", "g_s_inter", "context"}
    for name, graph in manifest["graphs"].items():
        assert "Conv" in _check_graph(tmp_path / graph["file"])
        assert manifest["parity"][f"{name}_max_abs_diff"] < 1e-4
    from safetensors.torch import load_file
    integer = load_file(str(tmp_path / "entropy.safetensors"))
    assert any(k.endswith(".w_int") for k in integer) and any(".table_" in k for k in integer)
    assert "largest difference" in capsys.readouterr().err


def test_export_of_an_earlier_model(tmp_path, capsys):
    """oval-video (the previous default, still shipped): encoder and decoder graphs."""
    from pathlib import Path
    video = Path(__file__).parents[1] / "oval" / "weights" / "video-2026-11-25.safetensors"
    assert export_main([str(video), "--out", str(tmp_path), "--frames", "2"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for name in ("encoder.onnx", "decoder.onnx"):
        ops = _check_graph(tmp_path / name)
        assert "Conv" in ops or "ConvTranspose" in ops
    assert manifest["arch"] == "oval-video" and manifest["latent_networks"] == "torch"
    assert manifest["parity"]["encoder_max_abs_diff"] < 1e-4 and manifest["parity"]["decoder_max_abs_diff"] < 1e-4
    from safetensors.torch import load_file
    tables = load_file(str(tmp_path / "entropy.safetensors"))
    assert "gaussian.table_counts" in tables and "intra_densities.5.table_counts" in tables


def run(main, args, capsys):
    rc = main([str(a) for a in args] + ["--quiet", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def streams(carphone, tmp_path_factory):
    """carphone (held out) encoded by each backend."""
    d = tmp_path_factory.mktemp("backends")
    for backend in ("torch", "onnxruntime"):
        rc = encode_main([carphone, "-o", str(d / f"{backend}.oval"), "--backend", backend, "--max-frames", "3",
                          "--recon", str(d / f"{backend}_recon.mkv"), "--quiet"])
        assert rc == 0
    return d


@pytest.mark.parametrize("encoder,decoder", [("onnxruntime", "torch"), ("torch", "onnxruntime")])
def test_streams_decode_across_backends(streams, carphone, encoder, decoder, tmp_path, capsys):
    source = read_frames(carphone, 3)
    run(decode_main, [streams / f"{encoder}.oval", "-o", tmp_path / "x.mkv", "--backend", decoder], capsys)
    run(decode_main, [streams / "torch.oval", "-o", tmp_path / "ref.mkv", "--backend", "torch"], capsys)
    cross = np.mean([psnr(a, b) for a, b in zip(source, read_frames(str(tmp_path / "x.mkv")), strict=True)])
    ref = np.mean([psnr(a, b) for a, b in zip(source, read_frames(str(tmp_path / "ref.mkv")), strict=True)])
    assert abs(cross - ref) < 0.05


def test_each_backend_decodes_its_own_recon(streams, tmp_path, capsys):
    run(decode_main, [streams / "onnxruntime.oval", "-o", tmp_path / "d.mkv", "--backend", "onnxruntime"], capsys)
    dec, rec = read_frames(str(tmp_path / "d.mkv")), read_frames(str(streams / "onnxruntime_recon.mkv"))
    assert all(np.array_equal(a, b) for a, b in zip(dec, rec, strict=True))


def test_tensorrt_missing_is_one_clear_line(tmp_path, capsys, bikes):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    assert export_main(["default", "--out", str(tmp_path / "e"), "--tensorrt"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install tensorrt" in err[0]
    rc = encode_main([bikes, "-o", str(tmp_path / "s.oval"), "--backend", "tensorrt", "--max-frames", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "TensorRT is not installed" in err[-1] and not (tmp_path / "s.oval").exists()


def test_engine_profiles_follow_the_stride():
    shapes = trt_export.profile_shapes(SizeProfile(parse_size("100x50"), parse_size("1280x720"),
                                                   parse_size("1920x1080")), 16, 96)
    assert shapes["x"] == ((1, 3, 64, 112), (1, 3, 720, 1280), (1, 3, 1088, 1920))
    assert shapes["y_hat"] == ((1, 96, 4, 7), (1, 96, 45, 80), (1, 96, 68, 120))
    with pytest.raises(Exception, match="must grow"):
        trt_export.profile_shapes(SizeProfile((720, 1280), (64, 64), (1080, 1920)), 16, 96)
    with pytest.raises(Exception, match="WIDTHxHEIGHT"):
        parse_size("big")


def test_engine_profiles_of_a_multi_input_graph():
    """oval-rt's graphs: frames at full size, features and latents at 1/8, the level fixed."""
    from oval.models.store import build_model
    model = build_model("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16})
    _, examples, names_in, _ = model.graphs()["g_s_inter"]
    profile = SizeProfile(parse_size("100x50"), parse_size("1280x720"), parse_size("1920x1080"))
    shapes = trt_export.graph_profile_shapes(profile, model.stride, examples, names_in)
    assert shapes["y_hat"] == ((1, 16, 7, 13), (1, 16, 90, 160), (1, 16, 135, 240))
    assert shapes["context"][2] == (1, 16, 135, 240) and shapes["level"] == ((1,), (1,), (1,))
    _, examples, names_in, _ = model.graphs()["g_a_intra"]
    assert trt_export.graph_profile_shapes(profile, model.stride, examples, names_in)["x"][1] == (1, 3, 720, 1280)
