"""The authors' COCO recipe and the smaller recipe options (issue 23): the
COCO configs' attention fusion (avg pooling, reduction 4) against a hand
computation, the converter's report and the refusal of another reduction
by name, PIL's antialiased bicubic crop, label files in the authors' .npy
form, fp16 CAM inference, and the mIoU of the written masks in a summary.

CPU, random weights, tiny models, no downloads.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from PIL import Image
from torch import nn
from torchvision.transforms import InterpolationMode

import semples_mm  # noqa: F401  (registers)
from conftest import REPO_ROOT, load_tool
from semples_mm.models.backbones import WeakTrFeatures
from semples_mm.models.cams import CAMInference
from semples_mm.pseudo_labels import MaskWriter, export_settings
from semples_mm.pseudo_labels.export import written_masks_miou
from semples_mm.utils.mask_png import save_mask_png

COCO_CFG = 'configs/semples/coco_weaktr.py'
# A tiny WeakTr: 2 blocks of 4 heads, width 64 (head width 16), so the
# fusion has 8 channels: reduction 4 -> 2 hidden, reduction 8 -> 1.
TINY_VIT = dict(type='WeakTrViT', img_size=32, patch_size=8, embed_dims=64,
                num_layers=2, num_heads=4, drop_path_rate=0.0)
TINY_DIMS = dict(in_channels=64, num_layers=2, num_heads=4)
# four classes, no slot selection (the COCO configs select 80 of 90 slots)
FOUR_CLASSES = dict(num_classes=4, num_class_slots=None, class_indices=None)


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def config_head(path, **dims):
    """The config's cam_head (pooling, reductions, type) at tiny sizes, its
    weights left out."""
    head = dict(Config.fromfile(REPO_ROOT / path).model.cam_head)
    head.pop('init_cfg', None)
    head.update(dims)
    return head


# ----------------------------------------------- the COCO attention fusion
S, K, SLOTS, L, H, C, GRID = 5, 3, (4, 0, 2), 2, 4, 32, (2, 3)
P = GRID[0] * GRID[1]
N = S + P


def coco_tiny_head():
    torch.manual_seed(0)
    head = MODELS.build(config_head(
        COCO_CFG, in_channels=C, num_layers=L, num_heads=H, num_classes=K,
        num_class_slots=S, class_indices=SLOTS))
    with torch.no_grad():  # weights large enough for the pooling to show
        for p in head.parameters():
            p.copy_(torch.randn_like(p))
    return head


def tiny_features(batch=2):
    gen = torch.Generator().manual_seed(3)
    return WeakTrFeatures(
        hw_shape=GRID,
        patch_tokens=torch.randn(batch, C, *GRID, generator=gen),
        class_tokens=torch.randn(batch, S, C, generator=gen),
        attn_queries=torch.randn(batch, L, H, N, C // H, generator=gen),
        attn_keys=torch.randn(batch, L, H, N, C // H, generator=gen),
        attn_scale=(C // H)**-0.5,
        attn_feats=torch.randn(batch, L, N, C, generator=gen))


def hand_fine_cams(head, feats, pool):
    """WeakTr's fine CAM by loops (float64): channel c = head * L + layer;
    head h's features are the channels d * H + h; ``pool`` over tokens."""
    fusion = head.adaptive_attention_fusion
    f1, f2 = fusion.attn_feat_ffn[0], fusion.attn_feat_ffn[1]
    g1 = fusion.attn_head_ffn[0].weight.double()
    g2 = fusion.attn_head_ffn[2].weight.double()
    out = torch.zeros(feats.patch_tokens.shape[0], K, P, dtype=torch.float64)
    for b in range(out.shape[0]):
        scores = torch.zeros(L * H, dtype=torch.float64)
        fused = torch.zeros(N, N, dtype=torch.float64)
        maps = {}
        attention = feats.attention_maps()  # (B, L, H, N, N)
        for layer in range(L):
            for h in range(H):
                c = h * L + layer
                tokens = feats.attn_feats[b, layer][:, h::H].double()
                pooled = tokens.mean(0) if pool == 'avg' else tokens.max(0)[0]
                hidden = f1.weight.double() @ pooled + f1.bias.double()
                scores[c] = (f2.weight.double() @ hidden + f2.bias.double())[0]
                maps[c] = attention[b, layer, h].double()
        weights = torch.sigmoid(g2 @ torch.relu(g1 @ scores))
        for c in range(L * H):
            fused += weights[c] * maps[c] / (L * H)
        coarse = torch.relu(F.conv2d(
            feats.patch_tokens[b:b + 1].double(), head.head.weight.double(),
            head.head.bias.double(), padding=1))[0].flatten(1)  # (S, P)
        for k, slot in enumerate(SLOTS):
            for i in range(P):
                out[b, k, i] = sum(fused[S + i, S + j] * fused[slot, S + j]
                                   * coarse[slot, j] for j in range(P))
    return out.view(-1, K, *GRID)


