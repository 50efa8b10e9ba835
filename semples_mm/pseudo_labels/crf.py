"""Optional dense-CRF refinement of pseudo masks (pydensecrf).

pydensecrf is an optional extra: ``pip install pydensecrf2`` (import name
``pydensecrf``) or ``pip install semples-mm[optional]``.
"""
import numpy as np

#: The SemPLeS authors' VOC settings.
DEFAULT_CRF_CFG = dict(
    iterations=10,
    gaussian_sxy=4,
    gaussian_compat=3,
    bilateral_sxy=83,
    bilateral_srgb=5,
    bilateral_compat=3,
    min_prob=1e-5,
)


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
    unknown = set(crf_cfg or {}) - set(merged)
    if unknown:
        raise KeyError(f'unknown dense-CRF setting(s) {sorted(unknown)}; '
                       f'known: {sorted(merged)}')
    merged.update(crf_cfg or {})
    return merged


def dense_crf_labels(image, scores, crf_cfg=None):
    """Refine per-pixel class scores with a fully connected CRF.

    The scores are turned into probabilities by dividing by their sum per
    pixel (after flooring them at ``min_prob``); the unary is their negative
    log.

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
    probs = np.maximum(scores.astype(np.float32), cfg['min_prob'])
    probs /= probs.sum(axis=0, keepdims=True)
    crf = densecrf.DenseCRF2D(width, height, num_labels)
    crf.setUnaryEnergy(crf_utils.unary_from_softmax(probs))
    crf.addPairwiseGaussian(
        sxy=cfg['gaussian_sxy'], compat=cfg['gaussian_compat'])
    crf.addPairwiseBilateral(
        sxy=cfg['bilateral_sxy'], srgb=cfg['bilateral_srgb'],
        rgbim=np.array(image, dtype=np.uint8, order='C'),  # writable copy
        compat=cfg['bilateral_compat'])
    marginals = np.asarray(crf.inference(cfg['iterations']))
    return marginals.reshape(num_labels, height, width).argmax(axis=0)
