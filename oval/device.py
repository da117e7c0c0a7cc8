"""--device auto|cpu|cuda: CUDA when present and asked for, never assumed."""
import torch

from oval.errors import OvalError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise OvalError("--device cuda was asked for, but no CUDA device is available")
    if name not in DEVICE_CHOICES:
        raise OvalError(f"unknown device {name!r} (use auto, cpu or cuda)")
    return torch.device(name)
