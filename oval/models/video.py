"""The video model: intra frames and conditionally coded P-frames at six quality levels in one model.

    I-frame:  x ──g_a──▶ y·g_q ──Q──▶ ŷ ──÷g_q──▶ g_s ──▶ x̂        rate: FactorizedDensity of level q
    P-frame:  ẑ_{t-1} ──context (+ ConvLSTM memory)──▶ f_t
              x ──g_a──▶ y ──+ enc_adapter(y, f_t)──▶ ·g_q ──Q──▶ ŷ ──÷g_q──+ dec_adapter(·, f_t)──▶ g_s ──▶ x̂
              (ẑ_{t-1} + Δ, scale)·g_q from prior(f_t)                  rate: GaussianConditional

Temporal coding is conditional (in the spirit of DCVC, Li et al. 2021): encoder, decoder and entropy
model all see features f_t of the previous decoded latent ẑ_{t-1} = ŷ_{t-1}/g_q, which the decoder
has exactly. Each frame's latent is coded in full, so errors cannot pile up through a group of
pictures: the past only sharpens the probabilities and refines the synthesis.

Variable rate uses gain units (Cui et al. 2021): quality level q scales the latent by a learned
per-channel gain g_q before rounding and divides it out after; one set of transforms serves all
levels, each trained at its own λ (QUALITY_LAMBDAS).
"""
import dataclasses
from typing import Optional

import numpy as np
import torch
from torch import nn

from oval.models.base import MultiRate
from oval.models.backbone import BACKBONES, STEM_CHANNELS, ResNetStem
from oval.models.entropy_models import FactorizedDensity, GaussianConditional
from oval.models.layers import GDN, conv, deconv
from oval.models.registry import register_model

# λ of each quality level (1..6) for MSE on 8-bit RGB: the ladder CompressAI's models use.
QUALITY_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)
REFERENCE_LEVEL = 4  # the level whose gain starts at 1 (the old default model's λ)


@dataclasses.dataclass
class VideoConfig:
    N: int = 64  # channels of the full-resolution transforms
    M: int = 96  # latent channels
    C: int = 128  # channels of the temporal context at latent resolution
    levels: int = len(QUALITY_LAMBDAS)
    memory: bool = False  # a ConvLSTM carries context across P-frames (the seed's memory)
    colour_space: str = "rgb"  # what the transforms see: rgb, ycbcr-bt601 or ycbcr-bt709
    backbone: str = ""  # "resnet": a torchvision ResNet stem opens g_a (see models/backbone.py)


@dataclasses.dataclass
class Reference:
    """What a P-frame needs from the frames before it; the decoder rebuilds it exactly."""
    latent: torch.Tensor  # ẑ = ŷ / g_q of the last decoded frame
    memory: Optional[tuple] = None  # ConvLSTM (h, c)


def _conv3(i: int, o: int) -> nn.Conv2d:
    return nn.Conv2d(i, o, 3, padding=1)


def _adapter(in_ch: int, hidden: int, out_ch: int) -> nn.Sequential:
    net = nn.Sequential(_conv3(in_ch, hidden), nn.LeakyReLU(0.1), _conv3(hidden, out_ch))
    nn.init.zeros_(net[-1].weight)  # starts as the identity around it: intra behaviour
    nn.init.zeros_(net[-1].bias)
    return net


