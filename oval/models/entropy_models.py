"""The learned factorized prior of Ballé et al. 2018 ("Variational image compression with a scale
hyperprior", appendix 6.1): one non-parametric, learned density per latent channel.

Training sees additive uniform noise (a differentiable proxy for rounding); inference rounds.
`update()` turns each channel's density into an integer table the range coder uses; from then on
coding depends only on those integers.
"""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from oval import entropy
from oval.models.layers import LowerBound

LIKELIHOOD_BOUND = 1e-9


class IntegerTables(nn.Module):
    """Integer coding tables kept as buffers (so they are part of the model file and fingerprint).

    Row i: `table_offsets[i]` is the value of symbol 0, `table_lengths[i]` the number of regular
    symbols, `table_counts[i]` their integer frequencies plus the escape symbol's.
    """

    def __init__(self, rows: int):
        super().__init__()
        self.register_buffer("table_offsets", torch.zeros(rows, dtype=torch.int32))
        self.register_buffer("table_lengths", torch.zeros(rows, dtype=torch.int32))
        self.register_buffer("table_counts", torch.zeros(rows, 1, dtype=torch.int32))
        self._coder = None

    def tables_built(self) -> bool:
        return int(self.table_lengths.min()) >= 1

    def set_tables(self, offsets: list, lengths: list, rows: list) -> None:
        width = max(len(r) for r in rows)
        counts = np.zeros((len(rows), width), dtype=np.int32)
        for i, row in enumerate(rows):
            counts[i, :len(row)] = row
        device = self.table_offsets.device
        self.table_offsets = torch.tensor(offsets, dtype=torch.int32, device=device)
        self.table_lengths = torch.tensor(lengths, dtype=torch.int32, device=device)
        self.table_counts = torch.from_numpy(counts).to(device)
        self._coder = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Tables have data-dependent sizes: take the stored shape before copying.
        key = prefix + "table_counts"
        if key in state_dict:
            self.table_counts = torch.zeros_like(state_dict[key], device=self.table_counts.device)
        self._coder = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def coder(self) -> entropy.TableCoder:
        if self._coder is None:
            if not self.tables_built():
                raise RuntimeError("entropy tables are not built: call model.update() after training")
            self._coder = entropy.TableCoder(self.table_offsets.cpu().numpy(),
                                             self.table_lengths.cpu().numpy(),
                                             self.table_counts.cpu().numpy())
        return self._coder


