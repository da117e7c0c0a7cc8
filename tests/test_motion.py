"""Explicit motion: the estimator finds a known sub-pixel shift, vectors round-trip through their
integer coding, the latent shift is an exact gather, and a motion model's streams decode to the
encoder's pictures at any thread count."""
import io

import numpy as np
import pytest
import torch

from conftest import moving_pattern
from oval import codec
from oval.bitstream import FormatError, FrameType
from oval.models import motion, motion_search
from oval.models.rt import RTConfig, RTModel
from oval.models.store import fingerprint


def _textured(height, width, seed=0):
    """Smooth random texture (blurred noise): block matching has something to hold on to."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, height // 4, width // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def test_a_known_sub_pixel_shift_is_found_and_warps_back():
    ref = _textured(96, 128)
    shift = torch.tensor([3.25, -1.5]).view(1, 2, 1, 1).expand(1, 2, 96, 128)
    cur = motion.warp(ref, shift)
    v = motion_search.estimate(cur, ref)
    assert v.shape == (1, 2, 6, 8) and v.dtype == torch.int64
    inner = v[0, :, 1:-1, 1:-1]  # edge blocks see repeated border pixels
    assert (inner[0] == 13).float().mean() > 0.8 and (inner[1] == -6).float().mean() > 0.8
    before = ((cur - ref) ** 2).mean()
    after = ((cur - motion.warp(ref, motion.flow(v, 96, 128))) ** 2).mean()
    assert after < before / 20


def test_a_still_picture_gets_zero_vectors_that_cost_a_few_bytes():
    ref = _textured(64, 64, seed=1)
    v = motion_search.estimate(ref, ref)
    assert not v.any()
    assert len(motion.encode(v)) < 16


@pytest.mark.parametrize("predictor", motion.PREDICTORS)
@pytest.mark.parametrize("seed,blocks", [(0, (5, 7)), (1, (5, 7)), (2, (1, 6)), (3, (4, 1)), (4, (3, 2))])
def test_vectors_round_trip_through_their_coding(seed, blocks, predictor):
    rng = np.random.default_rng(seed)
    v = torch.from_numpy(rng.integers(-300, 300, (1, 2, *blocks)))  # far outside the tables: escapes
    v[0, :, blocks[0] // 2:] = 12  # and a uniform run
    data = motion.encode(v, predictor) + b"rest"
    decoded, used = motion.decode(data, blocks, predictor=predictor)
    assert torch.equal(decoded, v) and data[used:] == b"rest"


def test_the_median_predictor_follows_a_field_that_changes_along_the_row():
    """A zoom's vectors grow across the row: against the left neighbour every block codes the step,
    against the median of left, above and above-right the one above predicts it exactly (but in the
    last column, which takes above-left for the missing above-right)."""
    columns = torch.arange(12) * 6 - 33
    v = torch.stack([columns.expand(8, 12), (columns // 3).expand(8, 12)])[None]
    left, median = motion.encode(v, "left"), motion.encode(v, "median")
    assert len(median) < 0.6 * len(left)  # the first row and the last column still code the steps
    assert torch.equal(motion.decode(median, (8, 12), predictor="median")[0], v)
    r = motion._residuals(v[0].numpy(), "median")
    assert not r[:, 1:, :-1].any() and (motion._residuals(v[0].numpy(), "left")[:, :, 1:] != 0).all()


@pytest.mark.parametrize("switch, default, other", [("vector_predictor", "left", "median"),
                                                     ("compensation", "smooth", "obmc")])
def test_a_coding_switch_is_part_of_the_fingerprint_and_of_the_stream(switch, default, other):
    """Same weights, another vector predictor or compensation: another fingerprint, so a decoder
    holding the same weights with the other switch refuses the stream instead of decoding wrong
    pictures."""
    model = _motion_model(residual=True)
    before = fingerprint(model)
    setattr(model.config, switch, other)
    model.fingerprint = fingerprint(model)
    assert model.fingerprint != before
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 80, 48, 25, 3, quality=5, intra_period=0, scene_cuts=False)
    recon = [encoder.encode(f).recon for f in _pan(3, 48, 80)]
    encoder.close()
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(model, reader.header)
    assert all(np.array_equal(decoder.decode(p), r) for p, r in zip(reader, recon, strict=True))
    setattr(model.config, switch, default)
    model.fingerprint = fingerprint(model)
    assert model.fingerprint == before  # the default adds nothing: older models keep theirs
    with pytest.raises(codec.ModelMismatch):
        codec.Decoder(model, codec.open_stream(io.BytesIO(sink.getvalue())).header)
    with pytest.raises(TypeError, match=switch):
        RTModel(RTConfig(C=16, M=16, Z=8, P=16, motion=True, **{switch: "mean"}))


def _periodic(height, width, period=8, seed=4):
    """A texture that repeats every `period` pixels both ways: any vector off by whole periods
    matches as well as the true one (repeating texture, where block matching's fields go ragged)."""
    tile = torch.rand(1, 3, period, period, generator=torch.Generator().manual_seed(seed))
    return tile.repeat(1, 1, height // period + 2, width // period + 2)


def test_overlapped_blocks_predict_where_a_ragged_field_interpolated_fails():
    """Over repeating texture each block's vector is right up to whole periods; blending the
    vectors ("smooth") moves the in-between pixels by wrong amounts, blending the pictures each
    vector predicts ("obmc") does not."""
    scene = _periodic(64 + 32, 96 + 32)
    ref, cur = scene[..., 8:72, 8:104], scene[..., 10:74, 9:105]  # cur(p) = ref(p + (1, 2))
    hb, wb = motion.blocks_of(64, 96)
    ragged = torch.randint(-1, 2, (1, 2, hb, wb), generator=torch.Generator().manual_seed(1)) * 8  # whole periods
    vectors = (ragged + torch.tensor([1, 2]).view(1, 2, 1, 1)) * motion.QPEL
    inside = (slice(None), slice(None), slice(16, -16), slice(16, -16))  # the edges repeat pixels
    obmc = motion.predict(ref, vectors, compensation="obmc")
    smooth = motion.predict(ref, vectors, compensation="smooth")
    assert ((obmc - cur)[inside] ** 2).mean() < 1e-10
    assert ((smooth - cur)[inside] ** 2).mean() > 1e-3


def test_overlapped_blocks_equal_the_smooth_field_where_every_block_moves_alike():
    vectors = torch.tensor([7, -5]).view(1, 2, 1, 1).expand(1, 2, 3, 4)  # quarter pels, 3x4 blocks
    for scale in (1, 8):  # pixels, and the 1/8 grid's cells
        picture = torch.rand(1, 5, 48 // scale, 64 // scale, generator=torch.Generator().manual_seed(2))
        a = motion.move(picture, vectors, scale, compensation="obmc")
        b = motion.move(picture, vectors, scale, compensation="smooth")
        assert torch.allclose(a, b, atol=1e-5)


def test_the_search_geometry_blends_as_the_overlapped_compensation_does():
    hb, wb = 3, 5
    picture = torch.rand(1, 1, 16 * hb, 16 * wb, generator=torch.Generator().manual_seed(3))
    vectors = torch.randint(-9, 10, (1, 2, hb, wb), generator=torch.Generator().manual_seed(4)).float() / 4
    overlap = motion_search._Overlap(16 * hb, 16 * wb, hb, wb, "cpu")
    assert torch.allclose(overlap.predict(picture, vectors),
                          motion.move(picture, vectors * motion.QPEL, compensation="obmc"), atol=1e-5)


def test_the_overlapped_refinement_lowers_the_blended_prediction_error():
    """Two halves moving apart, split off the block grid: each block's own best vector suits its
    own pixels, not the blend over its neighbours'. Without a smoothness charge every phase's choice
    lowers the blended prediction's total error, so the refined field predicts better."""
    scene = _textured(96 + 32, 128 + 32, seed=5)
    ref = scene[..., 16:112, 16:144]
    cur = ref.clone()
    cur[..., :, 70:] = scene[..., 17:113, 16 + 70 + 2:144 + 2]  # the right part moved by (2, 1)
    hb, wb = motion.blocks_of(96, 128)
    luma = [c.mean(1, keepdim=True) for c in (cur, ref)]
    own = motion_search.estimate(cur, ref, 0.0).float() / motion.QPEL
    overlap = motion_search._Overlap(96, 128, hb, wb, "cpu")

    def error(v):
        return float((luma[0] - overlap.predict(luma[1], v)).abs().sum())
    refined = own
    for step in motion_search.OVERLAPPED_STEPS:
        before, refined = refined, motion_search._overlapped_refine(*luma, refined, step, 0.0, overlap)
        assert error(refined) <= error(before) + 1e-3
    assert error(refined) < 0.99 * error(own)  # 3.2% lower here
    searched = motion_search.estimate(cur, ref, 0.0, "overlapped")
    assert searched.dtype == torch.int64 and searched.shape == own.shape
    assert error(searched.float() / motion.QPEL) <= error(refined) + 1e-3


def test_choosing_vectors_by_their_bits_over_smooth_content_saves_them_at_the_same_prediction():
    """A sub-pixel pan over smooth, noisy content: the searched quarter-pel vectors scatter among
    near-equal matches. Weighing each block's error against its bits keeps the prediction and sends
    far fewer bits; with a huge weight on the error no phase's choice raises the blended error."""
    scene = torch.nn.functional.avg_pool2d(_textured(256, 320, seed=7), 9, 1, 4)
    ref = scene[..., 32:192, 32:256]
    shift = torch.tensor([1.3, 0.55]).view(1, 2, 1, 1).expand(1, 2, 160, 224)
    cur = motion.warp(ref, shift) + 0.03 * torch.randn(1, 3, 160, 224, generator=torch.Generator().manual_seed(0))
    hb, wb = motion.blocks_of(160, 224)
    luma = [c.mean(1, keepdim=True) for c in (cur, ref)]
    overlap = motion_search._Overlap(160, 224, hb, wb, "cpu")

    def error(v):
        return float(((luma[0] - overlap.predict(luma[1], v.float() / motion.QPEL)) ** 2).sum())
    searched = motion_search.estimate(cur, ref, 0.0, "overlapped")
    exact = motion_search.choose_by_rate(*luma, searched, 1e9, overlap, "median")
    assert error(exact) <= error(searched) + 1e-6
    chosen = motion_search.estimate(cur, ref, 0.0, "overlapped", rate_weight=3e3, predictor="median")
    assert torch.equal(chosen, motion_search.choose_by_rate(*luma, searched, 3e3, overlap, "median"))
    assert len(motion.encode(chosen, "median")) < 0.6 * len(motion.encode(searched, "median"))  # 32 against 72 bytes
    assert error(chosen) < 1.01 * error(searched)
    # On texture the vectors still follow the motion.
    textured = _textured(96, 128)
    moved = motion.warp(textured, torch.tensor([3.25, -1.5]).view(1, 2, 1, 1).expand(1, 2, 96, 128))
    inner = motion_search.estimate(moved, textured, search="overlapped", rate_weight=3e3)[0, :, 1:-1, 1:-1]
    assert (inner[0] == 13).float().mean() > 0.8 and (inner[1] == -6).float().mean() > 0.8


@pytest.mark.parametrize("hb,wb", [(3, 5), (4, 4), (1, 2)])
def test_a_phase_s_error_sums_over_the_pixels_its_blocks_reach(hb, wb):
    """tile_sums (a reshape over 32x32 tiles) gives each block of the phase the error of exactly
    the pixels one of whose four blend terms moves by its vector, at every edge."""
    height, width = 16 * hb, 16 * wb
    overlap = motion_search._Overlap(height, width, hb, wb, "cpu")
    error = torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    terms = torch.stack([rows[:, None] * wb + cols[None, :]
                         for _, rows, cols in motion.blend_terms(height, width, 16, hb, wb, "cpu")])
    assert len(overlap.phases) == (2 if hb == 1 else 4)  # a frame one block high has no odd rows
    for _, _, mine, phase, tiles in overlap.phases:
        sums = overlap.tile_sums(error, phase, tiles)[0, 0]
        for block in range(hb * wb):
            if mine.flatten()[block]:
                reached = (terms == block).any(0)
                assert torch.isclose(sums.flatten()[block], error[0, 0][reached].sum())
            else:
                assert sums.flatten()[block] == 0


def test_the_filter_aware_search_judges_with_the_taps_the_frame_will_name():
    """A smooth texture moved by a quarter pixel: bicubic predicts it better, and the refinement
    judges with bicubic; a whole-pixel move copies pixels alike with both: bilinear (the tie)."""
    ref = _textured(64, 96, seed=2)
    hb, wb = motion.blocks_of(64, 96)
    overlap = motion_search._Overlap(64, 96, hb, wb, "cpu")
    luma = ref.mean(1, keepdim=True)
    for shift, taps in ((0.25, "bicubic"), (1.0, "bilinear")):
        cur = motion.warp(luma, torch.tensor([shift, 0.0]).view(1, 2, 1, 1).expand(1, 2, 64, 96), "bicubic")
        v = torch.tensor([shift, 0.0]).view(1, 2, 1, 1).expand(1, 2, hb, wb).clone()
        assert motion_search._likely_taps(cur, luma, v, overlap) == taps
    searched = motion_search.estimate(motion.warp(ref, torch.tensor([0.25, 0.0]).view(1, 2, 1, 1).expand(1, 2, 64, 96)), ref,
                               0.0, "overlapped-filter")
    assert searched.dtype == torch.int64 and searched.shape == (1, 2, hb, wb)
    with pytest.raises(ValueError, match="search must be one of"):
        motion_search.estimate(ref, ref, 0.0, "obmc")


def test_damaged_vectors_are_refused_with_a_format_error():
    data = motion.encode(torch.zeros(1, 2, 3, 3, dtype=torch.long))
    with pytest.raises(FormatError):
        motion.decode(data[:2], (3, 3))
    with pytest.raises(FormatError):
        motion.decode(data[:1] + bytes([200, 0]) + data[3:], (3, 3))  # table index 200


@pytest.mark.parametrize("predictor", motion.PREDICTORS)
def test_randomly_damaged_vectors_decode_or_fail_with_a_format_error_only(predictor):
    rng = np.random.default_rng(0)
    good = motion.encode(torch.from_numpy(rng.integers(-20, 20, (1, 2, 6, 8))), predictor)
    refused = 0
    for _ in range(500):
        data = bytearray(good)
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        try:
            motion.decode(bytes(data[:rng.integers(0, len(data) + 1)]), (6, 8), predictor=predictor)
        except FormatError:
            refused += 1
    assert refused > 0


def test_tables_are_integer_and_complete():
    for decay in motion._DECAY:
        counts = motion._table_counts(decay)
        assert len(counts) == 2 * motion.RANGE + 2 and min(counts) >= 1 and sum(counts) == motion.TABLE_TOTAL
        assert counts[motion.RANGE] == max(counts)  # zero residual most likely


def test_latent_shift_is_an_exact_gather():
    latent = torch.arange(2 * 6 * 8, dtype=torch.float64).view(1, 2, 6, 8) * 16
    v = torch.zeros(1, 2, 3, 4, dtype=torch.long)
    v[0, 0] = 32  # one cell right (32 quarter-pels = 8 pixels)
    v[0, 1, 1] = -40  # the middle block row: about one cell up (rounded to whole cells)
    out = motion.shift_cells(latent, v)
    assert torch.equal(out[0, :, 0, :7], latent[0, :, 0, 1:])  # out(p) = latent(p + v)
    assert torch.equal(out[0, :, 0, 7], latent[0, :, 0, 7])  # clamped at the edge
    assert torch.equal(out[0, :, 2, :7], latent[0, :, 1, 1:])
    assert set(out.unique().tolist()) <= set(latent.unique().tolist())


def _motion_model(seed=0, residual=False, switchable_filter=False) -> RTModel:
    torch.manual_seed(seed)
    model = RTModel(RTConfig(C=16, M=16, Z=8, P=16, motion=True, residual=residual,
                             switchable_filter=switchable_filter)).eval()
    with torch.no_grad():  # an untrained stem starts at zero; let the prediction matter here
        model.motion_stem.weight.normal_(0, 0.1)
    model.update()
    model.fingerprint = fingerprint(model)
    return model


def _pan(n, height, width):
    big = (_textured(height + 64, width + 64, seed=3)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return [np.ascontiguousarray(big[2 * t:2 * t + height, 3 * t:3 * t + width]) for t in range(n)]


@pytest.mark.parametrize("residual,switchable_filter,predictor", [(False, False, "left"), (True, False, "left"),
                                                                  (True, True, "left"), (True, True, "median")])
def test_motion_streams_decode_to_the_encoders_pictures_at_1_and_2_threads(residual, switchable_filter, predictor):
    model = _motion_model(residual=residual, switchable_filter=switchable_filter)
    model.config.vector_predictor = predictor
    frames = _pan(4, 48, 80)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            sink = io.BytesIO()
            encoder = codec.Encoder(model, sink, 80, 48, 25, 4, quality=5, intra_period=0, scene_cuts=False)
            recon = [encoder.encode(f) for f in frames]
            encoder.close()
            assert [r.frame_type for r in recon][1:] == [codec.FrameType.INTER] * 3
            for m in (1, 2):
                torch.set_num_threads(m)
                reader = codec.open_stream(io.BytesIO(sink.getvalue()))
                decoder = codec.Decoder(model, reader.header)
                decoded = [decoder.decode(p) for p in reader]
                assert all(np.array_equal(a, b.recon) for a, b in zip(decoded, recon, strict=True))
            results.append(sink.getvalue())
        assert results[0] == results[1]  # the encoder's choices do not depend on the thread count
    finally:
        torch.set_num_threads(threads)


def test_the_training_forward_trains_the_motion_stem():
    model = _motion_model(1).train()
    clip = torch.from_numpy(np.stack(_pan(3, 32, 48))).permute(0, 3, 1, 2).float()[None] / 255
    out = model(clip, torch.tensor([4]), train_intra=False)
    (((out["x_hat"] - clip) ** 2).sum() - sum(torch.log2(v).sum() for v in out["likelihoods"].values())).backward()
    assert model.motion_stem.weight.grad is not None and model.motion_stem.weight.grad.abs().sum() > 0
    assert model.g_a_intra.stem.weight.grad is None


def test_untrained_lead_frames_make_the_reference_and_are_left_out():
    """forward(untrained=k) codes the first k frames without gradients and returns the rest: the
    same pictures and likelihoods as the full forward (the noise drawn alike), gradients only there."""
    model = _motion_model(4, residual=True).train()
    clip = torch.from_numpy(np.stack(_pan(5, 32, 48))).permute(0, 3, 1, 2).float()[None] / 255
    torch.manual_seed(7)
    full = model(clip, torch.tensor([4]), train_intra=False)
    torch.manual_seed(7)
    out = model(clip, torch.tensor([4]), train_intra=False, untrained=3)
    assert out["x_hat"].shape[1] == 2 and torch.equal(out["x_hat"], full["x_hat"][:, 3:])
    assert set(out["likelihoods"]) == {k for k in full["likelihoods"] if k.startswith(("frame3_", "frame4_"))}
    assert all(torch.equal(v, full["likelihoods"][k]) for k, v in out["likelihoods"].items())
    ((out["x_hat"] - clip[:, 3:]) ** 2).sum().backward()
    assert model.g_s_inter.head.weight.grad.abs().sum() > 0 and model.g_a_intra.stem.weight.grad is None


def test_a_motion_model_exports_its_context_with_the_picture_input(tmp_path):
    from oval.export.onnx import export_onnx
    model = _motion_model(2)
    manifest = export_onnx(model, tmp_path, _pan(1, 48, 80))
    assert manifest["graphs"]["context"]["inputs"] == ["feature", "prediction"]
    assert max(manifest["parity"].values()) < 1e-4


@pytest.mark.parametrize("motion_on", [True, False])
def test_the_encoder_runs_the_context_network_once_per_p_frame(motion_on):
    torch.manual_seed(3)
    model = RTModel(RTConfig(C=16, M=16, Z=8, P=16, motion=motion_on)).eval()
    model.update()
    model.fingerprint = fingerprint(model)
    calls = []
    run_graph = model.run_graph
    model.run_graph = lambda name, *a: (calls.append(name), run_graph(name, *a))[1]
    encoder = codec.Encoder(model, io.BytesIO(), 80, 48, 25, 3, quality=5, intra_period=0, scene_cuts=False,
                            charge_probe_period=0)
    for f in _pan(3, 48, 80):
        encoder.encode(f)
    assert calls.count("context") == 2  # two P-frames, one context each


def test_the_encoder_probes_its_smoothness_charges_per_group_and_keeps_the_cheapest():
    """With two charges and a probe every 2 P-frames, P-frames 1, 3 and 5 are coded with each, 2
    and 4 only with the charge the last probe chose; the kept frame is the cheaper candidate (the
    first charge winning within the margin) and the stream decodes to the encoder's pictures."""
    model = _motion_model(4, residual=True)
    model.smoothness_charges = (1000.0, 0.0)  # the second is the cheaper here: a first-kept bug shows
    searched = []
    estimate = model.estimate_motion
    model.estimate_motion = lambda x, reference, level, charge=None, search=None: (
        searched.append(charge), estimate(x, reference, level, charge, search))[1]
    candidates = []  # (payload, rate-distortion cost) of each probed candidate, in order
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 80, 48, 25, 6, quality=5, intra_period=0, scene_cuts=False,
                            charge_probe_period=2)
    cost = encoder._cost
    encoder._cost = lambda x, payload, reference: (candidates.append((payload, cost(x, payload, reference))),
                                                   candidates[-1][1])[1]
    recon, chosen = [], []
    for f in _pan(6, 48, 80):
        recon.append(encoder.encode(f).recon)
        chosen.append(encoder.charge)
    encoder.close()
    probe = [1000.0, 0.0]
    assert chosen[1] == 0.0 and searched == probe + [chosen[1]] + probe + [chosen[3]] + probe
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    packets = list(reader)
    for frame, first in ((1, 0), (3, 2), (5, 4)):
        pair = candidates[first:first + 2]
        kept = min(range(2), key=lambda i: pair[i][1] * (1 if i == 0 else 1 + codec.Encoder.CHARGE_MARGIN))
        assert packets[frame].payload == pair[kept][0] and chosen[frame] == probe[kept]
    decoder = codec.Decoder(model, reader.header)
    assert all(np.array_equal(decoder.decode(p), r) for p, r in zip(packets, recon, strict=True))


def test_the_encoder_can_probe_again_on_a_later_p_frame_of_the_group():
    """charge_probe_at=1: the group's first P-frame (predicted from the I-frame) and its second are
    each coded with every charge, and every second one after it (period 2)."""
    model = _motion_model(4, residual=True)
    model.smoothness_charges = (1000.0, 0.0)
    searched = []
    estimate = model.estimate_motion
    model.estimate_motion = lambda x, reference, level, charge=None, search=None: (
        searched.append(charge), estimate(x, reference, level, charge, search))[1]
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 80, 48, 25, 6, quality=5, intra_period=0, scene_cuts=False,
                            charge_probe_period=2, charge_probe_at=1)
    chosen = []
    recon = []
    for f in _pan(6, 48, 80):
        recon.append(encoder.encode(f).recon)
        chosen.append(encoder.charge)
    encoder.close()
    probe = [1000.0, 0.0]
    assert searched == probe + probe + [chosen[2]] + probe + [chosen[4]]
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(model, reader.header)
    assert all(np.array_equal(decoder.decode(p), r) for p, r in zip(reader, recon, strict=True))
    with pytest.raises(ValueError, match="charge_probe_at"):
        codec.Encoder(model, io.BytesIO(), 80, 48, charge_probe_at=-1)


def test_the_encoder_reconstructs_from_its_own_latents_without_range_decoding():
    """The encoder's reconstruction takes the latents it has just coded; a decoder range-decodes
    the stream and gets the same pictures."""
    model = _motion_model(3, residual=True)
    calls = []
    for prior in (model.prior_intra, model.prior_inter):
        prior.decompress = (lambda f: lambda *a, **k: (calls.append(1), f(*a, **k))[1])(prior.decompress)
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 80, 48, 25, 3, quality=5, intra_period=0, scene_cuts=False,
                            charge_probe_period=0)
    recon = [encoder.encode(f).recon for f in _pan(3, 48, 80)]
    encoder.close()
    assert calls == []
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(model, reader.header)
    assert all(np.array_equal(decoder.decode(p), r) for p, r in zip(reader, recon, strict=True))
    assert len(calls) == 3


def test_residual_p_frames_need_motion():
    with pytest.raises(TypeError, match="need motion"):
        RTModel(RTConfig(C=16, M=16, Z=8, P=16, residual=True))


def test_a_warm_started_residual_p_frame_is_the_intra_coded_residual():
    """Warm-started from its intra half, a residual model's P-frame is the intra codec applied to
    x - x̃ + 1/2, added back to x̃: what the trained P-frames start from."""
    model = _motion_model(4, residual=True)
    model.warm_start_inter()
    model.update()
    frames = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in _pan(2, 48, 80)]
    i_frame, reference = model.decompress_frame(model.compress_frame(frames[0], 5, None), (6, 10), 5, None)
    moves = model.estimate_motion(frames[1], reference, 5)
    prediction = model._predict(moves, reference.picture)
    residual = (frames[1] - prediction + 0.5)
    expected, _ = model.decompress_frame(model.compress_frame(residual, 5, None), (6, 10), 5, None)
    got, _ = model.decompress_frame(model.compress_frame(frames[1], 5, reference), (6, 10), 5, reference)
    # The same wherever the intra decoder did not clamp the residual picture to [0, 1].
    inside = (expected > 1e-6) & (expected < 1 - 1e-6)
    assert inside.float().mean() > 0.5
    assert torch.allclose(got[inside], (prediction + expected - 0.5).clamp(0, 1)[inside], atol=1e-4)


