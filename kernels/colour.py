"""Colour conversion between uint8 HWC frames and the model's float NCHW tensors, with optional
Gaussian noise for training.

Each op has a torch reference (runs everywhere) and a fused CuPy kernel used for CUDA tensors when
CuPy imports: one pass reads the uint8 pixels and writes the converted planes, instead of the
reference's separate permute / scale / matrix / noise passes. `force_reference(True)` sends CUDA
tensors through the reference too, so a test can compare the two. Values are full range in [0, 1];
YCbCr chroma is offset by 0.5.
"""
import torch

from . import _cupy

# RGB -> YCbCr (full range), rows Y, Cb, Cr, from the standards' Kr and Kb.
_KR_KB = {"ycbcr-bt601": (0.299, 0.114), "ycbcr-bt709": (0.2126, 0.0722)}
COLOUR_SPACES = ("rgb", *_KR_KB)
_OFFSET = (0.0, 0.5, 0.5)

_use_reference = False


def force_reference(enabled: bool = True) -> None:
    """Make every op use the torch reference (for tests comparing fast and reference paths)."""
    global _use_reference
    _use_reference = enabled


def _fast(t: torch.Tensor) -> bool:
    return t.is_cuda and not _use_reference and _cupy.available()


def _check(space: str) -> None:
    if space not in COLOUR_SPACES:
        raise ValueError(f"unknown colour space {space!r}; choose from {', '.join(COLOUR_SPACES)}")


def matrix(space: str) -> torch.Tensor:
    """3x3 float64 RGB -> space matrix (identity for rgb)."""
    _check(space)
    if space == "rgb":
        return torch.eye(3, dtype=torch.float64)
    kr, kb = _KR_KB[space]
    kg = 1 - kr - kb
    return torch.tensor([[kr, kg, kb],
                         [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
                         [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)]], dtype=torch.float64)


def _offset(space: str, like: torch.Tensor) -> torch.Tensor:
    values = (0.0, 0.0, 0.0) if space == "rgb" else _OFFSET
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def to_model_space(rgb: torch.Tensor, space: str) -> torch.Tensor:
    """float RGB NCHW in [0, 1] -> the model's colour space."""
    _check(space)
    if space == "rgb":
        return rgb
    return torch.einsum("ij,njhw->nihw", matrix(space).to(rgb), rgb) + _offset(space, rgb)


def from_model_space(x: torch.Tensor, space: str) -> torch.Tensor:
    """The model's colour space -> float RGB NCHW."""
    _check(space)
    if space == "rgb":
        return x
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(matrix(space)).to(x), x - _offset(space, x))


def frames_to_tensor(frames: torch.Tensor, space: str = "rgb", noise: float = 0.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) RGB frames -> float32 (N, 3, H, W) in the model's space.

    noise > 0 adds Gaussian noise of that standard deviation (training only; never for coding).
    """
    _check(space)
    if frames.dim() == 3:
        frames = frames.unsqueeze(0)
    if frames.dtype != torch.uint8 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3) frames, got {frames.dtype} {tuple(frames.shape)}")
    if _fast(frames):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item()) if noise > 0 else 0
        offset = _offset(space, torch.empty(0, device=frames.device)).flatten()  # 3 values, no pass over frames
        return _cupy.hwc_to_nchw(frames.contiguous(), matrix(space), offset, float(noise), seed)
    x = to_model_space(frames.permute(0, 3, 1, 2).float().div_(255.0), space)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x.contiguous()


def tensor_to_frames(x: torch.Tensor, space: str = "rgb") -> torch.Tensor:
    """float (N, 3, H, W) in the model's space -> uint8 (N, H, W, 3) RGB, rounded and clamped."""
    _check(space)
    if _fast(x):
        inverse = torch.linalg.inv(matrix(space))
        offset = _offset(space, torch.empty(0, device=x.device)).flatten()
        return _cupy.nchw_to_hwc(x.float().contiguous(), inverse, offset)
    rgb = from_model_space(x, space)
    return rgb.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
