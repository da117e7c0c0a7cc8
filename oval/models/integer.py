"""The integer prior path: everything that picks a probability table is exact integer arithmetic.

A range decoder fails silently when the encoder and the decoder compute a prior even slightly
differently (Ballé, Johnston & Minnen, ICLR 2019). So the networks that turn decoded symbols into
table indices and means run on integers only:

    activations  unsigned fixed point, ACT_BITS bits, step 2^-ACT_FRAC (a clipped ReLU)
    weights      per output channel: w_int = round(w * 2^shift_c), |w_int| < 2^15
    accumulate   acc = sum(w_int * a_int) + b_int          exact: every partial sum < 2^53
    requantise   a_out = floor((acc + 2^(shift_c - 1)) / 2^shift_c), clipped to [0, 2^ACT_BITS - 1]

The sums are computed as float64 matrix products of integer-valued tensors. Every product and every
partial sum is an integer below 2^53, so the result is exact in any summation order: the same on
any CPU, thread count, GPU or BLAS (no integer convolution kernel needed). Dividing by a power of two
and flooring are exact in float64 too.

Training uses the same layers in "fake-quantised" float form (straight-through rounding of the
weights and activations), so the network learns what the integer version computes. `freeze()`
turns the float weights into the integer buffers that coding uses; those buffers are part of the
model file and its fingerprint.
"""
import torch
from torch import nn
from torch.nn import functional as F