def test_init_from_a_model_whose_p_frames_code_another_signal_restarts_them(tmp_path):
    from oval.models.store import save_model
    from oval.train import init_from
    source = _motion_model(5)
    save_model(source, tmp_path / "conditional.safetensors", {"stage": "inter"})
    _, stage = init_from(_motion_model(6), str(tmp_path / "conditional.safetensors"))
    assert stage == "inter"
    _, stage = init_from(_motion_model(6, residual=True), str(tmp_path / "conditional.safetensors"))
    assert stage == "intra"


def _fractional_pan(n, height, width, step=(1.25, 0.5)):
    """A sharp texture moved by a fractional step per frame, resampled bicubically (as a camera
    moving over a detailed scene samples it)."""
    g = torch.Generator().manual_seed(5)
    scene = torch.rand(1, 3, height + 16, width + 16, generator=g)  # detail at every frequency
    frames = []
    for t in range(n):
        shift = torch.tensor([step[0] * t, step[1] * t]).view(1, 2, 1, 1).expand(1, 2, height + 16, width + 16)
        frames.append(motion.warp(scene, shift, "bicubic").clamp(0, 1)[..., 8:8 + height, 8:8 + width])
    return frames


def test_the_filter_choice_follows_the_content():
    """Sharp detail moving by fractions of a pixel predicts better bicubic; a frame that is itself
    a bilinear resampling of its reference (blurred the way bilinear blurs), bilinear."""
    ref, cur = _fractional_pan(2, 64, 96)
    vectors = motion_search.estimate(cur, ref)
    assert motion.choose_filters(cur, ref, vectors).tolist() == [1]
    errors = [((cur - motion.predict(ref, vectors, torch.tensor([k]))) ** 2).mean() for k in (0, 1)]
    assert errors[1] < 0.8 * errors[0]
    blurred = motion.warp(ref, motion.flow(vectors, *ref.shape[-2:]))
    assert motion.choose_filters(blurred, ref, vectors).tolist() == [0]
    # Zero vectors: both filters copy pixels, and the tie goes to bilinear (index 0).
    assert motion.choose_filters(ref, ref, torch.zeros_like(vectors)).tolist() == [0]


