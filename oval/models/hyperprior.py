"""The second-generation entropy model: a mean-scale hyperprior (Minnen et al. 2018), a temporal
prior for P-frames, a two-pass checkerboard for the means (He et al. 2021; means only in the second
pass, as DCVC-UF does) and skipping of near-certain elements (DCVC-RT), with every table choice made
by the exact integer networks of `oval.models.integer`.

    y ──h_a (float, encoder only)──▶ z ──round──▶ ẑ ──per-channel factorized tables──▶ bytes
                                                  │
                                     h_s (integer)┤
    ŷ_{t-1} (P-frames) ──t_s (integer)────────────┴──fuse (integer)──▶ μ₁ (1/16 steps), table k
    first pass:  anchors (i + j even): symbol round(y - μ₁), table k
    second pass: the rest: symbol round(y - μ₂), μ₂ = μ₁ + cb(anchor residuals) (integer), table k
    table 0 (scale 0.11): not coded at all, ŷ = μ

Every table index is known after the first network pass, so the decoder range-decodes every symbol
in one go and only the means of the second half wait for the anchors. Decoded latents are on a
1/16 grid (integer symbols plus integer sixteenths), exact on every machine; the payload starts with
a CRC of the table indices and latents, so a decoder whose arithmetic differs stops with a message
instead of writing garbage.
"""
import struct
import zlib

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from oval.bitstream import FormatError, read_varint, write_varint
from oval.errors import NonFiniteLatents
from oval.models import hyper_tables
from oval.models.entropy_models import FactorizedDensity, GaussianConditional
from oval.models.integer import (IntConv2d, IntSequential, exact_input, freeze_all, round_ste,
                                 train_input)
from oval.models.layers import LowerBound

SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 64.0, 64
SKIP_TABLE = 0  # elements whose table is 0 (scale 0.11, below DCVC-RT's 0.12) are not coded
MEAN_FRAC = 4  # means and decoded latents are multiples of 1/16
HYPER_STRIDE = 4  # z is at 1/4 of the latent's resolution
_LOG_STEP = float(np.log(SCALE_MAX / SCALE_MIN) / (SCALE_LEVELS - 1))