ACT_BITS = 10
ACT_MAX = 2**ACT_BITS - 1
ACT_FRAC = 5  # hidden activations: 0 .. 31.97 in steps of 1/32
OUT_FRAC = 4  # outputs (means, table-index logits): steps of 1/16
WEIGHT_MAX = 2**15 - 1
INPUT_MAX = 1023  # inputs (decoded latents) are clipped to +-INPUT_MAX before the network
MAX_SHIFT = 40
BIAS_MAX = 2.0**50


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Rounds in the forward pass, passes the gradient straight through."""
    return x + (torch.floor(x + 0.5) - x).detach()


def to_grid(x: torch.Tensor, frac: int) -> torch.Tensor:
    """Real values rounded to steps of 2^-frac (straight-through in training)."""
    return round_ste(x * 2**frac) / 2**frac


def exact_floor_div_pow2(acc: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """floor((acc + 2^(shift-1)) / 2^shift) per output channel; acc (B, C, N) float64 integers
    below 2^52 in magnitude (the sums of IntConv2d are below 2^51), shift 0..MAX_SHIFT.

    In float64, exactly: adding 2^(shift-1) keeps an integer below 2^53, multiplying by 2^-shift
    only moves the exponent, and floor is exact. The powers of two are built from their bits, not
    with pow: a float pow is not guaranteed exact on every device (CUDA's allows an ulp of error,
    and a floor at an exact integer then flips; caught by the first CPU -> CUDA decode on an
    H100). About 5x faster than the int64 round trip it replaces, with the same integers."""
    s = shift.to(device=acc.device, dtype=torch.int64)[:, None]
    inverse = torch.bitwise_left_shift(1023 - s, 52).view(torch.float64)  # 2^-s: exponent bits only
    half = torch.bitwise_left_shift(1022 + s, 52).view(torch.float64) * (s > 0)  # 2^(s-1), 0 for s = 0
    return torch.floor_((acc + half).mul_(inverse))


class IntConv2d(nn.Module):
    """A convolution that trains in float (fake-quantised) and codes in exact integers.

    `relu`: the output is a hidden activation (clipped ReLU on the ACT_FRAC grid); otherwise it is
    a network output on the OUT_FRAC grid (signed, unclipped). Inputs are on the ACT_FRAC grid.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, relu: bool = True, depthwise: bool = False):
        super().__init__()
        if depthwise and in_ch != out_ch:
            raise ValueError("a depthwise IntConv2d keeps its channel count")
        self.in_ch, self.out_ch, self.kernel, self.relu, self.depthwise = in_ch, out_ch, kernel, relu, depthwise
        self.groups = in_ch if depthwise else 1
        self.out_frac = ACT_FRAC if relu else OUT_FRAC
        conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=self.groups)
        self.weight, self.bias = conv.weight, conv.bias
        taps = kernel * kernel * (1 if depthwise else in_ch)
        self.register_buffer("w_int", torch.zeros(out_ch, taps, dtype=torch.int32))
        self.register_buffer("b_int", torch.zeros(out_ch, dtype=torch.int64))
        self.register_buffer("shift", torch.zeros(out_ch, dtype=torch.int32))

    def _scaled_weight(self) -> torch.Tensor:
        """The weight in integer units of output per integer unit of input."""
        return self.weight.float() * 2.0 ** (self.out_frac - ACT_FRAC)

    def _shifts(self, w: torch.Tensor) -> torch.Tensor:
        peak = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
        return torch.floor(torch.log2(WEIGHT_MAX / peak)).clamp(0, MAX_SHIFT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training form: x real on the ACT_FRAC grid -> real output on this layer's grid."""
        w = self._scaled_weight()
        shift = self._shifts(w)[:, None, None, None]
        w_q = round_ste(w * 2**shift) / 2**shift / 2.0 ** (self.out_frac - ACT_FRAC)
        b_q = round_ste(self.bias.float() * 2.0**self.out_frac * 2**shift.flatten()) / 2**shift.flatten() / 2.0**self.out_frac
        y = F.conv2d(x.float(), w_q, b_q, padding=self.kernel // 2, groups=self.groups)
        if self.relu:
            return to_grid(y, ACT_FRAC).clamp(0, ACT_MAX / 2**ACT_FRAC)
        return to_grid(y, OUT_FRAC)

    @torch.no_grad()
    def freeze(self) -> None:
        """Float weights -> the integer buffers coding uses."""
        w = self._scaled_weight().double()
        shift = self._shifts(w)
        w_int = torch.floor(w * torch.pow(2.0, shift)[:, None, None, None] + 0.5).clamp(-WEIGHT_MAX, WEIGHT_MAX)
        b_int = torch.floor(self.bias.double() * 2.0**self.out_frac * torch.pow(2.0, shift) + 0.5)
        b_int = b_int.clamp(-BIAS_MAX, BIAS_MAX)  # keeps acc + bias below 2^53 whatever the bias
        self.w_int.copy_(w_int.flatten(1).to(torch.int32))
        self.b_int.copy_(b_int.to(torch.int64))
        self.shift.copy_(shift.to(torch.int32))

    def exact(self, a: torch.Tensor) -> torch.Tensor:
        """Coding form: a (B, C, H, W) float64 integers on the ACT_FRAC grid -> integers."""
        b, _, h, w = a.shape
        weight = self.w_int.to(torch.float64)
        if self.depthwise:  # each channel its own k*k taps: k*k exact products summed in place
            k, r = self.kernel, self.kernel // 2
            padded = F.pad(a, (r, r, r, r))
            acc = torch.zeros_like(a)
            for tap in range(k * k):
                dy, dx = divmod(tap, k)
                acc += padded[:, :, dy:dy + h, dx:dx + w] * weight[:, tap].view(1, -1, 1, 1)
            acc = acc.view(b, self.out_ch, h * w)
        else:
            cols = a.reshape(b, self.in_ch, h * w) if self.kernel == 1 else F.unfold(a, self.kernel, padding=self.kernel // 2)
            acc = torch.matmul(weight, cols)
        acc += self.b_int.to(torch.float64)[:, None]
        out = exact_floor_div_pow2(acc, self.shift)
        if self.relu:
            out = out.clamp_(0, ACT_MAX)
        return out.view(b, self.out_ch, h, w)


def exact_input(values: torch.Tensor, frac: int) -> torch.Tensor:
    """Values on a 2^-frac grid (decoded latents, ints or sixteenths) -> float64 integers on the
    ACT_FRAC grid, clipped to +-INPUT_MAX so no sum can leave the exact range."""
    ints = torch.round(values.double() * 2**frac)
    return ints.clamp_(-INPUT_MAX * 2**frac, INPUT_MAX * 2**frac) * 2 ** (ACT_FRAC - frac)


def train_input(values: torch.Tensor) -> torch.Tensor:
    """The training twin of exact_input: the same clipping, in real units."""
    return values.float().clamp(-INPUT_MAX, INPUT_MAX)


class IntSequential(nn.Module):
    """IntConv2d layers (and 2x depth-to-space steps, the string "up") run in either form."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layer for layer in layers if isinstance(layer, nn.Module))
        self.plan = ["up" if layer == "up" else "conv" for layer in layers]

    def _run(self, x: torch.Tensor, exact: bool) -> torch.Tensor:
        convs = iter(self.layers)
        for step in self.plan:
            if step == "up":
                x = F.pixel_shuffle(x, 2)
            else:
                layer = next(convs)
                x = layer.exact(x) if exact else layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, exact=False)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, exact=True)


def freeze_all(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, IntConv2d):
            m.freeze()


def integer_layers(module: nn.Module) -> list:
    return [m for m in module.modules() if isinstance(m, IntConv2d)]
