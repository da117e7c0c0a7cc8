"""Transfer learning: a torchvision ResNet's stem (7x7 stride-2 convolution, batch norm, ReLU) as
the first stage of the analysis transform, its weights read from a local file (never downloaded).

Batch norm is folded into the convolution when the weights are loaded, so the stem is a plain
convolution in training, export and coding alike.
"""
import torch
from torch import nn

from oval.errors import OvalError

BACKBONES = ("resnet",)  # every torchvision ResNet (18..152) shares this stem
STEM_CHANNELS = 64
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetStem(nn.Module):
    """[0, 1] RGB -> 64 channels at half resolution, as torchvision's conv1 + bn1 + relu."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv = nn.Conv2d(3, STEM_CHANNELS, 7, stride=2, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv((x - self.mean) / self.std))


def load_resnet_stem(stem: ResNetStem, path: str) -> None:
    """Copies conv1 and bn1 of a torchvision ResNet state dict (a .pth file) into `stem`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise OvalError(f"cannot read backbone weights {path}: {str(e).splitlines()[0]}") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else {}
    needed = ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var")
    if not all(k in state for k in needed) or tuple(state["conv1.weight"].shape) != (STEM_CHANNELS, 3, 7, 7):
        raise OvalError(f"{path} is not a torchvision ResNet state dict (conv1 64x3x7x7 and bn1 expected)")
    scale = state["bn1.weight"] / torch.sqrt(state["bn1.running_var"] + 1e-5)
    with torch.no_grad():
        stem.conv.weight.copy_(state["conv1.weight"] * scale.view(-1, 1, 1, 1))
        stem.conv.bias.copy_(state["bn1.bias"] - state["bn1.running_mean"] * scale)
