"""The authors' recipe (issue 14): timm augmentation as mmseg transforms, the
labels-unary dense CRF, the prompt's '.' token, WeakTr's class slots, strict
loading of converted WeakTr checkpoints, and the WeakTr configs' settings.

CPU, random weights, tiny models, no downloads.
"""
import json
import random

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS
from mmseg.structures import SegDataSample
from torch import nn

import semples_mm  # noqa: F401  (registers)
from conftest import REPO_ROOT
from float_compare import assert_close_up_to_rounding
from semples_mm.datasets import COCO_CLASSES
from semples_mm.models.weaktr_checkpoint import \
    convert_weaktr_checkpoint
from semples_mm.models.cams import normalize_cams
from semples_mm.pseudo_labels import dense_crf_labels, export_settings

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
WEAKTR_CONFIGS = ('configs/semples/voc_weaktr.py',
                  'configs/semples/coco_weaktr.py',
                  'configs/weaktr/weaktr_deit_s_voc.py',
                  'configs/weaktr/weaktr_deit_s_coco.py')


def bgr_image(seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def preprocess(img):
    """An image through mmseg's packing and SegDataPreProcessor (RGB,
    ImageNet mean/std), -> (3, H, W) float."""
    packed = TRANSFORMS.build(dict(type='PackSegInputs'))(dict(
        img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))
    preprocessor = MODELS.build(dict(type='SegDataPreProcessor', mean=MEAN,
                                     std=STD, bgr_to_rgb=True))
    batch = preprocessor(dict(inputs=[packed['inputs']],
                              data_samples=[packed['data_samples']]))
    return batch['inputs'][0]


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


# ------------------------------------------------------------ RandAugment
def timm_authors_transform():
    """timm's training transform with the authors' arguments."""
    from timm.data import create_transform
    return create_transform(224, is_training=True,
                            auto_augment='rand-m9-mstd0.5-inc1',
                            interpolation='bicubic', re_prob=0.25,
                            re_mode='pixel', re_count=1)


def test_rand_augment_has_the_ops_create_transform_builds():
    theirs = next(t for t in timm_authors_transform().transforms
                  if type(t).__name__ == 'RandAugment')
    ours = TRANSFORMS.build(dict(type='TimmRandAugment',
                                 config_str='rand-m9-mstd0.5-inc1',
                                 img_mean=MEAN, img_size=(224, 224)))
    assert ours.hparams['translate_const'] == 100
    assert ours.hparams['img_mean'] == (124, 116, 104)
    assert ours.augment.num_layers == theirs.num_layers == 2
    assert len(ours.augment.ops) == len(theirs.ops) == 15
    for mine, timm_op in zip(ours.augment.ops, theirs.ops):
        assert (mine.name, mine.prob, mine.magnitude, mine.magnitude_std) == \
            (timm_op.name, timm_op.prob, timm_op.magnitude,
             timm_op.magnitude_std)
        assert mine.hparams == timm_op.hparams
        assert mine.kwargs == timm_op.kwargs


@pytest.mark.float_compare
def test_rand_augment_draws_what_timm_draws_and_keeps_bgr():
    from PIL import Image
    theirs = next(t for t in timm_authors_transform().transforms
                  if type(t).__name__ == 'RandAugment')
    ours = TRANSFORMS.build(dict(type='TimmRandAugment', img_mean=MEAN))
    img = bgr_image(3, (224, 224))
    changed = 0
    for seed in range(6):
        random.seed(seed)
        np.random.seed(seed)
        out = ours(dict(img=img.copy()))['img']
        random.seed(seed)
        np.random.seed(seed)
        expected = np.asarray(theirs(Image.fromarray(img[..., ::-1].copy())))
        assert out.dtype == np.uint8 and out.shape == img.shape
        np.testing.assert_array_equal(out, expected[..., ::-1])
        changed += int(not np.array_equal(out, img))
    assert changed >= 3  # the ops did something


def test_rand_augment_refuses_masks_float_images_and_bad_policies():
    augment = TRANSFORMS.build(dict(type='TimmRandAugment'))
    img = bgr_image()
    with pytest.raises(ValueError, match='LoadAnnotations'):
        augment(dict(img=img, gt_seg_map=np.zeros(img.shape[:2], np.uint8),
                     seg_fields=['gt_seg_map']))
    with pytest.raises(ValueError, match='uint8'):
        augment(dict(img=img.astype(np.float32)))
    with pytest.raises(ValueError, match="start with 'rand'"):
        TRANSFORMS.build(dict(type='TimmRandAugment', config_str='v0'))
    with pytest.raises(ValueError, match='cannot parse'):
        TRANSFORMS.build(dict(type='TimmRandAugment',
                              config_str='rand-m9-x3'))
    with pytest.raises(ValueError, match='interpolation'):
        TRANSFORMS.build(dict(type='TimmRandAugment', interpolation='cubic'))


# -------------------------------------------------------- random erasing
def build_erasing(**kwargs):
    cfg = dict(type='TimmRandomErasing', prob=1.0, mode='pixel',
               max_count=1, mean=MEAN, std=STD, bgr_to_rgb=True)
    cfg.update(kwargs)
    return TRANSFORMS.build(cfg)


@pytest.mark.float_compare
def test_erased_box_normalises_to_the_drawn_normal_values():
    img = bgr_image(1)
    erasing = build_erasing()
    for seed in range(5):
        random.seed(seed)
        torch.manual_seed(seed)
        results = erasing(dict(img=img.copy()))
        (top, left, h, w), = results['erased_boxes']
        out = results['img']
        assert out.dtype == np.float32
        # the values timm would draw: its box draws, then normal_ (3, h, w)
        torch.manual_seed(seed)
        z = torch.empty((3, h, w)).normal_()
        normalised = preprocess(out)
        torch.testing.assert_close(
            normalised[:, top:top + h, left:left + w], z, rtol=0, atol=2e-5)
        outside = np.ones(img.shape[:2], bool)
        outside[top:top + h, left:left + w] = False
        np.testing.assert_array_equal(out[outside], img[outside])
        reference = preprocess(img)
        assert torch.equal(normalised[:, torch.from_numpy(outside)],
                           reference[:, torch.from_numpy(outside)])


@pytest.mark.float_compare
def test_erasing_equals_timm_on_the_normalised_tensor():
    from timm.data.random_erasing import RandomErasing
    timm_erasing = RandomErasing(0.25, mode='pixel', max_count=1,
                                 device='cpu')
    erasing = build_erasing(prob=0.25)
    img = bgr_image(2)
    reference = preprocess(img)
    erased = 0
    for seed in range(12):
        random.seed(seed)
        torch.manual_seed(seed)
        expected = timm_erasing(reference.clone())
        random.seed(seed)
        torch.manual_seed(seed)
        results = erasing(dict(img=img.copy()))
        erased += len(results['erased_boxes'])
        torch.testing.assert_close(preprocess(results['img']), expected,
                                   rtol=0, atol=2e-5)
    assert 0 < erased < 12  # probability 0.25: some images, not all


@pytest.mark.float_compare
@pytest.mark.parametrize('mode', ['rand', 'const'])
def test_erasing_modes_fill_per_channel(mode):
    img = bgr_image(4)
    random.seed(0)
    torch.manual_seed(0)
    results = build_erasing(mode=mode)(dict(img=img.copy()))
    (top, left, h, w), = results['erased_boxes']
    region = preprocess(results['img'])[:, top:top + h, left:left + w]
    per_channel = region.flatten(1)
    assert torch.allclose(per_channel, per_channel[:, :1], atol=2e-5)
    if mode == 'const':
        assert torch.allclose(region, torch.zeros_like(region), atol=2e-5)


def test_erasing_arguments_fail_clearly():
    with pytest.raises(ValueError, match='mode'):
        build_erasing(mode='noise')
    with pytest.raises(ValueError, match='prob'):
        build_erasing(prob=1.5)
    with pytest.raises(ValueError, match='min_count'):
        build_erasing(min_count=2, max_count=1)
    with pytest.raises(ValueError, match='data preprocessor'):
        build_erasing(mean=[0, 0])
    untouched = build_erasing(prob=0.0)(dict(img=bgr_image()))
    assert untouched['erased_boxes'] == []
    np.testing.assert_array_equal(untouched['img'], bgr_image())


# -------------------------------------------------------------- dense CRF
def crf_scores(weak):
    """bg threshold 0.43 and one class, strong (0.9) or barely above the
    threshold (0.44) in a square; the argmax is the same."""
    scores = np.zeros((2, 24, 24), np.float32)
    scores[0] = 0.43
    scores[1, 6:18, 6:18] = 0.44 if weak else 0.9
    return scores


def crf_image():
    """A grey image with a lighter square where the class scores are."""
    image = np.full((24, 24, 3), 128, np.uint8)
    image[6:18, 6:18] = 200
    return image


@pytest.mark.float_compare
def test_labels_unary_reads_only_the_argmax():
    image = crf_image()
    labels_cfg = dict(unary='labels', gt_prob=0.7)
    strong = dense_crf_labels(image, crf_scores(False), labels_cfg)
    weak = dense_crf_labels(image, crf_scores(True), labels_cfg)
    np.testing.assert_array_equal(strong, weak)
    expected = crf_scores(False).argmax(0)
    np.testing.assert_array_equal(strong, expected)  # 0.7 holds the square
    # the scores unary sees how sure each pixel is: the barely-foreground
    # square (0.44 vs 0.43) is smoothed away, the confident one kept
    np.testing.assert_array_equal(
        dense_crf_labels(image, crf_scores(False)), expected)
    assert not dense_crf_labels(image, crf_scores(True)).any()
    # a weak hold on the labels lets the pairwise terms win
    loose = dense_crf_labels(image, crf_scores(True),
                             dict(unary='labels', gt_prob=0.51))
    assert not loose.any()


def test_crf_settings_fail_clearly():
    image = np.zeros((4, 4, 3), np.uint8)
    scores = np.ones((2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="unary='softmax'"):
        dense_crf_labels(image, scores, dict(unary='softmax'))
    with pytest.raises(ValueError, match='gt_prob=1.0'):
        dense_crf_labels(image, scores, dict(unary='labels', gt_prob=1.0))
    with pytest.raises(KeyError, match='zero_unsure'):
        dense_crf_labels(image, scores, dict(zero_unsure=True))
    with pytest.raises(ValueError, match='unary'):
        export_settings(dict(pseudo_label_cfg=dict(
            crf=True, crf_cfg=dict(unary='argmax'))))
    only_background = dense_crf_labels(image, scores[:1],
                                       dict(unary='labels'))
    assert only_background.shape == (4, 4) and not only_background.any()


@pytest.mark.float_compare
def test_labels_crf_export_writes_present_ids_only(tmp_path):
    from PIL import Image

    from semples_mm.pseudo_labels.writer import MaskWriter
    image_path = tmp_path / 'img.png'
    Image.fromarray(crf_image()).save(image_path)
    cams = torch.zeros(4, 24, 24)
    cams[2, 6:18, 6:18] = 0.44  # kept: the labels unary holds the argmax
    cams[3, 0:4, 0:4] = 0.9  # an absent class
    labels = torch.tensor([0., 0., 1., 0.])
    with MaskWriter(str(tmp_path / 'masks'), 0.43, crf=True,
                    crf_cfg=dict(unary='labels'), crf_workers=1) as writer:
        writer.write('img', cams * labels[:, None, None], labels,
                     str(image_path))
    mask = np.asarray(Image.open(tmp_path / 'masks' / 'img.png'))
    assert set(np.unique(mask)) == {0, 3}
    assert mask[12, 12] == 3


# ------------------------------------------------------- prompt '.' token
MICRO = 'semples-recipe-micro'


@pytest.fixture(scope='module')
def micro_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp('clip_cfg')
    (folder / f'{MICRO}.json').write_text(json.dumps(dict(
        embed_dim=32, quick_gelu=False,
        vision_cfg=dict(image_size=32, layers=1, width=32, head_width=16,
                        patch_size=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=32,
                      heads=2, layers=1))))
    open_clip.add_model_config(folder)

    def build(**kwargs):
        torch.manual_seed(0)
        return MODELS.build(dict(type='FrozenCLIP', model_name=MICRO,
                                 **kwargs))
    return build


def test_open_clip_tokenises_the_suffix_as_end_of_word_dot(micro_clip):
    clip = micro_clip()
    # today's template: 'a photo of .' ends in '.</w>' (269), not '.' (13)
    assert clip.prompt_template.tokens(0)[0, :6].tolist() == [
        49406, 320, 1125, 539, 269, 49407]
    assert clip.tokenizer.decoder[13] == '.'
    assert clip.tokenizer.decoder[269] == '.</w>'


@pytest.mark.float_compare
def test_suffix_ids_write_13_and_pool_at_the_eot(micro_clip):
    clip = micro_clip(prompt_suffix_ids=(13, ))
    assert clip.prompt_template.tokens(0)[0, :6].tolist() == [
        49406, 320, 1125, 539, 13, 49407]
    assert clip.prompt_template.insert_index == 4
    words = torch.tensor(clip.tokenizer.encode('red boat'))  # 2 tokens
    with torch.no_grad():
        ctx = clip.model.token_embedding(words).float()[None]
    prompts = clip.encode_prompts(ctx)
    # the same sequence as token ids: [SOT] a photo of red boat . [EOT];
    # encode_text pools at the EOT (index 5 + L = 7) on its own
    tokens = torch.zeros(1, clip.context_length, dtype=torch.long)
    ids = [49406, 320, 1125, 539, *words.tolist(), 13, 49407]
    tokens[0, :len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        expected = clip.model.encode_text(tokens, normalize=True).float()
    # the micro text tower: one block (6 sums, its MLP's 128 terms the
    # longest), the projection and the norm, reached two ways
    assert_close_up_to_rounding(prompts, expected, terms=128, depth=8)
    # pooling anywhere else gives another feature
    other = micro_clip()  # '.</w>' instead of '.'
    assert not torch.allclose(other.encode_prompts(ctx), prompts, atol=1e-3)
    assert clip.prompt_template.max_length == clip.context_length - 6


def test_suffix_ids_fail_clearly(micro_clip):
    with pytest.raises(ValueError, match='set only one'):
        micro_clip(prompt_suffix='!', prompt_suffix_ids=(13, ))
    with pytest.raises(ValueError, match='start/end tokens'):
        micro_clip(prompt_suffix_ids=(49407, ))
    with pytest.raises(ValueError, match='sequence of token ids'):
        micro_clip(prompt_suffix_ids=13)
    with pytest.raises(ValueError, match='vocabulary'):
        micro_clip(prompt_suffix_ids=(50000, ))


# ------------------------------------------------------------ class slots
TINY = dict(img_size=32, patch_size=8, embed_dims=48, num_layers=2,
            num_heads=3, drop_path_rate=0.0)
TINY_HEAD = dict(type='WeakTrCAMHead', in_channels=48, num_layers=2,
                 num_heads=3, reduction=2)


@pytest.mark.float_compare
def test_class_indices_read_out_the_selected_slots():
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='WeakTrViT', num_class_tokens=6,
                                 **TINY)).eval()
    full = MODELS.build(dict(TINY_HEAD, num_classes=6))
    slots = (5, 0, 2, 3)
    selected = MODELS.build(dict(TINY_HEAD, num_classes=4,
                                 num_class_slots=6, class_indices=slots))
    # a checkpoint of the 6-slot layout loads as it is
    assert {k: v.shape for k, v in selected.state_dict().items()} == \
        {k: v.shape for k, v in full.state_dict().items()}
    selected.load_state_dict(full.state_dict())
    feats = backbone(torch.randn(2, 3, 32, 32))
    cams, logits = selected(feats)
    full_cams, full_logits = full(feats)
    index = list(slots)
    assert cams.shape == (2, 4, 4, 4)
    # 4 classes' convolution kernels may sum their 48 x 3 x 3 = 432 inputs
    # in another order than 6 classes'; the fusion's 5 sums, the refinement
    # and the mean follow
    assert_close_up_to_rounding(cams, full_cams[:, index], terms=432, depth=8)
    for key in ('cls_token', 'coarse', 'fine'):
        assert_close_up_to_rounding(logits[key], full_logits[key][:, index],
                                    terms=432, depth=8)
    losses = selected.loss_by_cls(logits, torch.tensor([[1., 0, 0, 1],
                                                        [0, 1, 0, 0]]))
    assert set(losses) == {'loss_cls_token', 'loss_cls_coarse',
                           'loss_cls_fine'}
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_classes=4, num_class_slots=6), 'no class_indices'),
    (dict(num_classes=4, num_class_slots=6, class_indices=(0, 1, 2)),
     'one slot per output class'),
    (dict(num_classes=2, num_class_slots=6, class_indices=(0, 6)),
     r'out of range: \[6\]'),
    (dict(num_classes=2, num_class_slots=6, class_indices=(1, 1)),
     r'repeated: \[1\]'),
    (dict(num_classes=1, num_class_slots=6, class_indices=3), 'ints'),
])
def test_class_indices_fail_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(TINY_HEAD, **kwargs))


