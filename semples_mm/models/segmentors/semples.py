"""The SemPLeS segmentor: a CAM network trained in phases against a frozen
CLIP and learnt background prompts."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..heads.cam_head import normalize_cams
from .view_feature_cache import ViewFeatureCache

PHASES = ('cam', 'match', 'prompt', 'refine')
# The CAM network: what the 'cam' optimizer trains and 'refine' restarts.
CAM_MODULES = ('backbone', 'neck', 'cam_head')


def present_classes(labels: Tensor) -> List[Tuple[int, ...]]:
    """Class indices present in each row of (B, K) multi-hot labels, in
    ``labels.nonzero()`` (pair) order."""
    return [tuple(row.nonzero().flatten().tolist()) for row in labels]


@MODELS.register_module()
class SemPLeS(BaseSegmentor):
    """SemPLeS (WACV 2025) on any mmseg backbone.

    Phases, run in the order given by ``phases`` and switched by
    :class:`SemPLeSPhaseHook` from the iteration count:

    - ``cam``: multi-label classification, the plain CAM network (stage 0).
    - ``match``: Segment-Label Matching (stage 1). The CAM mask M_k of every
      present (image, class) pair cuts the crop into M_k X and (1 - M_k) X;
      the frozen CLIP must read the first, and not the second, as class k.
    - ``prompt``: Contrastive Prompt Learning (stage 2). The CAM network is
      frozen (eval, no grad); per-class prompts learn to describe the
      background crops (1 - M_k) X while staying away from the class text.
    - ``refine``: Prompt-guided Semantic Refinement (stage 3). The CAM
      network restarts from its weights at the end of ``cam`` and trains
      with the matching loss plus a term pushing M_k X away from the frozen
      prompt of class k.

    Each phase trains one optimizer of the runner's ``OptimWrapperDict``:
    ``cam`` for ``cam``/``match``/``refine`` and ``prompt`` for ``prompt``
    (a plain ``OptimWrapper`` is accepted for CAM-only configs).

    Args:
        backbone (dict): mmseg backbone config.
        cam_head (dict): :class:`CAMHead` config.
        class_names (Sequence[str]): K foreground names written into CLIP's
            text template (the authors write 'player' for VOC's person).
        phases (Sequence[dict]): ``dict(name=..., iters=...)`` in training
            order; names from ('cam', 'match', 'prompt', 'refine').
        clip (dict, optional): :class:`FrozenCLIP` config; needed by every
            phase but ``cam``.
        prompt_learner (dict, optional): :class:`BackgroundPromptLearner`
            config; needed by ``prompt`` and ``refine``.
        match_loss (dict, optional): :class:`SegmentLabelMatchingLoss`.
        prompt_loss (dict, optional): :class:`ContrastivePromptLoss`.
        refine_loss (dict, optional): :class:`PromptRefinementLoss`.
        neck (dict, optional): mmseg neck config.
        text_template (str): class text, ``'a photo of {}.'``.
        mask_eps (dict): eps of the per-map min-max normalisation of CAM
            masks per phase (METHOD.md: 0.1 when training masks, 1e-4 when
            learning prompts).
        cls_loss_weight (dict): weight of the classification loss per phase;
            the authors use it only to train the stage-0 CAM network.
        detach_backbone_in (Sequence[str]): phases in which the backbone
            (and neck) features are detached, so only the CAM head learns;
            the authors detach their WeakTr backbone in stages 1 and 3.
        channels_last (bool): keep the CAM network's weights and inputs in
            channels-last memory order, which the convolution kernels of
            CPUs (oneDNN) and GPU tensor cores prefer; the same numbers up
            to float rounding. Off by default.
        prompt_feature_cache (dict, optional): ``dict(max_views=N)`` keeps
            the frozen CLIP features of each view's prompt-phase crops
            (:class:`ViewFeatureCache`), so a repeated view costs only the
            text encoder; worth it when views repeat (flip-only
            augmentation), useless with random crops. None (default)
            recomputes them every step, as the authors do.
        train_cfg (dict, optional): unused, mmseg convention.
        test_cfg (dict, optional): ``bg_threshold`` of the predicted
            segmentation; ``use_gt_labels`` (default True) restricts CAMs to
            the image labels, as WSSS evaluates CAMs and pseudo masks.
        data_preprocessor (dict, optional): mmseg ``SegDataPreProcessor``.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 cam_head: dict,
                 class_names: Sequence[str],
                 phases: Sequence[dict],
                 clip: Optional[dict] = None,
                 prompt_learner: Optional[dict] = None,
                 match_loss: Optional[dict] = None,
                 prompt_loss: Optional[dict] = None,
                 refine_loss: Optional[dict] = None,
                 neck: Optional[dict] = None,
                 text_template: str = 'a photo of {}.',
                 mask_eps: Optional[dict] = None,
                 cls_loss_weight: Optional[dict] = None,
                 detach_backbone_in: Sequence[str] = (),
                 channels_last: bool = False,
                 prompt_feature_cache: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.cam_head = MODELS.build(cam_head)
        self.class_names = list(class_names)
        if len(self.class_names) != self.cam_head.num_classes:
            raise ValueError(
                f'SemPLeS: class_names has {len(self.class_names)} names but '
                f'cam_head.num_classes is {self.cam_head.num_classes}; both '
                'count the foreground classes only.')
        self.phases = self._check_phases(phases)
        names = {p['name'] for p in self.phases}
        needs = dict(clip=names - {'cam'}, prompt_learner=names & {
            'prompt', 'refine'}, match_loss=names & {'match', 'refine'},
                     prompt_loss=names & {'prompt'},
                     refine_loss=names & {'refine'})
        given = dict(clip=clip, prompt_learner=prompt_learner,
                     match_loss=match_loss, prompt_loss=prompt_loss,
                     refine_loss=refine_loss)
        for key, needed_by in needs.items():
            if needed_by and given[key] is None:
                raise ValueError(
                    f'SemPLeS: phases {sorted(needed_by)} need model.{key} '
                    'in the config.')
        self.clip = MODELS.build(clip) if clip is not None else None
        self.prompt_learner = (MODELS.build(prompt_learner)
                               if prompt_learner is not None else None)
        self.match_loss = MODELS.build(match_loss) if match_loss else None
        self.prompt_loss = MODELS.build(prompt_loss) if prompt_loss else None
        self.refine_loss = MODELS.build(refine_loss) if refine_loss else None
        self.text_template = text_template
        self.mask_eps = dict(cam=0.1, match=0.1, prompt=1e-4, refine=0.1)
        self.mask_eps.update(mask_eps or {})
        self.cls_loss_weight = dict(cam=1.0, match=0.0, prompt=0.0,
                                    refine=0.0)
        self.cls_loss_weight.update(cls_loss_weight or {})
        if self.cls_loss_weight['prompt'] != 0:
            raise ValueError(
                'SemPLeS: cls_loss_weight.prompt must be 0; the CAM network '
                'is frozen in the prompt phase.')
        unknown = set(detach_backbone_in) - set(PHASES)
        if unknown:
            raise ValueError(f'SemPLeS: detach_backbone_in names unknown '
                             f'phases {sorted(unknown)}; use {PHASES}.')
        self.detach_backbone_in = tuple(detach_backbone_in)
        self.channels_last = channels_last
        if channels_last:
            # in place: init_weights, load_state_dict and .to(device) keep
            # the parameters' memory order
            for name in CAM_MODULES:
                if getattr(self, name) is not None:
                    getattr(self, name).to(memory_format=torch.channels_last)
        self.prompt_feature_cache = (
            ViewFeatureCache(**prompt_feature_cache)
            if prompt_feature_cache is not None else None)
        self.train_cfg = train_cfg or {}
        self.test_cfg = test_cfg or {}
        self.align_corners = False  # read by postprocess_result
        # Training state that must survive a resume (see get_extra_state).
        self.phase: Optional[str] = None
        self.cam_snapshot: Optional[Dict[str, Tensor]] = None
        # Set by PromptFeatureBankHook for the prompt phase only.
        self.prompt_feature_bank: Optional[dict] = None
        # (key, (K, D) features) of the frozen prompts (refine phase).
        self._frozen_prompt_memo: Optional[tuple] = None

    # ------------------------------------------------------------ phases
    @staticmethod
    def _check_phases(phases: Sequence[dict]) -> List[dict]:
        checked = []
        for i, phase in enumerate(phases):
            name, iters = phase.get('name'), phase.get('iters')
            if name not in PHASES:
                raise ValueError(f'SemPLeS: phases[{i}].name={name!r} is not '
                                 f'one of {PHASES}.')
            if not isinstance(iters, int) or iters < 1:
                raise ValueError(f'SemPLeS: phases[{i}].iters={iters!r} must '
                                 'be a positive int.')
            checked.append(dict(name=name, iters=iters))
        order = [PHASES.index(p['name']) for p in checked]
        if not checked or order != sorted(set(order)):
            raise ValueError(
                'SemPLeS: phases must name each phase at most once, in the '
                f"order {PHASES}; got {[p['name'] for p in checked]}.")
        return checked

    @property
    def total_iters(self) -> int:
        """Iterations of all phases together (the config's max_iters)."""
        return sum(p['iters'] for p in self.phases)

    def phase_at(self, iteration: int) -> str:
        """Name of the phase that trains iteration ``iteration`` (0-based)."""
        end = 0
        for phase in self.phases:
            end += phase['iters']
            if iteration < end:
                return phase['name']
        return self.phases[-1]['name']

    def phase_start_iter(self, name: str) -> int:
        """Number of iterations done when phase ``name`` starts."""
        return self.phase_end_iter(name) - next(
            p['iters'] for p in self.phases if p['name'] == name)

    def phase_end_iter(self, name: str) -> int:
        """Number of iterations done when phase ``name`` ends."""
        end = 0
        for phase in self.phases:
            end += phase['iters']
            if phase['name'] == name:
                return end
        raise KeyError(f'SemPLeS: no phase {name!r} in '
                       f"{[p['name'] for p in self.phases]}.")

    def set_phase(self, name: str) -> bool:
        """Enter phase ``name``; returns True if the phase changed.

        Leaving ``cam`` snapshots the CAM network; entering ``refine``
        restores it (stage 3 restarts from the stage-0 weights). Idempotent,
        so a resumed run re-entering its saved phase changes nothing.
        """
        if name not in PHASES:
            raise ValueError(f'SemPLeS.set_phase: unknown phase {name!r}.')
        if name == self.phase:
            return False
        # Leaving 'cam' (or starting without one) takes a new snapshot, also
        # when a loaded checkpoint brought an old run's snapshot along.
        if name != 'cam' and (self.phase in (None, 'cam')
                              or self.cam_snapshot is None):
            self.cam_snapshot = {
                k: v.detach().clone()
                for k, v in self._cam_network_state().items()
            }
        if name == 'refine':
            self._load_cam_network_state(self.cam_snapshot)
        if self.phase == 'prompt' and self.prompt_feature_cache is not None:
            self.prompt_feature_cache.clear()  # stale once the CAMs train
        self.phase = name
        self.train(self.training)  # prompt phase: CAM network to eval
        return True

    def optimizer_name(self, phase: Optional[str] = None) -> str:
        """The OptimWrapperDict key that phase ``phase`` steps."""
        return 'prompt' if (phase or self.phase) == 'prompt' else 'cam'

    def _cam_network_state(self) -> Dict[str, Tensor]:
        return {
            f'{name}.{key}': value
            for name in CAM_MODULES if getattr(self, name) is not None
            for key, value in getattr(self, name).state_dict().items()
        }

    def _load_cam_network_state(self, state: Dict[str, Tensor]):
        for name in CAM_MODULES:
            module = getattr(self, name)
            if module is None:
                continue
            prefix = f'{name}.'
            module.load_state_dict({
                k[len(prefix):]: v
                for k, v in state.items() if k.startswith(prefix)
            })

    def get_extra_state(self) -> dict:
        return dict(phase=self.phase, cam_snapshot=self.cam_snapshot)

    def set_extra_state(self, state: dict):
        self.phase = state['phase']
        self.cam_snapshot = state['cam_snapshot']

    def train(self, mode: bool = True):
        """The prompt phase keeps the CAM network in eval mode (frozen BN)."""
        super().train(mode)
        if mode and self.phase == 'prompt':
            for name in CAM_MODULES:
                if getattr(self, name) is not None:
                    getattr(self, name).eval()
        return self

    # ----------------------------------------------------- CAM network
    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """(B, 3, H, W) -> backbone (and neck) feature maps."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return feats

    def predict_cams(self, inputs: Tensor,
                     data_samples: OptSampleList = None) -> Tensor:
        """Raw (pre-ReLU) CAMs (B, K, h, w) at feature resolution."""
        return self.cam_head(self.extract_feat(inputs))[0]

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Segmentation scores (B, K + 1, H, W): a constant background
        channel and the CAMs normalised over all classes (no labels)."""
        cams = self.predict_cams(inputs)
        norm = normalize_cams(cams, None, inputs.shape[-2:],
                              self.mask_eps['cam'])
        return self._with_background(norm)

    def _with_background(self, norm_cams: Tensor) -> Tensor:
        bg = torch.full_like(norm_cams[:, :1],
                             self.test_cfg.get('bg_threshold', 0.45))
        return torch.cat([bg, norm_cams], dim=1)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None):
        return self.cam_head(self.extract_feat(inputs))

    # ------------------------------------------------------------ losses
    @staticmethod
    def _labels(data_samples: SampleList) -> Tensor:
        if not data_samples or not hasattr(data_samples[0],
                                           'gt_class_labels'):
            raise KeyError(
                'SemPLeS needs data_sample.gt_class_labels: add '
                "dict(type='PackWSSSInputs') at the end of the pipeline.")
        return torch.stack([s.gt_class_labels for s in data_samples])

    def _class_text_features(self) -> Tensor:
        """(K, D) CLIP features of the class texts, cached by FrozenCLIP."""
        return self.clip.encode_text(
            [self.text_template.format(name) for name in self.class_names])

    def _frozen_prompt_features(self) -> Tensor:
        """(K, D) CLIP features of the learnt prompts, which the refine
        phase keeps frozen: encoded once, and again only when the prompt
        tensor is written (its in-place version counter moves with every
        optimizer step and checkpoint load), moved, or the autocast state
        changes. The authors' code re-encodes them every step."""
        ctx = self.prompt_learner()
        key = (ctx.data_ptr(), ctx._version, ctx.device, ctx.dtype,
               torch.is_autocast_enabled(ctx.device.type))
        if self._frozen_prompt_memo is None or \
                self._frozen_prompt_memo[0] != key:
            with torch.no_grad():
                self._frozen_prompt_memo = (key,
                                            self.clip.encode_prompts(ctx))
        return self._frozen_prompt_memo[1]

    def _pair_images(self, inputs: Tensor, masks: Tensor, labels: Tensor):
        """Foreground and background crops of every present (image, class).

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            masks (Tensor): (B, K, H, W) normalised CAMs in [0, 1].
            labels (Tensor): (B, K) multi-hot labels.

        Returns:
            tuple: fg M_k X and bg (1 - M_k) X, each (P, 3, H, W), and the
            class index of each pair (P,). Masked pixels become 0, i.e. the
            normalisation mean colour.
        """
        image_idx, class_idx = labels.nonzero(as_tuple=True)
        pair_masks = masks[image_idx, class_idx].unsqueeze(1)
        pair_images = inputs[image_idx]
        return (pair_masks * pair_images, (1 - pair_masks) * pair_images,
                class_idx)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of the current phase.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list[SegDataSample]): with ``gt_class_labels``.
        """
        phase = self.phase or self.phases[0]['name']
        labels = self._labels(data_samples).to(inputs.dtype)
        if phase == 'prompt':
            return self._prompt_loss(inputs, labels, data_samples)
        losses = {}
        if phase in self.detach_backbone_in:
            with torch.no_grad():
                feats = self.extract_feat(inputs)
            cams, logits = self.cam_head(feats)
        else:
            cams, logits = self._forward(inputs)
        if self.cls_loss_weight[phase] > 0:
            cls = self.cam_head.loss_by_cls(logits, labels)
            losses.update({k: v * self.cls_loss_weight[phase]
                           for k, v in cls.items()})
        if phase == 'cam':
            return losses

        masks = normalize_cams(cams, labels, inputs.shape[-2:],
                               self.mask_eps[phase])
        fg, bg, class_idx = self._pair_images(inputs, masks, labels)
        num_pairs = class_idx.numel()
        text = self._class_text_features()
        feats = self.clip.encode_image(torch.cat([fg, bg]))
        fg_feat, bg_feat = feats[:num_pairs], feats[num_pairs:]
        pair_text = text[class_idx]
        losses[self.match_loss.loss_name] = self.match_loss(
            (fg_feat * pair_text).sum(-1), (bg_feat * pair_text).sum(-1))
        if phase == 'refine':  # prompts are frozen in stage 3
            prompts = self._frozen_prompt_features()
            losses[self.refine_loss.loss_name] = self.refine_loss(
                (fg_feat * prompts[class_idx]).sum(-1))
        return losses

    @torch.no_grad()
    def frozen_crop_features(self, inputs: Tensor,
                              labels: Tensor) -> List[Tensor]:
        """CLIP features of the prompt phase's crops (frozen CAM network),
        for the prompt loss and :class:`PromptFeatureBankHook`.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            labels (Tensor): (B, K) multi-hot labels.

        Returns:
            list[Tensor]: background crop features (P, D), and foreground
            crop features (P, D) when the prompt loss uses them; pairs in
            ``labels.nonzero()`` order.
        """
        cams, _ = self._forward(inputs)
        masks = normalize_cams(cams, labels, inputs.shape[-2:],
                               self.mask_eps['prompt'])
        fg, bg, class_idx = self._pair_images(inputs, masks, labels)
        if self.prompt_loss.fg_weight > 0:
            feats = self.clip.encode_image(torch.cat([bg, fg]))
            return [feats[:class_idx.numel()], feats[class_idx.numel():]]
        return [self.clip.encode_image(bg)]

    def frozen_crop_features_per_image(self, inputs: Tensor, labels: Tensor
                                       ) -> List[Tuple[tuple, tuple]]:
        """:meth:`frozen_crop_features` split by image.

        Returns:
            list[tuple]: per image, its present classes (tuple of class
            indices) and the tuple of its (n_classes, D) feature tensors.
        """
        classes = present_classes(labels)
        counts = [len(c) for c in classes]
        feats = self.frozen_crop_features(inputs, labels)
        return list(zip(classes, zip(*(f.split(counts) for f in feats))))

    def _cached_crop_features(self, inputs: Tensor, labels: Tensor,
                              data_samples: SampleList) -> List[Tensor]:
        """:meth:`frozen_crop_features` computed only for the views the
        cache misses; same return value."""
        cache = self.prompt_feature_cache
        keys = cache.view_keys(
            inputs, [s.metainfo.get('img_path') for s in data_samples])
        found = [cache.get(k, c)
                 for k, c in zip(keys, present_classes(labels))]
        missing = [i for i, feats in enumerate(found) if feats is None]
        if missing:
            computed = self.frozen_crop_features_per_image(
                inputs[missing], labels[missing])
            for i, (classes, feats) in zip(missing, computed):
                cache.put(keys[i], classes, feats)
                found[i] = feats
        return [torch.cat(parts) for parts in zip(*found)]

    def _bank_crop_features(self, labels: Tensor,
                            data_samples: SampleList) -> List[Tensor]:
        """The crop features of each sample's image and flip flag from
        ``prompt_feature_bank`` (:class:`PromptFeatureBankHook`); same
        return value as :meth:`frozen_crop_features`."""
        found = []
        for sample, classes in zip(data_samples, present_classes(labels)):
            key = (sample.metainfo.get('img_path'),
                   bool(sample.metainfo.get('flip', False)))
            banked_classes, feats = self.prompt_feature_bank.get(
                key, (None, None))
            if feats is None or banked_classes != classes:
                raise KeyError(
                    f'SemPLeS: the prompt feature bank has no view {key} '
                    'with these labels; PromptFeatureBankHook.dataloader '
                    'must list every training image with the training '
                    'labels (and flip=True if the pipeline flips).')
            found.append(feats)
        return [torch.cat(parts) for parts in zip(*found)]

    def _prompt_loss(self, inputs: Tensor, labels: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        """Contrastive prompt loss; only the prompts get gradients."""
        hit_rate = None
        if self.prompt_feature_bank is not None:
            crop_feats = self._bank_crop_features(labels, data_samples)
        elif self.prompt_feature_cache is None:
            crop_feats = self.frozen_crop_features(inputs, labels)
        else:
            hits = self.prompt_feature_cache.hits
            crop_feats = self._cached_crop_features(inputs, labels,
                                                    data_samples)
            hit_rate = (self.prompt_feature_cache.hits - hits) / len(labels)
        class_idx = labels.nonzero(as_tuple=True)[1]
        pair_prompts = self.clip.encode_prompts(
            self.prompt_learner())[class_idx]
        text = self._class_text_features()[class_idx]
        fg_prompt_sim = ((crop_feats[1] * pair_prompts).sum(-1)
                         if len(crop_feats) > 1 else None)
        losses = {
            self.prompt_loss.loss_name: self.prompt_loss(
                (crop_feats[0] * pair_prompts).sum(-1),
                (text * pair_prompts).sum(-1), fg_prompt_sim)
        }
        if hit_rate is not None:
            # logged, not optimised (mmengine sums only keys with 'loss')
            losses['prompt_cache_hit_rate'] = inputs.new_tensor(hit_rate)
        return losses

    def train_step(self, data, optim_wrapper) -> Dict[str, Tensor]:
        """One step of the current phase's optimizer.

        Args:
            data (dict): a batch from the dataloader.
            optim_wrapper (OptimWrapperDict | OptimWrapper): 'cam' and
                'prompt' wrappers, or one wrapper for CAM-only configs.
        """
        wrapper = self.active_optim_wrapper(optim_wrapper)
        with wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed_loss, log_vars = self.parse_losses(losses)
        wrapper.update_params(parsed_loss)
        return log_vars

    def active_optim_wrapper(self, optim_wrapper) -> OptimWrapper:
        """The wrapper the current phase steps."""
        if isinstance(optim_wrapper, OptimWrapperDict):
            name = self.optimizer_name()
            if name not in optim_wrapper:
                raise KeyError(
                    f"SemPLeS phase '{self.phase}' steps optim_wrapper.{name}"
                    f', which the config does not define (it has '
                    f'{list(optim_wrapper.keys())}).')
            return optim_wrapper[name]
        if self.phase == 'prompt':
            raise TypeError(
                'SemPLeS: the prompt phase needs optim_wrapper with a '
                "'prompt' group (ModuleGroupsOptimWrapperConstructor).")
        return optim_wrapper

    # ------------------------------------------------------------ predict
    def predict(self, inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Segmentation from CAMs, and the CAMs for PseudoMaskMetric.

        Fills ``pred_sem_seg`` (ids 0..K, background where no normalised CAM
        beats ``test_cfg.bg_threshold``), ``seg_logits`` (K + 1, H, W) and
        ``cam`` (K, H, W), normalised and restricted to the image labels
        (``test_cfg.use_gt_labels``, default True) or to the classes the
        classifier predicts (sigmoid > 0.5).
        """
        cams, logits = self._forward(inputs)
        if data_samples is None:
            raise ValueError('SemPLeS.predict needs data_samples (image '
                             'metadata) to restore the original size.')
        if self.test_cfg.get('use_gt_labels', True):
            labels = self._labels(data_samples).to(cams.dtype)
        else:
            labels = (logits.sigmoid() > 0.5).to(cams.dtype)
        norm = normalize_cams(cams, labels, inputs.shape[-2:],
                              self.mask_eps['cam'])
        results = self.postprocess_result(self._with_background(norm),
                                          data_samples)
        for sample in results:
            sample.set_data(
                dict(cam=PixelData(data=sample.seg_logits.data[1:])))
        return results
