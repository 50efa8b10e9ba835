"""WeakTr's backbone: a DeiT/ViT with one class token per class.

WeakTr (Zhu et al., hustvl/WeakTr) replaces DeiT's single class token by K
class tokens and keeps, for its attention fusion, what every block computes
on the way: each block's attention (as its queries and keys, from which the
fusion recomputes the parts of the softmax maps it reads) and the attention
branch's output. Parameter names follow timm's ``VisionTransformer`` so that
ImageNet DeiT weights and released WeakTr checkpoints map onto it almost 1:1
(see :mod:`semples_mm.models.weaktr_checkpoint`).
"""
from collections import OrderedDict
from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.runner import CheckpointLoader
from torch import Tensor

from mmseg.registry import MODELS
from ..weaktr_checkpoint import deit_to_weaktr_backbone, load_converted_part
from ..weaktr_features import WeakTrFeatures


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution (timm: ``proj``).

    (B, in_channels, H, W) -> (B, C, H // p, W // p); a remainder of H or W
    that does not fill a patch is dropped, as in WeakTr.
    """

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_channels, embed_dims, kernel_size=patch_size,
            stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class AttentionWithQueriesKeys(nn.Module):
    """Multi-head self-attention that also returns its queries and keys.

    The block's output comes from a fused attention kernel that never
    materialises the (N, N) softmax maps; WeakTr's fusion recomputes the
    parts of the maps it reads from the returned queries and keys (see
    :meth:`WeakTrFeatures.attention_maps`).
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (embed_dims // num_heads)**-0.5
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(B, N, C) -> output (B, N, C), queries and keys (B, heads, N,
        C / heads); the maps are ``softmax(q k^T * scale)``."""
        B, N, C = x.shape
        # qkv channels are (3, heads, C / heads), the timm layout.
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads,
                                      C // self.num_heads).permute(
                                          2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(B, N, C)), q, k


class WeakTrBlock(nn.Module):
    """Pre-norm transformer block returning its attention and branch output.

    ``x -> x + drop_path(attn(norm1(x))) -> + drop_path(mlp(norm2(x)))``.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float,
                 qkv_bias: bool, drop_path: float, norm_eps: float) -> None:
        super().__init__()
        hidden = int(embed_dims * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = AttentionWithQueriesKeys(embed_dims, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 \
            else nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(embed_dims, hidden),
                act=nn.GELU(),
                fc2=nn.Linear(hidden, embed_dims)))

    def forward(self, x: Tensor
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(B, N, C) -> output (B, N, C), the attention's queries and keys
        (B, heads, N, C / heads) and the attention branch before the
        residual add (B, N, C)."""
        branch, queries, keys = self.attn(self.norm1(x))
        x = x + self.drop_path(branch)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, queries, keys, branch


@MODELS.register_module()
class WeakTrViT(BaseModule):
    """DeiT/ViT with K class tokens, as WeakTr's CAM network uses it.

    Tokens are ``[class_1 .. class_K, patch_1 .. patch_P]`` (N = K + P). The
    final ``norm`` is kept (checkpoints have it) but not applied: WeakTr's
    head reads the last block's tokens directly.

    Args:
        img_size (int | tuple[int, int]): training size; it fixes the grid of
            ``pos_embed``. Other input sizes interpolate it. Defaults to 224.
        patch_size (int): patch side. Defaults to 16.
        in_channels (int): image channels. Defaults to 3.
        embed_dims (int): width C. Defaults to 384 (DeiT-S).
        num_layers (int): blocks L. Defaults to 12.
        num_heads (int): attention heads. Defaults to 6.
        mlp_ratio (float): MLP hidden width / C. Defaults to 4.0.
        qkv_bias (bool): bias in the qkv projection. Defaults to True.
        num_class_tokens (int): K, one per foreground class (20 for VOC).
            Defaults to 20.
        drop_path_rate (float): stochastic depth of the last block, linearly
            increasing from 0 at the first. Defaults to 0.1.
        norm_eps (float): LayerNorm eps. Defaults to 1e-6.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH)`` initialises from an ImageNet DeiT/timm
            checkpoint with one class token (repeated K times, see
            :func:`deit_to_weaktr_backbone`); ``dict(type='Pretrained',
            checkpoint=PATH, prefix='backbone.')`` loads the backbone part of
            a converted WeakTr checkpoint (K class tokens, strictly, see
            :func:`load_converted_part`); None uses truncated-normal init.
            Defaults to None.
    """

    def __init__(self,
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 embed_dims: int = 384,
                 num_layers: int = 12,
                 num_heads: int = 6,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 num_class_tokens: int = 20,
                 drop_path_rate: float = 0.1,
                 norm_eps: float = 1e-6,
                 init_cfg: dict = None) -> None:
        super().__init__(init_cfg)
        img_size = (img_size, img_size) if isinstance(img_size, int) \
            else tuple(img_size)
        if embed_dims % num_heads:
            raise ValueError(f'WeakTrViT: embed_dims={embed_dims} is not '
                             f'divisible by num_heads={num_heads}.')
        if num_class_tokens < 1:
            raise ValueError('WeakTrViT: num_class_tokens must be >= 1, got '
                             f'{num_class_tokens}.')
        if min(img_size) < patch_size:
            raise ValueError(f'WeakTrViT: img_size={img_size} is smaller '
                             f'than patch_size={patch_size}.')
        self.patch_size = patch_size
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.num_class_tokens = num_class_tokens
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        num_patches = self.grid_size[0] * self.grid_size[1]

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.cls_token = nn.Parameter(
            torch.zeros(1, num_class_tokens, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_class_tokens + num_patches, embed_dims))
        rates = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.blocks = nn.ModuleList([
            WeakTrBlock(embed_dims, num_heads, mlp_ratio, qkv_bias, rate,
                        norm_eps) for rate in rates
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)

    def init_weights(self) -> None:
        """ImageNet DeiT weights (or, with a ``prefix``, a converted WeakTr
        checkpoint's backbone) for ``init_cfg`` of type 'Pretrained', else
        DeiT's truncated-normal init."""
        if isinstance(self.init_cfg, dict) and \
                self.init_cfg.get('type') == 'Pretrained':
            if self.init_cfg.get('prefix'):
                load_converted_part(self, self.init_cfg['checkpoint'],
                                    self.init_cfg['prefix'], 'WeakTrViT')
            else:
                self.load_deit(self.init_cfg['checkpoint'])
            self._is_init = True
            return
        if self.init_cfg is not None:
            super().init_weights()
            return
        nn.init.trunc_normal_(self.cls_token, std=.02)
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def load_deit(self, path: str) -> None:
        """Load an ImageNet DeiT/timm checkpoint (one class token) strictly.

        Args:
            path (str): file or URL readable by mmengine's CheckpointLoader:
                a raw state dict or a dict with a 'model' (or 'state_dict')
                key.

        Raises:
            KeyError: missing or unexpected keys, named with the file.
            ValueError: a tensor whose shape does not fit this backbone.
        """
        checkpoint = CheckpointLoader.load_checkpoint(
            path, map_location='cpu', logger='current')
        state_dict = deit_to_weaktr_backbone(
            checkpoint,
            num_class_tokens=self.num_class_tokens,
            grid_size=self.grid_size,
            source=path)
        own = self.state_dict()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        if missing or unexpected:
            raise KeyError(
                f'WeakTrViT: {path} does not fit the backbone: missing keys '
                f'{missing}, unexpected keys {unexpected}. Expected an '
                'ImageNet DeiT/timm ViT with the same width and depth '
                '(distilled DeiT and released WeakTr checkpoints are not '
                'ImageNet inits: convert the latter with '
                'tools/model_converters/weaktr_to_mmseg.py and set it as '
                'weaktr_checkpoint, as configs/semples/voc_weaktr.py does).')
        wrong = [f'{k}: file {tuple(v.shape)} vs model '
                 f'{tuple(own[k].shape)}' for k, v in state_dict.items()
                 if v.shape != own[k].shape]
        if wrong:
            raise ValueError(f'WeakTrViT: shapes in {path} do not fit the '
                             f'backbone config: {wrong}')
        self.load_state_dict(state_dict, strict=True)

    def interpolate_pos_embed(self, h: int, w: int) -> Tensor:
        """Position embedding for an (h, w) patch grid, (1, K + h * w, C).

        The class part is kept; the patch part is resized bicubically with
        DINO's scale factors ``(h + 0.1) / h0, (w + 0.1) / w0``: the 0.1
        keeps floor(h0 * scale) from falling one short through rounding, as
        in WeakTr (and the sampling positions follow these factors).
        """
        if (h, w) == self.grid_size:
            return self.pos_embed
        K, C = self.num_class_tokens, self.embed_dims
        h0, w0 = self.grid_size
        class_pos = self.pos_embed[:, :K]
        patch_pos = self.pos_embed[:, K:].reshape(1, h0, w0, C).permute(
            0, 3, 1, 2)
        patch_pos = F.interpolate(
            patch_pos,
            scale_factor=((h + 0.1) / h0, (w + 0.1) / w0),
            mode='bicubic',
            align_corners=False)
        if tuple(patch_pos.shape[-2:]) != (h, w):
            raise RuntimeError(
                f'WeakTrViT: interpolating the {h0}x{w0} position grid to '
                f'{h}x{w} gave {tuple(patch_pos.shape[-2:])}.')
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, h * w, C)
        return torch.cat([class_pos, patch_pos], dim=1)

    def forward(self, x: Tensor) -> WeakTrFeatures:
        """(B, in_channels, H, W) -> :class:`WeakTrFeatures` with the grid
        (h, w) = (H // patch_size, W // patch_size)."""
        B = x.shape[0]
        x = self.patch_embed(x)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        x = x + self.interpolate_pos_embed(h, w)
        queries, keys, attn_feats = [], [], []
        for block in self.blocks:
            x, block_queries, block_keys, branch = block(x)
            queries.append(block_queries)
            keys.append(block_keys)
            attn_feats.append(branch)
        K = self.num_class_tokens
        patch_tokens = x[:, K:].transpose(1, 2).reshape(B, -1, h, w)
        return WeakTrFeatures(
            patch_tokens=patch_tokens,
            class_tokens=x[:, :K],
            attn_queries=torch.stack(queries, dim=1),
            attn_keys=torch.stack(keys, dim=1),
            attn_scale=self.blocks[0].attn.scale,
            attn_feats=torch.stack(attn_feats, dim=1),
            hw_shape=(h, w))