def test_head_names_slots_when_the_backbone_has_other_tokens():
    backbone = MODELS.build(dict(type='WeakTrViT', num_class_tokens=5,
                                 **TINY))
    head = MODELS.build(dict(TINY_HEAD, num_classes=4, num_class_slots=6,
                             class_indices=(0, 1, 2, 3)))
    with pytest.raises(ValueError, match='num_class_slots'):
        head(backbone(torch.randn(1, 3, 32, 32)))


def test_coco_slots_are_category_ids_minus_one():
    cfg = Config.fromfile(REPO_ROOT / 'configs/_base_/models/weaktr_deit_s.py')
    slots = cfg.weaktr_coco_class_slots
    assert len(slots) == len(COCO_CLASSES) - 1 == 80
    assert list(slots) == sorted(set(slots)) and slots[-1] == 89
    # COCO category ids of a few classes (the 2014 annotation files)
    category_id = {'person': 1, 'bicycle': 2, 'stop sign': 13,
                   'backpack': 27, 'umbrella': 28, 'handbag': 31,
                   'bottle': 44, 'wine glass': 46, 'chair': 62,
                   'dining table': 67, 'toilet': 70, 'tv': 72, 'book': 84,
                   'toothbrush': 90}
    names = COCO_CLASSES[1:]
    for name, cid in category_id.items():
        assert slots[names.index(name)] == cid - 1, name


