"""DeepLabV2 decode head: ASPP (v2) with branches summed into class logits."""
from typing import Sequence

import torch.nn as nn
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS


@MODELS.register_module()
class DeepLabV2Head(BaseDecodeHead):
    """ASPP of DeepLab v2 (Chen et al., TPAMI 2017), as used in WSSS.

    Parallel 3x3 convolutions with different dilations map the feature
    straight to class logits; the branch outputs are summed. There is no
    image pooling branch, no BN and no 1x1 projection (those are DeepLab
    v3's ASPP, mmseg's ``ASPPHead``), so ``BaseDecodeHead.conv_seg`` is
    removed.

    Args:
        in_channels (int): channels of the selected feature (2048 for
            ResNet-101).
        num_classes (int): classes including background.
        dilations (Sequence[int]): one branch per dilation.
            Defaults to (6, 12, 18, 24).
        init_cfg (dict): defaults to DeepLab's normal(std=0.01), bias 0.
        **kwargs: other ``BaseDecodeHead`` arguments (``in_index``,
            ``loss_decode``, ``ignore_index``, ``align_corners``, ...).
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 init_cfg: dict = dict(
                     type='Normal', std=0.01, bias=0, layer='Conv2d'),
                 **kwargs) -> None:
        for key in ('channels', 'input_transform', 'dropout_ratio'):
            if key in kwargs:
                raise TypeError(
                    f'DeepLabV2Head: remove the decode_head.{key} key from '
                    'the config; the ASPP v2 branches map in_channels '
                    'straight to num_classes on one input feature.')
        if not isinstance(in_channels, int):
            raise TypeError('DeepLabV2Head: in_channels must be one int '
                            f'(one input feature), got {in_channels!r}.')
        if len(dilations) == 0:
            raise ValueError('DeepLabV2Head: dilations must not be empty.')
        super().__init__(
            in_channels=in_channels,
            channels=in_channels,
            num_classes=num_classes,
            dropout_ratio=0,
            init_cfg=init_cfg,
            **kwargs)
        # The branches emit logits themselves; an unused conv_seg would only
        # leave parameters without gradients (a DDP error).
        del self.conv_seg
        self.dilations = tuple(dilations)
        self.aspp_branches = nn.ModuleList(
            nn.Conv2d(
                in_channels,
                self.out_channels,
                kernel_size=3,
                padding=dilation,
                dilation=dilation,
                bias=True) for dilation in self.dilations)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Sum of the ASPP branches.

        Args:
            inputs (tuple[Tensor]): backbone outputs; ``inputs[in_index]``,
                (B, C, h, w), is used.

        Returns:
            Tensor: logits (B, num_classes, h, w).
        """
        feat = self._transform_inputs(inputs)
        logits = self.aspp_branches[0](feat)
        for branch in self.aspp_branches[1:]:
            logits = logits + branch(feat)
        return logits
