"""Tables fitted to a frame's hyper-latent (oval.models.hyper_tables): exact, cheaper where a
channel is narrow, never read wrongly from bad side information."""
import numpy as np
import pytest
import torch

from conftest import decode_stream, encode_frames
from oval.bitstream import FormatError
from oval.entropy import TABLE_TOTAL, TableCoder, pmf_to_counts
from oval.models import hyper_tables
from oval.models.hyperprior import LatentPrior
from oval.models.rt import RTConfig, RTModel
from oval.models.store import fingerprint


def wide_tables(channels=6, half=20, scale=6.0):
    """Learned-like tables, wide as a trained model's active channels are."""
    x = np.arange(-half, half + 1)
    pmf = np.exp(-np.abs(x) / scale)
    counts = np.stack([pmf_to_counts(pmf / pmf.sum(), 1e-4)] * channels)
    return TableCoder(np.full(channels, -half), np.full(channels, 2 * half + 1), counts)


def flat_hyper_latent(channels=6, shape=(12, 20), seed=0):
    """What a flat picture gives: each channel one value off the learned mode, a few exceptions."""
    rng = np.random.default_rng(seed)
    z = np.broadcast_to(rng.integers(-9, 9, (channels, 1, 1)), (channels, *shape)).copy()
    z[1, 3, 4] += 2
    z[2, :, :5] = -1
    return z.astype(np.int32)


@pytest.mark.parametrize("counts", [[240], [235, 0, 5], [1, 1, 1, 1], [7, 0, 0, 0, 9000]])
def test_a_row_from_counts_is_a_valid_table_in_integers(counts):
    row = hyper_tables.counts_to_row(np.array(counts))
    assert row.dtype == np.int64 and row.sum() == TABLE_TOTAL and row.min() >= 1 and len(row) == len(counts) + 1
    assert np.argmax(row[:-1]) == np.argmax(counts)


def test_a_narrow_frame_is_coded_in_far_fewer_bytes_and_decodes_exactly():
    coder, z = wide_tables(), flat_hyper_latent()
    plain = coder.encode(z)
    side, adapted = hyper_tables.adapt(coder, z)
    assert side and adapted is not coder
    data = side + adapted.encode(z)
    assert len(data) < len(plain) / 3
    read_coder, used = hyper_tables.read(coder, data, z.shape[1] * z.shape[2])
    assert used == len(side)
    np.testing.assert_array_equal(read_coder.decode(data[used:], z.shape[1:]), z)


def test_a_frame_the_learned_tables_fit_sends_no_side_information():
    coder = wide_tables()
    z = np.round(np.random.default_rng(3).laplace(0, 6.0, (6, 12, 20))).astype(np.int32)
    side, same = hyper_tables.adapt(coder, z)
    assert side == b"" and same is coder


@pytest.mark.parametrize("damage", ["too many channels", "channel past the end", "counts past the positions", "truncated"])
def test_bad_side_information_is_a_format_error(damage):
    coder, z = wide_tables(), flat_hyper_latent()
    side, _ = hyper_tables.adapt(coder, z)
    positions = z.shape[1] * z.shape[2]
    bad = {"too many channels": bytes([7]) + side[1:],
           "channel past the end": bytes([1, 6, 0, 1]),
           "counts past the positions": bytes([1, 0, 0, 2]) + bytes([0xff, 0x7f]),
           "truncated": side[:3]}[damage]
    with pytest.raises(FormatError):
        hyper_tables.read(coder, bad, positions)


def test_the_prior_codes_a_flat_frame_cheaper_with_adapted_tables_and_decodes_the_same_latents():
    torch.manual_seed(4)
    prior = LatentPrior(16, 8, 16).eval()
    prior.freeze()
    y = torch.full((1, 16, 16, 24), 0.3)  # one value everywhere: the hyper-latent is constant per channel
    z = prior.hyper_latent(y) + torch.arange(8.0).view(1, 8, 1, 1) - 4  # off the learned tables' modes
    plain, y16 = prior.compress(y, z_int=z)
    adapted, y16_adapted = prior.compress(y, z_int=z, adapted_tables=True)
    assert torch.equal(y16, y16_adapted) and len(adapted) < len(plain)
    assert torch.equal(prior.decompress(adapted, (16, 24), adapted_tables=True), y16)
    assert torch.equal(prior.decompress(plain, (16, 24)), y16)


def tiny_motion_model(adapted: bool) -> RTModel:
    torch.manual_seed(0)
    model = RTModel(RTConfig(C=16, M=16, Z=8, P=16, motion=True, residual=True, switchable_filter=True,
                             compensation="obmc", adapted_hyper_tables=adapted)).eval()
    model.update()
    model.fingerprint = fingerprint(model)
    return model


def test_the_switch_is_a_coding_switch_the_fingerprint_covers():
    assert tiny_motion_model(True).fingerprint != tiny_motion_model(False).fingerprint


def test_streams_with_adapted_tables_decode_to_the_encoders_pictures():
    rng = np.random.default_rng(5)
    grey = np.full((64, 96, 3), 128, np.uint8)
    frames = [grey, grey + 1, rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), grey]
    model = tiny_motion_model(True)
    stream, recons = encode_frames(model, frames, quality=3, intra_period=3)
    _, decoded = decode_stream(model, stream)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, recons, strict=True))