# ------------------------------------------------- converted checkpoints
class CAMNetwork(nn.Module):
    """The attribute names the segmentor gives its CAM network."""

    def __init__(self, backbone, cam_head):
        super().__init__()
        self.backbone = MODELS.build(backbone)
        self.cam_head = MODELS.build(cam_head)


def released_file(tmp_path, num_slots=6, reduction=2):
    """A released-WeakTr-layout file (``{'model': ...}``) and its
    conversion, from random tiny weights."""
    torch.manual_seed(1)
    source = CAMNetwork(
        dict(type='WeakTrViT', num_class_tokens=num_slots, **TINY),
        dict(TINY_HEAD, num_classes=num_slots, reduction=reduction))
    release = {**source.backbone.state_dict(), **source.cam_head.state_dict()}
    converted = convert_weaktr_checkpoint(dict(model=release))
    path = tmp_path / f'weaktr_{num_slots}_{reduction}.pth'
    torch.save(converted, path)
    raw = tmp_path / f'released_{num_slots}_{reduction}.pth'
    torch.save(dict(model=release), raw)
    return source, path, raw


def loaded(path, reduction=2, **head):
    model = CAMNetwork(
        dict(type='WeakTrViT', num_class_tokens=6, **TINY,
             init_cfg=dict(type='Pretrained', checkpoint=str(path),
                           prefix='backbone.')),
        dict(TINY_HEAD, reduction=reduction,
             **(head or dict(num_classes=6)),
             init_cfg=dict(type='Pretrained', checkpoint=str(path),
                           prefix='cam_head.')))
    model.backbone.init_weights()
    model.cam_head.init_weights()
    return model