class _Bound(torch.autograd.Function):
    """clamp(x, lo, hi) whose gradient still flows where it pushes x back inside."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        inside = ((x >= ctx.lo) | (grad < 0)) & ((x <= ctx.hi) | (grad > 0))
        return grad * inside, None, None


def anchor_mask(height: int, width: int, device=None) -> torch.Tensor:
    """1 where (i + j) is even (the first pass), 0 elsewhere; shape (1, 1, H, W)."""
    i = torch.arange(height, device=device)[:, None]
    j = torch.arange(width, device=device)[None, :]
    return ((i + j) % 2 == 0).float()[None, None]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _crc_of(tables: np.ndarray, sixteenths: np.ndarray) -> int:
    crc = zlib.crc32(tables.astype(np.uint8).tobytes())
    return zlib.crc32(sixteenths.astype("<i4").tobytes(), crc)


class LatentPrior(nn.Module):
    """The entropy model of one frame type; `temporal` adds the previous latent as context."""

    def __init__(self, M: int, Z: int = 64, P: int = 96, temporal: bool = False, checkerboard: bool = True,
                 skip: bool = True):
        super().__init__()
        self.M, self.temporal, self.checkerboard, self.skip = M, temporal, checkerboard, skip
        self.h_a = nn.Sequential(nn.Conv2d(M, P, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(P, P, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(P, Z, 3, padding=1))
        self.z_density = FactorizedDensity(Z)
        # The networks at latent resolution are 1x1 and depthwise 3x3: the prior runs in float64
        # (exact integers), so its multiply-adds are the expensive kind.
        self.h_s = IntSequential(IntConv2d(Z, P, 3), IntConv2d(P, 4 * P), "up",
                                 IntConv2d(P, P, 3), IntConv2d(P, 4 * P), "up")
        self.t_s = IntSequential(IntConv2d(M, P), IntConv2d(P, P, 3, depthwise=True), IntConv2d(P, P)) if temporal else None
        fused = 2 * P if temporal else P
        self.fuse = IntSequential(IntConv2d(fused, P), IntConv2d(P, 2 * M, relu=False))
        self.cb = IntSequential(IntConv2d(M, P), IntConv2d(P, P, 3, depthwise=True),
                                IntConv2d(P, M, relu=False)) if checkerboard else None
        self.gaussian = GaussianConditional(SCALE_MIN, SCALE_MAX, SCALE_LEVELS)
        self.scale_bound = LowerBound(SCALE_MIN)
        with torch.no_grad():  # start at table ~24 (scale ~1): a sane prior from the first step
            self.fuse.layers[-1].bias[M:].fill_(24.0)

    # --- training ----------------------------------------------------------------------------

    def _hyper_features(self, z_int: torch.Tensor, size: tuple, prev) -> torch.Tensor:
        h = self.h_s(train_input(z_int))[..., :size[0], :size[1]]
        if self.temporal:
            h = torch.cat([h, self.t_s(train_input(prev))], 1)
        return h

    @staticmethod
    def scale_from_logit(logit: torch.Tensor) -> torch.Tensor:
        """Table-index units to a Gaussian scale (table k has scale SCALE_MIN * e^(k * step))."""
        k = _Bound.apply(logit, 0.0, float(SCALE_LEVELS - 1))
        return SCALE_MIN * torch.exp(k * _LOG_STEP)

    def forward(self, y: torch.Tensor, prev=None) -> tuple[torch.Tensor, dict]:
        """Training: y (B, M, h, w) -> (ŷ on the 1/16 grid, straight-through; likelihoods y and z).
        The rate sees additive noise, the synthesis truly rounded values (Minnen & Singh 2020)."""
        with torch.autocast(y.device.type, enabled=False):
            y = y.float()
            size = y.shape[-2:]
            z = self.h_a(pad_to_multiple(y, HYPER_STRIDE))
            lik_z = self.z_density.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5))
            params = self.fuse(self._hyper_features(round_ste(z), size, prev))
            mean, logit = params.chunk(2, 1)
            if self.checkerboard:
                anchor = anchor_mask(*size, device=y.device)
                residual = (round_ste(y - mean)) * anchor
                mean = mean + self.cb(train_input(residual)) * (1 - anchor)
            y_hat = round_ste(y - mean) + mean
            scale = self.scale_from_logit(logit)
            lik_y = self.gaussian.likelihood(y + torch.empty_like(y).uniform_(-0.5, 0.5) - mean, scale)
        return y_hat, {"y": lik_y, "z": lik_z}

    def hyper_latent(self, y: torch.Tensor) -> torch.Tensor:
        """ẑ the encoder sends for y (integers, as float): compress's choice unless told another."""
        return torch.floor(self.h_a(pad_to_multiple(y.float(), HYPER_STRIDE)) + 0.5)

    def estimate(self, y: torch.Tensor, prev=None, relaxed: bool = False, z=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The coding's outcome, differentiable (encoder-side refinement): y (1, M, h, w) -> (ŷ,
        bits of y and z). Rounded as coding rounds (straight-through), skipped elements at their
        mean and free; the fake-quantised networks stand in for the exact ones. relaxed: the
        elements of y are not rounded (a smooth cost whose gradient points somewhere useful; the
        rounded one's is a poor guide). prev: the previous ŷ in real units (sixteenths / 16)."""
        size = y.shape[-2:]
        z = round_ste(self.h_a(pad_to_multiple(y, HYPER_STRIDE))) if z is None else z
        bits = -torch.log2(self.z_density.likelihood(z)).sum()
        mean, logit = self.fuse(self._hyper_features(z, size, prev)).chunk(2, 1)
        coded = torch.floor(logit.detach() + 0.5) > SKIP_TABLE if self.skip else torch.ones_like(logit, dtype=torch.bool)
        if self.checkerboard:
            anchor = anchor_mask(*size, device=y.device)
            residual = torch.where(coded, round_ste(y - mean), 0.0) * anchor
            mean = mean + self.cb(train_input(residual)) * (1 - anchor)
        symbols = torch.where(coded, y - mean if relaxed else round_ste(y - mean), 0.0)
        likelihood = self.gaussian.likelihood(symbols, self.scale_from_logit(logit))
        bits = bits - torch.log2(likelihood[coded]).sum()
        return symbols + mean, bits

    # --- coding (exact) ----------------------------------------------------------------------

    def freeze(self) -> None:
        """After training: integer weights for the prior networks and integer coding tables."""
        freeze_all(self)
        self.z_density.update()
        self.gaussian.update()

    def tables_built(self) -> bool:
        return self.z_density.tables_built() and self.gaussian.tables_built()

    def _exact_params(self, z_int: torch.Tensor, size: tuple, prev16) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (mean in sixteenths, table index), float64 / int64 tensors of shape (1, M, h, w)."""
        h = self.h_s.exact(exact_input(z_int, 0))[..., :size[0], :size[1]]
        if self.temporal:
            h = torch.cat([h, self.t_s.exact(exact_input(prev16 / 16, MEAN_FRAC))], 1)
        mean16, logit16 = self.fuse.exact(h).chunk(2, 1)
        tables = torch.floor((logit16 + 8) / 16).clamp_(0, SCALE_LEVELS - 1).to(torch.int64)
        return mean16, tables

    def _second_pass_mean(self, mean16: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        if not self.checkerboard:
            return mean16
        anchor = anchor_mask(*mean16.shape[-2:], device=mean16.device).double()
        delta16 = self.cb.exact(exact_input(symbols * anchor, 0))
        return mean16 + delta16 * (1 - anchor)

    def _coded(self, tables: torch.Tensor) -> torch.Tensor:
        return tables != SKIP_TABLE if self.skip else torch.ones_like(tables, dtype=torch.bool)

    @torch.no_grad()
    def compress(self, y: torch.Tensor, prev16=None, z_int=None, adapted_tables: bool = False) -> tuple[bytes, torch.Tensor]:
        """y (1, M, h, w) -> (payload, ŷ in sixteenths as float64). prev16: the previous ŷ, sixteenths;
        z_int: the hyper-latent to send (None: hyper_latent(y); any decodes); adapted_tables: ẑ's
        channels may be coded with tables fitted to this frame (oval.models.hyper_tables)."""
        if not bool(torch.isfinite(y).all()):  # would be coded as garbage that decodes without error
            raise NonFiniteLatents("the model's analysis gave non-finite latents (NaN or inf): a diverged model")
        size = tuple(y.shape[-2:])
        z_int = self.hyper_latent(y) if z_int is None else z_int
        z_np = z_int[0].to(torch.int32).cpu().numpy()
        if adapted_tables:
            side, coder = hyper_tables.adapt(self.z_density.coder, z_np)
            z_bytes = side + coder.encode(z_np)
            z_header = write_varint(2 * len(z_bytes) + bool(side))  # the low bit: side information first
        else:
            z_bytes = self.z_density.coder.encode(z_np)
            z_header = write_varint(len(z_bytes))
        mean16, tables = self._exact_params(z_int.double(), size, prev16)
        coded = self._coded(tables)
        y64 = y.double()
        symbols = torch.where(coded, torch.floor(y64 - mean16 / 16 + 0.5), 0.0)
        mean16 = self._second_pass_mean(mean16, symbols)
        symbols = torch.where(coded, torch.floor(y64 - mean16 / 16 + 0.5), 0.0)
        y16 = symbols * 16 + mean16
        mask = coded.cpu().numpy()
        table_np = tables.cpu().numpy()
        y_bytes = self.gaussian.coder.encode_indexed(symbols.cpu().numpy().astype(np.int32)[mask], table_np[mask])
        check = _crc_of(table_np, y16.cpu().numpy())
        return struct.pack("<I", check) + z_header + z_bytes + y_bytes, y16

    def read_hyper_latent(self, payload: bytes, size: tuple, adapted_tables: bool = False) -> tuple:
        """A frame payload's ẑ -> (its integers (Z, h/4, w/4), the offset where y starts)."""
        z_len, pos = read_varint(payload, 4)
        has_side = False
        if adapted_tables:
            z_len, has_side = z_len >> 1, bool(z_len & 1)
        if pos + z_len > len(payload):
            raise FormatError("hyper-latent runs past the end of the frame")
        zh, zw = -(-size[0] // HYPER_STRIDE), -(-size[1] // HYPER_STRIDE)
        z_section, coder = payload[pos:pos + z_len], self.z_density.coder
        if has_side:
            coder, used = hyper_tables.read(coder, z_section, zh * zw)
            z_section = z_section[used:]
        return coder.decode(z_section, (zh, zw)), pos + z_len

    @torch.no_grad()
    def decompress(self, payload: bytes, size: tuple, prev16=None, device=None,
                   adapted_tables: bool = False) -> torch.Tensor:
        """-> ŷ in sixteenths (1, M, h, w) float64; FormatError when the check fails.
        adapted_tables: as the encoder's compress had it (a model's coding switch)."""
        if len(payload) < 5:
            raise FormatError("frame payload is too short")
        (check,) = struct.unpack("<I", payload[:4])
        z_np, pos = self.read_hyper_latent(payload, size, adapted_tables)  # pos: where y starts
        z_int = torch.from_numpy(z_np.astype(np.float64))[None].to(device)
        mean16, tables = self._exact_params(z_int, size, prev16)
        coded = self._coded(tables)
        mask, table_np = coded.cpu().numpy(), tables.cpu().numpy()
        values = self.gaussian.coder.decode_indexed(payload[pos:], table_np[mask])
        symbols_np = np.zeros(table_np.shape, dtype=np.float64)
        symbols_np[mask] = values
        symbols = torch.from_numpy(symbols_np).to(mean16.device)
        mean16 = self._second_pass_mean(mean16, symbols)
        y16 = symbols * 16 + mean16
        if _crc_of(table_np, y16.cpu().numpy()) != check:
            raise FormatError("decoded latents do not match the encoder's (per-frame check failed): "
                              "this decoder computed different table indices or means")
        return y16