def test_coco_config_fuses_with_avg_pooling_and_reduction_4():
    head = coco_tiny_head()
    fusion = head.adaptive_attention_fusion
    assert fusion.pool == 'avg'
    assert fusion.attn_head_ffn[0].weight.shape == (L * H // 4, L * H)
    feats = tiny_features()
    with torch.no_grad():
        cams, logits = head(feats)
    expected = hand_fine_cams(head, feats, 'avg')
    # float32 module against float64 loops: sums in another order and
    # precision, relative error ~1e-6 on these magnitudes
    torch.testing.assert_close(cams.double(), expected, rtol=1e-4,
                               atol=1e-5)
    torch.testing.assert_close(logits['fine'].double(),
                               expected.mean((2, 3)), rtol=1e-4, atol=1e-5)
    # the hand computation tells the poolings apart
    other = hand_fine_cams(head, feats, 'max')
    assert (other - expected).abs().max() > 1e-2 * expected.abs().max()


def test_voc_config_keeps_max_pooling_and_reduction_8():
    head = MODELS.build(config_head('configs/semples/voc_weaktr.py',
                                    **TINY_DIMS))
    fusion = head.adaptive_attention_fusion
    assert fusion.pool == 'max'
    assert fusion.attn_head_ffn[0].weight.shape == (1, 8)  # int(8 / 8)


# ----------------------------------------------- converter and loading
class CAMNetwork(nn.Module):
    """The attribute names the segmentor gives its CAM network."""

    def __init__(self, head):
        super().__init__()
        self.backbone = MODELS.build(dict(TINY_VIT, num_class_tokens=4))
        self.cam_head = MODELS.build(dict(head, **FOUR_CLASSES))


@pytest.fixture
def converted_reduction_4(tmp_path, capsys):
    """A released-layout file of a tiny reduction-4 WeakTr, converted;
    returns (path, the converter's report)."""
    torch.manual_seed(2)
    source = CAMNetwork(config_head(COCO_CFG, **TINY_DIMS))
    release = {**source.backbone.state_dict(),
               **source.cam_head.state_dict()}
    src, dst = tmp_path / 'checkpoint_best_mIoU.pth', tmp_path / 'out.pth'
    torch.save(dict(model=release), src)
    capsys.readouterr()
    load_tool('model_converters/weaktr_to_mmseg').main([str(src), str(dst)])
    return dst, capsys.readouterr().out


def test_converter_reports_reduction_and_says_pooling_is_not_recorded(
        converted_reduction_4):
    path, report = converted_reduction_4
    assert 'Attention fusion 8 -> 2 channels' in report
    assert 'model.cam_head.reduction=4 ' in report
    assert 'leaves no trace in the weights' in report
    assert torch.load(path)['meta']['fusion_reduction'] == 4.0


def test_a_config_of_another_reduction_refuses_the_file_by_name(
        converted_reduction_4):
    path, _ = converted_reduction_4

    def build(config):
        head = MODELS.build(dict(
            config_head(config, **TINY_DIMS), **FOUR_CLASSES,
            init_cfg=dict(type='Pretrained', checkpoint=str(path),
                          prefix='cam_head.')))
        head.init_weights()
        return head

    loaded = build(COCO_CFG)
    assert loaded.adaptive_attention_fusion.attn_head_ffn[0].weight.shape \
        == (2, 8)
    with pytest.raises(ValueError) as error:
        build('configs/semples/voc_weaktr.py')  # reduction 8: 8 -> 1
    message = str(error.value)
    assert 'fusion is 8 -> 2 channels' in message
    assert 'set model.cam_head.reduction=4' in message
    assert 'attn_pool' in message


# ------------------------------------------------ the authors' crop
def crop_from(config, **overrides):
    crop = next(t for t in Config.fromfile(REPO_ROOT / config)
                .train_dataloader.dataset.pipeline
                if t['type'] == 'SegRandomResizedCrop')
    return TRANSFORMS.build(dict(crop, **overrides))


def shrinking_crop(crop, img, seed):
    """Run ``crop`` with the first seed from ``seed`` whose box shrinks by
    more than 1.5x on both sides; returns (results, box)."""
    for s in range(seed, seed + 100):
        np.random.seed(s)
        results = crop(dict(img=img.copy(), seg_fields=[]))
        x0, y0, x1, y1 = results['crop_bbox']
        if min(x1 - x0, y1 - y0) > 1.5 * 224:
            return results, (x0, y0, x1, y1)
    raise AssertionError('no shrinking crop drawn')


@pytest.mark.parametrize('config', [COCO_CFG,
                                    'configs/weaktr/weaktr_deit_s_voc.py'])
def test_recipe_crop_equals_pils_antialiased_bicubic_resize(config):
    img = np.random.default_rng(0).integers(0, 256, (480, 640, 3),
                                            dtype=np.uint8)
    crop = crop_from(config)
    results, box = shrinking_crop(crop, img, seed=0)
    x0, y0, x1, y1 = box
    # the authors' path: timm's RandomResizedCropAndInterpolation calls
    # torchvision's resized_crop on the PIL image, i.e. PIL's bicubic
    # resize of the box; the same PIL call on the same uint8 pixels
    theirs = np.asarray(TF.resized_crop(
        Image.fromarray(img), y0, x0, y1 - y0, x1 - x0, [224, 224],
        InterpolationMode.BICUBIC))
    assert results['img'].shape == (224, 224, 3)
    assert np.array_equal(results['img'], theirs)
    # OpenCV's INTER_CUBIC does not antialias: on noise it differs a lot
    cv2_crop = crop_from(config, backend='cv2')
    cv2_results, cv2_box = shrinking_crop(cv2_crop, img, seed=0)
    assert cv2_box == box
    assert np.abs(cv2_results['img'].astype(float) - theirs).mean() > 5


def test_pillow_crop_resizes_masks_nearest_and_refuses_float_images():
    crop = TRANSFORMS.build(dict(type='SegRandomResizedCrop', size=(6, 8),
                                 backend='pillow'))
    img = np.zeros((30, 40, 3), np.uint8)
    mask = np.arange(30 * 40, dtype=np.int64).reshape(30, 40) % 200
    np.random.seed(1)
    results = crop(dict(img=img, gt_seg_map=mask.astype(np.uint8),
                        seg_fields=['gt_seg_map']))
    x0, y0, x1, y1 = results['crop_bbox']
    expected = np.asarray(Image.fromarray(
        mask.astype(np.uint8)[y0:y1, x0:x1]).resize((8, 6), Image.NEAREST))
    assert np.array_equal(results['gt_seg_map'], expected)
    with pytest.raises(TypeError, match="backend='cv2'"):
        crop(dict(img=img.astype(np.float32), seg_fields=[]))
    with pytest.raises(ValueError, match='not available'):
        TRANSFORMS.build(dict(type='SegRandomResizedCrop', size=8,
                              backend='pillow', interpolation='area'))


# ------------------------------------------------ label files (.npy)
@pytest.fixture
def voc_root(tmp_path):
    """a: person (15) and aeroplane (1); b: dog (12); c: background."""
    for sub in ('JPEGImages', 'SegmentationClass'):
        (tmp_path / sub).mkdir()
    rng = np.random.default_rng(0)
    masks = dict(a={15: (2, 6), 1: (10, 12)}, b={12: (4, 9)}, c={})
    for img_id, objects in masks.items():
        Image.fromarray(rng.integers(0, 255, (20, 16, 3), np.uint8)).save(
            tmp_path / 'JPEGImages' / f'{img_id}.jpg')
        mask = np.zeros((20, 16), np.uint8)
        for class_id, (top, bottom) in objects.items():
            mask[top:bottom, 2:8] = class_id
        save_mask_png(mask, str(tmp_path / 'SegmentationClass' /
                                f'{img_id}.png'))
    (tmp_path / 'list.txt').write_text('a\nb\nc\n')
    return tmp_path


def labels_of(dataset):
    return {dataset.get_data_info(i)['img_id']:
            dataset.get_data_info(i)['gt_class_labels']
            for i in range(len(dataset))}


def build_voc(root, **kwargs):
    return DATASETS.build(dict(type='PascalVOCWSSSDataset',
                               data_root=str(root), ann_file='list.txt',
                               skip_empty=False, **kwargs))


def test_npy_label_file_round_trip(voc_root):
    from_masks = labels_of(build_voc(voc_root))
    assert np.flatnonzero(from_masks['a']).tolist() == [0, 14]
    # the authors' form: {id: float32 (20,)}, keys with or without '.jpg'
    table = {('a.jpg' if img_id == 'a' else img_id): labels.copy()
             for img_id, labels in from_masks.items()}
    np.save(voc_root / 'cls_labels.npy', table)
    from_file = labels_of(build_voc(voc_root, label_file='cls_labels.npy'))
    assert from_file.keys() == from_masks.keys()
    for img_id, labels in from_masks.items():
        assert from_file[img_id].dtype == np.float32
        assert np.array_equal(from_file[img_id], labels)
    # a label file overrides the masks: it is what is read
    table['b'] = np.eye(20, dtype=np.float32)[3]
    np.save(voc_root / 'cls_labels.npy', table)
    changed = labels_of(build_voc(voc_root, label_file='cls_labels.npy'))
    assert np.flatnonzero(changed['b']).tolist() == [3]


def test_npy_label_file_with_slots_and_its_errors(voc_root):
    from_masks = labels_of(build_voc(voc_root))
    slots = tuple(range(29, 9, -1))  # class k at entry 29 - k of 30
    wide = {}
    for img_id, labels in from_masks.items():
        entries = np.zeros(30, np.float32)
        entries[list(slots)] = labels
        wide[img_id] = entries
    np.save(voc_root / 'wide.npy', wide)
    read = labels_of(build_voc(voc_root, label_file='wide.npy',
                               label_slots=slots))
    for img_id, labels in from_masks.items():
        assert np.array_equal(read[img_id], labels)
    with pytest.raises(ValueError, match=r'30 entries.*label_slots'):
        build_voc(voc_root, label_file='wide.npy')
    wide['b'] = wide['b'] * 0.5 + 0.25
    np.save(voc_root / 'wide.npy', wide)
    with pytest.raises(ValueError, match=r'array of b holds'):
        build_voc(voc_root, label_file='wide.npy', label_slots=slots)
    np.save(voc_root / 'flat.npy', np.zeros(20, np.float32))
    with pytest.raises(ValueError, match=r'pickled dict \{img_id: '
                       r'multi-hot array\} '):
        build_voc(voc_root, label_file='flat.npy')


def test_coco_npy_labels_keyed_by_the_authors_12_digit_ids(tmp_path):
    stem = 'COCO_train2014_000000057870'
    for sub in ('train2014', 'SegmentationClass/train2014', 'ImageSets'):
        (tmp_path / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
        tmp_path / 'train2014' / f'{stem}.jpg')
    mask = np.zeros((8, 8), np.uint8)
    mask[:4] = 1  # person
    mask[4:, :2] = 80  # toothbrush, category id 90
    save_mask_png(mask, str(tmp_path / 'SegmentationClass' / 'train2014' /
                            f'{stem}.png'))
    (tmp_path / 'ImageSets' / 'list.txt').write_text(stem + '\n')
    slots = Config.fromfile(REPO_ROOT / COCO_CFG).weaktr_coco_class_slots
    entries = np.zeros(90, np.float32)
    entries[[0, 89]] = 1  # category ids 1 and 90
    np.save(tmp_path / 'cls_labels.npy', {'000000057870': entries})

    def build(**kwargs):
        return labels_of(DATASETS.build(dict(
            type='COCOWSSSDataset', data_root=str(tmp_path),
            ann_file='ImageSets/list.txt', **kwargs)))[stem]

    from_masks = build()
    from_file = build(label_file='cls_labels.npy', label_slots=slots)
    assert np.flatnonzero(from_file).tolist() == [0, 79]
    assert np.array_equal(from_file, from_masks)


# ------------------------------------------------ fp16 CAM inference
@pytest.mark.parametrize('amp, dtype', [('fp16', torch.float16),
                                        ('bf16', torch.bfloat16),
                                        (True, torch.bfloat16)])
def test_cam_inference_runs_under_the_chosen_autocast(amp, dtype):
    settings = export_settings(dict(pseudo_label_cfg=dict(amp=amp)))
    seen = []

    def network(inputs, classes):
        seen.append(torch.is_autocast_enabled(inputs.device.type) and
                    torch.get_autocast_dtype(inputs.device.type))
        return torch.rand(inputs.shape[0], 2, 4, 4)

    CAMInference(amp=settings['amp'])(
        network, [torch.rand(1, 3, 8, 8)], [(8, 8)], torch.ones(1, 2))
    assert seen == [dtype]
    with pytest.raises(ValueError, match=r"amp='fp8'"):
        export_settings(dict(pseudo_label_cfg=dict(amp='fp8')))


# ------------------------------------------------ which mIoU is which
def test_written_miou_is_the_miou_of_the_written_masks(tmp_path):
    gen = torch.Generator().manual_seed(0)
    metric = METRICS.build(dict(type='PseudoMaskMetric',
                                bg_thresholds=(0.40, 0.59, 0.01)))
    metric.dataset_meta = dict(classes=('background', 'a', 'b'))
    writer = MaskWriter(str(tmp_path), bg_threshold=0.43)
    gts = {}
    with writer:
        for i in range(4):
            cams = torch.rand(2, 12, 10, generator=gen)
            gt = torch.randint(0, 3, (12, 10), generator=gen)
            gts[f'im{i}'] = gt
            sample = dict(cam=dict(data=cams), gt_sem_seg=dict(data=gt[None]))
            metric.process([], [sample])
            writer.write(f'im{i}', cams, torch.ones(2))
    metrics = metric.compute_metrics(metric.results)
    # by hand: IoU per class of the PNGs over the four images
    inter, union = np.zeros(3), np.zeros(3)
    for img_id, gt in gts.items():
        written = np.asarray(Image.open(tmp_path / f'{img_id}.png'))
        for c in range(3):
            inter[c] += ((written == c) & (gt.numpy() == c)).sum()
            union[c] += ((written == c) | (gt.numpy() == c)).sum()
    by_hand = 100 * np.mean(inter / union)
    settings = export_settings({}, bg_threshold=0.43)
    written = written_masks_miou(metrics['mIoU_curve'], settings)
    assert written == pytest.approx(by_hand, abs=0.005)  # curve: 2 decimals
    assert metrics['mIoU'] >= written  # the sweep's best
    assert written_masks_miou(metrics['mIoU_curve'],
                              dict(settings, crf=True)) is None
    assert written_masks_miou(metrics['mIoU_curve'],
                              dict(settings, bg_threshold=0.7)) is None


def test_clip_fp16_has_the_layout_of_openais_clip_load():
    """model.clip.precision='fp16' keeps in fp16 what OpenAI's
    convert_weights converts (the authors' clip.load on CUDA) and the rest
    (LayerNorms, embeddings) in fp32; features come back in fp32."""
    clip = MODELS.build(dict(type='FrozenCLIP',
                             model_name='semples-synthetic-tiny',
                             precision='fp16'))
    low, full = set(), set()
    for module in clip.model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            low.add(module.weight.dtype)
        if isinstance(module, nn.MultiheadAttention):
            low.add(module.in_proj_weight.dtype)
        if isinstance(module, (nn.LayerNorm, nn.Embedding)):
            full.add(module.weight.dtype)
    low |= {clip.model.text_projection.dtype, clip.model.visual.proj.dtype}
    full.add(clip.model.positional_embedding.dtype)
    assert (low, full) == ({torch.float16}, {torch.float32})
    features = clip.encode_image(torch.randn(2, 3, *clip.image_size))
    assert features.dtype == torch.float32 and torch.isfinite(features).all()
