"""The model contract's coding half, shared by every model and by the runtimes that stand in for one.

A subclass provides `g_a` and `g_s` (modules or callables) and an `entropy_bottleneck` with integer
tables; `compress` / `decompress` are then the same code whatever runs the transforms.
"""
import torch


class TransformCoder:
    """compress(x) -> {"strings", "shape"}; decompress(strings, shape) -> {"x_hat"} in [0, 1]."""

    @property
    def coding_device(self) -> torch.device:
        """Where decoded latents go before g_s."""
        return torch.device("cpu")

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        return {"strings": [self.entropy_bottleneck.compress(y)], "shape": tuple(y.shape[-2:])}

    @torch.no_grad()
    def decompress(self, strings: list, shape: tuple) -> dict:
        y_hat = self.entropy_bottleneck.decompress(strings[0], shape).to(self.coding_device)
        return {"x_hat": self.g_s(y_hat).clamp_(0, 1)}
