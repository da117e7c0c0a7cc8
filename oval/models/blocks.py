"""Fast transform blocks (DCVC-RT, Jia et al. 2025): all the work at 1/8 resolution.

The picture is pixel-unshuffled by 8 (3 channels -> 192 at 1/8 size), so no layer runs at full or
half resolution; the blocks are 1x1 and depthwise 3x3 convolutions, which cost a few hundred
multiply-adds per pixel each. `macs_per_pixel` counts them for the benchmarks.
"""
import torch
from torch import nn
from torch.nn import functional as F

UNSHUFFLE = 8  # pixels per side folded into channels at the input


class GatedFeedForward(nn.Module):
    """1x1 to `ratio`*C, split in half, x1 * SiLU(x2), 1x1 back to C (DCVC-RT's ConvFFN)."""

    def __init__(self, channels: int, ratio: int = 2):
        super().__init__()
        hidden = ratio * channels
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.project = nn.Conv2d(hidden // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.expand(x).chunk(2, 1)
        return self.project(a * F.silu(b))


class DepthConvBlock(nn.Module):
    """x + [1x1 -> gated SiLU -> depthwise 3x3 -> 1x1](x), then x + feed-forward(x)."""

    def __init__(self, channels: int, ffn_ratio: int = 2):
        super().__init__()
        self.expand = nn.Conv2d(channels, 2 * channels, 1)
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.project = nn.Conv2d(channels, channels, 1)
        self.ffn = GatedFeedForward(channels, ffn_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.expand(x).chunk(2, 1)
        x = x + self.project(self.depthwise(a * F.silu(b)))
        return x + self.ffn(x)

    @torch.no_grad()
    def become_identity(self) -> None:
        """Zeroes both residual branches' output projections: the block passes its input through
        unchanged and still learns (the gradients reach the projections), so a trained network
        deepened by it starts exactly where it was."""
        for conv in (self.project, self.ffn.project):
            conv.weight.zero_()
            conv.bias.zero_()


class LevelScale(nn.Module):
    """A learned per-channel scale for each quality level (DCVC-RT's q-scales): one set of
    weights serves every rate, each level stretching the features its own way."""

    def __init__(self, levels: int, channels: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(levels, channels))

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """level: (B,) integer level indices 0..levels-1."""
        return x * torch.exp(self.log_scale[level])[:, :, None, None]


def unshuffle(x: torch.Tensor) -> torch.Tensor:
    return F.pixel_unshuffle(x, UNSHUFFLE)


def shuffle(x: torch.Tensor) -> torch.Tensor:
    return F.pixel_shuffle(x, UNSHUFFLE)


class Upsample2(nn.Module):
    """1x1 to 4x channels then pixel shuffle: a learned 2x upsampling with no transposed conv."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 4 * out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


def macs_per_pixel(module: nn.Module, height: int = 256, width: int = 256, *inputs) -> float:
    """Multiply-adds per pixel of the frame (height x width) of every convolution in `module`, float
    or integer, measured with forward hooks on a real forward pass over `inputs` (default: one RGB
    frame of height x width)."""
    from oval.models.integer import IntConv2d
    total = [0]

    def hook(conv, args, out):
        if isinstance(conv, IntConv2d):
            k = conv.w_int.shape[1]
        else:
            k = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
        total[0] += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, IntConv2d))]
    try:
        with torch.no_grad():
            module(*(inputs or (torch.zeros(1, 3, height, width),)))
    finally:
        for h in handles:
            h.remove()
    return total[0] / (height * width)


STRIPE_ROWS = 32  # rows of the 1/8 grid (256 pixel rows) per stripe in coding: bounds peak memory


def striped(fn, inputs: list, scales: list, halo: int, rows: int = STRIPE_ROWS):
    """fn(*inputs) computed in horizontal stripes of `rows` rows of the 1/8 grid, each stripe with
    `halo` rows of context on both sides (at least the receptive-field radius of fn, so every kept
    row sees exactly what it would in one pass). Peak memory then follows the stripe, not the frame.

    inputs: tensors (or None); scales[i]: rows of inputs[i] per grid row (8 for pixels, 1 for
    1/8-resolution tensors). fn returns a tensor or a tuple of them, each with a whole number of
    rows per grid row. Frames of one stripe or less run in one pass."""
    grid = next(t.shape[-2] // s for t, s in zip(inputs, scales) if t is not None)
    if grid <= rows + 2 * halo:
        return fn(*inputs)
    outputs = None
    for r0 in range(0, grid, rows):
        r1 = min(grid, r0 + rows)
        a, b = max(0, r0 - halo), min(grid, r1 + halo)
        part = fn(*(None if t is None else t[..., a * s:b * s, :] for t, s in zip(inputs, scales)))
        parts = part if isinstance(part, tuple) else (part,)
        if outputs is None:  # preallocated: no second full-size copy from a concatenation
            outputs = [p.new_empty(*p.shape[:-2], p.shape[-2] // (b - a) * grid, p.shape[-1]) for p in parts]
        for out, p in zip(outputs, parts):
            k = p.shape[-2] // (b - a)
            out[..., r0 * k:r1 * k, :] = p[..., (r0 - a) * k:(r1 - a) * k, :]
    return tuple(outputs) if isinstance(part, tuple) else outputs[0]
