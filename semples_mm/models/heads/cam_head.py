"""Class activation map (CAM) head for image-level (multi-label) labels."""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS

POOLS = ('gap', 'gmp', 'lse')


@MODELS.register_module()
class CAMHead(BaseModule):
    """A 1x1 classifier read both as CAMs and, pooled, as image logits.

    ``cams = W * f`` (1x1 conv, no bias) on the selected feature map, and
    ``logits = pool(cams)``; with GAP this equals the classifier applied to
    the pooled feature, the classic CAM construction. Not an mmseg
    ``BaseDecodeHead``: its K classes are foreground only and it is trained
    with image labels, not masks.

    Args:
        in_channels (int): channels C of the selected feature.
        num_classes (int): number K of foreground classes.
        in_index (int): which backbone/neck output to use. Defaults to -1.
        pool (str): 'gap' (mean), 'gmp' (max) or 'lse' (log-sum-exp, a soft
            max controlled by ``lse_r``). Defaults to 'gap'.
        lse_r (float): sharpness r of LSE pooling,
            ``(1/r) log mean exp(r x)``; large r tends to max, small r to
            mean. Defaults to 5.0.
        loss_cls (dict, optional): config of a loss called as
            ``loss(logits (B, K), labels (B, K))``, e.g.
            ``dict(type='mmseg.CrossEntropyLoss', use_sigmoid=True)``. None
            uses the multi-label soft-margin loss. Defaults to None.
        init_cfg (dict, optional): initialisation config. Defaults to normal
            std 0.01 on the classifier.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 in_index: int = -1,
                 pool: str = 'gap',
                 lse_r: float = 5.0,
                 loss_cls: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, list]] = dict(
                     type='Normal', std=0.01, layer='Conv2d')) -> None:
        super().__init__(init_cfg)
        if pool not in POOLS:
            raise ValueError(f'CAMHead: pool={pool!r} is not one of {POOLS}; '
                             'fix the cam_head.pool key of the config.')
        if pool == 'lse' and lse_r <= 0:
            raise ValueError(f'CAMHead: lse_r must be > 0, got {lse_r}.')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.in_index = in_index
        self.pool = pool
        self.lse_r = lse_r
        self.classifier = nn.Conv2d(
            in_channels, num_classes, kernel_size=1, bias=False)
        self.loss_cls = MODELS.build(loss_cls) if loss_cls else None

    def forward(self, feats: Union[Tensor, Sequence[Tensor]],
                classes: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Compute CAMs and image-level logits.

        Args:
            feats (Tensor | Sequence[Tensor]): backbone/neck outputs, each
                (B, C, h, w); ``feats[in_index]`` is used. A single tensor is
                used as is.
            classes (Tensor, optional): (K,) bool mask; only these classes
                are returned. None returns all K.

        Returns:
            tuple[Tensor, Tensor]: raw CAMs (B, K, h, w) and logits (B, K),
            K the classes of ``classes``.
        """
        feat = feats if isinstance(feats, Tensor) else feats[self.in_index]
        cams = self.classifier(feat)
        if classes is not None:  # a 1x1 conv: nothing to save
            cams = cams[:, classes]
        return cams, self.pool_cams(cams)

    def pool_cams(self, cams: Tensor) -> Tensor:
        """Pool (B, K, h, w) CAMs to (B, K) logits with ``self.pool``."""
        flat = cams.flatten(2)
        if self.pool == 'gap':
            return flat.mean(dim=2)
        if self.pool == 'gmp':
            return flat.max(dim=2)[0]
        # LSE: (1/r) log( (1/N) sum exp(r x) ), stable through logsumexp.
        return (torch.logsumexp(self.lse_r * flat, dim=2) -
                math.log(flat.shape[2])) / self.lse_r

    def loss_by_cls(self, logits: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        """Multi-label classification loss.

        Args:
            logits (Tensor): (B, K) image-level logits.
            labels (Tensor): (B, K) multi-hot labels.

        Returns:
            dict[str, Tensor]: ``{'loss_cls': loss}`` (or the configured
            loss's ``loss_name``).
        """
        labels = labels.to(logits.dtype)
        if self.loss_cls is None:
            return dict(loss_cls=F.multilabel_soft_margin_loss(logits, labels))
        name = getattr(self.loss_cls, 'loss_name', 'loss_cls')
        return {name: self.loss_cls(logits, labels)}