def test_init_cfg_with_prefix_loads_backbone_and_head(tmp_path):
    source, path, _ = released_file(tmp_path)
    model = loaded(path, num_classes=4, num_class_slots=6,
                   class_indices=(1, 2, 3, 4))
    for name in ('backbone', 'cam_head'):
        mine = getattr(model, name).state_dict()
        theirs = getattr(source, name).state_dict()
        assert set(mine) == set(theirs)
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_a_training_checkpoint_loads_too(tmp_path):
    """An mmengine checkpoint of a model with this CAM network (other keys
    and the segmentor's extra state beside it) serves as weaktr_checkpoint,
    e.g. the last checkpoint of configs/weaktr/."""
    source, _, _ = released_file(tmp_path)
    state = {f'module.{name}.{k}': v for name in ('backbone', 'cam_head')
             for k, v in getattr(source, name).state_dict().items()}
    state['module.prompt_learner.ctx'] = torch.zeros(6, 2, 4)
    state['module._extra_state'] = dict(phase='cam', cam_snapshot=None)
    path = tmp_path / 'iter_10.pth'
    torch.save(dict(meta=dict(iter=10), state_dict=state), path)
    model = loaded(path)
    assert torch.equal(model.cam_head.head.weight, source.cam_head.head.weight)


def test_converted_checkpoint_that_does_not_fit_fails(tmp_path):
    _, path, raw = released_file(tmp_path)
    with pytest.raises(ValueError, match='attn_head_ffn'):
        loaded(path, reduction=3)  # another fusion bottleneck
    with pytest.raises(KeyError, match='weaktr_to_mmseg.py'):
        loaded(raw)  # not converted


