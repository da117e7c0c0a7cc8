"""oval-rt: the integer prior path is exact, the per-frame check catches a decoder that differs, the
codec's frames are the same at any thread count, and coding in stripes equals one pass."""
import io

import numpy as np
import pytest
import torch

from oval import codec
from oval.bitstream import FormatError
from oval.device import set_coding_math
from oval.models import integer
from oval.models.hyperprior import SKIP_TABLE, LatentPrior
from oval.models.rt import Reference, RTConfig, RTModel
from oval.models.store import fingerprint

TINY = RTConfig(C=16, M=16, Z=8, P=16)


def tiny_model(seed=0, **overrides) -> RTModel:
    torch.manual_seed(seed)
    cfg = RTConfig(**{**TINY.__dict__, **overrides})
    model = RTModel(cfg).eval()
    model.update()
    model.fingerprint = fingerprint(model)
    return model


def _numpy_conv(a: np.ndarray, w: np.ndarray, b: np.ndarray, shift: np.ndarray, k: int, relu: bool) -> np.ndarray:
    """The integer layer in plain int64 numpy: the reference the float64 form must equal."""
    n, c, h, wd = a.shape
    r = k // 2
    padded = np.pad(a, ((0, 0), (0, 0), (r, r), (r, r)))
    cols = np.stack([padded[:, :, dy:dy + h, dx:dx + wd] for dy in range(k) for dx in range(k)], 2)
    cols = cols.reshape(n, c * k * k, h * wd)
    acc = np.einsum("ok,nkp->nop", w.astype(np.int64), cols) + b[:, None].astype(np.int64)
    half = (np.int64(1) << shift.astype(np.int64)) >> 1
    out = (acc + half[:, None]) >> shift.astype(np.int64)[:, None]
    return (np.clip(out, 0, integer.ACT_MAX) if relu else out).reshape(n, -1, h, wd)


@pytest.mark.parametrize("kernel,relu", [(1, True), (3, True), (3, False)])
def test_integer_layer_equals_int64_arithmetic_at_any_thread_count(kernel, relu):
    torch.manual_seed(1)
    layer = integer.IntConv2d(12, 7, kernel, relu=relu)
    with torch.no_grad():
        layer.weight.mul_(3)
        layer.bias.uniform_(-2, 2)
    layer.freeze()
    a = torch.randint(-integer.INPUT_MAX * 32, integer.INPUT_MAX * 32, (2, 12, 9, 11)).double()
    expected = _numpy_conv(a.long().numpy(), layer.w_int.numpy(), layer.b_int.numpy(), layer.shift.numpy(),
                           kernel, relu)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert np.array_equal(layer.exact(a).long().numpy(), expected)
    finally:
        torch.set_num_threads(threads)


def test_requantisation_equals_integer_floor_division_at_the_edges():
    values = [0, 1, -1, 2**52 - 1, -(2**52) + 1, 12345678901, -98765, 2**40 + 3]
    shifts = [0, 1, 5, 17, 40]
    acc = torch.tensor([[v for v in values]] * len(shifts), dtype=torch.float64)[None]
    out = integer.exact_floor_div_pow2(acc, torch.tensor(shifts, dtype=torch.int32))
    for c, s in enumerate(shifts):
        half = (1 << s) >> 1
        assert out[0, c].long().tolist() == [(v + half) >> s for v in values]


def test_depthwise_integer_layer_is_exact():
    torch.manual_seed(2)
    layer = integer.IntConv2d(5, 5, 3, depthwise=True)
    layer.freeze()
    a = torch.randint(0, integer.ACT_MAX, (1, 5, 6, 7)).double()
    out = layer.exact(a)
    for c in range(5):  # each channel alone, as a 1-channel dense layer
        single = _numpy_conv(a[:, c:c + 1].long().numpy(), layer.w_int[c:c + 1].numpy(), layer.b_int[c:c + 1].numpy(),
                             layer.shift[c:c + 1].numpy(), 3, True)
        assert np.array_equal(out[:, c:c + 1].long().numpy(), single)


def test_training_form_follows_the_integer_form():
    torch.manual_seed(3)
    layer = integer.IntConv2d(8, 6, 3)
    layer.freeze()
    x = torch.randint(-64, 64, (1, 8, 10, 10)).float() / 32  # on the input grid
    trained = layer(x) * 2**integer.ACT_FRAC
    exact = layer.exact(x.double() * 2**integer.ACT_FRAC)
    assert (trained.double() - exact).abs().max() <= 1  # rounding at ties only


