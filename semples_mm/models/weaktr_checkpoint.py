"""Key mapping of WeakTr's checkpoints onto :class:`WeakTrViT` and
:class:`WeakTrCAMHead`.

Two kinds of files:

- ImageNet DeiT/timm ViTs (e.g. ``deit_small_patch16_224-cd65a155.pth``,
  ``{'model': state_dict}``), WeakTr's initialisation: one class token, a
  1000-way ``head.*`` classifier. :func:`deit_to_weaktr_backbone` repeats the
  class token and its position embedding K times, as WeakTr's ``main.py``
  does, resizes the patch position grid and drops the classifier.
- Released WeakTr CAM networks (``checkpoint_best_mIoU.pth``,
  ``{'model': state_dict, 'epoch': ..., 'miou': ...}``), the ``WeakTr``
  class of WeakTr's ``models.py``: the timm ViT keys with K class tokens, the
  3x3 conv ``head.*`` and the fusion ``adaptive_attention_fusion.*``
  (``AAF`` in WeakTr's ``AAF.py``). :func:`convert_weaktr_checkpoint` prefixes
  them with the SemPLeS segmentor's attribute names (``backbone.``,
  ``cam_head.``); the module names below the prefixes are WeakTr's own.
"""
import re
from collections import OrderedDict
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.checkpoints import read_state_dict

# timm ViT names of the backbone, identical in DeiT and WeakTr checkpoints.
BACKBONE_KEY = re.compile(
    r'(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|'
    r'blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)'
    r'\.(weight|bias)|norm\.(weight|bias))')
# WeakTr's CAM head: nn.Conv2d ``head`` and AAF's two nn.Sequential; the
# Sequential indices skip ReLU (1) and Sigmoid (3), which hold no weights.
HEAD_KEYS = (
    'head.weight',
    'head.bias',
    'adaptive_attention_fusion.attn_feat_ffn.0.weight',
    'adaptive_attention_fusion.attn_feat_ffn.0.bias',
    'adaptive_attention_fusion.attn_feat_ffn.1.weight',
    'adaptive_attention_fusion.attn_feat_ffn.1.bias',
    'adaptive_attention_fusion.attn_head_ffn.0.weight',
    'adaptive_attention_fusion.attn_head_ffn.2.weight',
)


def resize_patch_pos_embed(patch_pos: Tensor, new_grid: Sequence[int],
                           source: str = '<checkpoint>') -> Tensor:
    """(1, P0, C) patch position embedding on a square grid -> (1, h * w, C)
    on ``new_grid`` = (h, w), bicubic (WeakTr's fine-tuning resize)."""
    num_old, dims = patch_pos.shape[1:]
    side = int(round(num_old**0.5))
    if side * side != num_old:
        raise ValueError(f'{source}: pos_embed has {num_old} patch positions, '
                         'not a square grid; cannot resize it.')
    h, w = new_grid
    if (side, side) == (h, w):
        return patch_pos
    grid = patch_pos.reshape(1, side, side, dims).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid.float(), size=(h, w), mode='bicubic', align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, h * w, dims).to(patch_pos)


def deit_to_weaktr_backbone(checkpoint,
                            num_class_tokens: int,
                            grid_size: Sequence[int],
                            source: str = '<checkpoint>') -> Dict[str, Tensor]:
    """ImageNet DeiT/timm ViT weights -> :class:`WeakTrViT` weights.

    Args:
        checkpoint: a loaded checkpoint (see :func:`~semples_mm.utils.checkpoints.read_state_dict`), with
            ``cls_token`` (1, 1, C) and ``pos_embed`` (1, 1 + P0, C).
        num_class_tokens (int): K.
        grid_size (Sequence[int]): the backbone's patch grid (h, w).
        source (str): file name for error messages.

    Returns:
        dict: ``cls_token`` (1, K, C) and the class position (1, C) repeated
        K times, ``pos_embed`` (1, K + h * w, C), the classifier ``head.*``
        dropped, everything else unchanged (the caller checks the keys).
    """
    state_dict = read_state_dict(checkpoint, source)
    for key in ('cls_token', 'pos_embed'):
        if key not in state_dict:
            raise KeyError(f'{source}: no {key!r}; expected an ImageNet '
                           'DeiT/timm ViT checkpoint.')
    if 'dist_token' in state_dict:
        raise KeyError(f'{source}: has a dist_token (distilled DeiT); '
                       'WeakTr starts from the non-distilled DeiT.')
    cls_token = state_dict['cls_token']
    if cls_token.dim() != 3 or cls_token.shape[1] != 1:
        raise ValueError(
            f'{source}: cls_token has shape {tuple(cls_token.shape)}; an '
            'ImageNet init needs one class token (1, 1, C). A released WeakTr '
            'checkpoint (K class tokens) goes through '
            'tools/model_converters/weaktr_to_mmseg.py and is set as '
            'weaktr_checkpoint (configs/semples/voc_weaktr.py).')
    pos_embed = state_dict['pos_embed']
    state_dict = {
        k: v
        for k, v in state_dict.items() if not k.startswith('head.')
    }
    state_dict['cls_token'] = cls_token.repeat(1, num_class_tokens, 1)
    class_pos = pos_embed[:, :1].repeat(1, num_class_tokens, 1)
    patch_pos = resize_patch_pos_embed(pos_embed[:, 1:], grid_size, source)
    state_dict['pos_embed'] = torch.cat([class_pos, patch_pos], dim=1)
    return state_dict


