"""Encoder-side latent refinement: the analysis transform's latent is a fast guess; gradient steps
on the frame's own rate-distortion cost move it closer to the latent the decoder would rather get
(Campos et al. 2019, Yang et al. 2020: the "amortisation gap" of a small analysis network).

Only the encoder changes: the decoder reads the refined latent like any other, so every stream
stays decodable by every decoder. The cost is the one training minimised, summed over the frame:
the prior's differentiable twin for the rate (LatentPrior.estimate) plus λ·255²·SSE of the
synthesis. The steps follow the relaxed cost (latents unrounded: the rounded cost's
straight-through gradient is a poor guide, and its steps wander), and the latent kept is the one of
the lowest rounded cost seen, the starting one included, so refining never makes a frame worse by
that measure.
"""
from typing import Callable

import torch


def refine(y: torch.Tensor, cost: Callable[[torch.Tensor, bool], torch.Tensor], steps: int,
           step_size: float = 0.03) -> torch.Tensor:
    """The best latent (by cost(latent, relaxed=False), in bits) of `steps` Adam steps on
    cost(latent, relaxed=True) from y; y itself for steps 0. The step size is in quantisation steps
    and decays linearly, so the last steps settle."""
    if steps <= 0:
        return y
    with torch.no_grad():
        best, best_cost = y, float(cost(y, False))
    y = y.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([y], lr=step_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1 - k / steps)
    for _ in range(steps):
        with torch.enable_grad():
            (y.grad,) = torch.autograd.grad(cost(y, True), [y])
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            rounded = float(cost(y, False))
        if rounded < best_cost:
            best, best_cost = y.detach().clone(), rounded
    return best
