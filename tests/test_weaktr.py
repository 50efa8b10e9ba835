"""WeakTr's CAM network: the K-class-token ViT against timm, the attention
fusion and refinement against a hand computation, gradient routing, and the
two checkpoint paths (ImageNet DeiT init, released WeakTr conversion).

Random weights, tiny models, CPU only, no downloads.
"""
import copy
import importlib.util

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from timm.models.vision_transformer import VisionTransformer

import semples_mm  # noqa: F401  (registers)
from conftest import REPO_ROOT, TEST_CONFIGS
from float_compare import assert_close_up_to_rounding
from semples_mm.models.backbones import WeakTrFeatures
from semples_mm.models.weaktr_checkpoint import \
    convert_weaktr_state_dict

# A tiny ViT: 32x32 input, 8x8 patches (4x4 grid), width 48, 2 blocks of 3
# heads.
TINY = dict(img_size=32, patch_size=8, embed_dims=48, num_layers=2,
            num_heads=3, drop_path_rate=0.0)
# Rounding budget (float_compare.py) of its tokens against timm's: the patch
# embedding (3 x 8 x 8 = 192 inputs, as many as the MLP's hidden width) and
# 2 blocks of 6 sums.
TINY_VIT_SUMS = dict(terms=192, depth=13)


def build_backbone(**kwargs):
    cfg = dict(type='WeakTrViT', **TINY)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def tiny_timm_vit(**kwargs):
    return VisionTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3,
        mlp_ratio=4.0, qkv_bias=True, class_token=True, **kwargs)


def load_converter():
    path = REPO_ROOT / 'tools' / 'model_converters' / 'weaktr_to_mmseg.py'
    spec = importlib.util.spec_from_file_location('weaktr_to_mmseg', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------- backbone
@pytest.mark.float_compare
def test_backbone_with_one_class_token_equals_timm_vit():
    torch.manual_seed(0)
    vit = tiny_timm_vit(num_classes=0).eval()
    backbone = build_backbone(num_class_tokens=1).eval()
    backbone.load_state_dict(vit.state_dict(), strict=True)
    images = torch.randn(2, 3, 32, 32)

    with torch.no_grad():
        feats = backbone(images)
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(
            vit.patch_embed(images))))
        for layer, block in enumerate(vit.blocks):
            y = block.norm1(x)
            # the attention branch, before the residual add
            assert_close_up_to_rounding(feats.attn_feats[:, layer],
                                        block.attn(y), **TINY_VIT_SUMS)
            # softmax(q k^T / sqrt(d)) from timm's qkv, heads in timm's order
            q, k, _ = block.attn.qkv(y).reshape(2, 17, 3, 3, 16).permute(
                2, 0, 3, 1, 4)
            assert_close_up_to_rounding(feats.attn_queries[:, layer], q,
                                        **TINY_VIT_SUMS)
            assert_close_up_to_rounding(feats.attn_keys[:, layer], k,
                                        **TINY_VIT_SUMS)
            attn = (q @ k.transpose(-2, -1) / 4.0).softmax(-1)
            assert_close_up_to_rounding(feats.attention_maps()[:, layer],
                                        attn, **TINY_VIT_SUMS)
            x = block(x)

    assert feats.hw_shape == (4, 4)
    assert feats.attn_queries.shape == (2, 2, 3, 17, 16)
    assert feats.attn_scale == 16**-0.5
    assert feats.attn_feats.shape == (2, 2, 17, 48)
    # last block's tokens, no final norm
    assert_close_up_to_rounding(feats.class_tokens, x[:, :1],
                                **TINY_VIT_SUMS)
    assert_close_up_to_rounding(
        feats.patch_tokens,
        x[:, 1:].transpose(1, 2).reshape(2, 48, 4, 4), **TINY_VIT_SUMS)


@pytest.mark.float_compare
def test_backbone_with_k_class_tokens_lays_tokens_out():
    backbone = build_backbone(num_class_tokens=5).eval()
    backbone.init_weights()
    with torch.no_grad():
        feats = backbone(torch.randn(2, 3, 32, 40))  # 4x5 grid
    assert feats.patch_tokens.shape == (2, 48, 4, 5)
    assert feats.class_tokens.shape == (2, 5, 48)
    assert feats.attn_keys.shape == (2, 2, 3, 25, 16)
    torch.testing.assert_close(feats.attention_maps().sum(-1),
                               torch.ones(2, 2, 3, 25))