def describe_weaktr_state_dict(state_dict: Dict[str, Tensor]) -> dict:
    """Architecture numbers a released WeakTr state dict implies, for the
    converted file's meta and for checking a config against it."""
    num_layers = 1 + max(
        int(k.split('.')[1]) for k in state_dict if k.startswith('blocks.'))
    head_ffn = state_dict['adaptive_attention_fusion.attn_head_ffn.0.weight']
    proj = state_dict['patch_embed.proj.weight']
    num_class_tokens = state_dict['cls_token'].shape[1]
    return dict(
        embed_dims=proj.shape[0],
        patch_size=proj.shape[-1],
        num_layers=num_layers,
        num_class_tokens=num_class_tokens,
        num_patches=state_dict['pos_embed'].shape[1] - num_class_tokens,
        # AAF's bottleneck is int(L * heads / reduction).
        fusion_channels=head_ffn.shape[1],
        fusion_hidden=head_ffn.shape[0],
        fusion_reduction=fusion_reduction(head_ffn.shape[1],
                                          head_ffn.shape[0]))


#: AAF pools each head's tokens by max or by mean; neither has weights, so
#: no checkpoint says which one it was trained with.
POOLING_NOT_RECORDED = (
    'the pooling (attn_pool, max or avg) leaves no trace in the weights: '
    'set it as the checkpoint was trained (max: the VOC commands of WeakTr '
    'and SemPLeS, WeakTr\'s current COCO command; avg: the SemPLeS COCO '
    'commands and the WeakTr COCO command bundled with SemPLeS; see '
    'docs/reproducing.md)')


def fusion_reduction(channels: int, hidden: int) -> float:
    """The ``reduction`` that rebuilds a fusion bottleneck of ``channels``
    -> ``hidden``: AAF's hidden width is ``int(channels / reduction)``, so
    ``channels / hidden`` (72 -> 9: 8; 72 -> 18: 4) does, as does any r
    with ``int(channels / r) == hidden``."""
    return channels / hidden


def convert_weaktr_state_dict(state_dict: Dict[str, Tensor],
                              backbone_prefix: str = 'backbone.',
                              head_prefix: str = 'cam_head.',
                              source: str = '<checkpoint>'
                              ) -> Dict[str, Tensor]:
    """Released WeakTr state dict -> this project's keys.

    ``cls_token``, ``pos_embed``, ``patch_embed.*``, ``blocks.*``, ``norm.*``
    go under ``backbone_prefix``; ``head.*`` and
    ``adaptive_attention_fusion.*`` under ``head_prefix``.

    Raises:
        KeyError: keys that are neither (named), or missing head keys (e.g.
            an ImageNet DeiT file, whose ``head`` is a Linear classifier).
    """
    state_dict = read_state_dict(state_dict, source)
    unknown = [
        k for k in state_dict
        if k not in HEAD_KEYS and not BACKBONE_KEY.fullmatch(k)
    ]
    if unknown:
        raise KeyError(f'{source}: keys a WeakTr (DeiT) CAM network does not '
                       f'have: {sorted(unknown)}. Only the DeiT-S WeakTr '
                       'checkpoints (models.py WeakTr with AAF) are '
                       'supported.')
    missing = [k for k in HEAD_KEYS if k not in state_dict]
    if missing:
        raise KeyError(f'{source}: missing WeakTr head keys {missing}; is '
                       'this a released WeakTr checkpoint (not an ImageNet '
                       'DeiT, which initialises the backbone via init_cfg)?')
    if state_dict['head.weight'].dim() != 4:
        raise ValueError(
            f'{source}: head.weight has shape '
            f'{tuple(state_dict["head.weight"].shape)}, not the 3x3 CAM conv '
            '(K, C, 3, 3) of WeakTr.')
    return {(head_prefix if k in HEAD_KEYS else backbone_prefix) + k: v
            for k, v in state_dict.items()}