def test_semples_snapshot_on_entering_match_is_the_loaded_network(tmp_path):
    _, path, _ = released_file(tmp_path)
    cam = loaded(path)
    model = MODELS.build(dict(
        type='SemPLeS',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN,
                               std=STD, bgr_to_rgb=True),
        backbone=dict(type='WeakTrViT', num_class_tokens=6, **TINY,
                      init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                    prefix='backbone.')),
        cam_head=dict(TINY_HEAD, num_classes=6,
                      init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                    prefix='cam_head.')),
        class_names=[f'c{i}' for i in range(6)],
        phases=[dict(name='match', iters=1, optimizer='cam')],
        clip=dict(type='FrozenCLIP', model_name='semples-synthetic-tiny'),
        match_loss=dict(type='SegmentLabelMatchingLoss'),
        mask_align_corners=True))
    model.init_weights()
    model.enter_iteration(0, OptimWrapper(torch.optim.AdamW(
        model.cam_head.parameters())))
    expected = {f'{name}.{k}': v for name in ('backbone', 'cam_head')
                for k, v in getattr(cam, name).state_dict().items()}
    snapshot = model.cam_snapshot.as_dict()
    assert set(snapshot) == set(expected)
    assert all(torch.equal(snapshot[k], v) for k, v in expected.items())
    assert model.mask_align_corners