@pytest.mark.float_compare
@pytest.mark.parametrize('size, grid', [((48, 40), (6, 5)),
                                        ((50, 21), (6, 2)),
                                        ((16, 16), (2, 2))])
def test_position_embedding_is_interpolated_for_other_sizes(size, grid):
    backbone = build_backbone(num_class_tokens=3).eval()
    backbone.init_weights()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, *size))
        pos = backbone.interpolate_pos_embed(*grid)
    assert feats.hw_shape == grid
    assert feats.patch_tokens.shape == (1, 48, *grid)
    assert feats.attn_queries.shape[-2] == 3 + grid[0] * grid[1]
    # class part kept, patch part bicubic with DINO's (n + 0.1) / n0 factors
    torch.testing.assert_close(pos[:, :3], backbone.pos_embed[:, :3])
    patch = backbone.pos_embed[:, 3:].reshape(1, 4, 4, 48).permute(0, 3, 1, 2)
    expected = F.interpolate(
        patch, scale_factor=((grid[0] + 0.1) / 4, (grid[1] + 0.1) / 4),
        mode='bicubic', align_corners=False)
    torch.testing.assert_close(
        pos[:, 3:], expected.flatten(2).transpose(1, 2))


@pytest.mark.float_compare
def test_drop_path_is_active_in_training_only():
    torch.manual_seed(0)
    backbone = build_backbone(num_class_tokens=2, drop_path_rate=0.5)
    backbone.init_weights()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        backbone.train()
        a, b = backbone(images).patch_tokens, backbone(images).patch_tokens
        backbone.eval()
        c, d = backbone(images).patch_tokens, backbone(images).patch_tokens
    assert not torch.allclose(a, b)
    torch.testing.assert_close(c, d, rtol=0, atol=0)


# ---------------------------------------------------------------- head
# K=2 classes, L=2 blocks of 3 heads, width 6 (head width 2), a 2x3 grid:
# P=6 patches, N=8 tokens. A non-square grid catches h/w mix-ups.
K, L, H, C, GRID = 2, 2, 3, 6, (2, 3)
N = K + GRID[0] * GRID[1]


def build_head(**kwargs):
    cfg = dict(type='WeakTrCAMHead', in_channels=C, num_classes=K,
               num_layers=L, num_heads=H, reduction=2, feat_reduction=2)
    cfg.update(kwargs)
    torch.manual_seed(1)
    head = MODELS.build(cfg)
    with torch.no_grad():  # larger weights so channel order shows
        for p in head.parameters():
            p.copy_(torch.randn_like(p))
    return head