def convert_weaktr_checkpoint(checkpoint,
                              source: str = '<checkpoint>',
                              backbone_prefix: str = 'backbone.',
                              head_prefix: str = 'cam_head.') -> dict:
    """A loaded released WeakTr checkpoint -> ``dict(state_dict, meta)``,
    the layout mmengine's ``load_checkpoint`` reads.

    ``meta`` records the source, the architecture numbers of
    :func:`describe_weaktr_state_dict` and WeakTr's own 'epoch' and 'miou'
    when the file has them.
    """
    state_dict = read_state_dict(checkpoint, source)
    converted = convert_weaktr_state_dict(state_dict, backbone_prefix,
                                          head_prefix, source)
    meta = dict(source=source, converter='weaktr_to_mmseg',
                **describe_weaktr_state_dict(state_dict))
    if isinstance(checkpoint, dict):
        for key in ('epoch', 'miou'):
            value = checkpoint.get(key)
            if value is not None:
                meta[key] = float(value) if key == 'miou' else int(value)
    # an OrderedDict, as mmseg's converters write: mmengine's loaders read
    # its _metadata
    return dict(state_dict=OrderedDict(converted), meta=meta)


def _shape_hint(part: Dict[str, Tensor], own: Dict[str, Tensor],
                prefix: str) -> str:
    """Which config key fixes a fusion-bottleneck mismatch, by name."""
    key = 'adaptive_attention_fusion.attn_head_ffn.0.weight'
    if key not in part or part[key].shape == own[key].shape or \
            part[key].shape[1] != own[key].shape[1]:
        return ''  # fits, or other blocks/heads (named by their own keys)
    hidden, channels = part[key].shape
    return (f" The file's attention fusion is {channels} -> {hidden} "
            f"channels, the config's {own[key].shape[1]} -> "
            f'{own[key].shape[0]}: set model.{prefix}reduction='
            f'{fusion_reduction(channels, hidden):g}; '
            f'{POOLING_NOT_RECORDED}.')


def load_converted_part(module, path: str, prefix: str, owner: str) -> None:
    """Load the ``prefix`` part of a converted WeakTr checkpoint into
    ``module``, strictly: every key present, none left over, every shape
    equal. mmengine's own 'Pretrained' init skips what does not fit with a
    warning, which would leave a half-random CAM network unnoticed.

    Args:
        module (nn.Module): :class:`WeakTrViT` or :class:`WeakTrCAMHead`.
        path (str): file written by tools/model_converters/weaktr_to_mmseg.py,
            a training checkpoint of a SemPLeS model with this CAM network
            (``state_dict`` with ``backbone.*`` / ``cam_head.*`` keys beside
            others) or a saved ``cam_network_state``; readable by mmengine's
            CheckpointLoader.
        prefix (str): 'backbone.' or 'cam_head.' (a missing trailing dot is
            added).
        owner (str): the module's name in error messages.

    Raises:
        KeyError: no key under ``prefix``, or missing / unexpected keys.
        ValueError: tensors whose shape does not fit the module's config.
    """
    from mmengine.runner import CheckpointLoader
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    checkpoint = CheckpointLoader.load_checkpoint(
        path, map_location='cpu', logger='current')
    part = {key[len(prefix):]: value for key, value in read_state_dict(
        checkpoint, f'{owner} ({path})').items() if key.startswith(prefix)}
    if not part:
        raise KeyError(
            f'{owner}: {path} has no keys under {prefix!r}. A released '
            'WeakTr checkpoint (checkpoint_best_mIoU.pth) must be converted '
            'first: python tools/model_converters/weaktr_to_mmseg.py SRC DST, '
            'then point the config at DST.')
    own = module.state_dict()
    missing = sorted(set(own) - set(part))
    unexpected = sorted(set(part) - set(own))
    if missing or unexpected:
        raise KeyError(f'{owner}: the {prefix!r} part of {path} does not fit '
                       f'the module: missing keys {missing}, unexpected keys '
                       f'{unexpected}.')
    wrong = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
             for k, v in part.items() if v.shape != own[k].shape]
    if wrong:
        raise ValueError(
            f'{owner}: shapes in the {prefix!r} part of {path} do not fit the '
            f'config: {wrong}.{_shape_hint(part, own, prefix)} The converter '
            '(tools/model_converters/weaktr_to_mmseg.py) prints the numbers '
            'of the file (class tokens, blocks, width, fusion reduction).')
    module.load_state_dict(part, strict=True)
