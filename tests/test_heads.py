"""CAM head and DeepLabV2 head, checked against hand-computed values."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData

import semples_mm  # noqa: F401  (registers the heads)
from float_compare import assert_close_up_to_rounding
from semples_mm.models.cams import normalize_cams, with_background


def _cam_head(**kwargs):
    cfg = dict(type='CAMHead', in_channels=2, num_classes=2)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    with torch.no_grad():
        # class 0 reads channel 0, class 1 reads 2 * channel 1 - channel 0
        head.classifier.weight.copy_(
            torch.tensor([[1.0, 0.0], [-1.0, 2.0]]).view(2, 2, 1, 1))
    return head


# One image, 2 channels, 1x2 feature map.
FEAT = torch.tensor([[[[1.0, 3.0]], [[0.5, 2.0]]]])
# cams: class 0 -> [1, 3]; class 1 -> [2*0.5-1, 2*2-3] = [0, 1]
CAMS = [[1.0, 3.0], [0.0, 1.0]]


@pytest.mark.float_compare
@pytest.mark.parametrize('pool, expected', [
    ('gap', [2.0, 0.5]),
    ('gmp', [3.0, 1.0]),
    ('lse', [math.log((math.exp(2 * 1) + math.exp(2 * 3)) / 2) / 2,
             math.log((math.exp(0) + math.exp(2 * 1)) / 2) / 2]),
])
def test_cam_head_forward_and_pooling(pool, expected):
    head = _cam_head(pool=pool, lse_r=2.0)
    cams, logits = head((torch.zeros(1, 2, 1, 2), FEAT))  # in_index=-1
    assert cams.shape == (1, 2, 1, 2)
    torch.testing.assert_close(cams[0, :, 0], torch.tensor(CAMS))
    assert logits.shape == (1, 2)
    assert logits[0].tolist() == pytest.approx(expected)


@pytest.mark.float_compare
def test_cam_head_gap_equals_classifier_on_pooled_feature():
    head = MODELS.build(dict(type='CAMHead', in_channels=16, num_classes=5))
    head.init_weights()
    feats = [torch.randn(3, 16, 7, 9)]
    cams, logits = head(feats)
    assert cams.shape == (3, 5, 7, 9)
    pooled = feats[0].mean(dim=(2, 3))
    direct = pooled @ head.classifier.weight.view(5, 16).t()
    # mean of the 1x1 convolution's 16-term sums over 63 positions against
    # the 16-term sum of 63-term means: 2 sums of at most 63 terms
    assert_close_up_to_rounding(logits, direct, terms=63, depth=2)


def test_cam_head_rejects_unknown_pool():
    with pytest.raises(ValueError, match='pool'):
        MODELS.build(dict(type='CAMHead', in_channels=2, num_classes=2,
                          pool='avg'))


@pytest.mark.float_compare
def test_cam_head_multilabel_soft_margin_loss():
    head = _cam_head()
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]], requires_grad=True)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    losses = head.loss_by_cls(logits, labels)

    def softplus(x):
        return math.log1p(math.exp(x))

    # -[y log sig(x) + (1-y) log(1-sig(x))] = softplus(-x) if y else
    # softplus(x); mean over classes then images.
    expected = ((softplus(-2.0) + softplus(-1.0)) / 2 +
                (softplus(0.0) + softplus(-3.0)) / 2) / 2
    assert set(losses) == {'loss_cls'}
    assert losses['loss_cls'].item() == pytest.approx(expected, rel=1e-6)
    losses['loss_cls'].backward()
    assert logits.grad is not None


@pytest.mark.float_compare
def test_cam_head_configured_loss_is_used():
    head = _cam_head(loss_cls=dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_name='loss_bce'))
    logits = torch.tensor([[2.0, -1.0]])
    labels = torch.tensor([[1.0, 0.0]])
    losses = head.loss_by_cls(logits, labels)
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2
    assert losses['loss_bce'].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.float_compare
def test_normalize_cams_hand_values():
    # B=1, K=3, 1x3 maps
    cams = torch.tensor([[[[-1.0, 1.0, 3.0]],
                          [[2.0, 2.0, 2.0]],
                          [[0.0, 4.0, 2.0]]]])
    labels = torch.tensor([[1.0, 1.0, 0.0]])
    norm = normalize_cams(cams, labels, size=(1, 3), eps=0.1)
    # class 0 after ReLU [0, 1, 3]: (x - 0) / (3 - 0 + 0.1)
    assert norm[0, 0, 0].tolist() == pytest.approx([0, 1 / 3.1, 3 / 3.1])
    # flat map: (2 - 2) / (0 + eps) = 0 everywhere
    assert norm[0, 1, 0].tolist() == pytest.approx([0, 0, 0])
    # class 2 is absent from the labels
    assert norm[0, 2, 0].tolist() == [0, 0, 0]
    # labels None keeps all classes
    norm = normalize_cams(cams, None, size=None, eps=1e-4)
    assert norm[0, 2, 0].tolist() == pytest.approx(
        [0, 4 / 4.0001, 2 / 4.0001])


@pytest.mark.float_compare
def test_normalize_cams_upsamples_bilinear_before_min_max():
    cams = torch.tensor([[[[0.0, 2.0]]]])  # K=1, 1x2
    norm = normalize_cams(cams, torch.ones(1, 1), size=(1, 4), eps=1e-5)
    # bilinear (align_corners=False) 1x2 -> 1x4: [0, 0.5, 1.5, 2]
    assert norm[0, 0, 0].tolist() == pytest.approx(
        [0, 0.5 / 2.00001, 1.5 / 2.00001, 2 / 2.00001])
    assert norm.shape == (1, 1, 1, 4)
    with pytest.raises(ValueError, match='labels shape'):
        normalize_cams(cams, torch.ones(1, 2), size=(1, 4))


@pytest.mark.float_compare
def test_background_threshold_and_argmax_hand_values():
    norm = torch.tensor([[[[0.9, 0.2, 0.5, 0.45]],
                          [[0.3, 0.1, 0.6, 0.0]]]])  # B=1, K=2, 1x4

    def segment(threshold):
        scores = with_background(norm, threshold)
        assert scores.shape == (1, 3, 1, 4)
        assert (scores[:, 0] == threshold).all()
        return scores.argmax(1)[0, 0].tolist()

    # 0.9 -> class 0 (id 1); all below t -> bg; 0.6 > 0.5 -> id 2;
    # a tie with t goes to background
    assert segment(0.45) == [1, 0, 2, 0]
    assert segment(0.55) == [1, 0, 2, 0]
    assert segment(0.95) == [0, 0, 0, 0]
    assert segment(0.25) == [1, 0, 2, 1]


def _tiny_encoder_decoder():
    norm_cfg = dict(type='BN', requires_grad=True)
    # ConfigDict, as from a config file: EncoderDecoder reads test_cfg.mode
    return MODELS.build(ConfigDict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='mmseg.SegDataPreProcessor', mean=[0.0] * 3, std=[1.0] * 3,
            size=(32, 32), pad_val=0, seg_pad_val=255),
        backbone=dict(
            type='ResNetV1c', depth=18, base_channels=8, stem_channels=8,
            num_stages=4, out_indices=(3, ), dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1), norm_cfg=norm_cfg, contract_dilation=True),
        decode_head=dict(
            type='DeepLabV2Head', in_channels=64, num_classes=4,
            dilations=(1, 2, 3, 4), in_index=0),
        train_cfg=dict(),
        test_cfg=dict(mode='whole')))


@pytest.mark.float_compare
def test_deeplabv2_head_in_encoder_decoder():
    model = _tiny_encoder_decoder()
    model.init_weights()
    head = model.decode_head
    assert not hasattr(head, 'conv_seg')
    assert len(head.aspp_branches) == 4
    for branch in head.aspp_branches:
        assert (branch.bias == 0).all()
        assert branch.weight.std().item() == pytest.approx(0.01, rel=0.3)
    images = torch.randn(2, 3, 32, 32)
    feats = model.extract_feat(images)
    assert feats[0].shape == (2, 64, 4, 4)  # output stride 8
    logits = head(feats)
    assert logits.shape == (2, 4, 4, 4)
    summed = sum(F.conv2d(feats[0], b.weight, b.bias, padding=d, dilation=d)
                 for b, d in zip(head.aspp_branches, (1, 2, 3, 4)))
    torch.testing.assert_close(logits, summed)
    # a training step through mmseg's loss path reaches every branch
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 4, (1, 32, 32)))
        sample.set_metainfo(dict(img_shape=(32, 32), pad_shape=(32, 32),
                                 ori_shape=(32, 32)))
        samples.append(sample)
    losses = model.loss(images, samples)
    losses['decode.loss_ce'].backward()
    for branch in head.aspp_branches:
        assert branch.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model.predict(images, samples)
    assert out[0].pred_sem_seg.shape == (32, 32)


def test_deeplabv2_head_rejects_channels():
    with pytest.raises(TypeError, match='channels'):
        MODELS.build(dict(type='DeepLabV2Head', in_channels=8, channels=4,
                          num_classes=3))


CONFIG_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'configs',
                      'deeplabv2')


@pytest.mark.parametrize('name, num_classes, crop', [
    ('deeplabv2_r101_voc_pseudo.py', 21, (321, 321)),
    ('deeplabv2_r101_coco_pseudo.py', 81, (481, 481)),
])
def test_deeplabv2_r101_configs(name, num_classes, crop):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    assert cfg.train_dataloader.batch_size == 10
    assert cfg.train_cfg.max_iters == 20000
    assert cfg.model.data_preprocessor.size == crop
    assert cfg.train_dataloader.dataset.pipeline[-3].crop_size == crop
    prefix = cfg.train_dataloader.dataset.data_prefix
    assert prefix.seg_map_path == cfg.pseudo_mask_dir
    assert osp.isabs(cfg.pseudo_mask_dir)
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=cfg.pretrained_checkpoint)
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.param_scheduler[0].power == 0.9
    assert cfg.tta_model.type == 'SegTTAModel'
    assert cfg.val_evaluator.type == 'IoUMetric'
    # test at full resolution: no resize in the test pipeline
    test_transforms = [t.type for t in cfg.test_dataloader.dataset.pipeline]
    assert 'Resize' not in test_transforms

    # as the Runner does: build in the config's default scope (mmseg)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)  # no init_weights: no checkpoint
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, 65, 65))
        logits = model.decode_head(feats)
    assert feats[0].shape == (1, 2048, 9, 9)  # output stride 8
    assert logits.shape == (1, num_classes, 9, 9)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            lrs[id(param)] = group['lr']
    head_lrs = {lrs[id(p)] for p in model.decode_head.parameters()}
    backbone_lrs = {lrs[id(p)] for p in model.backbone.parameters()
                    if p.requires_grad}
    assert len(head_lrs) == 1 and len(backbone_lrs) == 1
    assert head_lrs.pop() == pytest.approx(2.5e-3)
    assert backbone_lrs.pop() == pytest.approx(2.5e-4)
    assert optim_wrapper.optimizer.defaults['momentum'] == 0.9
    assert optim_wrapper.optimizer.defaults['weight_decay'] == 5e-4


def test_deeplabv2_tiny_synthetic_config():
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, 'deeplabv2_tiny_synthetic_pseudo.py'))
    assert cfg.train_dataloader.dataset.data_prefix.seg_map_path == \
        cfg.pseudo_mask_dir
    assert cfg.train_cfg.max_iters <= 500
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        logits = model.decode_head(
            model.extract_feat(torch.zeros(2, 3, 64, 64)))
    assert logits.shape == (2, 6, 8, 8)
