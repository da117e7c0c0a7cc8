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


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work before reading a clock; a no-op on CPU, where
    torch.cuda.synchronize would fail on a machine without CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_coding_math() -> None:
    """Deterministic arithmetic for coding (never for training): no TF32 anywhere, cuDNN's
    deterministic algorithms, and on the CPU the plain convolution kernels rather than oneDNN's,
    whose blocking (and so rounding) changes with the thread count. Table choice is exact
    whatever this sets; this keeps the float transforms repeatable too."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.mkldnn.enabled = False


def coding_math_state() -> dict:
    """What set_coding_math controls, as the doctor reports it."""
    return {"cuda_matmul_tf32": torch.backends.cuda.matmul.allow_tf32, "cudnn_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn_deterministic": torch.backends.cudnn.deterministic, "cpu_onednn": torch.backends.mkldnn.enabled}
