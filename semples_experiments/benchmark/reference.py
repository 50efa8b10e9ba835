"""SemPLeS losses computed the way the authors' training code does it.

The yardstick of ``tools/benchmark.py``: the same math as
:meth:`SemPLeS.loss`, with the work of the authors' training steps left in
place. Read from their public code (commit 6054cd7; ``main1.py``,
``main2.py``, ``main3.py``, ``engine1.py``, ``engine2.py``, ``engine3.py``,
``clip_utils.py``, ``models123.py``, ``CLIP-main/clip/model.py``):

- CLIP is never frozen: the loop of ``main1/2/3.py`` that would set
  ``requires_grad=False`` on CLIP's weights is commented out, so every
  backward also computes gradients for all of CLIP's weights, which no
  optimizer steps and nothing zeroes (they accumulate). Here
  :func:`clip_weights_trainable` makes CLIP's weights require grad during
  each step and restores the flags afterwards.
- ``clip_forward`` (``clip_utils.py``) tokenises and encodes one class text
  per (image, class) pair, not one per class, with autograd, at every
  call. Stages 1 and 3 call it twice, for the foreground and for the
  background crops (``engine1.py``, ``engine3.py``), so the texts are
  encoded twice a step.
- Stage 3 (``engine3.py``) also calls ``clip_forward_global`` on the
  foreground crops: it encodes all K prompts with autograd (the prompt
  tensor is a parameter no optimizer steps), the foreground crops a third
  time, and the class texts once more, whose similarity the loss never
  uses.
- Stage 2 (``engine2.py``) runs the CAM network under ``no_grad``, then
  ``clip_forward_global`` on the background crops: K prompts, the crops and
  the per-pair class texts, all with autograd.
- The CAM network (WeakTr, ``models123.py``) runs its backbone with autograd
  on and detaches its outputs; where our model runs the backbone without
  autograd (``detach_backbone_in``), the reference runs it with autograd and
  detaches every tensor it returns, keeping the undetached outputs until
  the step ends (WeakTr's class-token logits keep that graph alive).
- The masked crops are built one (image, class) pair at a time in a Python
  loop (``engine1/2/3.py``).

With ``clip_weights_trainable(..., False)`` (``reference_frozen_clip`` in the
benchmark) the same program runs with CLIP's weights frozen, as the authors'
code would with that loop restored.

Two details differ: CLIP runs in the config's precision (theirs is fp16
under autocast; ``--amp`` gives both ways mixed precision), and the
prompts' template tokens ("a photo of", ".", the start, end and padding
tokens) are looked up in CLIP's token embedding without autograd
(:meth:`FrozenCLIP.encode_prompts`); in ``encode_btp`` they carry a
gradient to the embedding table, which the per-pair texts already give one
(an index-add, not a matrix multiplication).

Only the model's public pieces are used (``extract_feat``, ``cam_head``,
:func:`normalize_cams`, ``clip.to_clip_input`` / ``encode_image`` /
``encode_prompts`` / ``tokenize`` and the open_clip model's
``encode_image`` / ``encode_text``, the loss modules), so the loss values
equal :meth:`SemPLeS.loss`'s on the same batch and weights
(``tests/test_benchmark.py`` checks it) and a speed ratio compares equal
losses computed two ways.
"""
from contextlib import contextmanager
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from semples_mm.models.cams import normalize_cams


@contextmanager
def clip_weights_trainable(clip, trainable: bool = True):
    """Set ``requires_grad`` of every CLIP weight to ``trainable`` inside
    the block; the previous flags come back on exit, also on errors.

    Args:
        clip (FrozenCLIP | None): the model's CLIP (None: nothing to do).
        trainable (bool): True as in the authors' code.
    """
    params = list(clip.parameters()) if clip is not None else []
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(trainable)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _detached(feats):
    """Every tensor of a backbone's output detached, in the same structure
    (a tensor, tuple, list or NamedTuple such as ``WeakTrFeatures``)."""
    if isinstance(feats, Tensor):
        return feats.detach()
    if isinstance(feats, tuple) and hasattr(feats, '_fields'):
        return type(feats)(*(_detached(f) for f in feats))
    if isinstance(feats, (tuple, list)):
        return type(feats)(_detached(f) for f in feats)
    return feats


