"""GPU kernels for the data path, each with a torch reference that runs everywhere.

The fast path (CuPy) is used for CUDA tensors when CuPy imports; `force_reference(True)` makes
every op take the torch reference, so a test can compare the two.
"""
from .colour import (COLOUR_SPACES, force_reference, frames_to_tensor, from_model_space, matrix,
                     tensor_to_frames, to_model_space)
from ._cupy import available as cupy_available

__all__ = ["COLOUR_SPACES", "cupy_available", "force_reference", "frames_to_tensor", "from_model_space",
           "matrix", "tensor_to_frames", "to_model_space"]