# ------------------------------------------------------- smaller options
@pytest.mark.float_compare
def test_training_masks_can_upsample_with_align_corners():
    cams = torch.rand(1, 2, 4, 4)
    mine = normalize_cams(cams, None, (9, 9), eps=0.1, align_corners=True)
    up = F.interpolate(cams, size=(9, 9), mode='bilinear',
                       align_corners=True)
    flat = up.flatten(2)
    lo = flat.min(2)[0][..., None, None]
    hi = flat.max(2)[0][..., None, None]
    torch.testing.assert_close(mine, (up - lo) / (hi - lo + 0.1))
    assert not torch.allclose(mine, normalize_cams(cams, None, (9, 9), 0.1))


def test_an_optimizer_group_set_to_none_is_left_out():
    model = nn.Module()
    model.cam_head = nn.Linear(2, 2)
    model.prompt_learner = None
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='ModuleGroupsOptimWrapperConstructor',
        optim_wrapper_cfg=dict(
            cam=dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3),
                     modules=('cam_head', )),
            prompt=None)))
    wrappers = constructor(model)
    assert list(wrappers.keys()) == ['cam']


# ---------------------------------------------------------------- configs
def effective_lr(cfg, phase_name):
    phase = next(p for p in cfg.model.phases if p['name'] == phase_name)
    lr = cfg.optim_wrapper[phase['optimizer']]['optimizer']['lr']
    return lr * phase.get('lr_mult', 1.0)


def phase_batch(cfg, phase_name):
    loaders = cfg.train_cfg.get('phase_dataloaders') or {}
    return loaders.get(phase_name, {}).get('batch_size',
                                           cfg.train_dataloader.batch_size)


