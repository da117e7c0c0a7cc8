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


def test_export_default_writes_valid_onnx_close_to_torch(tmp_path, capsys):
    assert export_main(["default", "--out", str(tmp_path), "--frames", "2"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for name in ("encoder.onnx", "decoder.onnx"):
        model = onnx.load(str(tmp_path / name))
        onnx.checker.check_model(model, full_check=True)
        ops = {n.op_type for n in model.graph.node}
        assert all(n.domain in ("", "ai.onnx") for n in model.graph.node), "custom ops"
        assert "Conv" in ops or "ConvTranspose" in ops
    assert manifest["arch"] == "oval-video" and len(manifest["fingerprint"]) == 32
    assert manifest["latent_networks"] == "torch"
    assert manifest["parity"]["encoder_max_abs_diff"] < 1e-4 and manifest["parity"]["decoder_max_abs_diff"] < 1e-4
    from safetensors.torch import load_file
    tables = load_file(str(tmp_path / "entropy.safetensors"))
    assert "gaussian.table_counts" in tables and "intra_densities.5.table_counts" in tables
    assert "largest difference" in capsys.readouterr().err


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
