"""Features of an ImageNet network, no training (paper 002): SqueezeNet's last map, pooled, L2.

See :class:`cbmir_tf.features.cnn.CNNDescriptor` for the networks (SqueezeNet, MobileNet,
ResNet50, VGG16) and the pooling.
"""

from __future__ import annotations

from cbmir_tf.features.cnn import CNNDescriptor
from cbmir_tf.methods.base import DescriptorMethod


class PretrainedCNN(DescriptorMethod):
    """Pooled ImageNet CNN features in an exact L2 index.

    Args:
        **settings: :class:`~cbmir_tf.features.cnn.CNNDescriptor` arguments (``model``,
            ``pooling``, ``input_size``, ``batch_size``).
    """

    key, paper = "pretrained_cnn", "002"

    def __init__(self, **settings):
        descriptor = CNNDescriptor(**settings)
        super().__init__(descriptor, "SqueezeNet (ImageNet)" if descriptor.model == "squeezenet"
                         else f"{descriptor.model} (ImageNet)")
