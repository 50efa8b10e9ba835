"""WeakTr's head reads its fused attention from queries and keys; these
tests hold it to the formula it replaced, which stacked the L x heads
softmax maps, mixed them into one (N, N) map and read its class rows and
patch block: CAMs in inference, and losses and gradients in training with
the backbone detached (SemPLeS stages 1 and 3).

A tiny WeakTr built from config dicts, random weights, CPU only.
"""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import semples_mm  # noqa: F401  (registers)
from semples_mm.models.heads.attention_fusion import \
    attention_feature_channels

# every test here compares floats: tools/misc/flake_hunt.py runs them under
# other thread counts and instruction sets
pytestmark = pytest.mark.float_compare

# Head width 16 with 20 class slots: the propagation's column groups of
# d = 16 (20 CAMs, 40 with the loss's detached copy) end in padded groups.
WIDTH, LAYERS, HEADS, SLOTS = 48, 2, 3, 20
IMAGE = (40, 56)  # a 5x7 grid of 8x8 patches
# COCO-like: more slots than classes, read out in another order
SELECTIONS = {
    'all slots': dict(num_classes=SLOTS),
    'selected slots': dict(num_classes=6, num_class_slots=SLOTS,
                           class_indices=[7, 0, 19, 3, 12, 5]),
}


def build_weaktr(head_args, pool='max'):
    torch.manual_seed(0)
    backbone = MODELS.build(dict(
        type='WeakTrViT', img_size=32, patch_size=8, embed_dims=WIDTH,
        num_layers=LAYERS, num_heads=HEADS, num_class_tokens=SLOTS,
        drop_path_rate=0.0))
    backbone.init_weights()
    head = MODELS.build(dict(
        type='WeakTrCAMHead', in_channels=WIDTH, num_layers=LAYERS,
        num_heads=HEADS, attn_pool=pool, reduction=2, feat_reduction=2,
        **head_args))
    with torch.no_grad():  # weights far from init, so the fusion mixes
        for p in head.parameters():
            p.copy_(torch.randn_like(p))
        # DeiT's init gives near-uniform attention; sharpen the maps (the
        # largest weight of a row: 0.05 on average, 1 / N = 0.02)
        for block in backbone.blocks:
            block.attn.qkv.weight.mul_(5)
    return backbone, head


def stacked_map_head(head, feats):
    """The head's previous formula: every map formed, stacked head-major
    (channel head * L + layer), mixed into A (B, N, N), read out."""
    maps = feats.attention_maps().detach()
    B, L, H, N, _ = maps.shape
    maps = maps.transpose(1, 2).reshape(B, H * L, N, N)
    weights = head.adaptive_attention_fusion(
        attention_feature_channels(feats.attn_feats.detach(), H))
    attn = (weights.unsqueeze(1) @ maps.flatten(2)).view(B, N, N) / (H * L)
    S, index = head.num_class_slots, head.class_index
    h, w = feats.hw_shape
    scores = head.head(feats.patch_tokens)[:, index]
    class_attn = attn[:, :S, S:].reshape(B, S, h, w)[:, index]
    patch_attn = attn[:, S:, S:]

    def refine(cams):
        return (cams.flatten(2) @ patch_attn.transpose(1, 2)).view_as(cams)

    coarse = F.relu(scores)
    cams = refine(class_attn * coarse)
    fine = refine(class_attn * coarse.detach())
    return cams, dict(cls_token=feats.class_tokens[:, index].mean(-1),
                      coarse=scores.mean((2, 3)), fine=fine.mean((2, 3)))


@pytest.mark.parametrize('pool', ['max', 'avg'])
@pytest.mark.parametrize('selection', sorted(SELECTIONS))
def test_cams_equal_the_stacked_map_formula(selection, pool):
    backbone, head = build_weaktr(SELECTIONS[selection], pool)
    backbone.eval(), head.eval()
    images = torch.randn(2, 3, *IMAGE)
    with torch.no_grad():
        feats = backbone(images)
        cams, logits = head(feats)
        want_cams, want_logits = stacked_map_head(head, feats)
    assert cams.shape == (2, head.num_classes, 5, 7)
    # float32: the same products summed in another order (per map, then
    # over the maps, with the kernel's running-max softmax); observed
    # differences are ~1e-7 of the largest value, 1e-5 leaves room for
    # other CPUs' kernels (AVX2 / AVX-512 blockings).
    scale = want_cams.abs().max()
    assert scale > 0
    torch.testing.assert_close(cams, want_cams, rtol=1e-5,
                               atol=1e-5 * scale)
    for key, value in want_logits.items():
        torch.testing.assert_close(logits[key], value, rtol=1e-5,
                                   atol=1e-5 * value.abs().max())