class ConvLSTM(nn.Module):
    """Convolutional LSTM cell (Shi et al. 2015)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gates = _conv3(2 * channels, 4 * channels)

    def forward(self, x: torch.Tensor, state: Optional[tuple]) -> tuple:
        h, c = state if state is not None else (torch.zeros_like(x), torch.zeros_like(x))
        i, f, o, g = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


@register_model("oval-video")
class VideoModel(MultiRate, nn.Module):
    LAMBDAS, DEFAULT_LEVEL = QUALITY_LAMBDAS, REFERENCE_LEVEL
    stride = 16
    Config = VideoConfig
    temporal = True

    def __init__(self, config: VideoConfig = VideoConfig()):
        super().__init__()
        self.config = config
        N, M, C, L = config.N, config.M, config.C, config.levels
        if not 1 <= L <= len(QUALITY_LAMBDAS):
            raise TypeError(f"levels must be 1..{len(QUALITY_LAMBDAS)}, not {L}")
        if config.backbone and config.backbone not in BACKBONES:
            raise TypeError(f"unknown backbone {config.backbone!r}; choose from {', '.join(BACKBONES)}")
        if config.backbone and config.colour_space != "rgb":
            raise TypeError("a backbone expects RGB input: use colour_space rgb")
        if config.backbone:  # the stem halves the size, so it stands in for the first stride-2 step
            self.g_a = nn.Sequential(ResNetStem(), conv(STEM_CHANNELS, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        else:
            self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        ref = QUALITY_LAMBDAS[REFERENCE_LEVEL - 1]
        log_gain = torch.tensor([0.5 * np.log(lam / ref) for lam in QUALITY_LAMBDAS[:L]], dtype=torch.float32)
        self.log_gain = nn.Parameter(log_gain[:, None].repeat(1, M))
        self.log_inverse_gain = nn.Parameter(-log_gain[:, None].repeat(1, M))
        self.intra_densities = nn.ModuleList(FactorizedDensity(M) for _ in range(L))
        self.context = nn.Sequential(_conv3(M, C), nn.LeakyReLU(0.1), _conv3(C, C), nn.LeakyReLU(0.1))
        self.memory = ConvLSTM(C) if config.memory else None
        self.prior = nn.Sequential(_conv3(C, C), nn.LeakyReLU(0.1), _conv3(C, 2 * M))
        nn.init.zeros_(self.prior[-1].weight)  # starts at "as before, scale 1": a sane prior from step 0
        nn.init.zeros_(self.prior[-1].bias)
        self.encoder_adapter = _adapter(M + C, C, M)
        self.decoder_adapter = _adapter(M + C, C, M)
        self.gaussian = GaussianConditional()

    @property
    def coding_device(self) -> torch.device:
        return self.log_gain.device

    # --- the pieces, shared by training and coding ------------------------------------------

    def _gain(self, level: int, inverse: bool = False) -> torch.Tensor:
        table = self.log_inverse_gain if inverse else self.log_gain
        return torch.exp(table[level - 1]).view(1, -1, 1, 1)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        return self.g_a(x)  # runtimes replace the full-resolution transforms; see export.runtimes

    def synthesis(self, z: torch.Tensor) -> torch.Tensor:
        return self.g_s(z)

    def features(self, reference: Reference) -> tuple[torch.Tensor, Optional[tuple]]:
        f = self.context(reference.latent)
        if self.memory is not None:
            f, state = self.memory(f, reference.memory)
            return f, state
        return f, None

    def entropy_parameters(self, reference: Reference, f: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale of the P-frame latent. The mean is the previous latent plus a learned
        correction: where nothing moved, the prediction is right from the first training step."""
        delta, log_scale = self.prior(f).chunk(2, 1)
        gain = self._gain(level)
        return (reference.latent + delta) * gain, torch.exp(log_scale.clamp(-6, 6)) * gain

    def encode_latent(self, x: torch.Tensor, level: int, f: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = self.analysis(x)
        if f is not None:
            y = y + self.encoder_adapter(torch.cat([y, f], 1))
        return y * self._gain(level)

    def decode_latent(self, y_hat: torch.Tensor, level: int, f: Optional[torch.Tensor] = None):
        """-> (x̂, ẑ): the frame, and the normalised latent that becomes the next reference."""
        z = y_hat * self._gain(level, inverse=True)
        refined = z + self.decoder_adapter(torch.cat([z, f], 1)) if f is not None else z
        return self.synthesis(refined), z

    # --- training ---------------------------------------------------------------------------

    def forward(self, frames: torch.Tensor, level: int) -> dict:
        """frames (B, T, 3, H, W): frame 0 intra, the rest P-frames -> x_hat (B, T, 3, H, W), likelihoods."""
        x_hats, likelihoods, reference = [], {}, None
        for t in range(frames.shape[1]):
            x = frames[:, t]
            if reference is None:
                y_hat, lik = self.intra_densities[level - 1](self.encode_latent(x, level))
                f, memory = None, None
            else:
                f, memory = self.features(reference)
                mean, scale = self.entropy_parameters(reference, f, level)
                y_hat, lik = self.gaussian(self.encode_latent(x, level, f), mean, scale)
            x_hat, z = self.decode_latent(y_hat, level, f)
            reference = Reference(z, memory)
            x_hats.append(x_hat)
            likelihoods[f"frame{t}"] = lik
        return {"x_hat": torch.stack(x_hats, 1), "likelihoods": likelihoods}

    def set_mixed_quantization(self, enabled: bool) -> None:
        for density in (*self.intra_densities, self.gaussian):
            density.mixed_quantization = enabled

    def update(self) -> None:
        for density in self.intra_densities:
            density.update()
        self.gaussian.update()

    def tables_built(self) -> bool:
        return all(d.tables_built() for d in (*self.intra_densities, self.gaussian))

    # --- coding -----------------------------------------------------------------------------

    @torch.no_grad()
    def compress_frame(self, x: torch.Tensor, level: int, reference: Optional[Reference]) -> bytes:
        """x (1, 3, H, W), H and W multiples of stride -> payload; a P-frame when given a reference.

        The codec gets the reconstruction and the next reference from decompress_frame on the
        payload, so the encoder's picture is the decoder's by construction.
        """
        if reference is None:
            return self.intra_densities[level - 1].compress(self.encode_latent(x, level))[0]
        f, _ = self.features(reference)
        mean, scale = self.entropy_parameters(reference, f, level)
        return self.gaussian.compress(self.encode_latent(x, level, f)[0], mean[0], scale[0])

    @torch.no_grad()
    def decompress_frame(self, payload: bytes, shape: tuple, level: int, reference: Optional[Reference]):
        """-> (x̂ (1, 3, h, w), next reference); shape is the latent's (h, w)."""
        device = self.coding_device
        if reference is None:
            y_hat = self.intra_densities[level - 1].decompress([payload], shape).to(device)
            f, memory = None, None
        else:
            f, memory = self.features(reference)
            mean, scale = self.entropy_parameters(reference, f, level)
            y_hat = self.gaussian.decompress(payload, mean[0], scale[0])[None]
        x_hat, z = self.decode_latent(y_hat, level, f)
        return x_hat.clamp_(0, 1), Reference(z, memory)

    def update_parameters(self) -> list:
        """Parameters a MODEL_UPDATE may change: they shape pixels only, never the entropy model or
        the next reference (g_s biases and the decoder adapter's output bias)."""
        return [m.bias for m in self.g_s if getattr(m, "bias", None) is not None] + [self.decoder_adapter[-1].bias]
