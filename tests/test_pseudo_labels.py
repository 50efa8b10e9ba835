"""Tests of the pseudo-mask exporter (semples_mm/pseudo_labels)."""
import os
import os.path as osp
import socket
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import METRICS, MODELS
from mmseg.structures import SegDataSample
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from semples_mm.models.cams import (CAMInference, multi_scale_flip_cams,
                                    normalize_cams, with_background)
from semples_mm.pseudo_labels import (check_output_dir, export_pseudo_masks,
                                      export_settings, in_order_loader_cfg,
                                      infer_batch_cams)
from semples_mm.utils.mask_png import TEMP_PREFIX, TEMP_SUFFIX, voc_palette

from conftest import changed_pixel_fraction, read_masks
from float_compare import assert_close_up_to_rounding

NUM_CLASSES = 3


@MODELS.register_module(force=True)
class PseudoLabelTestCAMModel(BaseModel):
    """Deterministic CAMs: colour channel k, 2x2 average-pooled, minus 0.1.

    With inputs scaled to [0, 1], a region painted in channel k is class k.
    """

    def __init__(self, data_preprocessor=None):
        # built from mmseg's registry (a config's default_scope does this)
        super().__init__(data_preprocessor=MODELS.build(data_preprocessor))

    def predict_cams(self, inputs, classes=None):
        """(B, 3, H, W) -> (B, 3, H // 2, W // 2) raw CAMs, or the classes
        of the (3,) bool mask ``classes``."""
        cams = F.avg_pool2d(inputs, 2) - 0.1
        return cams if classes is None else cams[:, classes]

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.predict_cams(inputs)


@METRICS.register_module(force=True)
class PseudoLabelTestMetric(BaseMetric):
    """Records what it was fed; 'mIoU' is the number of distinct images."""

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            cam = sample['cam']['data']
            gt = sample['gt_sem_seg']['data']
            assert cam.shape[1:] == gt.shape[1:]
            self.results.append((sample['img_id'], tuple(cam.shape),
                                 float(cam.max())))

    def compute_metrics(self, results):
        return dict(mIoU=float(len({r[0] for r in results})),
                    best_threshold=0.5, count=len(results))


