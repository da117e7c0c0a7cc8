"""Models speak one contract: forward -> {"x_hat", "likelihoods"}, compress -> {"strings", "shape"},
decompress(strings, shape) -> {"x_hat"}, update() to build integer entropy tables after training."""
from oval.models import factorized, rt, video  # noqa: F401  (registers the built-in models by id)