def test_a_switchable_filter_model_names_its_filter_and_refuses_a_bad_index():
    model = _motion_model(4, residual=True, switchable_filter=True)
    pan = _fractional_pan(3, 48, 80)
    frames = [(f[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8) for f in pan]
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 80, 48, 25, 3, quality=5, intra_period=0, scene_cuts=False)
    for f in frames:
        encoder.encode(f)
    encoder.close()
    payloads = list(codec.open_stream(io.BytesIO(sink.getvalue())))
    reference = model.decompress_frame(payloads[0].payload, (6, 10), 5, None)[1]
    second = torch.from_numpy(frames[1]).permute(2, 0, 1)[None].float() / 255
    payload = payloads[1].payload
    assert payload[0] == model.estimate_motion(second, reference, 5).filter  # the encoder's choice, first
    # The byte is what the decoder follows: the other filter decodes another picture.
    as_sent = model.decompress_frame(payload, (6, 10), 5, reference)[0]
    other = model.decompress_frame(bytes([1 - payload[0]]) + payload[1:], (6, 10), 5, reference)[0]
    assert (as_sent - other).abs().max() > 1e-3
    with pytest.raises(FormatError, match="filter"):
        model.decompress_frame(bytes([len(motion.FILTERS)]) + payloads[1].payload[1:], (6, 10), 5, reference)
    with pytest.raises(FormatError, match="filter"):
        model.decompress_frame(b"", (6, 10), 5, reference)


