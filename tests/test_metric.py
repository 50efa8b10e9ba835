"""PseudoMaskMetric against a hand computation on tiny masks."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import semples_mm  # noqa: F401  (registers the metric)


def _sample(cam, gt, as_dict=True):
    sample = SegDataSample()
    sample.cam = PixelData(data=torch.tensor(cam, dtype=torch.float32))
    sample.gt_sem_seg = PixelData(data=torch.tensor(gt)[None])
    return sample.to_dict() if as_dict else sample


# K = 2 foreground classes, one image of 1x4 pixels and one of 1x2.
# Image A: cams (class 0, class 1) and ground truth; pixel 3 is ignored.
CAM_A = [[[0.9, 0.5, 0.1, 0.8]],
         [[0.2, 0.3, 0.6, 0.1]]]
GT_A = [[1, 1, 2, 255]]
# Image B: class 1 only (class 0 zeroed by its labels).
CAM_B = [[[0.0, 0.0]],
         [[0.45, 0.7]]]
GT_B = [[0, 2]]


def _expected():
    """Hand computation for thresholds 0.4 and 0.55.

    t = 0.40: A -> [1, 1, 2, (ignored)], B -> [2, 2]
      bg: I=0, pred=0, gt=1 -> U=1 -> IoU 0
      c1: I=2, pred=2, gt=2 -> IoU 1
      c2: I=2 (A2, B1), pred=3, gt=2 -> U=3 -> IoU 2/3
      mIoU = (0 + 1 + 2/3) / 3 = 55.555...
    t = 0.55: A -> [1, 0, 2, -], B -> [0, 2]
      bg: I=1 (B0), pred=2 (A1, B0), gt=1 -> U=2 -> 1/2
      c1: I=1, pred=1, gt=2 -> U=2 -> 1/2
      c2: I=2, pred=2, gt=2 -> 1
      mIoU = (0.5 + 0.5 + 1) / 3 = 66.666...
    """
    return {0.4: 100 * (0 + 1 + 2 / 3) / 3, 0.55: 100 * 2 / 3}


@pytest.mark.float_compare
def test_metric_matches_hand_computation():
    metric = METRICS.build(dict(type='PseudoMaskMetric',
                                bg_thresholds=[0.4, 0.55]))
    metric.dataset_meta = dict(classes=('background', 'boat', 'train'))
    metric.process({}, [_sample(CAM_A, GT_A), _sample(CAM_B, GT_B)])
    results = metric.evaluate(size=2)
    expected = _expected()
    assert results['pseudo/mIoU_curve'] == {
        t: pytest.approx(v, abs=0.01) for t, v in expected.items()}
    assert results['pseudo/bg_threshold'] == 0.55
    assert results['pseudo/mIoU'] == pytest.approx(expected[0.55], abs=0.01)
    assert results['pseudo/IoU_per_class'] == {
        'background': 50.0, 'boat': 50.0, 'train': 100.0}


@pytest.mark.float_compare
def test_metric_ties_go_to_background_and_lowest_threshold_wins():
    # One pixel of class 1 scoring exactly 0.5: at t = 0.5 it is background.
    metric = METRICS.build(dict(type='PseudoMaskMetric',
                                bg_thresholds=[0.3, 0.5, 0.4]))
    metric.process({}, [_sample([[[0.5, 0.1]]], [[1, 0]])])
    results = metric.evaluate(size=1)
    # t = 0.3 and 0.4: [1, 0] exact -> 100; t = 0.5: [0, 0] -> bg 1/2, c1 0
    assert results['pseudo/mIoU_curve'] == {0.3: 100.0, 0.5: 25.0, 0.4: 100.0}
    assert results['pseudo/bg_threshold'] == 0.3
    assert set(results['pseudo/IoU_per_class']) == {'background', 'class_0'}


def test_metric_default_sweep_and_range_specs():
    default = METRICS.build(dict(type='PseudoMaskMetric'))
    assert default.bg_thresholds == [round(0.40 + 0.01 * i, 2)
                                     for i in range(20)]
    assert METRICS.build(dict(
        type='PseudoMaskMetric',
        bg_thresholds=(0.3, 0.5, 0.1))).bg_thresholds == [0.3, 0.4, 0.5]
    assert METRICS.build(dict(
        type='PseudoMaskMetric',
        bg_thresholds=dict(start=0.4, stop=0.45, step=0.05))
    ).bg_thresholds == [0.4, 0.45]
    with pytest.raises(ValueError, match='tuple'):
        METRICS.build(dict(type='PseudoMaskMetric', bg_thresholds=(0.3, 0.5)))


@pytest.mark.float_compare
def test_metric_equals_loop_reference_on_random_maps():
    torch.manual_seed(0)
    thresholds = [0.2, 0.4, 0.6]
    metric = METRICS.build(dict(type='PseudoMaskMetric',
                                bg_thresholds=thresholds))
    samples = []
    for _ in range(3):
        cam = torch.rand(3, 5, 6)
        gt = torch.randint(0, 4, (5, 6))
        gt[0, :2] = 255
        samples.append((cam, gt))
    metric.process({}, [_sample(c.tolist(), g.tolist(), as_dict=False)
                        for c, g in samples])
    results = metric.evaluate(size=3)
    for t in thresholds:
        inter = [0] * 4
        union = [0] * 4
        for cam, gt in samples:
            for i in range(5):
                for j in range(6):
                    if gt[i, j] == 255:
                        continue
                    scores = [t] + cam[:, i, j].tolist()
                    pred = max(range(4), key=lambda c: (scores[c], -c))
                    g = int(gt[i, j])
                    for c in range(4):
                        inter[c] += (pred == c) and (g == c)
                        union[c] += (pred == c) or (g == c)
        ious = [i / u for i, u in zip(inter, union) if u > 0]
        assert results['pseudo/mIoU_curve'][t] == pytest.approx(
            100 * sum(ious) / len(ious), abs=0.01)


def test_metric_errors_name_the_problem():
    metric = METRICS.build(dict(type='PseudoMaskMetric'))
    with pytest.raises(ValueError, match='does not match gt_sem_seg'):
        metric.process({}, [_sample([[[0.1, 0.2]]], [[0, 1, 1]])])
    with pytest.raises(ValueError, match='holds id 3'):
        metric.process({}, [_sample([[[0.1, 0.2]]], [[0, 3]])])
    sample = SegDataSample().to_dict()
    with pytest.raises(KeyError, match='cam'):
        metric.process({}, [sample])


@pytest.mark.float_compare
def test_metric_through_evaluator_beside_iou_metric_and_json_log():
    import json

    from mmengine.evaluator import Evaluator
    evaluator = Evaluator([
        METRICS.build(
            dict(type='PseudoMaskMetric', bg_thresholds=[0.4, 0.55])),
        METRICS.build(dict(type='IoUMetric', iou_metrics=['mIoU'])),
    ])
    evaluator.dataset_meta = dict(classes=('background', 'boat', 'train'))
    samples = []
    for cam, gt in ((CAM_A, GT_A), (CAM_B, GT_B)):
        sample = _sample(cam, gt, as_dict=False)
        sample.pred_sem_seg = PixelData(data=torch.zeros_like(
            sample.gt_sem_seg.data))
        samples.append(sample)
    evaluator.process(samples)  # the Evaluator hands the metric dicts
    results = evaluator.evaluate(2)
    assert results['pseudo/mIoU'] == pytest.approx(_expected()[0.55], abs=0.01)
    assert results['pseudo/bg_threshold'] == 0.55
    assert 'mIoU' in results  # IoUMetric's, no clash with the default prefix
    # the LoggerHook dumps test metrics as JSON: plain Python values only
    json.dumps({k: v for k, v in results.items() if k.startswith('pseudo/')})


@pytest.fixture
def metric_warnings():
    """Warnings logged to the current MMLogger while the test runs."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Collect(level=logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _evaluate(thresholds, samples):
    metric = METRICS.build(dict(type='PseudoMaskMetric',
                                bg_thresholds=thresholds))
    metric.process({}, samples)
    return metric.evaluate(size=len(samples))


