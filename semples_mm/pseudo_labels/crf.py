"""Optional dense-CRF refinement of pseudo masks (pydensecrf).

pydensecrf is an optional extra: ``pip install pydensecrf2`` (import name
``pydensecrf``) or ``pip install semples-mm[optional]``.
"""
import numpy as np

from ..utils.known_keys import check_known_keys

#: The SemPLeS authors' VOC settings (pairwise terms and iterations) with
#: this project's unary: the scores as probabilities ('scores'). The
#: authors' (WeakTr's) unary is unary='labels' with gt_prob 0.7.
DEFAULT_CRF_CFG = dict(
    iterations=10,
    gaussian_sxy=4,
    gaussian_compat=3,
    bilateral_sxy=83,
    bilateral_srgb=5,
    bilateral_compat=3,
    min_prob=1e-5,
    unary='scores',
    gt_prob=0.7,
)
#: What the unary is built from: 'scores' (the per-pixel scores, divided by
#: their sum, as probabilities) or 'labels' (the argmax label of each pixel
#: held with probability gt_prob, pydensecrf's ``unary_from_labels``).
UNARY_SOURCES = ('scores', 'labels')


def require_pydensecrf():
    """Import pydensecrf or say which extra to install.

    Returns:
        tuple: the ``pydensecrf.densecrf`` and ``pydensecrf.utils`` modules.
    """
    try:
        import pydensecrf.densecrf as densecrf
        import pydensecrf.utils as crf_utils
    except ImportError as error:
        raise ImportError(
            'Dense CRF was asked for (crf=True / --crf) but pydensecrf '
            f'cannot be imported ({error}). Install the optional extra: '
            '`pip install pydensecrf2` or `pip install semples-mm[optional]`,'
            ' or turn the CRF off.') from error
    return densecrf, crf_utils


def merge_crf_cfg(crf_cfg=None):
    """Defaults updated by ``crf_cfg``; unknown keys are an error."""
    merged = dict(DEFAULT_CRF_CFG)
    check_known_keys(crf_cfg, merged, 'pseudo_label_cfg.crf_cfg (dense CRF)')
    merged.update(crf_cfg or {})
    if merged['unary'] not in UNARY_SOURCES:
        raise ValueError(f"dense-CRF setting unary={merged['unary']!r} is not "
                         f'one of {UNARY_SOURCES}; set crf_cfg.unary to '
                         "'scores' (default) or 'labels' (the authors').")
    gt_prob = merged['gt_prob']
    if isinstance(gt_prob, bool) or not isinstance(gt_prob, (int, float)) \
            or not 0 < gt_prob < 1:
        raise ValueError(f'dense-CRF setting gt_prob={gt_prob!r} must lie in '
                         '(0, 1) (the authors use 0.7).')
    return merged


def dense_crf_labels(image, scores, crf_cfg=None):
    """Refine per-pixel class scores with a fully connected CRF.

    With ``unary='scores'`` (default) the scores are turned into
    probabilities by dividing by their sum per pixel (after flooring them at
    ``min_prob``); the unary is their negative log. With ``unary='labels'``
    (the SemPLeS authors' and WeakTr's CRF) only each pixel's argmax label
    counts: pydensecrf's ``unary_from_labels`` gives it probability
    ``gt_prob`` and shares the rest evenly among the other labels (every
    label, background included, is a sure label: ``zero_unsure=False``).
    Argmax ties go to the lower index (background first), as the
    threshold-and-argmax masks without CRF.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB image.
        scores (np.ndarray): (C, H, W) non-negative scores of the C candidate
            labels (background threshold and the present classes' CAMs).
        crf_cfg (dict, optional): overrides of :data:`DEFAULT_CRF_CFG`.

    Returns:
        np.ndarray: (H, W) int64 index into the C candidates.
    """
    densecrf, crf_utils = require_pydensecrf()
    cfg = merge_crf_cfg(crf_cfg)
    num_labels, height, width = scores.shape
    if image.shape[:2] != (height, width):
        raise ValueError(f'CRF image shape {image.shape[:2]} does not match '
                         f'the score maps {(height, width)}')
    if num_labels == 1:  # background only: nothing to choose
        return np.zeros((height, width), np.int64)
    crf = densecrf.DenseCRF2D(width, height, num_labels)
    if cfg['unary'] == 'labels':
        crf.setUnaryEnergy(crf_utils.unary_from_labels(
            scores.argmax(axis=0), num_labels, gt_prob=cfg['gt_prob'],
            zero_unsure=False))
    else:
        probs = np.maximum(scores.astype(np.float32), cfg['min_prob'])
        probs /= probs.sum(axis=0, keepdims=True)
        crf.setUnaryEnergy(crf_utils.unary_from_softmax(probs))
    crf.addPairwiseGaussian(
        sxy=cfg['gaussian_sxy'], compat=cfg['gaussian_compat'])
    crf.addPairwiseBilateral(
        sxy=cfg['bilateral_sxy'], srgb=cfg['bilateral_srgb'],
        rgbim=np.array(image, dtype=np.uint8, order='C'),  # writable copy
        compat=cfg['bilateral_compat'])
    marginals = np.asarray(crf.inference(cfg['iterations']))
    return marginals.reshape(num_labels, height, width).argmax(axis=0)
