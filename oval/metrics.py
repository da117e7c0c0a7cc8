"""Picture quality measures, one home for each: PSNR of uint8 frames, MS-SSIM of float tensors, and
how far two decodes of one stream differ by float rounding."""
import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two pictures (pixel values 0..255)."""
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = mse(a, b)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def ms_ssim(a, b) -> float:
    """MS-SSIM of float NCHW tensors in [0, 1]; a smaller window so small crops and clips fit."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    win = 7 if min(a.shape[-2:]) > 6 * 16 else 3
    if min(a.shape[-2:]) <= (win - 1) * 16:
        return float("nan")  # too small for five scales
    return float(_ms_ssim(a.float(), b.float(), data_range=1.0, win_size=win))


# Two decodes of one stream on machines whose float kernels round differently (the latents are
# exact, each frame's check proves it): the largest difference allowed (levels of 255) and the
# share of values that may differ at all. The golden streams decoded with one AVX-512 VM's
# AVX-512, AVX2 and plain kernels (ATEN_CPU_CAPABILITY): one level apart in 3 of 100,000 values.
ROUNDING_TOLERANCE = (2, 1e-3)


def rounding_difference(frames, reference: np.ndarray) -> tuple:
    """(largest difference, share of values that differ, within ROUNDING_TOLERANCE) of uint8
    frames against reference frames of the same shape."""
    difference = np.abs(np.stack(frames).astype(np.int16) - reference.astype(np.int16))
    largest, share = int(difference.max()), float((difference > 0).mean())
    return largest, share, largest <= ROUNDING_TOLERANCE[0] and share <= ROUNDING_TOLERANCE[1]