@MODELS.register_module(force=True)
class PseudoLabelTestConvModel(PseudoLabelTestCAMModel):
    """Random convolutions and batch norm (eval statistics), so export runs
    the CPU's real convolution kernels; records each predict_cams batch."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor)
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16),
            torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(), torch.nn.Conv2d(32, NUM_CLASSES, 1))
        self.net[1].running_mean.uniform_(-0.2, 0.2)
        self.net[1].running_var.uniform_(0.5, 2.0)
        self.batch_sizes = []

    def predict_cams(self, inputs, classes=None):
        self.batch_sizes.append(inputs.shape[0])
        cams = self.net(inputs)
        return cams if classes is None else cams[:, classes]


def build_test_model(model_type='PseudoLabelTestCAMModel'):
    return MODELS.build(
        dict(type=model_type,
             data_preprocessor=dict(
                 type='SegDataPreProcessor', mean=[0., 0., 0.],
                 std=[255., 255., 255.], bgr_to_rgb=False)))


def paint_image(seed, height, width):
    """An RGB image with 1-2 rectangles, each painted in one class channel.

    Returns:
        tuple: image (H, W, 3) uint8, mask (H, W) ids, labels (K,) float.
    """
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.int64)
    labels = np.zeros(NUM_CLASSES, np.float32)
    for _ in range(rng.integers(1, 3)):
        cls = int(rng.integers(NUM_CLASSES))
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        bottom = top + rng.integers(3, height // 2 + 1)
        right = left + rng.integers(3, width // 2 + 1)
        image[top:bottom, left:right] = 0
        image[top:bottom, left:right, cls] = rng.integers(180, 256)
        mask[top:bottom, left:right] = cls + 1
        labels[cls] = 1
    return image, mask, labels


class ToyWSSSDataset(Dataset):
    """Images of mixed sizes written to ``root``, packed as the exporter
    expects (uint8 (3, H, W) inputs, SegDataSample)."""

    SIZES = [(16, 16), (16, 24), (24, 16), (20, 20)]

    def __init__(self, root, num_images=5):
        self.samples = []
        os.makedirs(root, exist_ok=True)
        for index in range(num_images):
            height, width = self.SIZES[index % len(self.SIZES)]
            image, mask, labels = paint_image(index, height, width)
            path = osp.join(root, f'img_{index:03d}.png')
            Image.fromarray(image).save(path)
            self.samples.append((path, image, mask, labels))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, image, mask, labels = self.samples[index]
        sample = SegDataSample(metainfo=dict(
            img_id=osp.splitext(osp.basename(path))[0], img_path=path,
            ori_shape=image.shape[:2], img_shape=image.shape[:2]))
        sample.gt_class_labels = torch.from_numpy(labels)
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(mask)[None])
        return dict(inputs=torch.from_numpy(image).permute(2, 0, 1).clone(),
                    data_samples=sample)


def build_loader(dataset, batch_size=2):
    return DataLoader(dataset, batch_size=batch_size,
                      sampler=DefaultSampler(dataset, shuffle=False),
                      collate_fn=pseudo_collate)


def read_folder(folder):
    """The bytes of the PNG masks of ``folder``."""
    return {name: open(osp.join(folder, name), 'rb').read()
            for name in sorted(os.listdir(folder)) if name.endswith('.png')}


# ---------------------------------------------------------------- arithmetic
@pytest.mark.float_compare
def test_flip_sums_unflipped_relu_cams():
    ramp = torch.tensor([1., 2., 3., 4.])
    inputs = torch.tensor([1., -1., 2., 0.5]).reshape(1, 1, 1, 4)
    cams = multi_scale_flip_cams(lambda x: x * ramp, inputs, scales=(1.0, ),
                                 flip=True)
    # image: relu([1, -2, 6, 2]); flip: relu([.5, 4, -3, 4]) flipped back
    expected = torch.tensor([1., 0., 6., 2.]) + torch.tensor([4., 0., 4., .5])
    torch.testing.assert_close(cams.flatten(), expected)


@pytest.mark.float_compare
def test_scales_are_resized_upsampled_and_summed():
    inputs = torch.tensor([[1., 3.], [5., 7.]]).reshape(1, 1, 2, 2)
    cams = multi_scale_flip_cams(lambda x: x, inputs, scales=(1.0, 0.5),
                                 flip=True)
    # scale 0.5: bilinear 2x2 -> 1x1 is the mean 4, upsampled back to 2x2;
    # the identity is flip-equivariant, so the flip doubles the sum
    expected = 2 * (torch.tensor([[1., 3.], [5., 7.]]) + 4.)
    torch.testing.assert_close(cams[0, 0], expected)
    out = multi_scale_flip_cams(lambda x: x, inputs, scales=(1.0, ),
                                flip=False, out_size=(4, 4))
    assert out.shape == (1, 1, 4, 4)


@pytest.mark.float_compare
def test_inference_upsamples_only_the_labelled_classes_maps():
    """The maps of absent classes are zero after normalisation anyway;
    CAMInference leaves them out of the network's and the full-size work
    and gives the same CAMs as normalising all of them."""
    torch.manual_seed(0)
    weights = torch.randn(4, 3, 1, 1)
    seen = []

    def network(x):  # (N, 3, h, w) -> (N, 4, h / 2, w / 2)
        return F.conv2d(F.avg_pool2d(x, 2), weights)

    def recording(x, classes):
        seen.append(classes.tolist())
        return network(x)[:, classes]

    # two images of one size, and one of another without any class
    images = [torch.randn(1, 3, 8, 12) for _ in range(2)] + [
        torch.randn(1, 3, 6, 6)]
    labels = torch.tensor([[1., 0., 0., 1.], [0., 0., 0., 1.], [0.] * 4])
    full = multi_scale_flip_cams(network, torch.cat(images[:2]), (1.0, 1.5),
                                 True, (10, 14))
    cams = CAMInference(scales=(1.0, 1.5), flip=True)(
        recording, images, [(10, 14)] * 2 + [(7, 7)], labels)
    # the network is asked for the classes present in the images of a size
    # (at both scales); not at all for the third image, which has none
    assert seen == [[True, False, False, True]] * 2
    expected = normalize_cams(full, labels[:2])
    for image_cams, want in zip(cams, expected):
        # the same per-map arithmetic, which a kernel may vectorise
        # differently for another map count: 4-term sums (the bilinear
        # upsampling, the 2 scales x flip), 3 in a row with the maximum
        assert_close_up_to_rounding(image_cams, want, terms=4, depth=3)
    assert not cams[0][[1, 2]].any() and not cams[1][:3].any()
    assert cams[2].shape == (4, 7, 7) and not cams[2].any()


def test_inference_refuses_maps_of_other_classes_than_asked():
    """A network that ignores the class mask (all 4 maps for 2 present
    classes) is named, not silently misread."""
    images = [torch.randn(1, 3, 8, 8)]
    with pytest.raises(ValueError, match='gave 4 class maps for the 2 '
                       'present classes of a 4-class label mask'):
        CAMInference()(lambda x, classes: x.new_zeros(1, 4, 4, 4), images,
                       [(8, 8)], torch.tensor([[1., 0., 1., 0.]]))


@pytest.mark.float_compare
def test_normalize_and_argmax_with_background_threshold():
    cams = torch.tensor([[1., 3., 5.], [2., 9., 2.],
                         [0., 4., 8.]]).reshape(1, 3, 1, 3)
    labels = torch.tensor([[1., 0., 1.]])
    norm = normalize_cams(cams, labels, eps=1e-6)
    # (M - min) / (max - min + eps); the absent class 1 is all zero
    torch.testing.assert_close(norm[0, :, 0], torch.tensor(
        [[0., .5, 1.], [0., 0., 0.], [0., .5, 1.]]), atol=1e-5, rtol=0)
    norm[0, 2, 0, 1:] = torch.tensor([0.3, 0.9])  # class 0 wins both
    assert with_background(norm, 0.43).argmax(1)[0, 0].tolist() == [0, 1, 1]
    assert with_background(norm, 0.6).argmax(1)[0, 0].tolist() == [0, 0, 1]


@pytest.mark.float_compare
def test_batched_cams_group_images_by_size_and_equal_single_images(
        tmp_path):
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=8)
    model = build_test_model('PseudoLabelTestConvModel').eval()
    items = [dataset[i] for i in range(8)]
    inputs = [item['inputs'] for item in items]
    samples = [item['data_samples'] for item in items]
    inference = CAMInference(scales=(1.0, 1.2), flip=True)
    with torch.no_grad():
        batched = infer_batch_cams(model, inference, inputs, samples)
        # 4 sizes x 2 images, each with its flip, at 2 scales
        assert model.batch_sizes == [4] * 8
        single = [infer_batch_cams(model, inference, [x], [s])[0]
                  for x, s in zip(inputs, samples)]
    for cams, expected, sample in zip(batched, single, samples):
        assert cams.shape[1:] == tuple(sample.metainfo['ori_shape'])
        # Not bit-equal: oneDNN picks its convolution algorithm by batch
        # shape and thread count, so a batch of 4 and a batch of 2 may sum
        # in another order: 3 convolutions (the longest 16 x 3 x 3 = 144
        # inputs), the resize, the sum over scales and flips, the upsampling
        # and the min-max normalisation.
        assert_close_up_to_rounding(cams, expected, terms=144, depth=7)


@pytest.mark.float_compare
def test_export_masks_do_not_depend_on_the_batch_size(tmp_path):
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=12)
    for batch_size in (1, 12):
        model = build_test_model('PseudoLabelTestConvModel')
        export_pseudo_masks(model, build_loader(dataset, batch_size),
                            str(tmp_path / f'batch{batch_size}'),
                            dict(scales=(1.0, 1.2), flip=True),
                            progress=False)
        # one network pass per image, scale, or per size group and scale
        assert len(model.batch_sizes) == (24 if batch_size == 1 else 8)
    # Batches of other shapes may round differently (oneDNN), which can
    # flip a pixel whose score ties with the threshold: compare the masks,
    # not the bytes. 12 images of 256-480 pixels: at most 0.1% may differ.
    batch1 = read_masks(tmp_path / 'batch1')
    assert len(batch1) == 12
    assert changed_pixel_fraction(batch1, read_masks(
        tmp_path / 'batch12')) <= 1e-3


@pytest.mark.float_compare
def test_amp_runs_only_the_network_in_bf16_and_stays_close(
        tmp_path, monkeypatch):
    """amp=True: predict_cams runs under bf16 autocast, the normalised CAMs
    come back in fp32, within bf16 rounding of the fp32 ones, and the
    export summary says so."""
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=4)
    model = build_test_model('PseudoLabelTestConvModel').eval()
    items = [dataset[i] for i in range(4)]
    inputs = [item['inputs'] for item in items]
    samples = [item['data_samples'] for item in items]
    seen = []
    predict = model.predict_cams
    monkeypatch.setattr(model, 'predict_cams', lambda x, c: seen.append(
        (torch.is_autocast_enabled('cpu'),
         torch.get_autocast_dtype('cpu'))) or predict(x, c))
    with torch.no_grad():
        full = infer_batch_cams(model, CAMInference(scales=(1.0, 1.2)),
                                inputs, samples)
        assert {enabled for enabled, _ in seen} == {False}
        seen.clear()
        half = infer_batch_cams(
            model, CAMInference(scales=(1.0, 1.2), amp=True), inputs,
            samples)
    assert seen and set(seen) == {(True, torch.bfloat16)}
    assert any(not torch.equal(a, b) for a, b in zip(full, half))
    for a, b in zip(full, half):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a, rtol=0, atol=0.03)
    summary = export_pseudo_masks(model, build_loader(dataset, 2),
                                  str(tmp_path / 'masks'), dict(amp=True),
                                  progress=False)
    assert summary['amp'] is True and summary['num_written'] == 4


# --------------------------------------------------------------- PNG output
@pytest.mark.float_compare
def test_written_png_has_voc_palette_and_expected_ids(tmp_path):
    # left half class 0 (red), right half class 1 (green), two black rows on
    # top with a blue stripe of the absent class 2
    image = np.zeros((8, 8, 3), np.uint8)
    image[2:, :4, 0] = 255
    image[2:, 4:, 1] = 255
    image[:2, :, 2] = 255
    sample = SegDataSample(metainfo=dict(img_id='two_halves',
                                         img_path='unused', ori_shape=(8, 8)))
    sample.gt_class_labels = torch.tensor([1., 1., 0.])
    batch = dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)],
                 data_samples=[sample])
    summary = export_pseudo_masks(
        build_test_model(), [batch], tmp_path,
        dict(scales=(1.0, ), flip=True, bg_threshold=0.43), progress=False)
    png = Image.open(tmp_path / 'two_halves.png')
    assert png.mode == 'P'
    assert png.getpalette()[:768] == voc_palette().reshape(-1).tolist()
    expected = np.zeros((8, 8), np.uint8)
    expected[2:, :4] = 1
    expected[2:, 4:] = 2
    np.testing.assert_array_equal(np.array(png), expected)
    assert summary['num_written'] == 1 and summary['num_images'] == 1


# ------------------------------------------------------------- output guard
@pytest.mark.parametrize('name', ['SegmentationClass', 'SegmentationClassAug',
                                  'SegmentationObject'])
def test_refuses_annotation_folder_names(tmp_path, name):
    with pytest.raises(ValueError, match=name):
        check_output_dir(str(tmp_path / 'VOC2012' / name))
    with pytest.raises(ValueError, match='ground-truth'):
        check_output_dir(str(tmp_path / name / 'pseudo'))


def test_refuses_the_datasets_own_seg_map_folder(tmp_path):
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=1)
    dataset.data_prefix = dict(seg_map_path=str(tmp_path / 'masks'))
    with pytest.raises(ValueError, match='seg_map_path'):
        export_pseudo_masks(build_test_model(), build_loader(dataset),
                            str(tmp_path / 'masks'), progress=False)
    assert not os.listdir(tmp_path / 'masks') if osp.isdir(
        tmp_path / 'masks') else True
    check_output_dir(str(tmp_path / 'pseudo_masks'),
                     [str(tmp_path / 'masks')])  # a folder of its own is fine


# -------------------------------------------------------- restart / resume
@pytest.mark.float_compare
def test_restart_after_kill_is_byte_identical(tmp_path):
    """Batch size 1: the restart infers each remaining image exactly as
    the uninterrupted export did (same computation, same shapes), so the
    bytes must agree."""
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=6)
    model = build_test_model()
    settings = dict(settings=dict(scales=(1.0, 1.2), flip=True),
                    progress=False)
    export_pseudo_masks(model, build_loader(dataset, 1),
                        str(tmp_path / 'full'), **settings)

    resumed = tmp_path / 'resumed'

    def kill_after_three(img_id, written=[]):
        written.append(img_id)
        if len(written) == 3:
            raise KeyboardInterrupt('simulated kill')

    with pytest.raises(KeyboardInterrupt):
        export_pseudo_masks(model, build_loader(dataset, 1), str(resumed),
                            on_written=kill_after_three, **settings)
    assert len(read_folder(resumed)) == 3
    # a kill during a write leaves a temporary file behind
    (resumed / f'{TEMP_PREFIX}img_004.png.x{TEMP_SUFFIX}').write_bytes(b'x')
    summary = export_pseudo_masks(model, build_loader(dataset, 1),
                                  str(resumed), **settings)
    assert summary['num_skipped'] == 3 and summary['num_written'] == 3
    full = read_folder(tmp_path / 'full')
    assert len(full) == 6
    assert read_folder(resumed) == full


# ------------------------------------------------------------- distributed
def _export_in_process_group(rank, world_size, port, image_root, out_dir,
                             result_file, cams_dir=None):
    torch.distributed.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=world_size)
    try:
        dataset = ToyWSSSDataset(image_root, num_images=5)
        summary = export_pseudo_masks(
            build_test_model(), build_loader(dataset), out_dir,
            dict(scales=(1.0, 1.2), flip=True), progress=False,
            evaluator=[dict(type='PseudoLabelTestMetric')],
            cams_dir=cams_dir)
        if rank == 0:
            torch.save(summary, result_file)
    finally:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.float_compare
def test_two_process_gloo_export_equals_single_process(tmp_path):
    image_root = str(tmp_path / 'images')
    dataset = ToyWSSSDataset(image_root, num_images=5)
    single = export_pseudo_masks(
        build_test_model(), build_loader(dataset), str(tmp_path / 'single'),
        dict(scales=(1.0, 1.2), flip=True), progress=False,
        evaluator=[dict(type='PseudoLabelTestMetric')])
    result_file = str(tmp_path / 'summary.pt')
    torch.multiprocessing.spawn(
        _export_in_process_group,
        args=(2, _free_port(), image_root, str(tmp_path / 'dist'),
              result_file),
        nprocs=2, join=True)
    # Each rank infers other batches with its own threads: compare masks.
    single_masks = read_masks(tmp_path / 'single')
    assert len(single_masks) == 5
    assert changed_pixel_fraction(single_masks, read_masks(
        tmp_path / 'dist')) <= 1e-3
    dist_summary = torch.load(result_file, weights_only=False)
    # 5 images on 2 ranks: the sampler pads one duplicate, the metric drops it
    assert single['mIoU'] == dist_summary['mIoU'] == 5.0
    assert dist_summary['metrics']['count'] == 5
    assert dist_summary['num_images'] == 5
    assert dist_summary['world_size'] == 2


def test_two_process_export_writes_every_images_cams_once(tmp_path):
    from weaktr_cam_reader import near_tie_pixels, weaktr_masks
    image_root, out = str(tmp_path / 'images'), str(tmp_path / 'dist')
    cams = str(tmp_path / 'cams')
    ToyWSSSDataset(image_root, num_images=5)
    torch.multiprocessing.spawn(
        _export_in_process_group,
        args=(2, _free_port(), image_root, out, str(tmp_path / 's.pt'),
              cams), nprocs=2, join=True)
    summary = torch.load(str(tmp_path / 's.pt'), weights_only=False)
    # each rank wrote its shard's files (5 images on 2 ranks: the sampler
    # pads one duplicate, written twice, atomically)
    assert summary['num_cams_written'] == 6
    assert sorted(os.listdir(cams)) == [f'img_{i:03d}.npy' for i in range(5)]
    written, rebuilt = read_masks(out), weaktr_masks(cams, 0.45)
    for img_id, mask in rebuilt.items():
        # only scores within 1e-6 of each other may come out otherwise
        # through their loader's float32 softmax
        assert int((mask != written[f'{img_id}.png']).sum()) <= \
            near_tie_pixels(osp.join(cams, f'{img_id}.npy'), 0.45)


def test_val_threshold_needs_ground_truth_and_a_resolved_export(tmp_path):
    from semples_mm.pseudo_labels import choose_val_threshold
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=2)
    # a plain Dataset lists no mask files: its masks cannot be confirmed
    with pytest.raises(ValueError, match='val_dataloader.dataset'):
        choose_val_threshold(build_test_model(), build_loader(dataset),
                             export_settings({}),
                             dict(type='PseudoMaskMetric'))
    with pytest.raises(ValueError, match="bg_threshold='val' must be"):
        export_pseudo_masks(build_test_model(), build_loader(dataset),
                            str(tmp_path / 'out'), dict(bg_threshold='val'))
    with pytest.raises(ValueError, match="or 'val'"):
        export_settings({}, bg_threshold='best')
    assert export_settings(dict(pseudo_label_cfg=dict(
        bg_threshold='val')))['bg_threshold'] == 'val'


# ------------------------------------------------------------------- metric
def test_evaluator_gets_normalised_cams_and_keeps_existing_pngs(tmp_path):
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=4)
    out_dir = str(tmp_path / 'out')
    export_pseudo_masks(build_test_model(), build_loader(dataset), out_dir,
                        progress=False)
    before = read_folder(out_dir)
    summary = export_pseudo_masks(
        build_test_model(), build_loader(dataset), out_dir, progress=False,
        evaluator=[dict(type='PseudoLabelTestMetric')], split='toy')
    assert summary['mIoU'] == 4.0 and summary['best_threshold'] == 0.5
    assert summary['num_inferred'] == 4 and summary['num_skipped'] == 4
    assert summary['split'] == 'toy'
    assert read_folder(out_dir) == before


# ---------------------------------------------------------------------- CRF
def test_missing_pydensecrf_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'pydensecrf', None)
    monkeypatch.setitem(sys.modules, 'pydensecrf.densecrf', None)
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=1)
    with pytest.raises(ImportError, match=r'pip install pydensecrf2') as info:
        export_pseudo_masks(build_test_model(), build_loader(dataset),
                            str(tmp_path / 'out'), dict(crf=True),
                            progress=False)
    assert 'semples-mm[optional]' in str(info.value)
    assert not osp.exists(tmp_path / 'out')  # failed before any work


@pytest.mark.float_compare
def test_crf_export_writes_present_ids_only(tmp_path):
    # pydensecrf2 is a test requirement: CI must run this path, not skip it
    dataset = ToyWSSSDataset(str(tmp_path / 'images'), num_images=3)
    export_pseudo_masks(build_test_model(), build_loader(dataset),
                        str(tmp_path / 'out'), dict(crf=True, crf_workers=1),
                        progress=False)
    for index in range(3):
        path, image, mask, labels = dataset.samples[index]
        written = np.array(
            Image.open(tmp_path / 'out' / f'img_{index:03d}.png'))
        assert written.shape == mask.shape
        allowed = {0} | {k + 1 for k in np.flatnonzero(labels)}
        assert set(np.unique(written)) <= allowed
        # the painted rectangles are easy: the CRF keeps most pixels right
        # (0.77-1.0 here; without CRF 0.99-1.0)
        assert (written == mask).mean() > 0.7


def test_in_order_loader_cfg_reads_every_image_once_in_order():
    train_like = dict(batch_size=16, num_workers=4, persistent_workers=True,
                      sampler=dict(type='InfiniteSampler', shuffle=True),
                      dataset=dict(type='D', ann_file='train.txt'))
    cfg = in_order_loader_cfg(train_like, ann_file='trainaug.txt',
                              batch_size=8, num_workers=0)
    assert cfg == dict(batch_size=8, num_workers=0,
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(type='D', ann_file='trainaug.txt'))
    assert train_like['dataset']['ann_file'] == 'train.txt'  # a copy
    assert train_like['persistent_workers'] is True
    kept = in_order_loader_cfg(train_like)
    assert (kept['batch_size'], kept['num_workers']) == (16, 4)
    assert kept['dataset'] == train_like['dataset']


# ------------------------------------------------------ one settings rule
def test_export_settings_resolve_by_one_rule():
    """defaults < model.test_cfg < pseudo_label_cfg < overrides."""
    cfg = dict(model=dict(test_cfg=dict(bg_threshold=0.4, scales=(1.0, ),
                                        eps=1e-3, use_gt_labels=True)),
               pseudo_label_cfg=dict(scales=(1.0, 1.2), flip=True,
                                     batch_size=8))
    settings = export_settings(cfg, bg_threshold=0.6, scales=None)
    assert settings['scales'] == (1.0, 1.2)  # pseudo_label_cfg over test_cfg
    assert settings['flip'] is True and settings['batch_size'] == 8
    assert settings['eps'] == 1e-3  # from test_cfg
    assert settings['bg_threshold'] == 0.6  # the override; None is "unset"
    assert settings['amp'] is False and settings['crf'] is False
    bare = export_settings({})
    assert (bare['scales'], bare['flip'], bare['bg_threshold']) == (
        (1.0, ), False, 0.45)
    with pytest.raises(KeyError, match=r"pseudo_label_cfg: unknown key\(s\) "
                       r"\['scale'\]"):
        export_settings(dict(pseudo_label_cfg=dict(scale=(1.0, ))))
    with pytest.raises(ValueError, match=r"bg_threshold='high'"):
        export_settings(dict(model=dict(test_cfg=dict(bg_threshold='high'))))
    with pytest.raises(ValueError, match=r'scales=\(1.0, -1\)'):
        export_settings({}, scales=(1.0, -1))
    with pytest.raises(ValueError, match='batch_size=0'):
        export_settings({}, batch_size=0)


@pytest.mark.float_compare
def test_validation_and_export_share_the_cam_path(tmp_path):
    """SemPLeS.predict (validation) and the export infer the same CAMs of an
    image when their settings agree: one path, normalised at the original
    size (here the image is resized by the pipeline first)."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from conftest import TEST_CONFIGS
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(TEST_CONFIGS / 'tiny_semples.py'))
    model = MODELS.build(dict(cfg.model, test_cfg=dict(
        scales=(1.0, 1.2), flip=True, bg_threshold=0.3))).eval()
    image = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(
        np.uint8)
    Image.fromarray(image).save(tmp_path / 'x.png')
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='PackWSSSInputs')])
    item = pipeline(dict(img_path=str(tmp_path / 'x.png'), img_id='x',
                         seg_fields=[], reduce_zero_label=False,
                         gt_class_labels=np.array([1, 0, 0, 1, 0],
                                                  np.float32)))
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([item]), False)
        predicted = model.predict(data['inputs'], data['data_samples'])[0]
        exported = infer_batch_cams(
            model, CAMInference(scales=(1.0, 1.2), flip=True),
            [item['inputs']], [item['data_samples']])[0]
    assert exported.shape == (5, 20, 28)  # the original size
    torch.testing.assert_close(predicted.cam.data, exported, rtol=0,
                               atol=1e-6)
    assert not exported[[1, 2, 4]].any()  # absent classes are zero
    expected = with_background(exported[None], 0.3).argmax(1)
    assert torch.equal(predicted.pred_sem_seg.data, expected)
