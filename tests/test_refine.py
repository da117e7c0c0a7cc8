"""Encoder-side latent refinement: its rate model is the coder's, it lowers what a frame costs,
and the decoder reads its streams like any other."""
import numpy as np
import pytest
import torch

from oval.codec import frame_cost, latent_shape
from oval.kernels import frames_to_tensor
from oval.models.base import pad_to_stride
from oval.models.refine import refine
from oval.models.store import load_model


@pytest.fixture(scope="module")
def coded(carphone_frames):
    model = load_model("default")
    pictures = [pad_to_stride(frames_to_tensor(torch.from_numpy(np.ascontiguousarray(f)), "rgb"), 8, 32)
                for f in carphone_frames[:2]]
    payload = model.compress_frame(pictures[0], 5, None)
    _, reference = model.decompress_frame(payload, latent_shape(model, 176, 144), 5, None)
    return model, pictures, reference


def test_estimate_is_what_the_coder_does(coded):
    """The differentiable twin rounds and skips as the integer coder does: the same ŷ, and its
    bits within half a percent of the payload's (the payload adds a CRC and a length)."""
    model, (x, _), _ = coded
    q = model._level(5)
    with torch.no_grad():
        y = model._analyse(x, q) * model._gain(q, True)
        payload, y16 = model.prior_intra.compress(y)
        y_hat, bits = model.prior_intra.estimate(y)
    assert torch.equal(y_hat.double(), y16 / 16)
    assert abs(float(bits) - 8 * len(payload)) < 0.005 * 8 * len(payload)


@pytest.mark.parametrize("frame", ["intra", "inter"])
def test_refinement_lowers_the_frames_cost_and_decodes(coded, frame):
    model, pictures, reference = coded
    x, ref = (pictures[0], None) if frame == "intra" else (pictures[1], reference)
    plain = model.compress_frame(x, 5, ref, refine_steps=0)
    refined = model.compress_frame(x, 5, ref, refine_steps=6)
    assert refined != plain
    assert frame_cost(model, x, refined, 5, ref) < frame_cost(model, x, plain, 5, ref)


def test_refine_keeps_the_best_rounded_latent():
    """Steps follow the relaxed cost; what comes back is never worse by the rounded one."""
    target = torch.tensor([0.2, 1.7, -2.6, 4.4])

    def cost(v, relaxed):
        w = v if relaxed else torch.floor(v + 0.5)
        return ((w - target) ** 2).sum()
    start = torch.tensor([3.0, -1.0, 0.0, 0.0])
    best = refine(start, cost, 40, step_size=0.3)
    assert cost(best, False) < cost(start, False)
    assert torch.equal(torch.floor(best + 0.5), torch.tensor([0.0, 2.0, -3.0, 4.0]))
    assert refine(start, cost, 0) is start
