"""The CuPy kernels behind kernels.colour. CuPy is probed once, on first use, never at import."""
from pathlib import Path

import torch

_state: dict = {}

_SOURCE_FILE = Path(__file__).with_name("colour.cu")


def source() -> str:
    return _SOURCE_FILE.read_text()


_THREADS = 256


def available() -> bool:
    """CuPy imports and can compile for this device (probed once)."""
    if "ok" not in _state:
        try:
            import cupy
            module = cupy.RawModule(code=source())
            _state["to_nchw"] = module.get_function("hwc_u8_to_nchw_f32")
            _state["to_hwc"] = module.get_function("nchw_f32_to_hwc_u8")
            _state["cupy"] = cupy
            _state["ok"] = True
        except Exception:  # not installed, no CUDA, or no compiler: the torch reference serves
            _state["ok"] = False
    return _state["ok"]


def _launch(kernel, total: int, device: torch.device, args) -> None:
    cupy = _state["cupy"]
    with cupy.cuda.Device(device.index), cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream):
        kernel(((total + _THREADS - 1) // _THREADS,), (_THREADS,), args)


def _ptr(t: torch.Tensor):
    return _state["cupy"].asarray(t)


def hwc_to_nchw(frames: torch.Tensor, m: torch.Tensor, offset: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    n, h, w, _ = frames.shape
    out = torch.empty((n, 3, h, w), dtype=torch.float32, device=frames.device)
    m32 = m.to(device=frames.device, dtype=torch.float32).contiguous()
    off = offset.to(device=frames.device, dtype=torch.float32).contiguous()
    cupy = _state["cupy"]
    total = n * h * w
    _launch(_state["to_nchw"], total, frames.device,
            (_ptr(frames), _ptr(out), cupy.int64(h * w), cupy.int64(total), _ptr(m32), _ptr(off),
             cupy.float32(sigma), cupy.uint64(seed)))
    return out


def nchw_to_hwc(x: torch.Tensor, m: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    out = torch.empty((n, h, w, 3), dtype=torch.uint8, device=x.device)
    m32 = m.to(device=x.device, dtype=torch.float32).contiguous()
    off = offset.to(device=x.device, dtype=torch.float32).contiguous()
    cupy = _state["cupy"]
    total = n * h * w
    _launch(_state["to_hwc"], total, x.device,
            (_ptr(x), _ptr(out), cupy.int64(h * w), cupy.int64(total), _ptr(m32), _ptr(off)))
    return out