@pytest.mark.parametrize('path, batches, lrs, iters, scales, bg', [
    ('configs/semples/voc_weaktr.py', (64, 128, 64),
     (5.12e-4 * 64 / 512, 0.1 * 128 / 512, 5.12e-4 * 64 / 512),
     (9900, 4920, 9900), (1.0, 1.2), 0.43),
    ('configs/semples/coco_weaktr.py', (32, 128, 24),
     (5.12e-6 * 32 / 512, 0.01 * 128 / 512, 5.12e-6 * 24 / 512),
     (153900, 38460, 205200), (1.0, 0.8, 1.2), 0.42),
])
def test_semples_weaktr_configs_hold_the_authors_settings(
        path, batches, lrs, iters, scales, bg):
    cfg = Config.fromfile(REPO_ROOT / path)
    names = ('match', 'prompt', 'refine')
    assert [p['name'] for p in cfg.model.phases] == list(names)
    assert tuple(phase_batch(cfg, n) for n in names) == batches
    for name, lr in zip(names, lrs):
        assert effective_lr(cfg, name) == pytest.approx(lr, rel=1e-9)
    assert tuple(p['iters'] for p in cfg.model.phases) == iters
    # the run is as long as the phases (PhasedTrainLoop)
    assert cfg.train_cfg.type == 'PhasedTrainLoop'
    assert 'max_iters' not in cfg.train_cfg
    # their timm cosine to 0, stepped after each of 60 epochs
    assert [p['epochs'] for p in cfg.model.phases] == [60] * 3
    assert dict(cfg.model.lr_schedule) == dict(by_epoch=True)
    for group in ('cam', 'prompt'):
        optimizer = cfg.optim_wrapper[group]['optimizer']
        assert (optimizer['type'], optimizer['weight_decay']) == \
            ('AdamW', 0.03)
    assert cfg.optim_wrapper.cam.modules == ('cam_head', )
    assert tuple(cfg.model.detach_backbone_in) == ('match', 'refine')
    assert cfg.model.backbone.type == 'WeakTrViT'
    assert cfg.model.backbone.drop_path_rate == 0.1
    for part in ('backbone', 'cam_head'):
        init = cfg.model[part].init_cfg
        assert (init.type, init.checkpoint, init.prefix) == (
            'Pretrained', cfg.weaktr_checkpoint, f'{part}.')
    assert cfg.model.clip.model_name == 'ViT-B-32'
    assert cfg.model.clip.clip_normalize is False
    assert tuple(cfg.model.clip.prompt_suffix_ids) == (13, )
    assert cfg.model.prompt_learner.length == 30
    assert cfg.model.mask_align_corners is True
    assert cfg.model.test_cfg.bg_threshold == bg
    assert (cfg.model.test_cfg.flip, cfg.model.test_cfg.eps) == (True, 1e-8)
    assert tuple(cfg.pseudo_label_cfg.scales) == scales
    assert cfg.pseudo_label_cfg.flip is True
    assert dict(cfg.pseudo_label_cfg.crf_cfg) == dict(unary='labels',
                                                      gt_prob=0.7)
    assert cfg.randomness.seed == 504
    selection = [h for h in cfg.custom_hooks
                 if h['type'] == 'BestCAMSelectionHook']
    assert len(selection) == 1
    assert tuple(selection[0]['phases']) == ('match', 'refine')
    sweep = next(m for m in cfg.val_evaluator
                 if m['type'] == 'PseudoMaskMetric')['bg_thresholds']
    assert tuple(sweep) == (0.40, 0.59, 0.01)
    # match/refine: the timm pipeline; prompt: crop and flip only
    train = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'TimmRandAugment' in train and 'TimmRandomErasing' in train
    prompt = [t['type'] for t in cfg.train_cfg.phase_dataloaders.prompt
              .dataset.pipeline]
    assert prompt == ['LoadImageFromFile', 'SegRandomResizedCrop',
                      'RandomFlip', 'PackWSSSInputs']
    assert 'Resize' not in [t['type'] for t in
                            cfg.val_dataloader.dataset.pipeline]


def test_coco_weaktr_configs_read_out_80_of_90_slots():
    base = Config.fromfile(
        REPO_ROOT / 'configs/_base_/models/weaktr_deit_s.py')
    for path in ('configs/semples/coco_weaktr.py',
                 'configs/weaktr/weaktr_deit_s_coco.py'):
        cfg = Config.fromfile(REPO_ROOT / path)
        assert cfg.model.backbone.num_class_tokens == 90
        head = cfg.model.cam_head
        assert (head.num_classes, head.num_class_slots) == (80, 90)
        assert tuple(head.class_indices) == base.weaktr_coco_class_slots
        hook = next(h for h in cfg.custom_hooks
                    if h['type'] == 'BestCAMSelectionHook')
        assert hook['dataloader']['dataset']['ann_file'] == \
            'ImageSets/train2014_1250.txt'


