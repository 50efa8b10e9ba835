"""The SemPLeS segmentor: a CAM network trained in phases against a frozen
CLIP and learnt background prompts. It wires the parts; they do not know
each other."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from ..cams import normalize_cams
from ..clip.frozen_prompt_features import FrozenPromptFeatures
from ..crop_features import CropEncoder
from ..losses.weights import check_weights
from .cam_segmentor import CAMSegmentor
from .phase_schedule import PHASE_NAMES, PhaseSchedule


@MODELS.register_module()
class SemPLeS(CAMSegmentor):
    """SemPLeS (WACV 2025) on any CAM network (:class:`CAMSegmentor`, whose
    ``predict`` it keeps).

    Phases (:class:`PhaseSchedule`, entered by :class:`SemPLeSPhaseHook`
    through :meth:`set_phase`), each stepping the optimizer it names:
    ``cam`` multi-label classification (stage 0); ``match`` Segment-Label
    Matching (stage 1: CLIP must read M_k X, not (1 - M_k) X, as class k);
    ``prompt`` Contrastive Prompt Learning (stage 2: CAM network frozen in
    eval mode, prompts learn the background crops, whose frozen features
    come from ``prompt_crop_features``); ``refine`` Prompt-guided Semantic
    Refinement (stage 3: the CAM network restarts from its end-of-``cam``
    weights and matches while pushing M_k X off the frozen prompt k).

    Args:
        backbone, neck, cam_head, channels_last, test_cfg, train_cfg,
            data_preprocessor, init_cfg: see :class:`CAMSegmentor`.
        class_names (Sequence[str]): K foreground names for CLIP's text
            template (the authors write 'player' for VOC's person).
        phases (Sequence[dict]): see :class:`PhaseSchedule`.
        clip, prompt_learner, match_loss, prompt_loss, refine_loss (dict):
            :class:`FrozenCLIP`, :class:`BackgroundPromptLearner` and the
            losses; each phase needs the parts of its loss. CLIP's
            ``input_mean``/``input_std`` default to the data preprocessor's,
            the prompts' ``class_names`` to ``class_names`` and their
            ``width`` to CLIP's text width, the head's ``num_classes`` to
            the number of class names.
        prompt_crop_features (dict): a crop-feature source; default
            ``RecomputeCropFeatures`` (every step, as the authors).
        text_template (str): class text, ``'a photo of {}.'``.
        mask_eps (dict): per-phase eps of the training masks' min-max
            normalisation (0.1 when training masks, 1e-4 for prompts).
        mask_align_corners (bool): ``align_corners`` of the bilinear
            upsampling of the training masks to the crop size (the authors:
            True). Exports are not affected. Defaults to False.
        cls_loss_weight (dict): per-phase weight of the classification loss.
        detach_backbone_in (Sequence[str]): phases whose backbone (and
            neck) run without autograd, so only the CAM head learns.
    """

    def __init__(self, backbone: dict, cam_head: dict,
                 class_names: Sequence[str], phases: Sequence[dict],
                 clip=None, prompt_learner=None, match_loss=None,
                 prompt_loss=None, refine_loss=None,
                 prompt_crop_features=None, neck=None,
                 text_template: str = 'a photo of {}.', mask_eps=None,
                 mask_align_corners: bool = False, cls_loss_weight=None,
                 detach_backbone_in=(),
                 channels_last: bool = False, train_cfg=None, test_cfg=None,
                 data_preprocessor=None, init_cfg=None):
        # the head's class count defaults to the class list's
        cam_head = dict(cam_head, num_classes=cam_head.get(
            'num_classes', len(class_names)))
        super().__init__(backbone, cam_head, neck, channels_last, train_cfg,
                         test_cfg, data_preprocessor, init_cfg)
        self.schedule = PhaseSchedule(phases)
        parts = dict(clip=clip, prompt_learner=prompt_learner,
                     match_loss=match_loss, prompt_loss=prompt_loss,
                     refine_loss=refine_loss)
        self.schedule.check_parts(**parts)
        # What the segmentor knows and the parts need: the normalisation of
        # the images CLIP gets, the class list the prompts learn.
        defaults = dict(prompt_learner=dict(class_names=list(class_names)))
        if hasattr(self.data_preprocessor, 'mean'):
            defaults['clip'] = dict(
                input_mean=self.data_preprocessor.mean.flatten().tolist(),
                input_std=self.data_preprocessor.std.flatten().tolist())
        for key, cfg in parts.items():
            if key == 'prompt_learner' and self.clip is not None:
                defaults[key]['width'] = self.clip.text_width
            setattr(self, key, MODELS.build(
                cfg, default_args=defaults.get(key)) if cfg else None)
        self.class_names = list(class_names)
        if len(self.class_names) != self.cam_head.num_classes:
            raise ValueError(
                f'SemPLeS: class_names has {len(self.class_names)} names but '
                f'cam_head.num_classes is {self.cam_head.num_classes}; both '
                'count the foreground classes only.')
        if prompt_learner and \
                self.prompt_learner.class_names != self.class_names:
            raise ValueError(
                'SemPLeS: model.prompt_learner.class_names '
                f'{self.prompt_learner.class_names} differ from model.'
                f'class_names {self.class_names}; give both the same list.')
        self.crop_features = MODELS.build(
            prompt_crop_features or dict(type='RecomputeCropFeatures'))
        if not isinstance(text_template, str) or \
                text_template.count('{}') != 1:
            raise ValueError(f'SemPLeS: text_template={text_template!r} '
                             "needs one '{}' for the class name.")
        self.text_template = text_template
        self.mask_eps = {**dict(match=0.1, prompt=1e-4, refine=0.1),
                         **(mask_eps or {})}
        self.cls_loss_weight = {
            **dict(cam=1.0, match=0.0, prompt=0.0, refine=0.0),
            **(cls_loss_weight or {})}
        check_weights('SemPLeS.mask_eps', **self.mask_eps)
        if min(self.mask_eps.values()) <= 0:  # a flat CAM would give 0 / 0
            raise ValueError(f'SemPLeS: mask_eps must be > 0 in every '
                             f'phase, got {self.mask_eps}.')
        check_weights('SemPLeS.cls_loss_weight', **self.cls_loss_weight)
        self.mask_align_corners = bool(mask_align_corners)
        if self.cls_loss_weight['prompt'] != 0:
            raise ValueError('SemPLeS: cls_loss_weight.prompt must be 0; the '
                             'CAM network is frozen in the prompt phase.')
        unknown = set(detach_backbone_in) - set(PHASE_NAMES)
        if unknown:
            raise ValueError(f'SemPLeS: detach_backbone_in names unknown '
                             f'phases {sorted(unknown)}; use {PHASE_NAMES}.')
        self.detach_backbone_in = tuple(detach_backbone_in)
        # Training state that survives a resume (see get_extra_state).
        self.phase: Optional[str] = None
        self.cam_snapshot: Optional[Dict[str, Tensor]] = None
        self._frozen_prompts = FrozenPromptFeatures()

    def set_phase(self, name: str) -> bool:
        """Enter phase ``name`` (True if the phase changed). Leaving ``cam``
        snapshots the CAM network, entering ``refine`` restores it (stage 3
        restarts from the stage-0 weights), leaving ``prompt`` resets the
        crop-feature source. Idempotent: a resume re-entering its phase
        changes nothing."""
        if name not in self.schedule:
            raise ValueError(f'SemPLeS.set_phase: no phase {name!r} in '
                             f'model.phases {list(self.schedule.names)}.')
        if name == self.phase:
            return False
        # Leaving 'cam' (or starting without one) takes a new snapshot, also
        # when a loaded checkpoint brought an old run's snapshot along.
        if name != 'cam' and (self.phase in (None, 'cam')
                              or self.cam_snapshot is None):
            self.cam_snapshot = self.cam_network_state()
        if name == 'refine':
            self.load_cam_network_state(self.cam_snapshot)
        if self.phase == 'prompt':
            self.crop_features.reset()  # stale once the CAMs train
        self.phase = name
        self.train(self.training)  # prompt phase: CAM network to eval
        return True

    def active_optim_wrapper(self, optim_wrapper) -> OptimWrapper:
        """The wrapper the current phase steps (its schedule names it)."""
        return self.schedule.optim_wrapper(
            self.phase or self.schedule.names[0], optim_wrapper)

    def get_extra_state(self) -> dict:
        return dict(phase=self.phase, cam_snapshot=self.cam_snapshot)

    def set_extra_state(self, state: dict):
        self.phase = state['phase']
        self.cam_snapshot = state['cam_snapshot']

    def train(self, mode: bool = True):
        """The prompt phase keeps the CAM network in eval mode (frozen BN)."""
        super().train(mode)
        if mode and self.phase == 'prompt':
            for module in self._cam_modules().values():
                module.eval()
        return self

    def _class_text_features(self) -> Tensor:
        """(K, D) CLIP features of the class texts, cached by FrozenCLIP."""
        return self.clip.encode_text(
            [self.text_template.format(name) for name in self.class_names])

    @staticmethod
    def _pair_crops(inputs: Tensor, masks: Tensor, labels: Tensor):
        """Foreground M_k X and background (1 - M_k) X crops, each
        (P, 3, H, W), of every present pair, and each pair's class (P,), in
        ``labels.nonzero()`` order; masked pixels become 0, the
        normalisation mean. inputs (B, 3, H, W), masks (B, K, H, W)."""
        image_idx, class_idx = labels.nonzero(as_tuple=True)
        pair_masks = masks[image_idx, class_idx].unsqueeze(1)
        pair_images = inputs[image_idx]
        return (pair_masks * pair_images, (1 - pair_masks) * pair_images,
                class_idx)

    def loss(self, inputs: Optional[Tensor], data_samples: SampleList
             ) -> Dict[str, Tensor]:
        """Losses of the current phase: inputs (B, 3, H, W) normalised
        images (None in a prompt phase whose source needs no pixels),
        data samples with ``gt_class_labels``."""
        phase = self.phase or self.schedule.names[0]
        labels = self._labels(data_samples)
        if phase == 'prompt':
            return self._prompt_losses(inputs, labels, data_samples)
        if phase in self.detach_backbone_in:
            with torch.no_grad():
                feats = self.extract_feat(inputs)
            cams, logits = self.cam_head(feats)
        else:
            cams, logits = self._forward(inputs)
        losses = {}
        if self.cls_loss_weight[phase] > 0:
            losses.update({k: v * self.cls_loss_weight[phase] for k, v in
                           self.cam_head.loss_by_cls(logits, labels).items()})
        if phase == 'cam':
            return losses
        masks = normalize_cams(cams, labels, inputs.shape[-2:],
                               self.mask_eps[phase], self.mask_align_corners)
        fg, bg, class_idx = self._pair_crops(inputs, masks, labels)
        feats = self.clip.encode_image(torch.cat([fg, bg]))
        fg_feat, bg_feat = feats[:len(class_idx)], feats[len(class_idx):]
        text = self._class_text_features()[class_idx]
        losses[self.match_loss.loss_name] = self.match_loss(
            (fg_feat * text).sum(-1), (bg_feat * text).sum(-1))
        if phase == 'refine':  # prompts are frozen in stage 3
            prompts = self._frozen_prompts(
                self.clip, self.prompt_learner())[class_idx]
            losses[self.refine_loss.loss_name] = self.refine_loss(
                (fg_feat * prompts).sum(-1))
        return losses

    @torch.no_grad()
    def frozen_crop_features(self, inputs: Tensor,
                             labels: Tensor) -> List[Tensor]:
        """CLIP features of the prompt phase's crops (frozen CAM network):
        inputs (B, 3, H, W), labels (B, K) -> background crop features
        (P, D), then foreground crop features (P, D) when the prompt loss
        uses them; pairs in ``labels.nonzero()`` order."""
        masks = normalize_cams(self.predict_cams(inputs), labels,
                               inputs.shape[-2:], self.mask_eps['prompt'],
                               self.mask_align_corners)
        fg, bg, class_idx = self._pair_crops(inputs, masks, labels)
        if self.prompt_loss.fg_weight > 0:
            feats = self.clip.encode_image(torch.cat([bg, fg]))
            return [feats[:len(class_idx)], feats[len(class_idx):]]
        return [self.clip.encode_image(bg)]

    @property
    def crop_encoder(self) -> CropEncoder:
        """What the crop-feature sources may ask of the model."""
        return CropEncoder(self.frozen_crop_features,
                           lambda batch: self.data_preprocessor(batch, False))

    def _prompt_losses(self, inputs, labels, data_samples):
        """Contrastive prompt loss; only the prompts get gradients."""
        crop_feats = self.crop_features(self.crop_encoder, inputs, labels,
                                        data_samples)
        class_idx = labels.nonzero(as_tuple=True)[1]
        prompts = self.clip.encode_prompts(self.prompt_learner())[class_idx]
        text = self._class_text_features()[class_idx]
        fg_sim = ((crop_feats[1] * prompts).sum(-1)
                  if len(crop_feats) > 1 else None)
        losses = {self.prompt_loss.loss_name: self.prompt_loss(
            (crop_feats[0] * prompts).sum(-1), (text * prompts).sum(-1),
            fg_sim)}
        losses.update({key: labels.new_tensor(value) for key, value in
                       self.crop_features.log_vars().items()})
        return losses

    def train_step(self, data: dict, optim_wrapper) -> Dict[str, Tensor]:
        """One step of the current phase's optimizer. A batch without
        ``inputs`` (a pipeline that loads no pixels, for crop-feature
        sources that need none) skips the data preprocessor."""
        wrapper = self.active_optim_wrapper(optim_wrapper)
        with wrapper.optim_context(self):
            data = (self.data_preprocessor(data, True) if 'inputs' in data
                    else dict(inputs=None, data_samples=data['data_samples']))
            losses = self._run_forward(data, mode='loss')
        parsed_loss, log_vars = self.parse_losses(losses)
        wrapper.update_params(parsed_loss)
        return log_vars

