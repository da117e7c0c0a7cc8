"""The intra model: GDN transforms with a learned factorized prior (Ballé et al. 2018)."""
import dataclasses

import torch
from torch import nn

from oval.models.base import TransformCoder
from oval.models.entropy_models import FactorizedDensity
from oval.models.layers import GDN, conv, deconv
from oval.models.registry import register_model


@dataclasses.dataclass
class FactorizedConfig:
    N: int = 64  # channels of the hidden layers
    M: int = 96  # channels of the latent y


@register_model("oval-factorized")
class FactorizedModel(TransformCoder, nn.Module):
    """
        x ──g_a──▶ y ──Q──▶ ŷ ──g_s──▶ x̂
                            │
                  FactorizedDensity: p(ŷ_c) per channel ──▶ range coder ──▶ bytes

    g_a: four 5x5 stride-2 convolutions with GDN between them (stride 16 in all);
    g_s: the mirror image with transposed convolutions and inverse GDN.
    Input and output are float tensors in [0, 1], N x 3 x H x W, H and W multiples of `stride`.
    compress / decompress come from TransformCoder.
    """

    stride = 16
    Config = FactorizedConfig

    def __init__(self, config: FactorizedConfig = FactorizedConfig()):
        super().__init__()
        self.config = config
        N, M = config.N, config.M
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        self.entropy_bottleneck = FactorizedDensity(M)

    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        y_hat, likelihood = self.entropy_bottleneck(y)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": likelihood}}

    def update(self) -> None:
        self.entropy_bottleneck.update()

    @property
    def coding_device(self) -> torch.device:
        return next(self.parameters()).device

