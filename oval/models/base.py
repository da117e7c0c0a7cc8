"""The model contract's coding half, shared by every model and by the runtimes that stand in for one.

A subclass provides `g_a` and `g_s` and an `entropy_bottleneck` with integer tables; `compress` /
`decompress` reach the transforms through `analysis` / `synthesis`, which a runtime replaces.
"""
import torch
from torch.nn import functional as F


class TransformCoder:
    """compress(x) -> {"strings", "shape"}; decompress(strings, shape) -> {"x_hat"} in [0, 1].

    Also the per-frame interface the codec drives every model through (see VideoModel): an
    intra-only, single-rate model has quality level 0 and no references.
    """

    temporal = False
    levels = 0  # quality levels 1..levels; 0: a single rate point, numbered 0
    default_quality = 0
    colour_space = "rgb"

    def compress_frame(self, x: torch.Tensor, level: int, reference=None) -> bytes:
        return self.compress(x)["strings"][0][0]

    def decompress_frame(self, payload: bytes, shape: tuple, level: int, reference=None):
        return self.decompress([[payload]], shape)["x_hat"], None

    def tables_built(self) -> bool:
        return self.entropy_bottleneck.tables_built()

    def set_mixed_quantization(self, enabled: bool) -> None:
        self.entropy_bottleneck.mixed_quantization = enabled

    @property
    def coding_device(self) -> torch.device:
        """Where decoded latents go before g_s."""
        return torch.device("cpu")

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        return self.g_a(x)  # runtimes replace the full-resolution transforms; see export.runtimes

    def synthesis(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.g_s(y_hat)

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> dict:
        y = self.analysis(x)
        return {"strings": [self.entropy_bottleneck.compress(y)], "shape": tuple(y.shape[-2:])}

    @torch.no_grad()
    def decompress(self, strings: list, shape: tuple) -> dict:
        y_hat = self.entropy_bottleneck.decompress(strings[0], shape).to(self.coding_device)
        return {"x_hat": self.synthesis(y_hat).clamp_(0, 1)}

    def update_parameters(self) -> list:
        """Parameters a MODEL_UPDATE may change: they shape pixels only (g_s biases)."""
        return [m.bias for m in self.g_s if getattr(m, "bias", None) is not None]


class MultiRate:
    """What a model with quality levels 1..L shares: each level trains at its own λ (`LAMBDAS`, the
    model's ladder), the stream records the level, and `DEFAULT_LEVEL` is what oval-encode uses."""

    LAMBDAS: tuple = ()
    DEFAULT_LEVEL: int = 1

    @property
    def levels(self) -> int:
        return self.config.levels

    @property
    def default_quality(self) -> int:
        return min(self.DEFAULT_LEVEL, self.levels)

    @property
    def colour_space(self) -> str:
        return self.config.colour_space

    @property
    def lambdas(self) -> tuple:
        return self.LAMBDAS[:self.levels]


def coded_size(height: int, width: int, stride: int, minimum: int = 0) -> tuple[int, int]:
    """The size a frame is coded at: a multiple of the stride, and at least `minimum` a side."""
    def side(n):
        return max(-(-n // stride) * stride, -(-minimum // stride) * stride)
    return side(height), side(width)


def coded_offset(height: int, width: int, stride: int, minimum: int = 0) -> tuple[int, int]:
    """Where the picture sits in its coded frame: top-left, or centred along a side shorter than
    `minimum`, so that a tiny picture is surrounded by its own edge pixels rather than by the
    transforms' zero padding."""
    ch, cw = coded_size(height, width, stride, minimum)
    return ((ch - height) // 2 if height < minimum else 0, (cw - width) // 2 if width < minimum else 0)


def pad_to_stride(x: torch.Tensor, stride: int, minimum: int = 0) -> torch.Tensor:
    """Replicate-pad to coded_size, the picture at coded_offset (edge pixels, never zeros)."""
    h, w = x.shape[-2:]
    ch, cw = coded_size(h, w, stride, minimum)
    top, left = coded_offset(h, w, stride, minimum)
    pad = [left, cw - w - left, top, ch - h - top]
    while any(pad):  # replicate padding is limited to the input's size per call: repeat for tiny frames
        step = [min(p, x.shape[-1] if i < 2 else x.shape[-2]) for i, p in enumerate(pad)]
        x = F.pad(x, step, mode="replicate")
        pad = [p - s for p, s in zip(pad, step)]
    return x