def test_prior_round_trip_and_skip():
    torch.manual_seed(4)
    prior = LatentPrior(16, 8, 16, temporal=True).eval()
    prior.freeze()
    y = torch.randn(1, 16, 10, 14) * 3
    prev = torch.round(torch.randn(1, 16, 10, 14) * 16 * 2)
    payload, y16 = prior.compress(y, prev)
    decoded = prior.decompress(payload, (10, 14), prev)
    assert torch.equal(decoded, y16)
    assert torch.equal(y16, torch.round(y16))  # sixteenths: integers
    assert (torch.abs(y16 / 16 - y.double()) <= 0.5 + 1e-9).float().mean() > 0.9


def test_skipped_elements_take_the_mean_and_cost_nothing():
    torch.manual_seed(5)
    prior = LatentPrior(16, 8, 16).eval()
    with torch.no_grad():
        prior.fuse.layers[-1].bias[16:].fill_(-100.0)  # every table index 0: all skipped
    prior.freeze()
    y = torch.randn(1, 16, 8, 8)
    payload, y16 = prior.compress(y)
    _, tables = prior._exact_params(torch.zeros(1, 8, 2, 2).double(), (8, 8), None)
    assert (tables == SKIP_TABLE).all()
    mean16, _ = prior._exact_params(torch.zeros(1, 8, 2, 2).double(), (8, 8), None)
    assert len(payload) < 40  # the CRC, the hyper-latent and an empty range-coder stream
    assert torch.equal(prior.decompress(payload, (8, 8)), y16)


def test_a_perturbed_table_computation_is_caught_by_the_per_frame_check():
    model = tiny_model()
    frames = [np.random.default_rng(i).integers(0, 255, (32, 48, 3), dtype=np.uint8) for i in range(3)]
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 48, 32, 25, 3, quality=5, intra_period=0)
    for f in frames:
        encoder.encode(f)
    encoder.close()
    last = model.prior_inter.fuse.layers[-1]
    with torch.no_grad():  # a decoder whose arithmetic differs by one unit (1/16) in one channel's mean
        last.b_int[3] += 1 << int(last.shift[3])
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(model, reader.header)
    packets = list(reader)
    decoder.decode(packets[0])  # the I-frame does not use that network
    with pytest.raises(FormatError, match=r"frame 1: .*per-frame check failed"):
        decoder.decode(packets[1])


def _encode(model, frames, threads, **kw):
    torch.set_num_threads(threads)
    sink = io.BytesIO()
    h, w = frames[0].shape[:2]
    encoder = codec.Encoder(model, sink, w, h, 25, len(frames), **kw)
    recon = [encoder.encode(f).recon for f in frames]
    encoder.close()
    return sink.getvalue(), recon


def _decode(model, data, threads):
    torch.set_num_threads(threads)
    reader = codec.open_stream(io.BytesIO(data))
    decoder = codec.Decoder(model, reader.header)
    return [decoder.decode(p) for p in reader]


def test_frames_and_latents_are_identical_at_1_and_2_threads(carphone_frames):
    set_coding_math()
    model = tiny_model(6)
    frames = carphone_frames[:5]
    threads = torch.get_num_threads()
    try:
        for enc_threads in (1, 2):
            data, recon = _encode(model, frames, enc_threads, quality=7, intra_period=3)
            for dec_threads in (1, 2):
                decoded = _decode(model, data, dec_threads)
                assert len(decoded) == len(recon) == 5
                assert all(np.array_equal(a, b) for a, b in zip(decoded, recon, strict=True))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("intra_depth", [{}, {"intra_encoder_blocks": 5, "intra_decoder_blocks": 7}])
def test_striped_coding_equals_one_pass(intra_depth):
    """Equal up to float rounding (a stripe's matrix products have other shapes); encoder and
    decoder both code in stripes, so their frames are identical (next test). A deeper intra half
    sees further, and its stripes' halo follows."""
    set_coding_math()
    model = tiny_model(7, **intra_depth)
    x = torch.rand(1, 3, 8 * 80, 40)  # 80 rows of the 1/8 grid: three stripes
    q = torch.tensor([4])
    with torch.no_grad():
        y = model.g_a_intra(x, q)
        assert torch.allclose(model._analyse(x, q), y, atol=1e-5)
        x_hat, feature = model.g_s_intra(torch.round(y), q)
        x2, f2 = model._synthesise(torch.round(y), q)
        assert torch.allclose(x_hat, x2, atol=1e-5) and torch.allclose(feature, f2, atol=1e-5)
        context = model.context(feature)
        assert torch.allclose(model._context(Reference(feature, None))[0], context, atol=1e-5)


