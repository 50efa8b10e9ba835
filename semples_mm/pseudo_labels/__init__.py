"""Pseudo-mask generation: multi-scale + flip CAMs -> class-id PNGs.

One exporter (:func:`export_pseudo_masks`) serves ``PseudoLabelHook`` and
``tools/make_pseudo_labels.py``.
"""
from .cam_inference import multi_scale_flip_cams
from .crf import DEFAULT_CRF_CFG, dense_crf_labels, require_pydensecrf
from .exporter import (batched_normalized_cams, compute_normalized_cams,
                       export_pseudo_masks, in_order_loader_cfg,
                       sample_image_id)
from .output_guard import (ANNOTATION_FOLDER_NAMES, check_output_dir,
                           dataset_annotation_dirs, dataset_has_masks)
from .palette import save_mask_png, voc_palette
from .summary import update_summary_file

__all__ = [
    'multi_scale_flip_cams',
    'DEFAULT_CRF_CFG', 'dense_crf_labels', 'require_pydensecrf',
    'batched_normalized_cams', 'compute_normalized_cams',
    'export_pseudo_masks', 'in_order_loader_cfg', 'sample_image_id',
    'ANNOTATION_FOLDER_NAMES', 'check_output_dir', 'dataset_annotation_dirs',
    'dataset_has_masks', 'save_mask_png', 'voc_palette', 'update_summary_file'
]
