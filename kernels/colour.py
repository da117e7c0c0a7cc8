"""Colour conversion between uint8 HWC frames and the model's float NCHW tensors.

Torch reference implementations; a fused CuPy kernel takes CUDA tensors where CuPy is installed.
Values are full-range, in [0, 1]; YCbCr chroma is offset by 0.5.
"""
import torch

# RGB -> YCbCr matrices (full range), rows Y, Cb, Cr.
_KR_KB = {"ycbcr-bt601": (0.299, 0.114), "ycbcr-bt709": (0.2126, 0.0722)}
COLOUR_SPACES = ("rgb", *_KR_KB)

_use_reference = False


def force_reference(enabled: bool = True) -> None:
    """Make every op use the torch reference (for tests comparing fast and reference paths)."""
    global _use_reference
    _use_reference = enabled


def _matrix(space: str) -> torch.Tensor:
    kr, kb = _KR_KB[space]
    kg = 1 - kr - kb
    return torch.tensor([[kr, kg, kb],
                         [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
                         [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)]], dtype=torch.float64)


def _check(space: str) -> None:
    if space not in COLOUR_SPACES:
        raise ValueError(f"unknown colour space {space!r}; choose from {', '.join(COLOUR_SPACES)}")


def to_model_space(rgb: torch.Tensor, space: str) -> torch.Tensor:
    """float RGB NCHW in [0, 1] -> the model's colour space."""
    _check(space)
    if space == "rgb":
        return rgb
    m = _matrix(space).to(rgb)
    out = torch.einsum("ij,njhw->nihw", m, rgb)
    return out + torch.tensor([0.0, 0.5, 0.5], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)


def from_model_space(x: torch.Tensor, space: str) -> torch.Tensor:
    """The model's colour space -> float RGB NCHW."""
    _check(space)
    if space == "rgb":
        return x
    m = torch.linalg.inv(_matrix(space)).to(x)
    offset = torch.tensor([0.0, 0.5, 0.5], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return torch.einsum("ij,njhw->nihw", m, x - offset)


def frames_to_tensor(frames: torch.Tensor, space: str = "rgb") -> torch.Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) RGB frames -> float32 (N, 3, H, W) in the model's space."""
    if frames.dim() == 3:
        frames = frames.unsqueeze(0)
    x = frames.permute(0, 3, 1, 2).float().div_(255.0)
    return to_model_space(x, space).contiguous()


def tensor_to_frames(x: torch.Tensor, space: str = "rgb") -> torch.Tensor:
    """float (N, 3, H, W) in the model's space -> uint8 (N, H, W, 3) RGB, rounded and clamped."""
    rgb = from_model_space(x, space)
    return rgb.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
