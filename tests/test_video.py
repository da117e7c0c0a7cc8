"""The temporal, multi-rate model: P-frames through the real codec, references, quality levels."""
import io
import json

import numpy as np
import pytest
import torch

from conftest import moving_pattern
from oval import bitstream as bs
from oval import codec
from oval.cli import decode_main, encode_main
from oval.entropy import TableCoder, pmf_to_counts
from oval.io import read_frames
from oval.models.entropy_models import GaussianConditional
from oval.models.store import load_model


@pytest.fixture(scope="module")
def tiny_video(tiny_video_model_path):
    return load_model(tiny_video_model_path)


def encode(model, frames, **kwargs):
    sink = io.BytesIO()
    h, w = frames[0].shape[:2]
    encoder = codec.Encoder(model, sink, w, h, 25, len(frames), **kwargs)
    results = [encoder.encode(f) for f in frames]
    encoder.close()
    return sink.getvalue(), results


def decode(model, data):
    reader = codec.open_stream(io.BytesIO(data))
    decoder = codec.Decoder(model, reader.header)
    return reader.header, [decoder.decode(p) for p in reader]


def test_indexed_tables_round_trip_with_escapes():
    rng = np.random.default_rng(0)
    tables = [pmf_to_counts(np.full(n, 1 / n) * 0.999, 0.001) for n in (3, 5, 9)]
    width = max(map(len, tables))
    counts = np.stack([np.pad(t, (0, width - len(t))) for t in tables])
    coder = TableCoder([-1, -2, -4], [3, 5, 9], counts)
    values = rng.integers(-6, 7, size=(4, 5, 6)).astype(np.int32)
    values[0, 0, 0] = 1000  # far outside every table: the escape path
    index = rng.integers(0, 3, size=values.shape)
    assert np.array_equal(coder.decode_indexed(coder.encode_indexed(values, index), index), values)


def test_gaussian_tables_match_their_scales():
    g = GaussianConditional()
    g.update()
    residual = torch.arange(-400, 401, dtype=torch.float32)
    for scale in (0.11, 1.0, 20.0):
        total = g.likelihood(residual, torch.full_like(residual, scale)).sum()
        assert abs(float(total) - 1) < 1e-3
    # The table picked for a scale is the first one at or above it.
    idx = g.table_indexes(torch.tensor([0.05, 1.0, 1000.0]))
    assert idx[0] == 0 and g.scale_table[idx[1]] >= 1.0 > g.scale_table[idx[1] - 1] and idx[2] == 63


def test_p_frames_follow_the_intra_period_and_decode_exactly(tiny_video):
    frames = moving_pattern(7, 40, 56)
    data, results = encode(tiny_video, frames, quality=2, intra_period=3)
    types = [r.frame_type for r in results]
    assert types == [bs.FrameType.INTRA, bs.FrameType.INTER, bs.FrameType.INTER] * 2 + [bs.FrameType.INTRA]
    header, decoded = decode(tiny_video, data)
    assert header.quality == 2 and header.intra_period == 3
    for r, d in zip(results, decoded, strict=True):
        assert np.array_equal(r.recon, d)
    again = decode(tiny_video, data)[1]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, again, strict=True))


def test_quality_levels_are_checked_and_recorded(tiny_video):
    frames = moving_pattern(2, 32, 32)
    for q in (1, 6):
        assert decode(tiny_video, encode(tiny_video, frames, quality=q)[0])[0].quality == q
    for bad in (0, 7):
        with pytest.raises(ValueError, match="--quality must be 1..6"):
            codec.Encoder(tiny_video, io.BytesIO(), 32, 32, quality=bad)