def test_tall_frames_decode_to_the_encoders_pictures():
    model = tiny_model(10)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (8 * 80 + 3, 24, 3), dtype=np.uint8) for _ in range(2)]
    data, recon = _encode(model, frames, torch.get_num_threads(), quality=4, intra_period=0)
    decoded = _decode(model, data, torch.get_num_threads())
    assert len(decoded) == 2 and all(np.array_equal(a, b) for a, b in zip(decoded, recon, strict=True))


def test_training_forward_draws_a_level_per_sample():
    model = tiny_model(8).train()
    clip = torch.rand(2, 3, 3, 32, 32)
    out = model(clip, torch.tensor([1, 10]))
    assert out["x_hat"].shape == clip.shape
    assert set(out["likelihoods"]) == {f"frame{t}_{k}" for t in range(3) for k in ("y", "z")}
    bits = -sum(torch.log2(v).sum() for v in out["likelihoods"].values())
    (bits + ((out["x_hat"] - clip) ** 2).sum()).backward()
    assert model.g_a_inter.stem.weight.grad is not None and torch.isfinite(model.g_a_inter.stem.weight.grad).all()
    model.zero_grad()
    model(clip, 3, train_intra=False)["x_hat"].sum().backward()
    assert model.g_a_intra.stem.weight.grad is None  # the P-frame stage leaves the intra model alone


@pytest.mark.parametrize("checkerboard,skip", [(False, True), (True, False)])
def test_options_round_trip(checkerboard, skip, carphone_frames):
    model = tiny_model(9, checkerboard=checkerboard, skip=skip)
    data, recon = _encode(model, carphone_frames[:3], torch.get_num_threads(), quality=2, intra_period=0)
    assert all(np.array_equal(a, b) for a, b in zip(_decode(model, data, torch.get_num_threads()), recon, strict=True))


@pytest.mark.parametrize("height,width", [(1, 1), (2, 2), (3, 5), (16, 400), (33, 7)])
def test_tiny_and_thin_frames_round_trip(height, width):
    model = tiny_model(11)
    rng = np.random.default_rng(height * width)
    frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(2)]
    data, recon = _encode(model, frames, torch.get_num_threads(), quality=5, intra_period=0)
    decoded = _decode(model, data, torch.get_num_threads())
    assert [d.shape for d in decoded] == [(height, width, 3)] * 2
    assert all(np.array_equal(a, b) for a, b in zip(decoded, recon, strict=True))


def test_warm_started_p_frames_code_like_i_frames(carphone_frames):
    """The P-frame stage starts from a copy of the intra half with the context switched off: a
    P-frame then costs and looks exactly like an I-frame."""
    model = tiny_model(12)
    model.warm_start_inter()
    model.update()
    model.fingerprint = fingerprint(model)
    frames = carphone_frames[:3]
    intra = _encode(model, frames, torch.get_num_threads(), quality=6, intra_period=1)
    inter = _encode(model, frames, torch.get_num_threads(), quality=6, intra_period=0)
    assert all(np.array_equal(a, b) for a, b in zip(intra[1], inter[1], strict=True))
    assert len(intra[0]) == len(inter[0])


def test_a_deeper_intra_half_warm_started_from_a_shallower_model_starts_where_it_was(tmp_path):
    """--init from a model with fewer intra blocks: the added blocks start as identities, so the
    deeper model's I-frames are the source's to the bit, and the added blocks still learn."""
    from oval.models.store import save_model
    from oval.train import init_from
    source = tiny_model(11)
    save_model(source, tmp_path / "shallow.safetensors")
    deeper = RTModel(RTConfig(**{**TINY.__dict__, "intra_encoder_blocks": 4, "intra_decoder_blocks": 5}))
    assert len(deeper.g_a_intra.blocks) == 4 and len(deeper.g_s_intra.blocks) == 5
    assert len(deeper.g_a_inter.blocks) == TINY.encoder_blocks and len(deeper.g_s_inter.blocks) == TINY.decoder_blocks
    init_from(deeper, str(tmp_path / "shallow.safetensors"))
    deeper.eval().update()
    x = torch.rand(1, 3, 48, 64)
    payload = source.compress_frame(x, 5, None)
    assert deeper.compress_frame(x, 5, None) == payload
    expected, _ = source.decompress_frame(payload, (6, 8), 5, None)
    got, _ = deeper.decompress_frame(payload, (6, 8), 5, None)
    assert torch.equal(got, expected)
    deeper.train()
    out = deeper.g_s_intra(torch.randn(1, TINY.M, 6, 8), torch.tensor([4]))[0]
    out.square().mean().backward()
    added = deeper.g_s_intra.blocks[-1]
    assert added.project.weight.grad.abs().sum() > 0 and added.ffn.project.weight.grad.abs().sum() > 0
