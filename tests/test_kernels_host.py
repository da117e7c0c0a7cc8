"""The CUDA source of the CuPy kernels, checked without a GPU: nvcc compiles it to PTX, and the same
source compiled for the host (kernels/host_shim.h stands in for the launch) matches the torch
references."""
import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from oval import kernels
from oval.kernels import colour

KERNELS = Path(__file__).resolve().parent.parent / "kernels"


def _nvcc():
    found = shutil.which("nvcc") or next((str(p) for p in Path("/usr/local").glob("cuda*/bin/nvcc")), None)
    if not found:
        pytest.skip("nvcc is not installed (CUDA toolkit)")
    return found


def test_cuda_source_compiles_to_ptx_with_nvcc(tmp_path):
    out = tmp_path / "colour.ptx"
    result = subprocess.run([_nvcc(), "--ptx", "-arch=sm_90", str(KERNELS / "colour.cu"), "-o", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = out.read_text()
    assert ".entry hwc_u8_to_nchw_f32" in ptx and ".entry nchw_f32_to_hwc_u8" in ptx


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    compiler = shutil.which("g++") or shutil.which("c++")
    if not compiler:
        pytest.skip("no C++ compiler")
    lib = tmp_path_factory.mktemp("host") / "libcolour_host.so"
    # -ffp-contract=off: no fused multiply-adds, so float rounding follows the source as written.
    subprocess.run([compiler, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-I", str(KERNELS),
                    str(KERNELS / "host_launch.cpp"), "-o", str(lib)], check=True)
    return ctypes.CDLL(str(lib))


def _p(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def _host_to_nchw(lib, frames: np.ndarray, space: str, sigma: float = 0.0, seed: int = 7) -> np.ndarray:
    n, h, w, _ = frames.shape
    out = np.zeros((n, 3, h, w), dtype=np.float32)
    m = colour.matrix(space).float().numpy().copy()
    off = np.array((0.0, 0.0, 0.0) if space == "rgb" else (0.0, 0.5, 0.5), dtype=np.float32)
    lib.host_hwc_u8_to_nchw_f32(_p(frames), _p(out), ctypes.c_longlong(h * w), ctypes.c_longlong(n * h * w),
                                _p(m), _p(off), ctypes.c_float(sigma), ctypes.c_ulonglong(seed))
    return out


@pytest.mark.parametrize("space", kernels.COLOUR_SPACES)
def test_host_build_matches_the_torch_reference(host_kernels, space):
    frames = np.random.default_rng(3).integers(0, 256, (2, 19, 23, 3), dtype=np.uint8)
    fast = _host_to_nchw(host_kernels, frames, space)
    ref = kernels.frames_to_tensor(torch.from_numpy(frames), space).numpy()
    assert np.abs(fast - ref).max() < 1e-6
    back = np.zeros_like(frames)
    m_inv = torch.linalg.inv(colour.matrix(space)).float().numpy().copy()
    off = np.array((0.0, 0.0, 0.0) if space == "rgb" else (0.0, 0.5, 0.5), dtype=np.float32)
    x = np.ascontiguousarray(ref)
    host_kernels.host_nchw_f32_to_hwc_u8(_p(x), _p(back), ctypes.c_longlong(19 * 23), ctypes.c_longlong(2 * 19 * 23),
                                         _p(m_inv), _p(off))
    ref_back = kernels.tensor_to_frames(torch.from_numpy(ref), space).numpy()
    assert np.abs(back.astype(int) - ref_back.astype(int)).max() <= 1
    assert (back == frames).mean() > 0.99


def test_host_build_noise_has_the_asked_deviation(host_kernels):
    frames = np.full((1, 128, 128, 3), 128, dtype=np.uint8)
    clean = _host_to_nchw(host_kernels, frames, "rgb")
    noisy = _host_to_nchw(host_kernels, frames, "rgb", sigma=0.05)
    noise = noisy - clean
    assert abs(noise.mean()) < 0.002 and abs(noise.std() - 0.05) < 0.002
    assert np.array_equal(noisy, _host_to_nchw(host_kernels, frames, "rgb", sigma=0.05))  # seeded
    assert not np.array_equal(noisy, _host_to_nchw(host_kernels, frames, "rgb", sigma=0.05, seed=8))