def _cam_network(model, inputs: Tensor, phase: str,
                 kept: List) -> Tuple[Tensor, Tensor]:
    """Raw CAMs (B, K, h, w) and logits (B, K).

    The prompt phase runs it under ``no_grad`` (``engine2.py``). Where our
    model detaches the backbone, the backbone runs with autograd and its
    outputs are detached, as WeakTr's forward does; the undetached outputs
    go to ``kept`` so that their graph lives as long as in the authors'
    step.
    """
    if phase == 'prompt':
        with torch.no_grad():
            return model.cam_head(model.extract_feat(inputs))
    feats = model.extract_feat(inputs)
    if phase in model.detach_backbone_in:
        kept.append(feats)
        feats = _detached(feats)
    return model.cam_head(feats)


def _masked_pairs_in_a_loop(inputs: Tensor, masks: Tensor, labels: Tensor
                            ) -> Tuple[Tensor, Tensor, Tensor]:
    """Foreground and background crops, one (image, class) pair at a time.

    Args:
        inputs (Tensor): (B, 3, H, W) normalised images.
        masks (Tensor): (B, K, H, W) normalised CAMs.
        labels (Tensor): (B, K) multi-hot labels.

    Returns:
        tuple: fg (P, 3, H, W), bg (P, 3, H, W) and the class of each pair
        (P,), pairs ordered by image, then class (as ``labels.nonzero()``).
    """
    fg_crops: List[Tensor] = []
    bg_crops: List[Tensor] = []
    pair_classes: List[int] = []
    for i in range(inputs.shape[0]):
        for k in labels[i].nonzero().flatten().tolist():
            mask = masks[i, k].unsqueeze(0)  # (1, H, W)
            fg_crops.append((mask * inputs[i]).unsqueeze(0))
            bg_crops.append(((1 - mask) * inputs[i]).unsqueeze(0))
            pair_classes.append(k)
    classes = torch.tensor(pair_classes, dtype=torch.long,
                           device=inputs.device)
    if not pair_classes:
        # No present pair: empty crops that stay in the graph.
        empty = masks[:0, :1] * inputs[:0]
        return empty, empty, classes
    return torch.cat(fg_crops), torch.cat(bg_crops), classes


def _image_features(clip, images: Tensor) -> Tensor:
    """(P, D) CLIP features of crops, all P in one pass, with autograd: a
    graph is built whenever the crops or CLIP's weights require grad (our
    ``FrozenCLIP.encode_image`` skips it when only the weights would)."""
    if images.shape[0] == 0:
        return clip.encode_image(images)  # empty, still in the graph
    return clip.model.encode_image(clip.to_clip_input(images),
                                   normalize=True).float()


def _pair_text_features(model, classes: Tensor) -> Tensor:
    """(P, D) features of one class text per pair, tokenised and encoded
    afresh with autograd (``to_text`` and ``clip_forward``)."""
    clip = model.clip
    device = clip.input_converter.scale.device
    if classes.numel() == 0:
        return torch.zeros((0, clip.embed_dim), device=device)
    texts = [model.text_template.format(model.class_names[k])
             for k in classes.tolist()]
    tokens = clip.tokenize(texts).to(device)
    return clip.model.encode_text(tokens, normalize=True).float()


