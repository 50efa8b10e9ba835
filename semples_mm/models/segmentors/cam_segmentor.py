"""A CAM network as an mmseg segmentor: trained on image labels, predicting
label-restricted CAMs at each image's original size."""
from typing import Dict, List, Optional

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import get_state_dict
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..cams import cam_test_settings, normalize_cams, unpad, with_background

# The modules of the CAM network.
CAM_MODULES = ('backbone', 'neck', 'cam_head')


def _unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if is_model_wrapper(module) else module


@MODELS.register_module()
class CAMSegmentor(BaseSegmentor):
    """A backbone (and neck) whose outputs a CAM head turns into class
    activation maps and image logits, trained by multi-label classification.

    The base of :class:`SemPLeS`, and usable alone for any CAM method: its
    :meth:`predict` is the one CAM inference path (``cam_inference``, from
    ``test_cfg``) that validation, the pseudo-mask export, the CAM overlays
    and the benchmark share.

    Args:
        backbone, neck (dict): mmseg configs; their outputs (feature maps,
            or tokens and attention maps) go to the head.
        cam_head (dict): ``head(feats) -> (cams (B, K, h, w), logits)``,
            ``head.loss_by_cls(logits, labels) -> dict``, ``num_classes``
            (:class:`CAMHead`, ``WeakTrCAMHead``).
        channels_last (bool): keep the CAM network's weights and inputs in
            channels-last memory order, which oneDNN CPUs and tensor cores
            prefer (the same numbers up to rounding).
        test_cfg (dict): CAM inference settings (``scales``, ``flip``,
            ``eps``, ``amp``, ``bg_threshold``; defaults
            ``CAM_TEST_DEFAULTS``), which pseudo-mask exports inherit;
            ``use_gt_labels`` (default True) restricts the CAMs to the image
            labels, as WSSS evaluates CAMs, else to the classes the
            classifier predicts (sigmoid > 0.5).
        train_cfg, data_preprocessor, init_cfg: mmseg conventions.
    """

    def __init__(self, backbone: dict, cam_head: dict,
                 neck: Optional[dict] = None, channels_last: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.cam_head = MODELS.build(cam_head)
        self.channels_last = channels_last
        if channels_last:
            # in place: init_weights, load_state_dict and .to() keep it
            for module in self._cam_modules().values():
                module.to(memory_format=torch.channels_last)
        self.train_cfg = train_cfg or {}
        self.test_cfg = dict(test_cfg or {})
        self.cam_inference, self.bg_threshold = cam_test_settings(
            self.test_cfg)

    def _cam_modules(self) -> Dict[str, torch.nn.Module]:
        """The CAM network's modules by name, inside any DDP wrapper that
        ``MMSeparateDistributedDataParallel`` put around them (calling
        ``self.backbone`` keeps going through the wrapper)."""
        return {name: _unwrapped(getattr(self, name)) for name in CAM_MODULES
                if getattr(self, name) is not None}

    def state_dict(self, *args, destination=None, prefix='',
                   keep_vars=False):
        """The state without the ``module.`` that the per-part DDP wrappers
        of ``MMSeparateDistributedDataParallel`` would add to the keys, so
        that checkpoints of runs in several processes load in one."""
        if args:  # torch's deprecated positional form
            return super().state_dict(*args, destination=destination,
                                      prefix=prefix, keep_vars=keep_vars)
        return get_state_dict(self, destination, prefix, keep_vars)

    def cam_network_state(self) -> Dict[str, Tensor]:
        """A detached copy of the CAM network's state, ``{'backbone.x':
        tensor, 'cam_head.y': tensor, ...}`` (what a phase restart or a
        model selection keeps)."""
        return {f'{name}.{key}': value.detach().clone()
                for name, module in self._cam_modules().items()
                for key, value in module.state_dict().items()}

    def load_cam_network_state(self, state: Dict[str, Tensor]) -> None:
        """Load a :meth:`cam_network_state` back (strictly, per module)."""
        for name, module in self._cam_modules().items():
            module.load_state_dict({
                key[len(name) + 1:]: value for key, value in state.items()
                if key.startswith(name + '.')})

    def extract_feat(self, inputs: Tensor):
        """(B, 3, H, W) -> whatever the backbone (and neck) give the head."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(inputs)
        return self.neck(feats) if self.neck is not None else feats

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None):
        """(B, 3, H, W) -> raw CAMs (B, K, h, w) and the head's logits."""
        return self.cam_head(self.extract_feat(inputs))

    def predict_cams(self, inputs: Tensor,
                     classes: Optional[Tensor] = None) -> Tensor:
        """Raw (pre-ReLU) CAMs at feature resolution.

        Args:
            inputs (Tensor): (B, 3, H, W).
            classes (Tensor, optional): (K,) bool mask of the classes to
                compute (inference passes the labels' present classes; the
                head may skip the others' work). None computes all K.

        Returns:
            Tensor: (B, K, h, w), or (B, K', h, w) for the K' classes of
            ``classes`` in class order.
        """
        num_classes = self._cam_modules()['cam_head'].num_classes
        if classes is not None and tuple(classes.shape) != (num_classes, ):
            raise ValueError(
                f'{type(self).__name__}.predict_cams: a class mask of shape '
                f'{tuple(classes.shape)}, but cam_head.num_classes is '
                f'{num_classes}: the dataset\'s classes (the labels) must be '
                'the CAM network\'s.')
        return self.cam_head(self.extract_feat(inputs), classes)[0]

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Scores (B, K + 1, H, W) at the input size: the background
        threshold and the CAMs normalised over all classes (no labels)."""
        norm = normalize_cams(self.predict_cams(inputs), None,
                              inputs.shape[-2:], self.cam_inference.eps)
        return with_background(norm, self.bg_threshold)

    @staticmethod
    def _labels(data_samples: SampleList) -> Tensor:
        """(B, K) float multi-hot image labels of the samples."""
        if not data_samples or 'gt_class_labels' not in data_samples[0]:
            raise KeyError(
                f'{data_samples and type(data_samples[0]).__name__} has no '
                "gt_class_labels: end the pipeline with dict(type="
                "'PackWSSSInputs').")
        return torch.stack([s.gt_class_labels for s in data_samples]).float()

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """The head's classification losses."""
        logits = self._forward(inputs)[1]
        return self._cam_modules()['cam_head'].loss_by_cls(
            logits, self._labels(data_samples))

    def predict(self, inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """CAMs at each image's original size by ``cam_inference``,
        restricted to the image labels or the predicted classes; fills
        ``cam`` (K, H, W), ``seg_logits`` (K + 1, H, W, the background
        threshold first) and ``pred_sem_seg`` (ids 0..K).

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed (maybe padded).
            data_samples (list[SegDataSample]): with ``ori_shape`` (and
                ``gt_class_labels`` unless ``test_cfg.use_gt_labels`` is
                False).
        """
        if data_samples is None:
            raise ValueError(f'{type(self).__name__}.predict needs '
                             'data_samples (image metadata) to restore the '
                             'original size.')
        if self.test_cfg.get('use_gt_labels', True):
            labels = self._labels(data_samples)
        else:
            logits = self._forward(inputs)[1]
            if isinstance(logits, dict):  # several classifiers: their mean
                logits = torch.stack(list(logits.values())).mean(0)
            labels = (logits.sigmoid() > 0.5).float()
        cams = self.cam_inference(
            self.predict_cams,
            [unpad(inputs[i:i + 1], s.metainfo)
             for i, s in enumerate(data_samples)],
            [tuple(s.metainfo['ori_shape'][:2]) for s in data_samples],
            labels)
        for sample, norm in zip(data_samples, cams):
            scores = with_background(norm[None], self.bg_threshold)[0]
            sample.set_data(dict(
                cam=PixelData(data=norm), seg_logits=PixelData(data=scores),
                pred_sem_seg=PixelData(data=scores.argmax(0, keepdim=True))))
        return data_samples