def test_best_at_highest_threshold_warns_lower_bound(metric_warnings):
    # the hand computation's best, 0.55, is the highest of [0.4, 0.55]
    results = _evaluate([0.4, 0.55],
                        [_sample(CAM_A, GT_A), _sample(CAM_B, GT_B)])
    assert results['pseudo/bg_threshold'] == 0.55
    assert results['pseudo/best_at_sweep_edge'] is True
    messages = [r.getMessage() for r in metric_warnings]
    assert len(messages) == 1
    assert ('mIoU 66.67 is reached at background threshold 0.55, the '
            'highest of the sweep [0.4, 0.55]') in messages[0]
    assert 'lower bound' in messages[0]
    assert 'Widen bg_thresholds above 0.55' in messages[0]


def test_best_at_lowest_threshold_warns_lower_bound(metric_warnings):
    # The tie test's maps: 0.3 and 0.4 score 100, 0.5 scores 25. The best
    # listed first is 0.4, inside the sweep, but the plateau reaches its
    # lowest end, 0.3 (listed last), so the curve may rise below it.
    results = _evaluate([0.4, 0.5, 0.3], [_sample([[[0.5, 0.1]]], [[1, 0]])])
    assert results['pseudo/mIoU_curve'] == {0.4: 100.0, 0.5: 25.0, 0.3: 100.0}
    assert results['pseudo/bg_threshold'] == 0.4
    assert results['pseudo/best_at_sweep_edge'] is True
    messages = [r.getMessage() for r in metric_warnings]
    assert len(messages) == 1
    assert ('reached at background threshold 0.3, the lowest of the sweep '
            '[0.3, 0.5]') in messages[0]
    assert 'Widen bg_thresholds below 0.3' in messages[0]


def test_best_inside_the_sweep_or_single_threshold_is_quiet(metric_warnings):
    samples = [_sample(CAM_A, GT_A), _sample(CAM_B, GT_B)]
    # t = 0.3 gives the t = 0.4 masks (55.56); t = 0.7 leaves A0 and B1 only
    # (bg 1/4, c1 1/2, c2 0 -> 25): the best, 0.55, is inside.
    results = _evaluate([0.3, 0.55, 0.7], samples)
    assert results['pseudo/mIoU_curve'] == {
        0.3: pytest.approx(55.56, abs=0.01),
        0.55: pytest.approx(66.67, abs=0.01), 0.7: 25.0}
    assert results['pseudo/bg_threshold'] == 0.55
    assert results['pseudo/best_at_sweep_edge'] is False
    # one fixed threshold is no sweep: nothing to widen
    single = _evaluate([0.55], samples)
    assert single['pseudo/best_at_sweep_edge'] is False
    assert metric_warnings == []
