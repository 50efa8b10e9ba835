"""WeakTr's CAM head: a coarse conv CAM refined by fused ViT attention."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS
from ..weaktr_checkpoint import load_converted_part
from ..weaktr_features import WeakTrFeatures
from .attention_fusion import (POOLS, AdaptiveAttentionFusion,
                               attention_feature_channels)
from .fused_attention import (fused_class_attention,
                              propagate_by_fused_attention)


@MODELS.register_module()
class WeakTrCAMHead(BaseModule):
    """Coarse CAM, adaptive attention fusion and patch-attention refinement.

    On :class:`WeakTrFeatures` with K class tokens, P = h * w patches and
    N = K + P tokens:

    1. ``head`` (3x3 conv, C -> K) on the patch tokens gives the coarse
       scores S (B, K, h, w); the coarse CAM is ReLU(S).
    2. The fusion weighs the L * heads attention maps (detached: the fusion
       only decides how to mix them) and averages them to A (B, N, N).
    3. Fused CAM = A[:, :K, K:] (class-to-patch) * coarse CAM.
    4. Fine CAM = A[:, K:, K:] (patch-to-patch, rows are queries) applied to
       the fused CAM over the P positions.

    The fine CAM is the head's CAM: SemPLeS masks with it and exports it.
    It keeps the coarse CAM's graph, so a loss on it trains ``head`` and the
    fusion. For WeakTr's own training (:meth:`loss_by_cls`) the head also
    returns three image-level logits; the fine one is computed from a
    DETACHED coarse CAM, as WeakTr does, so that loss trains the fusion only.

    Class slots: the backbone's class tokens and the conv's outputs are the
    S = ``num_class_slots`` slots; the outputs (CAMs and the three logits)
    are the K = ``num_classes`` slots ``class_indices`` names, in that
    order. WeakTr's COCO model has 90 slots, one per COCO category id 1..90
    (slot = category_id - 1, ids without a category included); the 80
    categories of a COCO dataset are ``class_indices`` = their ids minus 1.
    All S tokens take part in the attention, so a released 90-slot model
    gives its own CAMs for the 80 selected classes.

    Args:
        in_channels (int): token width C. Defaults to 384.
        num_classes (int): K, the classes of the outputs (the dataset's
            foreground classes). Defaults to 20.
        num_class_slots (int, optional): S, which must equal the backbone's
            class tokens; None means K. Defaults to None.
        class_indices (Sequence[int], optional): the K slots (0..S-1, each
            once) of the output classes, in the dataset's class order; None
            means slots 0..K-1 (then S must equal K). Defaults to None.
        num_layers (int): backbone blocks L. Defaults to 12.
        num_heads (int): heads per block. Defaults to 6.
        attn_pool (str): token pooling of the fusion, 'max' (WeakTr's VOC
            runs) or 'avg' (SemPLeS's COCO runs). Defaults to 'max'.
        reduction (float): fusion bottleneck ratio (8 for VOC, 72 -> 9; 4
            for SemPLeS's COCO runs, 72 -> 18). Defaults to 8.
        feat_reduction (float): ratio of the fusion's per-head feature FFN
            (64 -> 8 for DeiT-S). Defaults to 8.
        init_cfg (dict, optional): initialisation config; None keeps PyTorch's
            default init, as WeakTr's head and fusion have.
            ``dict(type='Pretrained', checkpoint=PATH, prefix='cam_head.')``
            loads the head part of a converted WeakTr checkpoint strictly.
            Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 384,
                 num_classes: int = 20,
                 num_class_slots: Optional[int] = None,
                 class_indices: Optional[Sequence[int]] = None,
                 num_layers: int = 12,
                 num_heads: int = 6,
                 attn_pool: str = 'max',
                 reduction: Union[int, float] = 8,
                 feat_reduction: Union[int, float] = 8,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(init_cfg)
        if attn_pool not in POOLS:
            raise ValueError(f'WeakTrCAMHead: attn_pool={attn_pool!r} is not '
                             f'one of {POOLS}; fix cam_head.attn_pool.')
        if in_channels % num_heads:
            raise ValueError(f'WeakTrCAMHead: in_channels={in_channels} is '
                             f'not divisible by num_heads={num_heads}.')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.num_class_slots = num_classes if num_class_slots is None \
            else num_class_slots
        self.class_indices = self._check_class_indices(class_indices)
        # The selection as a tensor that follows the module's device (not
        # in the state dict: checkpoints stay WeakTr's layout).
        self.register_buffer(
            'class_index',
            torch.tensor(self.class_indices, dtype=torch.long),
            persistent=False)
        self.num_layers = num_layers
        self.num_heads = num_heads
        # Names as in WeakTr's checkpoints: ``head``,
        # ``adaptive_attention_fusion``.
        self.head = nn.Conv2d(in_channels, self.num_class_slots, 3,
                              padding=1)
        self.adaptive_attention_fusion = AdaptiveAttentionFusion(
            num_channels=num_layers * num_heads,
            head_dims=in_channels // num_heads,
            reduction=reduction,
            feat_reduction=feat_reduction,
            pool=attn_pool)

    def _check_class_indices(self, class_indices) -> Tuple[int, ...]:
        """The K selected slots, checked against K and S."""
        K, S = self.num_classes, self.num_class_slots
        if class_indices is None:
            if S != K:
                raise ValueError(
                    f'WeakTrCAMHead: num_class_slots={S} but num_classes={K} '
                    'and no class_indices; give cam_head.class_indices, the '
                    f'{K} slots (0..{S - 1}) of the output classes.')
            return tuple(range(K))
        if isinstance(class_indices, (int, str)) or not all(
                isinstance(i, int) and not isinstance(i, bool)
                for i in class_indices):
            raise ValueError(
                f'WeakTrCAMHead: class_indices={class_indices!r} must be a '
                'sequence of slot indices (ints).')
        indices = tuple(class_indices)
        if len(indices) != K:
            raise ValueError(
                f'WeakTrCAMHead: class_indices has {len(indices)} slots but '
                f'num_classes={K}; give one slot per output class.')
        wrong = [i for i in indices if not 0 <= i < S]
        repeated = sorted({i for i in indices if indices.count(i) > 1})
        if wrong or repeated:
            raise ValueError(
                f'WeakTrCAMHead: class_indices must name distinct slots in '
                f'0..{S - 1} (num_class_slots={S}); out of range: {wrong}, '
                f'repeated: {repeated}.')
        return indices

    def init_weights(self) -> None:
        """A converted WeakTr checkpoint's head part for ``init_cfg`` of type
        'Pretrained' (strictly), else mmengine's init_cfg handling."""
        if isinstance(self.init_cfg, dict) and \
                self.init_cfg.get('type') == 'Pretrained':
            load_converted_part(self, self.init_cfg['checkpoint'],
                                self.init_cfg.get('prefix', 'cam_head.'),
                                'WeakTrCAMHead')
            self._is_init = True
            return
        super().init_weights()

    def _check_features(self, features: WeakTrFeatures) -> None:
        if not isinstance(features, WeakTrFeatures):
            raise TypeError(
                'WeakTrCAMHead needs the WeakTrFeatures of a WeakTrViT '
                f'backbone (and no neck), got {type(features).__name__}.')
        B, L, H, N, _ = features.attn_queries.shape
        C = features.patch_tokens.shape[1]
        K = features.class_tokens.shape[1]
        got = dict(num_layers=L, num_heads=H, in_channels=C,
                   num_class_slots=K)
        want = dict(num_layers=self.num_layers, num_heads=self.num_heads,
                    in_channels=self.in_channels,
                    num_class_slots=self.num_class_slots)
        wrong = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
        if wrong:
            raise ValueError(
                'WeakTrCAMHead: the head config does not match the backbone '
                'features (key: (head, backbone)): '
                f'{wrong}; set cam_head.num_layers/num_heads/in_channels/'
                'num_class_slots (num_classes when there is no class '
                'selection) to the backbone\'s num_layers/num_heads/'
                'embed_dims/num_class_tokens.')
        if N != K + features.hw_shape[0] * features.hw_shape[1]:
            raise ValueError(f'WeakTrCAMHead: attention over {N} tokens, but '
                             f'{K} class tokens + a {features.hw_shape} grid.')

    def fusion_weights(self, attn_feats: Tensor) -> Tensor:
        """The fusion's weight of every attention map.

        Args:
            attn_feats (Tensor): (B, L, N, C).

        Returns:
            Tensor: (B, L * heads), layer-major (channel ``layer * heads +
            head``, the order of the backbone's stacked queries and keys;
            the fusion itself works head-major, as WeakTr's weights expect).
        """
        fusion = self.adaptive_attention_fusion
        # pooled before the split into heads, which then moves C values
        # per block instead of N x C
        pooled = fusion.pool_tokens(attn_feats, 2).unsqueeze(2)
        weights = fusion(attention_feature_channels(pooled, self.num_heads))
        return weights.view(-1, self.num_heads, self.num_layers).transpose(
            1, 2).flatten(1)

    def forward(self, features: WeakTrFeatures,
                classes: Optional[Tensor] = None
                ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Fine CAMs and WeakTr's three image-level logits.

        The fused attention A is never formed: its class rows and its
        patch-to-patch block applied to the fused CAM come from the
        detached queries and keys (:mod:`.fused_attention`).

        Args:
            features (WeakTrFeatures): from :class:`WeakTrViT`.
            classes (Tensor, optional): (K,) bool mask over the output
                classes; only these are computed and returned (K' of them).
                The propagation takes the fused CAMs in groups of the head
                width (64 for DeiT-S), so COCO's 80 classes cost two groups
                where an image's few present ones cost one. None: all K.

        Returns:
            tuple: the fine CAMs (B, K, h, w), and a dict of (B, K) logits:
            ``cls_token`` (mean over the width of each class token),
            ``coarse`` (mean of the conv scores S) and ``fine`` (mean of the
            fine CAM built from the detached coarse CAM); K the selected
            slots (``class_indices``, then ``classes``), in their order.
        """
        self._check_features(features)
        S, index = self.num_class_slots, self.class_index
        if classes is not None:
            index = index[classes]
        B, _, h, w = features.patch_tokens.shape
        scores = self.head(features.patch_tokens)
        # the fusion only decides how to mix the maps: detached attention
        queries = features.attn_queries.detach().flatten(1, 2)
        keys = features.attn_keys.detach().flatten(1, 2)
        weights = self.fusion_weights(features.attn_feats.detach())
        class_attn = fused_class_attention(
            queries, keys, features.attn_scale, weights, S).view(B, S, h, w)
        if classes is not None or self.class_indices != tuple(range(S)):
            # every slot attends; only the selected ones are read out
            scores, class_attn = scores[:, index], class_attn[:, index]
            class_tokens = features.class_tokens[:, index]
        else:
            class_tokens = features.class_tokens
        coarse = F.relu(scores)
        fused = class_attn * coarse
        if coarse.requires_grad:
            # the loss's fine CAM from the detached coarse CAM: the same
            # values, propagated in the same pass as extra columns
            fused = torch.cat([fused, class_attn * coarse.detach()], dim=1)
        fine = propagate_by_fused_attention(
            fused.flatten(2), queries, keys, features.attn_scale, weights,
            S).view_as(fused)
        # (without gradients both are the one propagated CAM)
        K = len(index)
        cams, fine_for_loss = fine[:, :K], fine[:, -K:]
        logits = dict(
            cls_token=class_tokens.mean(-1),
            coarse=scores.mean((2, 3)),
            fine=fine_for_loss.mean((2, 3)))
        return cams, logits

    def loss_by_cls(self, logits: Dict[str, Tensor],
                    labels: Tensor) -> Dict[str, Tensor]:
        """WeakTr's three multi-label soft-margin losses; WeakTr sums them
        with equal weights. With a class selection they average over the K
        selected classes; WeakTr's 90-slot COCO training averages over all
        90 slots, the 10 without a category always negative.

        Args:
            logits (dict[str, Tensor]): the (B, K) logits of :meth:`forward`.
            labels (Tensor): (B, K) multi-hot labels.

        Returns:
            dict[str, Tensor]: ``loss_cls_token``, ``loss_cls_coarse``,
            ``loss_cls_fine``.
        """
        missing = {'cls_token', 'coarse', 'fine'} - set(logits)
        if missing:
            raise KeyError(f'WeakTrCAMHead.loss_by_cls: logits lack '
                           f'{sorted(missing)}; pass the dict forward '
                           'returns.')
        labels = labels.to(logits['fine'].dtype)
        return dict(
            loss_cls_token=F.multilabel_soft_margin_loss(
                logits['cls_token'], labels),
            loss_cls_coarse=F.multilabel_soft_margin_loss(
                logits['coarse'], labels),
            loss_cls_fine=F.multilabel_soft_margin_loss(
                logits['fine'], labels))
