from .pseudo_mask_metric import PseudoMaskMetric, make_thresholds

__all__ = ['PseudoMaskMetric', 'make_thresholds']