def test_switchable_filters_need_motion():
    with pytest.raises(TypeError, match="needs motion"):
        RTModel(RTConfig(C=16, M=16, Z=8, P=16, residual=False, switchable_filter=True))


def test_a_p_frame_far_worse_than_its_group_is_coded_intra():
    """A reference that starts to drift shows as a P-frame whose error jumps above the group's: the
    encoder codes that frame intra (it costs less), and the stream decodes to the encoder's pictures."""
    import torch
    model = _motion_model(2, residual=True)
    frames = moving_pattern(6, 48, 80)
    decompress, drifting = model.decompress_frame, []

    def decompress_frame(payload, shape, level, reference):
        x_hat, ref = decompress(payload, shape, level, reference)
        if reference is not None and drifting:  # what a drifted P-frame decodes to: nothing of the scene
            x_hat = torch.zeros_like(x_hat)
        return x_hat, ref
    model.decompress_frame = decompress_frame
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 80, 48, quality=5, intra_period=0, charge_probe_period=0)
    encoder.COLLAPSE_RATIO = 1.2  # this untrained model's P-frames are poor already
    results = []
    for i, f in enumerate(frames):
        drifting[:] = [True] if i == 4 else []
        results.append(encoder.encode(f))
    encoder.close()
    assert [r.frame_type for r in results] == [FrameType.INTRA] + [FrameType.INTER] * 3 + [
        FrameType.INTRA, FrameType.INTER]
    assert encoder.p_errors and len(encoder.p_errors) == 1  # the group restarted at frame 4
    model.decompress_frame = decompress
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(model, reader.header)
    assert all(np.array_equal(decoder.decode(p), r.recon) for p, r in zip(reader, results, strict=True))
    model.decompress_frame = decompress_frame
    kept = codec.Encoder(model, io.BytesIO(), 80, 48, quality=5, intra_period=0, scene_cuts=False,
                         charge_probe_period=0)
    kept.COLLAPSE_RATIO = 1.2
    types = []
    for i, f in enumerate(frames):
        drifting[:] = [True] if i == 4 else []
        types.append(kept.encode(f).frame_type)
    assert types == [FrameType.INTRA] + [FrameType.INTER] * 5  # without scene cuts, never


def test_training_draws_each_clips_charge_from_the_encoders():
    """Each training clip's vectors are searched at one of the charges the encoder probes, all of
    them drawn; the level scaling applies per sample; a model without motion draws none."""
    model = _motion_model(1, residual=True)
    torch.manual_seed(0)
    drawn = model.training_charges(300, torch.device("cpu"))
    assert drawn.shape == (300,) and set(drawn.tolist()) == set(motion_search.CHARGES)
    levels = torch.tensor([6, 4])
    scaled = motion_search.smoothness_for(levels, 6, torch.tensor([0.002, 0.006], dtype=torch.float64))
    assert scaled.shape == (2, 1, 1, 1) and torch.allclose(scaled.flatten(), torch.tensor([0.002, 0.012]))
    assert RTModel(RTConfig(C=16, M=16, Z=8, P=16)).training_charges(4, torch.device("cpu")) is None
