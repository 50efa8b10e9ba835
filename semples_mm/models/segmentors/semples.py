"""The SemPLeS segmentor: a CAM network trained in phases against a frozen
CLIP and learnt background prompts. It wires the parts; they do not know
each other."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import all_reduce_params
from mmengine.logging import MessageHub, print_log
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
from .state_snapshot import StateSnapshot


@MODELS.register_module()
class SemPLeS(CAMSegmentor):
    """SemPLeS (WACV 2025) on any CAM network (:class:`CAMSegmentor`, whose
    ``predict`` it keeps).

    Phases (:class:`PhaseSchedule`), each stepping the optimizer it names:
    ``cam`` multi-label classification (stage 0); ``match`` Segment-Label
    Matching (stage 1: CLIP must read M_k X, not (1 - M_k) X, as class k);
    ``prompt`` Contrastive Prompt Learning (stage 2: CAM network frozen in
    eval mode, prompts learn the background crops, whose frozen features
    come from ``prompt_crop_features``); ``refine`` Prompt-guided Semantic
    Refinement (stage 3: the CAM network restarts from its end-of-``cam``
    weights and matches while pushing M_k X off the frozen prompt k).

    The model owns its schedule, as mmagic's GANs own theirs:
    :meth:`train_step` reads the runner's iteration from mmengine's
    ``MessageHub``, enters the phase that owns it, starts that phase's
    optimizer afresh at the phase's first iteration (each of the authors'
    stages starts a new optimizer), sets its learning rate from the
    iteration alone (so a resume is exact) and steps it. Under several
    processes mmengine's ``MMSeparateDistributedDataParallel`` wraps the
    trainable parts and calls this same :meth:`train_step`.

    Args:
        backbone, neck, cam_head, channels_last, test_cfg, train_cfg,
            data_preprocessor, init_cfg: see :class:`CAMSegmentor`.
        class_names (Sequence[str]): K foreground names for CLIP's text
            template (the authors write 'player' for VOC's person).
        phases (Sequence[dict]): see :class:`PhaseSchedule`.
        lr_schedule (dict, optional): the learning rate within each phase,
            see :class:`PhaseSchedule` (default: cosine to 0).
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
                 lr_schedule: Optional[dict] = None, clip=None, prompt_learner=None, match_loss=None,
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
        self.schedule = PhaseSchedule(phases, lr_schedule)
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
        # The CAM network as stage 0 left it, which ``refine`` restarts
        # from; in the state dict, so checkpoints carry it.
        self.cam_snapshot = StateSnapshot()
        self.phase: Optional[str] = None  # the phase of the last step
        self._frozen_prompts = FrozenPromptFeatures()

    def set_phase(self, name: str) -> None:
        """Make ``name`` the phase whose loss :meth:`loss` computes (and,
        for ``prompt``, put the CAM network in eval mode). Phase starts
        (snapshots, restarts, fresh optimizers) belong to
        :meth:`enter_iteration`."""
        if name not in self.schedule:
            raise ValueError(f'SemPLeS.set_phase: no phase {name!r} in '
                             f'model.phases {list(self.schedule.names)}.')
        self.phase = name
        self.train(self.training)  # prompt phase: CAM network to eval

    def enter_iteration(self, iteration: int, optim_wrapper,
                        max_iters: Optional[int] = None) -> OptimWrapper:
        """Prepare training iteration ``iteration`` (0-based) and return
        the optimizer wrapper it steps, with its learning rate set.

        At the first iteration of a phase: the end of ``cam`` (or the
        start of a run without ``cam`` that holds no snapshot yet) is
        snapshotted, ``refine`` restarts from that snapshot, the
        crop-feature source forgets its features, and the phase's optimizer
        loses its state (AdamW moments). Everything follows from the
        iteration, so a run resumed anywhere does what an uninterrupted
        one does.

        Args:
            iteration (int): the runner's ``iter`` before this step.
            optim_wrapper (OptimWrapperDict | OptimWrapper): the runner's.
            max_iters (int, optional): the runner's run length, checked
                against ``model.phases``.
        """
        schedule = self.schedule
        if max_iters is not None and max_iters != schedule.total_iters:
            raise ValueError(
                f'the run is {max_iters} iterations long but model.phases '
                f'add up to {schedule.total_iters}; use train_cfg=dict('
                "type='PhasedTrainLoop'), which takes its length from "
                'model.phases (or make train_cfg.max_iters agree).')
        phase = schedule.at(iteration)
        wrapper = schedule.optim_wrapper(phase.name, optim_wrapper)
        if iteration == phase.start:
            first_after_cam = next(
                (p for p in schedule if p.name != 'cam'), None)
            if phase == first_after_cam and (
                    'cam' in schedule or self.cam_snapshot.as_dict() is None):
                self.cam_snapshot.store(self.cam_network_state())
            if phase.name == 'refine':
                snapshot = self.cam_snapshot.as_dict()
                if snapshot is None:
                    raise RuntimeError(
                        'SemPLeS: refine restarts from the end-of-cam '
                        'weights, but the model holds none (a checkpoint '
                        'written before its snapshot existed?).')
                self.load_cam_network_state(snapshot)
            self.crop_features.reset()  # stale once the CAMs change
            wrapper.optimizer.state.clear()
            print_log(f'SemPLeS: phase "{phase.name}" starts at iteration '
                      f'{iteration + 1}', logger='current')
        if phase.name != self.phase:
            self.set_phase(phase.name)
        factor = schedule.lr_factor(iteration)
        for group in wrapper.optimizer.param_groups:
            # kept in the optimizer's state dict, so resumes see it
            group.setdefault('initial_lr', group['lr'])
            group['lr'] = group['initial_lr'] * factor
        return wrapper

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written when phase and snapshot were extra state
        old = state_dict.pop(prefix + '_extra_state', None)
        if old and old.get('cam_snapshot') is not None:
            for key, value in old['cam_snapshot'].items():
                state_dict[prefix + 'cam_snapshot.' +
                           key.replace('.', '/')] = value
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
            head = self._cam_modules()['cam_head']
            losses.update({k: v * self.cls_loss_weight[phase] for k, v in
                           head.loss_by_cls(logits, labels).items()})
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
            with torch.no_grad():  # (no DDP gradient is expected either)
                ctx = self.prompt_learner()
            prompts = self._frozen_prompts(self.clip, ctx)[class_idx]
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
        """One training iteration: the phase of the runner's iteration (see
        :meth:`enter_iteration`), one step of its optimizer. A batch
        without ``inputs`` (a pipeline that loads no pixels, for
        crop-feature sources that need none) skips the data preprocessor.
        The log gets the learning rates this step used (mmengine logs them
        before the step, when the model has not set them yet)."""
        hub = MessageHub.get_current_instance()
        iteration = hub.get_info('iter')
        if iteration is None:
            raise RuntimeError(
                'SemPLeS.train_step reads the iteration from mmengine\'s '
                "MessageHub ('iter', set by the Runner's RuntimeInfoHook); "
                'outside a Runner, call MessageHub.get_current_instance()'
                ".update_info('iter', i) first.")
        wrapper = self.enter_iteration(iteration, optim_wrapper,
                                       hub.get_info('max_iters'))
        with wrapper.optim_context(self):
            data = (self.data_preprocessor(data, True) if 'inputs' in data
                    else dict(inputs=None, data_samples=data['data_samples']))
            losses = self._run_forward(data, mode='loss')
        parsed_loss, log_vars = self.parse_losses(losses)
        wrapper.update_params(parsed_loss)
        if self.phase != 'prompt':
            # Under several processes the BN statistics of this step's
            # batches (one per rank) are averaged, so every rank holds the
            # CAM network its checkpoint will (validation and exports on any
            # rank use it), close to one process's over the total batch.
            all_reduce_params((b for m in self._cam_modules().values()
                               for b in m.buffers() if b.is_floating_point()),
                              op='mean')
        log_vars.update(_used_learning_rates(optim_wrapper))
        return log_vars


def _used_learning_rates(optim_wrapper) -> Dict[str, float]:
    """``{'<name>.lr': lr}`` as mmengine's RuntimeInfoHook names them."""
    if hasattr(optim_wrapper, 'items'):
        return {f'{name}.lr': wrapper.get_lr()['lr'][0]
                for name, wrapper in optim_wrapper.items()}
    return {'lr': optim_wrapper.get_lr()['lr'][0]}