def _authors_losses(model, inputs: Tensor, labels: Tensor
                    ) -> Tuple[Dict[str, Tensor], List]:
    """The losses, and the tensors the authors' step keeps alive until it
    ends without using them in the loss."""
    phase = model.phase or model.schedule.names[0]
    labels = labels.to(inputs.dtype)
    losses = {}
    kept: List = []
    cams, logits = _cam_network(model, inputs, phase, kept)
    if model.cls_loss_weight[phase] > 0:
        cls = model.cam_head.loss_by_cls(logits, labels)
        losses.update({k: v * model.cls_loss_weight[phase]
                       for k, v in cls.items()})
    if phase == 'cam':
        return losses, kept

    masks = normalize_cams(cams, labels, inputs.shape[-2:],
                           model.mask_eps[phase], model.mask_align_corners)
    fg, bg, classes = _masked_pairs_in_a_loop(inputs, masks, labels)
    clip = model.clip
    if phase == 'prompt':  # engine2.py: clip_forward_global(bg)
        prompts = clip.encode_prompts(model.prompt_learner())[classes]
        bg_feat = _image_features(clip, bg)
        text = _pair_text_features(model, classes)
        # Not in the authors' final loss (weight 0 by default); when on, the
        # foreground crops are encoded the same way.
        use_fg = model.prompt_loss.fg_weight > 0
        fg_feat = _image_features(clip, fg) if use_fg else None
        losses[model.prompt_loss.loss_name] = model.prompt_loss(
            (bg_feat * prompts).sum(-1), (text * prompts).sum(-1),
            (fg_feat * prompts).sum(-1) if use_fg else None)
        return losses, kept

    # engine1.py / engine3.py: clip_forward(fg), then clip_forward(bg), each
    # encoding the per-pair texts.
    fg_feat = _image_features(clip, fg)
    fg_text = _pair_text_features(model, classes)
    bg_feat = _image_features(clip, bg)
    bg_text = _pair_text_features(model, classes)
    losses[model.match_loss.loss_name] = model.match_loss(
        (fg_feat * fg_text).sum(-1), (bg_feat * bg_text).sum(-1))
    if phase == 'refine':
        # engine3.py: clip_forward_global(fg) encodes the prompts (with
        # autograd, though nothing steps them), the foreground crops a third
        # time and the texts a third time (their similarity goes unused).
        prompts = clip.encode_prompts(model.prompt_learner())[classes]
        fg_feat_again = _image_features(clip, fg)
        kept.append(_pair_text_features(model, classes))
        losses[model.refine_loss.loss_name] = model.refine_loss(
            (fg_feat_again * prompts).sum(-1))
    return losses, kept


def reference_loss(model, inputs: Tensor, labels: Tensor) -> Dict[str, Tensor]:
    """Losses of ``model``'s current phase, computed the authors' way.

    CLIP's weights take part in the graph only if they require grad: wrap
    the call in :func:`clip_weights_trainable` for the authors' unfrozen
    CLIP (:func:`reference_train_step` does).

    Args:
        model (SemPLeS): the segmentor (its ``phase`` selects the loss;
            None means its first phase, as in :meth:`SemPLeS.loss`).
        inputs (Tensor): (B, 3, H, W) images normalised by the data
            preprocessor.
        labels (Tensor): (B, K) multi-hot image labels.

    Returns:
        dict[str, Tensor]: the same keys and values as
        ``model.loss(inputs, data_samples)``.
    """
    return _authors_losses(model, inputs, labels)[0]


def reference_train_step(model, data: dict, optim_wrapper,
                         frozen_clip: bool = False) -> Dict[str, Tensor]:
    """:meth:`SemPLeS.train_step` with the authors' losses.

    CLIP's weights require grad during the step (unless ``frozen_clip``),
    so its backward computes their gradients; those stay on the weights and
    accumulate from step to step, as in the authors' code, where no
    optimizer holds them. The ``requires_grad`` flags are restored after
    the step.

    Args:
        model (SemPLeS): the segmentor.
        data (dict): ``inputs`` (list of (3, H, W) uint8 images) and
            ``data_samples`` (SegDataSample with ``gt_class_labels``).
        optim_wrapper (OptimWrapperDict | OptimWrapper): as for
            ``model.train_step``; the phase's wrapper is stepped.
        frozen_clip (bool): freeze CLIP's weights (``reference_frozen_clip``:
            the authors' code with its freezing loop restored).

    Returns:
        dict[str, Tensor]: the logged loss values.
    """
    wrapper = model.schedule.optim_wrapper(
        model.phase or model.schedule.names[0], optim_wrapper)
    with clip_weights_trainable(model.clip, not frozen_clip):
        with wrapper.optim_context(model):
            data = model.data_preprocessor(data, True)
            labels = torch.stack(
                [sample.gt_class_labels for sample in data['data_samples']])
            losses, kept = _authors_losses(model, data['inputs'], labels)
        parsed_loss, log_vars = model.parse_losses(losses)
        wrapper.update_params(parsed_loss)
    del kept  # alive until here, as in the authors' step
    return log_vars