# VOC: WeakTr's docs/Training.md lines 8-17; COCO: the WeakTr command
# bundled with SemPLeS (its docs/Training.md lines 63-70, main.py defaults:
# weight decay 0.05, fusion avg / 4).
@pytest.mark.parametrize('path, lr, weight_decay, fusion, min_lr, iters', [
    ('configs/weaktr/weaktr_deit_s_voc.py', 6e-4 * 64 / 512, 0.03,
     ('max', 8), 1e-5, 9900),
    ('configs/weaktr/weaktr_deit_s_coco.py', 5e-4 * 64 / 512, 0.05,
     ('avg', 4), 1e-5, 76920),
])
def test_weaktr_stage_configs_hold_weaktrs_settings(path, lr, weight_decay,
                                                    fusion, min_lr, iters):
    cfg = Config.fromfile(REPO_ROOT / path)
    assert [p['name'] for p in cfg.model.phases] == ['cam']
    assert cfg.model.phases[0]['iters'] == iters
    assert 'max_iters' not in cfg.train_cfg
    assert cfg.train_dataloader.batch_size == 64
    assert effective_lr(cfg, 'cam') == pytest.approx(lr, rel=1e-9)
    assert cfg.optim_wrapper.cam.optimizer.weight_decay == weight_decay
    assert cfg.optim_wrapper.prompt is None
    assert cfg.model.clip is None and cfg.model.prompt_learner is None
    assert cfg.model.backbone.init_cfg.checkpoint == \
        cfg.weaktr_deit_checkpoint
    assert 'prefix' not in cfg.model.backbone.init_cfg
    assert (cfg.model.cam_head.attn_pool,
            cfg.model.cam_head.reduction) == fusion
    schedule = cfg.model.lr_schedule
    assert lr * schedule.eta_min_ratio == pytest.approx(min_lr)
    # WeakTr's timm schedule: 5 warm-up epochs from 1e-6, stepped per epoch
    assert lr * schedule.warmup_ratio == pytest.approx(1e-6)
    assert (schedule.by_epoch, schedule.warmup_epochs) == (True, 5)
    assert cfg.model.phases[0]['epochs'] == 60
    assert [h['type'] for h in cfg.custom_hooks].count(
        'BestCAMSelectionHook') == 1
    assert cfg.randomness.seed == 504


@pytest.mark.parametrize('path', WEAKTR_CONFIGS +
                         ('configs/semples/synthetic_weaktr.py', ))
def test_training_pipelines_load_no_masks_and_erase_in_the_models_units(path):
    cfg = Config.fromfile(REPO_ROOT / path)
    preprocessor = cfg.model.data_preprocessor
    loaders = [cfg.train_dataloader] + [
        dict(dataset=override['dataset']) for override in
        (cfg.train_cfg.get('phase_dataloaders') or {}).values()
        if 'dataset' in override]
    for loader in loaders:
        pipeline = loader['dataset']['pipeline']
        types = [t['type'] for t in pipeline]
        if 'TimmRandAugment' in types:
            assert 'LoadAnnotations' not in types, path
        for t in pipeline:
            if t['type'] == 'TimmRandomErasing':
                assert list(t['mean']) == list(preprocessor.mean)
                assert list(t['std']) == list(preprocessor.std)
                assert t['bgr_to_rgb'] == preprocessor.bgr_to_rgb
            if t['type'] == 'TimmRandAugment':
                assert list(t['img_mean']) == list(preprocessor.mean)


def test_synthetic_weaktr_trains_a_tiny_weaktr_from_scratch():
    cfg = Config.fromfile(REPO_ROOT / 'configs/semples/synthetic_weaktr.py')
    synthetic = Config.fromfile(REPO_ROOT / 'configs/semples/synthetic.py')
    assert cfg.model.backbone.type == 'WeakTrViT'
    assert 'init_cfg' not in cfg.model.backbone
    assert [p['name'] for p in cfg.model.phases] == [
        'cam', 'match', 'prompt', 'refine']
    assert cfg.model.phases == synthetic.model.phases
    assert cfg.optim_wrapper == synthetic.optim_wrapper
    model = MODELS.build(dict(cfg.model, clip=None, prompt_learner=None,
                              phases=[dict(name='cam', iters=1,
                                           optimizer='cam')]))
    inputs = torch.randn(2, 3, 64, 64)
    cams, logits = model.cam_head(model.backbone(inputs))
    assert cams.shape == (2, 5, 8, 8)
    samples = []
    for labels in ([1., 0, 0, 1, 0], [0, 1, 0, 0, 0]):
        sample = SegDataSample()
        sample.gt_class_labels = torch.tensor(labels)
        samples.append(sample)
    model.set_phase('cam')
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_cls_token', 'loss_cls_coarse',
                           'loss_cls_fine'}
