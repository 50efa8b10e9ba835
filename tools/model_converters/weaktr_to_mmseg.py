"""Convert a released WeakTr CAM checkpoint to the SemPLeS model's keys.

Reads WeakTr's ``checkpoint_best_mIoU.pth`` (``{'model': state_dict, ...}``,
a DeiT-S ``WeakTr`` with K class tokens, 3x3 ``head`` and
``adaptive_attention_fusion``) and writes ``dict(state_dict=..., meta=...)``
with the backbone under ``backbone.`` (:class:`WeakTrViT`) and the head and
fusion under ``cam_head.`` (:class:`WeakTrCAMHead`): the file
``weaktr_checkpoint`` names in configs/semples/voc_weaktr.py (each part's
``init_cfg``), or for mmengine's ``load_checkpoint``. Keys it does not know
are an error.

It prints what the weights say about the config they need: the class
tokens, the blocks and the attention fusion's reduction (from the shape of
``attn_head_ffn``). The fusion's token pooling (max or avg) has no weights,
so no file records it: that is said too.

Example:
    python tools/model_converters/weaktr_to_mmseg.py \
        checkpoint_best_mIoU.pth checkpoints/weaktr_voc_mmseg.pth
"""
import argparse
import os.path as osp

import mmengine
import torch
from mmengine.runner import CheckpointLoader

from semples_mm.models.weaktr_checkpoint import (POOLING_NOT_RECORDED,
                                                 convert_weaktr_checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert a released WeakTr checkpoint to SemPLeS keys.')
    parser.add_argument('src', help='WeakTr checkpoint (checkpoint_best_mIoU'
                        '.pth), a path or URL')
    parser.add_argument('dst', help='output .pth path')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    checkpoint = CheckpointLoader.load_checkpoint(
        args.src, map_location='cpu', logger='current')
    converted = convert_weaktr_checkpoint(checkpoint, source=args.src)
    if osp.dirname(args.dst):
        mmengine.mkdir_or_exist(osp.dirname(args.dst))
    torch.save(converted, args.dst)
    meta = converted['meta']
    print(f'{args.src} -> {args.dst}: {len(converted["state_dict"])} '
          f'tensors; K={meta["num_class_tokens"]} class tokens, '
          f'{meta["num_layers"]} blocks of width {meta["embed_dims"]}.\n'
          f'Attention fusion {meta["fusion_channels"]} -> '
          f'{meta["fusion_hidden"]} channels: model.cam_head.reduction='
          f'{meta["fusion_reduction"]:g} (a config with another reduction '
          'refuses this file by name).\n'
          f'Pooling: {POOLING_NOT_RECORDED}.')


if __name__ == '__main__':
    main()
