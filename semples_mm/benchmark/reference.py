"""SemPLeS losses computed the way the authors' training code does it.

The yardstick of ``tools/benchmark.py``: the same math as
:meth:`SemPLeS.loss`, with the authors' per-step work left in place:

- the masked crops M_k X and (1 - M_k) X are built one (image, class) pair
  at a time in a Python loop over the images and their present classes;
- the class texts are tokenised and encoded by CLIP's text tower at every
  step (no cache);
- the prompt phase runs the frozen CAM network and CLIP's image tower on the
  crops at every step (as :class:`SemPLeS` does with its default
  ``RecomputeCropFeatures``).

Only the model's public pieces are used (``extract_feat``, ``cam_head``,
:func:`normalize_cams`, ``clip.encode_image`` / ``encode_prompts`` /
``tokenize`` / ``model.encode_text``, the loss modules), so the loss values
equal :meth:`SemPLeS.loss`'s on the same batch and weights
(``tests/test_benchmark.py`` checks it) and a speed ratio compares equal
work done two ways.
"""
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..models.cams import normalize_cams


def _cam_network(model, inputs: Tensor, phase: str) -> Tuple[Tensor, Tensor]:
    """Raw CAMs (B, K, h, w) and logits (B, K); frozen where the phase says."""
    if phase == 'prompt':
        with torch.no_grad():
            return model.cam_head(model.extract_feat(inputs))
    if phase in model.detach_backbone_in:
        with torch.no_grad():
            feats = model.extract_feat(inputs)
        return model.cam_head(feats)
    return model.cam_head(model.extract_feat(inputs))


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


def _class_text_features(model) -> Tensor:
    """(K, D) class-text features, tokenised and encoded afresh."""
    texts = [model.text_template.format(name) for name in model.class_names]
    clip = model.clip
    tokens = clip.tokenize(texts).to(clip.prompt_tokens.device)
    with torch.no_grad():
        return clip.model.encode_text(tokens, normalize=True).float()


def reference_loss(model, inputs: Tensor, labels: Tensor) -> Dict[str, Tensor]:
    """Losses of ``model``'s current phase, computed the authors' way.

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
    phase = model.phase or model.schedule.names[0]
    labels = labels.to(inputs.dtype)
    losses = {}
    cams, logits = _cam_network(model, inputs, phase)
    if model.cls_loss_weight[phase] > 0:
        cls = model.cam_head.loss_by_cls(logits, labels)
        losses.update({k: v * model.cls_loss_weight[phase]
                       for k, v in cls.items()})
    if phase == 'cam':
        return losses

    masks = normalize_cams(cams, labels, inputs.shape[-2:],
                           model.mask_eps[phase], model.mask_align_corners)
    fg, bg, classes = _masked_pairs_in_a_loop(inputs, masks, labels)
    text = _class_text_features(model)[classes]  # (P, D)
    clip = model.clip
    if phase == 'prompt':
        prompts = clip.encode_prompts(model.prompt_learner())[classes]
        use_fg = model.prompt_loss.fg_weight > 0
        with torch.no_grad():
            bg_feat = clip.encode_image(bg)
            fg_feat = clip.encode_image(fg) if use_fg else None
        losses[model.prompt_loss.loss_name] = model.prompt_loss(
            (bg_feat * prompts).sum(-1), (text * prompts).sum(-1),
            (fg_feat * prompts).sum(-1) if use_fg else None)
        return losses

    fg_feat = clip.encode_image(fg)
    bg_feat = clip.encode_image(bg)
    losses[model.match_loss.loss_name] = model.match_loss(
        (fg_feat * text).sum(-1), (bg_feat * text).sum(-1))
    if phase == 'refine':
        with torch.no_grad():  # the prompts are frozen in stage 3
            prompts = clip.encode_prompts(model.prompt_learner())[classes]
        losses[model.refine_loss.loss_name] = model.refine_loss(
            (fg_feat * prompts).sum(-1))
    return losses


def reference_train_step(model, data: dict,
                         optim_wrapper) -> Dict[str, Tensor]:
    """:meth:`SemPLeS.train_step` with :func:`reference_loss` as the loss.

    Args:
        model (SemPLeS): the segmentor.
        data (dict): ``inputs`` (list of (3, H, W) uint8 images) and
            ``data_samples`` (SegDataSample with ``gt_class_labels``).
        optim_wrapper (OptimWrapperDict | OptimWrapper): as for
            ``model.train_step``; the phase's wrapper is stepped.

    Returns:
        dict[str, Tensor]: the logged loss values.
    """
    wrapper = model.active_optim_wrapper(optim_wrapper)
    with wrapper.optim_context(model):
        data = model.data_preprocessor(data, True)
        labels = torch.stack(
            [sample.gt_class_labels for sample in data['data_samples']])
        losses = reference_loss(model, data['inputs'], labels)
    parsed_loss, log_vars = model.parse_losses(losses)
    wrapper.update_params(parsed_loss)
    return log_vars