@pytest.mark.parametrize('selection', sorted(SELECTIONS))
def test_training_losses_and_gradients_equal_the_stacked_map_formula(
        selection):
    """Stages 1 and 3: the backbone runs without gradients, the head and
    fusion train on the classification losses and a loss on the CAMs."""
    backbone, head = build_weaktr(SELECTIONS[selection])
    backbone.train(), head.train()
    images = torch.randn(4, 3, *IMAGE)
    K = head.num_classes
    labels = (torch.arange(4 * K).view(4, K) % 3 == 0).float()
    cam_weights = torch.randn(4, K, 5, 7)
    with torch.no_grad():
        feats = backbone(images)

    def losses_and_grads(forward):
        head.zero_grad(set_to_none=True)
        cams, logits = forward(head, feats)
        losses = head.loss_by_cls(logits, labels)
        losses['loss_cams'] = (cams * cam_weights).mean()
        sum(losses.values()).backward()
        return ({k: v.detach() for k, v in losses.items()},
                {n: p.grad.clone() for n, p in head.named_parameters()})

    losses, grads = losses_and_grads(lambda h, f: h(f))
    want_losses, want_grads = losses_and_grads(stacked_map_head)
    # float32, sums in another order as above; a gradient sums one more
    # level of such products, hence the looser 1e-4.
    for key, value in want_losses.items():
        torch.testing.assert_close(losses[key], value, rtol=1e-5, atol=0)
    for name, value in want_grads.items():
        assert value.abs().max() > 0, name
        torch.testing.assert_close(grads[name], value, rtol=1e-4,
                                   atol=1e-4 * value.abs().max())


def test_bf16_autocast_rounds_no_worse_than_the_stacked_map_formula():
    """Under bf16 autocast (``amp``) the two formulas round at other points.
    On the same (bf16) backbone features, against the head computed in
    float32, the new one may be off by no more than the previous one was,
    up to a factor 2 and one bf16 ulp of the largest CAM (2^-8: 8
    significant bits); observed: 0.4-0.7% both, either way round."""
    backbone, head = build_weaktr(SELECTIONS['all slots'])
    backbone.eval(), head.eval()
    images = torch.randn(2, 3, *IMAGE)
    with torch.no_grad():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            feats = backbone(images)
            new = head(feats)[0].float()
            old = stacked_map_head(head, feats)[0].float()
        exact = stacked_map_head(head, feats._replace(**{
            name: getattr(feats, name).float() for name in (
                'patch_tokens', 'class_tokens', 'attn_queries', 'attn_keys',
                'attn_feats')}))[0]
    scale = exact.abs().max()
    new_error = (new - exact).abs().max()
    old_error = (old - exact).abs().max()
    assert old_error > 0  # bf16 did round
    assert new_error <= 2 * old_error + scale * 2**-8


@pytest.mark.parametrize('selection', sorted(SELECTIONS))
def test_present_classes_alone_equal_their_columns_of_all(selection):
    """head(features, classes): only the masked classes are propagated (here
    3 columns, one group of d = 16, where all 20 take two), and they equal
    their columns of the full head's output."""
    backbone, head = build_weaktr(SELECTIONS[selection])
    backbone.eval(), head.eval()
    classes = torch.zeros(head.num_classes, dtype=torch.bool)
    classes[[0, 2, head.num_classes - 1]] = True
    with torch.no_grad():
        feats = backbone(torch.randn(2, 3, *IMAGE))
        cams, logits = head(feats)
        some_cams, some_logits = head(feats, classes)
    assert some_cams.shape == (2, 3, 5, 7)
    # each column is its own weighted sum, but the kernel may block a group
    # of 3 value columns otherwise than one of 16: rounding of float32 sums
    # in another order (observed: 7e-8 of the scale), inside 1e-5 of it
    scale = cams.abs().max()
    torch.testing.assert_close(some_cams, cams[:, classes], rtol=1e-5,
                               atol=1e-5 * scale)
    for key, value in logits.items():
        torch.testing.assert_close(some_logits[key], value[:, classes],
                                   rtol=1e-5, atol=1e-5 * scale)
