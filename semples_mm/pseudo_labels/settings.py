"""The one rule by which every pseudo-mask export finds its settings."""
import copy
from ..models.cams import CAM_TEST_DEFAULTS, CAM_TEST_KEYS, check_cam_settings
from ..utils.known_keys import check_known_keys
from .crf import merge_crf_cfg

#: Export settings beyond the CAM inference ones, with their defaults.
EXPORT_DEFAULTS = dict(crf=False, crf_cfg=None, crf_workers=None,
                       batch_size=None, num_workers=None)
#: Every key ``pseudo_label_cfg`` may hold.
EXPORT_KEYS = tuple(CAM_TEST_DEFAULTS) + tuple(EXPORT_DEFAULTS)
#: ``bg_threshold`` value meaning: the best of the validation split's
#: threshold sweep (``val_threshold.choose_val_threshold``).
VAL_THRESHOLD = 'val'


def export_settings(cfg, **overrides) -> dict:
    """Settings of a pseudo-mask export: the defaults, overridden by the
    model's ``test_cfg`` (the CAM inference that validation uses), then by
    the config's ``pseudo_label_cfg``, then by ``overrides`` (command-line
    or hook arguments; None means "not given"). The PseudoLabelHook,
    ``tools/make_pseudo_labels.py``, the experiment runner and the
    benchmark all resolve their settings here.

    Args:
        cfg (Config | dict): the experiment config (``model.test_cfg``,
            ``pseudo_label_cfg``; both optional).
        **overrides: any of :data:`EXPORT_KEYS`. ``bg_threshold`` may be
            :data:`VAL_THRESHOLD` ('val': chosen on the validation split's
            sweep before the export; see :func:`choose_val_threshold`).

    Returns:
        dict: every key of :data:`EXPORT_KEYS`, checked.
    """
    settings = dict(copy.deepcopy(CAM_TEST_DEFAULTS), **EXPORT_DEFAULTS)
    test_cfg = dict((cfg.get('model') or {}).get('test_cfg') or {})
    check_known_keys(test_cfg, CAM_TEST_KEYS, 'model.test_cfg')
    settings.update({k: v for k, v in test_cfg.items()
                     if k in CAM_TEST_DEFAULTS})
    for where, values in (('pseudo_label_cfg',
                           dict(cfg.get('pseudo_label_cfg') or {})),
                          ('the export arguments', overrides)):
        check_known_keys(values, EXPORT_KEYS, where)
        settings.update({k: copy.deepcopy(v) for k, v in values.items()
                         if v is not None})
    # 'val' is resolved by the export's caller (make_pseudo_labels,
    # PseudoLabelHook) once the validation sweep has run
    threshold = settings['bg_threshold']
    if isinstance(threshold, str) and threshold != VAL_THRESHOLD:
        raise ValueError(
            f'pseudo_label_cfg.bg_threshold={threshold!r}: need a number in '
            f"[0, 1] or {VAL_THRESHOLD!r} (the best of the validation "
            "split's threshold sweep).")
    if threshold == VAL_THRESHOLD:
        settings = dict(check_cam_settings(
            {k: v for k, v in settings.items() if k != 'bg_threshold'},
            'pseudo_label_cfg'), bg_threshold=VAL_THRESHOLD)
    else:
        settings = check_cam_settings(settings, 'pseudo_label_cfg')
    if not isinstance(settings['crf'], bool):
        raise ValueError(f"pseudo_label_cfg.crf={settings['crf']!r}: need "
                         'True or False.')
    # checked with the CRF off too: a typo must not wait until it is on
    merge_crf_cfg(settings['crf_cfg'])
    for key in ('crf_workers', 'batch_size', 'num_workers'):
        value = settings[key]
        if value is not None and (not isinstance(value, int) or
                                  isinstance(value, bool) or value < (
                                      0 if key == 'num_workers' else 1)):
            raise ValueError(f'pseudo_label_cfg.{key}={value!r}: need an '
                             'int >= 1 (>= 0 for num_workers), or None for '
                             'the default.')
    return settings


def pseudo_mask_metric(cfg) -> dict:
    """The config's ``PseudoMaskMetric`` (the threshold sweep validation
    uses), else the metric's defaults: what every export scores with."""
    evaluators = cfg.get('val_evaluator') or []
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    for evaluator in evaluators:
        if evaluator.get('type') == 'PseudoMaskMetric':
            return copy.deepcopy(dict(evaluator))
    return dict(type='PseudoMaskMetric')


def inference_settings(settings: dict) -> dict:
    """The CAM inference part of export settings (``CAMInference`` args)."""
    return {k: settings[k] for k in ('scales', 'flip', 'eps', 'amp')}


def describe(settings: dict) -> dict:
    """The settings as recorded in a summary (JSON-ready)."""
    return dict(scales=list(settings['scales']), flip=settings['flip'],
                eps=settings['eps'], amp=settings['amp'],
                bg_threshold=settings['bg_threshold'], crf=settings['crf'],
                crf_cfg=copy.deepcopy(settings.get('crf_cfg')))

