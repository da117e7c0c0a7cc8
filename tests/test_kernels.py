"""Colour kernels: properties of the torch reference everywhere, and CuPy-vs-reference parity on CUDA."""
import numpy as np
import pytest
import torch

from oval import kernels

SPACES = kernels.COLOUR_SPACES


def random_frames(n=2, h=37, w=53, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("space", SPACES)
def test_round_trip_through_the_model_space(space):
    frames = random_frames()
    x = kernels.frames_to_tensor(frames, space)
    assert x.shape == (2, 3, 37, 53) and x.dtype == torch.float32
    back = kernels.tensor_to_frames(x, space)
    assert back.shape == frames.shape and back.dtype == torch.uint8
    assert (back.int() - frames.int()).abs().max() <= (0 if space == "rgb" else 1)


def test_ycbcr_of_grey_has_neutral_chroma():
    grey = torch.full((1, 4, 4, 3), 128, dtype=torch.uint8)
    for space in SPACES[1:]:
        x = kernels.frames_to_tensor(grey, space)
        assert torch.allclose(x[:, 0], torch.tensor(128 / 255)) and torch.allclose(x[:, 1:], torch.tensor(0.5))


def test_bt601_matches_the_standard():
    red = torch.tensor([[[[255, 0, 0]]]], dtype=torch.uint8)
    y, cb, cr = kernels.frames_to_tensor(red, "ycbcr-bt601").flatten().tolist()
    assert y == pytest.approx(0.299, abs=1e-6) and cr == pytest.approx(1.0, abs=1e-6)
    assert cb == pytest.approx(0.5 - 0.5 * 0.299 / 0.886, abs=1e-6)


def test_noise_has_the_asked_deviation_and_is_off_by_default():
    frames = random_frames(4, 64, 64)
    clean = kernels.frames_to_tensor(frames)
    assert torch.equal(kernels.frames_to_tensor(frames), clean)
    noisy = kernels.frames_to_tensor(frames, noise=0.05, generator=torch.Generator().manual_seed(1))
    diff = noisy - clean
    assert abs(diff.mean().item()) < 0.003 and diff.std().item() == pytest.approx(0.05, rel=0.05)


def test_unknown_space_and_bad_dtype():
    with pytest.raises(ValueError, match="unknown colour space"):
        kernels.frames_to_tensor(random_frames(), "hsv")
    with pytest.raises(ValueError, match="uint8"):
        kernels.frames_to_tensor(random_frames().float())


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: CuPy kernels not exercised")


@needs_cuda
@pytest.mark.parametrize("space", SPACES)
def test_cupy_matches_reference(space):
    if not kernels.cupy_available():
        pytest.skip("CuPy is not installed or cannot compile here (pip install 'oval[gpu]')")
    frames = random_frames(3, 71, 129, seed=3).cuda()
    kernels.force_reference(True)
    try:
        ref = kernels.frames_to_tensor(frames, space)
        ref_back = kernels.tensor_to_frames(ref, space)
    finally:
        kernels.force_reference(False)
    fast = kernels.frames_to_tensor(frames, space)
    assert torch.allclose(fast, ref, atol=2e-6)
    fast_back = kernels.tensor_to_frames(ref, space)
    mismatch = (fast_back.int() - ref_back.int()).abs()
    assert mismatch.max() <= 1 and (mismatch > 0).float().mean() < 1e-3
    noisy = kernels.frames_to_tensor(frames, space, noise=0.1)
    assert (noisy - fast).std().item() == pytest.approx(0.1, rel=0.05)


def test_stream_colour_ids_name_the_kernel_spaces():
    from oval.bitstream import ColourSpace
    assert [c.label for c in ColourSpace] == list(SPACES)
    assert all(ColourSpace.from_label(c.label) is c for c in ColourSpace)
