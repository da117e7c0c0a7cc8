"""Layers of the transforms: GDN with Ballé's non-negative reparametrisation and lower bounds.

A naive GDN (absolute values, no bounds) drifts to NaN after some thousands of steps; bounding
beta and gamma through a reparametrisation keeps the denominator away from zero.
"""
import torch
from torch import nn


class _LowerBoundGrad(torch.autograd.Function):
    """max(x, bound), but lets gradients through where they push x back above the bound."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad < 0)
        return pass_through.type_as(grad) * grad, None


class LowerBound(nn.Module):
    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]), persistent=False)

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and not torch.jit.is_tracing():
            return _LowerBoundGrad.apply(x, self.bound)
        return torch.max(x, self.bound)  # plain op: exports to ONNX without custom ops


class NonNegative(nn.Module):
    """Stores sqrt(p + pedestal) and returns bound(stored)^2 - pedestal, so p stays >= minimum."""

    def __init__(self, minimum: float = 0.0, offset: float = 2**-18):
        super().__init__()
        self.pedestal = offset**2
        self.lower_bound = LowerBound((minimum + self.pedestal) ** 0.5)

    def init(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.clamp(p + self.pedestal, min=self.pedestal))

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return self.lower_bound(stored) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalised divisive normalisation (Ballé et al. 2016): y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2).

    With inverse=True it multiplies instead (IGDN, used in the synthesis transform).
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_param = NonNegative(minimum=beta_min)
        self.gamma_param = NonNegative()
        self.beta = nn.Parameter(self.beta_param.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_param.init(gamma_init * torch.eye(channels)))

    def forward(self, x):
        channels = x.shape[1]
        beta = self.beta_param(self.beta)
        gamma = self.gamma_param(self.gamma).reshape(channels, channels, 1, 1)
        norm = nn.functional.conv2d(x * x, gamma, beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


def conv(in_ch: int, out_ch: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)


def deconv(in_ch: int, out_ch: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2,
                              output_padding=stride - 1)