def tiny_features(batch=2, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    tensors = dict(
        patch_tokens=torch.randn(batch, C, *GRID, generator=gen),
        class_tokens=torch.randn(batch, K, C, generator=gen),
        # large scores: peaked maps, far from uniform
        attn_queries=torch.randn(batch, L, H, N, C // H, generator=gen),
        attn_keys=torch.randn(batch, L, H, N, C // H, generator=gen).mul(3),
        attn_feats=torch.randn(batch, L, N, C, generator=gen))
    for t in tensors.values():
        t.requires_grad_(requires_grad)
    return WeakTrFeatures(hw_shape=GRID, attn_scale=(C // H)**-0.5,
                          **tensors)


def expected_fine_cams(head, feats, head_major=True, interleaved=True,
                       pool='max'):
    """The fine CAM by explicit loops over WeakTr's layout.

    head_major: channel = head * L + layer (else layer * H + head).
    interleaved: head h's features are channels d * H + h (else h * D + d).
    """
    fusion = head.adaptive_attention_fusion
    f1, f2 = fusion.attn_feat_ffn[0], fusion.attn_feat_ffn[1]
    g1, g2 = fusion.attn_head_ffn[0].weight, fusion.attn_head_ffn[2].weight
    D = C // H
    out = torch.zeros(feats.patch_tokens.shape[0], K, GRID[0] * GRID[1])
    attn_weights = feats.attention_maps()
    for b in range(out.shape[0]):
        scores = torch.zeros(L * H)
        maps = [None] * (L * H)
        for layer in range(L):
            for h in range(H):
                c = h * L + layer if head_major else layer * H + h
                cols = [d * H + h if interleaved else h * D + d
                        for d in range(D)]
                tokens = feats.attn_feats[b, layer][:, cols]  # (N, D)
                pooled = tokens.max(0)[0] if pool == 'max' else tokens.mean(0)
                scores[c] = f2.weight @ (f1.weight @ pooled + f1.bias) \
                    + f2.bias
                maps[c] = attn_weights[b, layer, h]
        weights = torch.sigmoid(g2 @ torch.relu(g1 @ scores))
        fused = sum(weights[c] * maps[c] for c in range(L * H)) / (L * H)
        coarse = torch.relu(F.conv2d(feats.patch_tokens[b:b + 1],
                                     head.head.weight, head.head.bias,
                                     padding=1))[0].flatten(1)
        for k in range(K):
            for i in range(GRID[0] * GRID[1]):
                out[b, k, i] = sum(
                    fused[K + i, K + j] * fused[k, K + j] * coarse[k, j]
                    for j in range(GRID[0] * GRID[1]))
    return out.view(-1, K, *GRID)


@pytest.mark.float_compare
@pytest.mark.parametrize('pool', ['max', 'avg'])
def test_fusion_and_refinement_equal_the_hand_computation(pool):
    head = build_head(attn_pool=pool)
    feats = tiny_features()
    with torch.no_grad():
        cams, logits = head(feats)
        expected = expected_fine_cams(head, feats, pool=pool)
    assert cams.shape == (2, K, *GRID)
    # The loops sum in another order: the 3x3 convolution (C x 9 = 54
    # inputs), the fusion's 4 layers, its sum of maps, the refinement's sum
    # over patches and, for the logits, the mean over them.
    assert_close_up_to_rounding(cams, expected, terms=54, depth=7)
    assert_close_up_to_rounding(logits['fine'], expected.mean((2, 3)),
                                terms=54, depth=8)
    torch.testing.assert_close(logits['cls_token'],
                               feats.class_tokens.mean(-1))
    torch.testing.assert_close(
        logits['coarse'],
        F.conv2d(feats.patch_tokens, head.head.weight, head.head.bias,
                 padding=1).mean((2, 3)))


@pytest.mark.float_compare
def test_channel_order_conventions_matter():
    """The hand computation is sensitive to both layout conventions, so the
    test above would fail if the head used the other one."""
    head = build_head()
    feats = tiny_features()
    with torch.no_grad():
        cams, _ = head(feats)
        layer_major = expected_fine_cams(head, feats, head_major=False)
        blocked = expected_fine_cams(head, feats, interleaved=False)
    scale = cams.abs().max()
    assert (cams - layer_major).abs().max() > 1e-2 * scale
    assert (cams - blocked).abs().max() > 1e-2 * scale


def _grads(module):
    return {n: p.grad for n, p in module.named_parameters()}


@pytest.mark.float_compare
def test_fine_cam_trains_conv_and_fusion_fine_logits_only_the_fusion():
    head = build_head()
    feats = tiny_features(requires_grad=True)
    cams, _ = head(feats)
    cams.square().sum().backward()
    assert head.head.weight.grad.abs().sum() > 0
    assert all(g is not None and g.abs().sum() > 0
               for g in _grads(head.adaptive_attention_fusion).values())
    # the fusion reads detached attention; the conv input is not detached
    assert all(t.grad is None for t in (feats.attn_queries, feats.attn_keys,
                                        feats.attn_feats))
    assert feats.patch_tokens.grad.abs().sum() > 0

    head.zero_grad(set_to_none=True)
    feats = tiny_features(requires_grad=True)
    _, logits = head(feats)
    labels = torch.tensor([[1., 0.], [1., 1.]])
    losses = head.loss_by_cls(logits, labels)
    assert set(losses) == {'loss_cls_token', 'loss_cls_coarse',
                           'loss_cls_fine'}
    torch.testing.assert_close(
        losses['loss_cls_fine'],
        F.multilabel_soft_margin_loss(logits['fine'], labels))
    losses['loss_cls_fine'].backward()
    # the conv may be reached by zeros (the two fine CAMs share one pass)
    assert all(g is None or not g.any() for g in (
        head.head.weight.grad, head.head.bias.grad, feats.patch_tokens.grad))
    assert all(g is not None and g.abs().sum() > 0
               for g in _grads(head.adaptive_attention_fusion).values())

    head.zero_grad(set_to_none=True)
    _, logits = head(tiny_features())
    head.loss_by_cls(logits, labels)['loss_cls_coarse'].backward()
    assert head.head.weight.grad.abs().sum() > 0
    assert all(g is None
               for g in _grads(head.adaptive_attention_fusion).values())


@pytest.mark.parametrize('key, value', [('num_layers', 3), ('num_heads', 2),
                                        ('num_classes', 3)])
def test_head_rejects_features_of_another_backbone(key, value):
    head = build_head(**{key: value, 'in_channels': 6})
    with pytest.raises(ValueError, match=key):
        head(tiny_features())


# ------------------------------------------------------- checkpoints
def fake_release_state_dict(K=20, C=384, depth=12, heads=6, patches=196,
                            reduction=8):
    """Random tensors with the names and shapes of a released WeakTr
    ``checkpoint_best_mIoU.pth`` (hustvl/WeakTr models.py ``WeakTr`` on
    vision_transformer.py's timm ViT, AAF.py's ``AAF``); DeiT-S by default.
    """
    shapes = {
        'cls_token': (1, K, C),
        'pos_embed': (1, K + patches, C),
        'patch_embed.proj.weight': (C, 3, 16, 16),
        'patch_embed.proj.bias': (C, ),
    }
    for i in range(depth):
        shapes.update({
            f'blocks.{i}.norm1.weight': (C, ),
            f'blocks.{i}.norm1.bias': (C, ),
            f'blocks.{i}.attn.qkv.weight': (3 * C, C),
            f'blocks.{i}.attn.qkv.bias': (3 * C, ),
            f'blocks.{i}.attn.proj.weight': (C, C),
            f'blocks.{i}.attn.proj.bias': (C, ),
            f'blocks.{i}.norm2.weight': (C, ),
            f'blocks.{i}.norm2.bias': (C, ),
            f'blocks.{i}.mlp.fc1.weight': (4 * C, C),
            f'blocks.{i}.mlp.fc1.bias': (4 * C, ),
            f'blocks.{i}.mlp.fc2.weight': (C, 4 * C),
            f'blocks.{i}.mlp.fc2.bias': (C, ),
        })
    channels = depth * heads
    shapes.update({
        'norm.weight': (C, ),
        'norm.bias': (C, ),
        'head.weight': (K, C, 3, 3),
        'head.bias': (K, ),
        'adaptive_attention_fusion.attn_head_ffn.0.weight':
        (int(channels / reduction), channels),
        'adaptive_attention_fusion.attn_head_ffn.2.weight':
        (channels, int(channels / reduction)),
        'adaptive_attention_fusion.attn_feat_ffn.0.weight':
        (C // heads // 8, C // heads),
        'adaptive_attention_fusion.attn_feat_ffn.0.bias': (C // heads // 8, ),
        'adaptive_attention_fusion.attn_feat_ffn.1.weight':
        (1, C // heads // 8),
        'adaptive_attention_fusion.attn_feat_ffn.1.bias': (1, ),
    })
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=gen) * 0.02 for k, s in shapes.items()}


class CAMNetwork(nn.Module):
    """The attribute names the SemPLeS segmentor gives its CAM network."""

    def __init__(self, backbone, cam_head):
        super().__init__()
        self.backbone = MODELS.build(backbone)
        self.cam_head = MODELS.build(cam_head)


def test_released_deit_s_checkpoint_converts_and_loads_strictly(tmp_path):
    release = fake_release_state_dict()
    src, dst = tmp_path / 'checkpoint_best_mIoU.pth', tmp_path / 'out.pth'
    torch.save(dict(model=release, epoch=41, miou=69.4), src)
    load_converter().main([str(src), str(dst)])

    model = CAMNetwork(dict(type='WeakTrViT', num_class_tokens=20),
                       dict(type='WeakTrCAMHead', num_classes=20))
    checkpoint = load_checkpoint(model, str(dst), map_location='cpu',
                                 strict=True)
    # with any of mmengine's options (revise_keys=[] reads the state dict's
    # _metadata, which a plain dict lacks)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True,
                    revise_keys=[])
    meta = checkpoint['meta']
    assert meta['source'] == str(src)
    assert (meta['epoch'], meta['miou']) == (41, 69.4)
    assert (meta['num_class_tokens'], meta['num_layers'], meta['embed_dims'],
            meta['fusion_channels'], meta['fusion_hidden']) == (20, 12, 384,
                                                                72, 9)
    state = model.state_dict()
    assert len(state) == len(release)
    for key in ('cls_token', 'blocks.11.attn.qkv.weight', 'norm.bias'):
        torch.testing.assert_close(state[f'backbone.{key}'], release[key],
                                   rtol=0, atol=0)
    for key in ('head.weight',
                'adaptive_attention_fusion.attn_head_ffn.2.weight',
                'adaptive_attention_fusion.attn_feat_ffn.1.bias'):
        torch.testing.assert_close(state[f'cam_head.{key}'], release[key],
                                   rtol=0, atol=0)

    model.eval()
    with torch.no_grad():
        cams, logits = model.cam_head(model.backbone(torch.randn(1, 3, 224,
                                                                 224)))
    assert cams.shape == (1, 20, 14, 14) and torch.isfinite(cams).all()
    assert logits['fine'].shape == (1, 20)


def test_converter_names_unknown_and_missing_keys():
    release = fake_release_state_dict(K=2, C=12, depth=1, heads=1,
                                      patches=4, reduction=1)
    release['head_dist.weight'] = torch.zeros(2, 12)
    with pytest.raises(KeyError, match='head_dist.weight'):
        convert_weaktr_state_dict(release, source='weaktr.pth')
    del release['head_dist.weight']
    del release['adaptive_attention_fusion.attn_head_ffn.2.weight']
    with pytest.raises(KeyError, match='attn_head_ffn.2.weight'):
        convert_weaktr_state_dict(release, source='weaktr.pth')
    # DDP's module. prefix is stripped
    release = fake_release_state_dict(K=2, C=12, depth=1, heads=1,
                                      patches=4, reduction=1)
    converted = convert_weaktr_state_dict(
        {f'module.{k}': v for k, v in release.items()})
    assert set(converted) == {
        ('cam_head.' if k.startswith(('head.', 'adaptive')) else 'backbone.')
        + k for k in release}


@pytest.mark.parametrize('img_size', [32, 48])
def test_deit_init_repeats_the_class_token_k_times(tmp_path, img_size):
    torch.manual_seed(0)
    deit = tiny_timm_vit(num_classes=10).state_dict()  # has head.*
    path = tmp_path / 'deit_tiny.pth'
    torch.save(dict(model=deit), path)
    backbone = build_backbone(
        img_size=img_size, num_class_tokens=3,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    backbone.init_weights()

    torch.testing.assert_close(backbone.cls_token.data,
                               deit['cls_token'].expand(1, 3, 48))
    torch.testing.assert_close(backbone.pos_embed.data[:, :3],
                               deit['pos_embed'][:, :1].expand(1, 3, 48))
    grid = img_size // 8
    patch = deit['pos_embed'][:, 1:].reshape(1, 4, 4, 48).permute(0, 3, 1, 2)
    expected = F.interpolate(patch, size=(grid, grid), mode='bicubic',
                             align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(backbone.pos_embed.data[:, 3:], expected)
    torch.testing.assert_close(backbone.blocks[1].mlp.fc2.weight.data,
                               deit['blocks.1.mlp.fc2.weight'])


@pytest.mark.parametrize('extra, shape', [('head_dist.weight', (10, 48)),
                                          ('dist_token', (1, 1, 48))])
def test_deit_init_names_the_file_and_unexpected_keys(tmp_path, extra,
                                                      shape):
    deit = tiny_timm_vit(num_classes=10).state_dict()
    deit[extra] = torch.zeros(shape)
    path = tmp_path / 'deit_extra.pth'
    torch.save(deit, path)
    backbone = build_backbone(
        num_class_tokens=3,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(KeyError, match=rf'deit_extra\.pth.*{extra}'):
        backbone.init_weights()


# ----------------------------------------------- in the SemPLeS model
def test_semples_runs_the_weaktr_cam_network():
    cfg = copy.deepcopy(Config.fromfile(str(TEST_CONFIGS /
                                            'tiny_semples.py')).model)
    cfg.backbone = dict(type='WeakTrViT', num_class_tokens=5, **TINY)
    cfg.cam_head = dict(type='WeakTrCAMHead', in_channels=48, num_classes=5,
                        num_layers=2, num_heads=3, reduction=2)
    cfg.detach_backbone_in = ('match', 'refine')
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    model.train()
    labels = [[1, 0, 1, 0, 0], [0, 0, 0, 1, 0]]
    samples = [SegDataSample(metainfo=dict(img_shape=(32, 32)))
               for _ in labels]
    for sample, row in zip(samples, labels):
        sample.gt_class_labels = torch.tensor(row, dtype=torch.float32)
    inputs = torch.randn(2, 3, 32, 32)

    model.set_phase('cam')
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_cls_token', 'loss_cls_coarse',
                           'loss_cls_fine'}
    sum(losses.values()).backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0

    model.zero_grad(set_to_none=True)
    model.set_phase('match')
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_match'}
    losses['loss_match'].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.cam_head.head.weight.grad.abs().sum() > 0
    assert model.cam_head.adaptive_attention_fusion.attn_head_ffn[
        0].weight.grad.abs().sum() > 0
