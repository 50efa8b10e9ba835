"""Pseudo-mask export: the model's CAM inference (``models.cams``) over a
dataloader, written as class-id PNGs by :class:`MaskWriter`.

One export (:func:`export_pseudo_masks`) and one settings rule
(:func:`export_settings`) serve ``PseudoLabelHook``,
``tools/make_pseudo_labels.py``, the experiment runner and the benchmark.
"""
from .cam_writer import CAM_FORMATS, CamWriter
from .crf import DEFAULT_CRF_CFG, dense_crf_labels, require_pydensecrf
from .export import (export_pseudo_masks, infer_batch_cams, sample_image_id,
                     score_words)
from .loader import in_order_loader_cfg
from .output_guard import (ANNOTATION_FOLDER_NAMES, check_output_dir,
                           config_annotation_dirs, dataset_annotation_dirs,
                           dataset_has_masks)
from .settings import (EXPORT_KEYS, VAL_THRESHOLD, export_settings,
                       inference_settings, pseudo_mask_metric)
from .summary import update_summary_file
from .val_threshold import choose_val_threshold
from .writer import MaskWriter

__all__ = [
    'CAM_FORMATS', 'CamWriter', 'VAL_THRESHOLD', 'choose_val_threshold',
    'DEFAULT_CRF_CFG', 'dense_crf_labels', 'require_pydensecrf',
    'export_pseudo_masks', 'infer_batch_cams', 'sample_image_id',
    'score_words',
    'in_order_loader_cfg', 'ANNOTATION_FOLDER_NAMES', 'check_output_dir',
    'config_annotation_dirs',
    'dataset_annotation_dirs', 'dataset_has_masks', 'EXPORT_KEYS',
    'export_settings', 'inference_settings', 'pseudo_mask_metric',
    'update_summary_file',
    'MaskWriter'
]