class FactorizedDensity(IntegerTables):
    def __init__(self, channels: int, filters=(3, 3, 3, 3), init_scale: float = 10.0,
                 tail_mass: float = 1e-6, max_table: int = 1024):
        super().__init__(channels)
        self.channels, self.tail_mass, self.max_table = channels, tail_mass, max_table
        self.mixed_quantization = False  # a training choice, not part of the model file
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = float(np.log(np.expm1(1 / scale / dims[i + 1])))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self.likelihood_bound = LowerBound(LIKELIHOOD_BOUND)

    def _logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        """x: (C, 1, N) -> logits of the CDF, (C, 1, N)."""
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, y_hat: torch.Tensor) -> torch.Tensor:
        """P(y_hat) under each channel's density, for integer (or noisy) y_hat of shape (B, C, H, W)."""
        b, c, h, w = y_hat.shape
        v = y_hat.transpose(0, 1).reshape(c, 1, -1)
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        # Evaluate on the side of the median where the sigmoid is not saturated (numerics).
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        lik = self.likelihood_bound(lik)
        return lik.reshape(c, b, h, w).transpose(0, 1)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (ŷ for the synthesis transform, likelihoods for the rate).

        Training adds uniform noise, a smooth proxy for rounding. With `mixed_quantization` set
        (Minnen & Singh 2020) the rate still sees the noise, but the synthesis sees truly rounded
        values through a straight-through gradient, as it will at inference.
        """
        if not self.training:
            y_hat = torch.round(y)
            return y_hat, self.likelihood(y_hat)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        if self.mixed_quantization:
            return y + (torch.round(y) - y).detach(), self.likelihood(y_noisy)
        return y_noisy, self.likelihood(y_noisy)

    # --- integer tables ----------------------------------------------------------------------

    @torch.no_grad()
    def update(self) -> None:
        """Build the integer tables from the learned densities (after training, before coding)."""
        half = self.max_table // 2
        grid = torch.arange(-half, half + 1, dtype=torch.float32, device=self.matrices[0].device)
        v = grid.expand(self.channels, 1, -1)
        cdf = torch.sigmoid(self._logits_cumulative(v + 0.5)).squeeze(1).double().cpu().numpy()
        offsets, lengths, rows = [], [], []
        for c in range(self.channels):
            lo = int(np.searchsorted(cdf[c], self.tail_mass / 2))
            hi = int(np.searchsorted(cdf[c], 1 - self.tail_mass / 2))
            lo, hi = min(lo, len(grid) - 1), min(max(hi, lo), len(grid) - 1)
            below = cdf[c, lo - 1] if lo > 0 else 0.0
            pmf = np.diff(np.concatenate([[below], cdf[c, lo:hi + 1]]))
            tail = below + (1 - cdf[c, hi])
            offsets.append(lo - half)
            lengths.append(hi - lo + 1)
            rows.append(entropy.pmf_to_counts(pmf, tail))
        self.set_tables(offsets, lengths, rows)

    def compress(self, y: torch.Tensor) -> list[bytes]:
        symbols = torch.round(y).to(torch.int32).cpu().numpy()
        return [self.coder.encode(s) for s in symbols]

    def decompress(self, strings: list[bytes], shape: tuple[int, int]) -> torch.Tensor:
        arrays = [self.coder.decode(s, shape) for s in strings]
        return torch.from_numpy(np.stack(arrays)).float()


class GaussianConditional(IntegerTables):
    """A Gaussian with predicted mean and scale per latent element (Ballé et al. 2018, Minnen et al.
    2018). The coded symbol is round(y - mean); its table is the one of `scale_table` just above
    the predicted scale, so coding needs the scales only to pick a table index.
    """

    def __init__(self, scale_min: float = 0.11, scale_max: float = 64.0, levels: int = 64,
                 tail_sigmas: float = 5.0):
        super().__init__(levels)
        self.tail_sigmas = tail_sigmas
        self.mixed_quantization = False
        self.register_buffer("scale_table", torch.exp(torch.linspace(np.log(scale_min), np.log(scale_max), levels)))
        self.scale_bound = LowerBound(scale_min)
        self.likelihood_bound = LowerBound(LIKELIHOOD_BOUND)

    def likelihood(self, residual: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        scale = self.scale_bound(scale)
        r = torch.abs(residual)  # symmetric: evaluate in the lower tail, where it is accurate
        upper = _std_normal_cdf((0.5 - r) / scale)
        lower = _std_normal_cdf((-0.5 - r) / scale)
        return self.likelihood_bound(upper - lower)

    def forward(self, y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor):
        """(ŷ for the synthesis, likelihoods), like FactorizedDensity.forward."""
        if not self.training:
            y_hat = torch.round(y - mean) + mean
            return y_hat, self.likelihood(y_hat - mean, scale)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        lik = self.likelihood(y_noisy - mean, scale)
        if self.mixed_quantization:
            return y + (torch.round(y - mean) + mean - y).detach(), lik
        return y_noisy, lik

    def table_indexes(self, scale: torch.Tensor) -> np.ndarray:
        idx = torch.bucketize(scale.float().contiguous(), self.scale_table.to(scale.device))
        return idx.clamp_(0, len(self.scale_table) - 1).to(torch.int32).cpu().numpy()

    @torch.no_grad()
    def update(self) -> None:
        offsets, lengths, rows = [], [], []
        for s in self.scale_table.double().cpu().numpy():
            k = max(1, int(np.ceil(self.tail_sigmas * s)))
            grid = torch.arange(-k, k + 2, dtype=torch.float64) - 0.5
            cdf = _std_normal_cdf(grid / float(s)).numpy()
            pmf = np.diff(cdf)
            offsets.append(-k)
            lengths.append(2 * k + 1)
            rows.append(entropy.pmf_to_counts(pmf, 2 * cdf[0]))
        self.set_tables(offsets, lengths, rows)

    def compress(self, y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> bytes:
        """One latent (1, C, H, W) -> bytes."""
        symbols = torch.round(y - mean).to(torch.int32).cpu().numpy()
        return self.coder.encode_indexed(symbols, self.table_indexes(scale))

    def decompress(self, data: bytes, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        symbols = self.coder.decode_indexed(data, self.table_indexes(scale))
        return torch.from_numpy(symbols).to(mean.device, mean.dtype) + mean


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * (2 ** -0.5))