def test_a_lost_reference_is_concealed_until_the_next_i_frame(tiny_video_model_path, tmp_path, capsys):
    from conftest import write_clip
    clip = write_clip(tmp_path / "in.mkv", moving_pattern(6, 32, 48))
    stream = tmp_path / "s.oval"
    assert encode_main([str(clip), "-o", str(stream), "--model", tiny_video_model_path,
                        "--intra-period", "3", "--quiet"]) == 0
    assert decode_main([str(stream), "-o", str(tmp_path / "clean.mkv"), "--model", tiny_video_model_path,
                        "--quiet"]) == 0
    clean = read_frames(str(tmp_path / "clean.mkv"))
    # Damage frame 1 (a P-frame): frames 1 and 2 are concealed, frame 3 (an I-frame) recovers.
    data = bytearray(stream.read_bytes())
    reader = bs.StreamReader(io.BytesIO(bytes(data)))  # has read the stream header
    ends = []
    while reader.read_unit() is not None:
        ends.append(reader.offset)
    data[ends[1] - 8] ^= 0x10  # inside frame 1's payload
    (tmp_path / "bad.oval").write_bytes(bytes(data))
    capsys.readouterr()
    assert decode_main([str(tmp_path / "bad.oval"), "-o", str(tmp_path / "out.mkv"), "--model",
                        tiny_video_model_path, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "frame 1 is corrupt" in err and "2 corrupt frames concealed" in err
    out = read_frames(str(tmp_path / "out.partial.mkv"))
    assert len(out) == 6
    assert np.array_equal(out[0], clean[0]) and np.array_equal(out[1], clean[0]) and np.array_equal(out[2], clean[0])
    assert all(np.array_equal(out[i], clean[i]) for i in (3, 4, 5))


def test_cli_reports_quality_and_refuses_intra_period_for_intra_models(tiny_video_model_path, tiny_model_path,
                                                                       odd_clip, tmp_path, capsys):
    assert encode_main([odd_clip, "-o", str(tmp_path / "v.oval"), "--model", tiny_video_model_path,
                        "--quality", "5", "--json", "--quiet"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["quality"] == 5 and stats["intra_period"] == codec.DEFAULT_INTRA_PERIOD
    assert encode_main([odd_clip, "-o", str(tmp_path / "f.oval"), "--model", tiny_model_path,
                        "--intra-period", "8"]) == 2  # a bad argument for this model
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "codes intra frames only" in err


def test_onnxruntime_backend_decodes_the_torch_stream(tiny_video_model_path, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("OVAL_CACHE", str(tmp_path / "cache"))
    from oval.export import runtimes
    model = load_model(tiny_video_model_path)
    frames = moving_pattern(4, 32, 48)
    data, results = encode(model, frames, intra_period=0)
    ort_model = runtimes.load("onnxruntime", model, torch.device("cpu"))
    _, decoded = decode(ort_model, data)
    for r, d in zip(results, decoded, strict=True):
        assert np.abs(r.recon.astype(int) - d.astype(int)).max() <= 1


def test_online_encoder_adaptation_of_a_temporal_model_is_read_by_the_stock_decoder(tiny_video_model_path,
                                                                                     odd_clip, tmp_path):
    from oval import online
    stream = tmp_path / "o.oval"
    assert online.main(["--source", odd_clip, "--model", tiny_video_model_path, "-o", str(stream),
                        "--steps-per-frame", "2", "--window", "2", "--quality", "3", "--quiet"]) == 0
    assert decode_main([str(stream), "-o", str(tmp_path / "o.mkv"), "--model", tiny_video_model_path,
                        "--quiet"]) == 0
    assert len(read_frames(str(tmp_path / "o.mkv"))) == 4


@pytest.mark.parametrize("model_fixture", ["tiny_video_model_path", "tiny_model_path"])
def test_full_adaptation_sends_decoder_updates_the_stock_decoder_follows(model_fixture, odd_clip, tmp_path,
                                                                         request, capsys):
    from oval import online
    model_path = request.getfixturevalue(model_fixture)
    stream, preview = tmp_path / "full.oval", tmp_path / "preview.mkv"
    assert online.main(["--source", odd_clip, "--model", model_path, "-o", str(stream), "--adapt", "full",
                        "--steps-per-frame", "3", "--window", "2", "--lr", "0.01", "--update-every", "1",
                        "--preview", str(preview), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["updates"] >= 1 and 0 < result["update_bytes"] < stream.stat().st_size
    items = list(bs.StreamReader(open(stream, "rb")))
    assert sum(isinstance(i, bs.ModelUpdate) for i in items) == result["updates"]
    assert decode_main([str(stream), "-o", str(tmp_path / "d.mkv"), "--model", model_path, "--quiet"]) == 0
    decoded = read_frames(str(tmp_path / "d.mkv"))
    encoder_side = [f[15:, f.shape[1] // 2:] for f in read_frames(str(preview))]  # below the text bar
    assert len(decoded) == len(encoder_side) == 4
    assert all(np.array_equal(a[15:], b) for a, b in zip(decoded, encoder_side, strict=True))
    # The updates matter: a decoder that skipped them would produce other frames.
    model = load_model(model_path)
    reader = codec.open_stream(open(stream, "rb"))
    stale = codec.Decoder(model, reader.header)
    skipped = [stale.decode(i) for i in reader if isinstance(i, bs.FramePacket)]
    assert any(not np.array_equal(a, b) for a, b in zip(decoded, skipped, strict=True))


def test_model_update_payloads_are_checked():
    update = bs.ModelUpdate(1, 8, (3, -2, 0, 1000000))
    assert bs.ModelUpdate.unpack(update.pack()) == update
    for bad in (b"\x01\x08\x05" + b"garbage", b"\x01\x08" + bs.write_varint(1 << 21),
                update.pack() + b"\x00"):
        with pytest.raises(bs.FormatError):
            bs.ModelUpdate.unpack(bad)


def test_backbone_stem_loads_local_torchvision_weights(odd_clip, tmp_path, capsys):
    from torch import nn

    from oval import train
    from oval.models.backbone import ResNetStem, load_resnet_stem

    # The stem of a torchvision ResNet, under torchvision's names, with non-trivial batch norm.
    torch.manual_seed(0)
    resnet = nn.Module()
    resnet.conv1, resnet.bn1, resnet.relu = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU()
    with torch.no_grad():
        for t in (resnet.bn1.weight, resnet.bn1.bias, resnet.bn1.running_mean):
            t.uniform_(-1, 1)
        resnet.bn1.running_var.uniform_(0.5, 2)
    resnet.eval()
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    stem = ResNetStem()
    load_resnet_stem(stem, str(tmp_path / "resnet18.pth"))
    x = torch.rand(1, 3, 32, 32)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = resnet.relu(resnet.bn1(resnet.conv1((x - mean) / std)))
        assert torch.allclose(stem(x), expected, atol=1e-5)  # batch norm folded exactly
    # Through the trainer: a wrong file is refused in one line, the right one trains.
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    common = ["--data", odd_clip, "--arch", "oval-video", "--frames", "2", "--backbone", "resnet",
              "--crop", "32", "--batch-size", "2", "--steps", "2", "--val-every", "2", "--val-frames", "2",
              "--N", "8", "--M", "8"]
    assert train.main(common + ["--out", str(tmp_path / "bad"), "--backbone-weights", str(tmp_path / "other.pth")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not a torchvision ResNet state dict" in err
    assert train.main(common + ["--out", str(tmp_path / "good"), "--backbone-weights",
                                str(tmp_path / "resnet18.pth")]) == 0
    assert load_model(str(tmp_path / "good")).config.backbone == "resnet"
