"""Pretrain the small CLIP of the synthetic world ('semples-synthetic-tiny').

SemPLeS needs a CLIP that already knows the world's objects and contexts; no
real CLIP can be downloaded on the development machines, so this tool trains
a 5M-parameter open_clip model contrastively (symmetric InfoNCE, learnable
logit scale) on image-caption pairs rendered on the fly:

- an object on its own or another context: 'a photo of a boat on water.'
- an object alone on the grey (mean-colour) ground: 'a photo of a boat.'
- a context alone: 'a photo of water.'
- an object on a context with the object region at the mean colour, the
  background crop (1 - M) * X that SemPLeS feeds CLIP: 'a photo of water.'
- the same with the background at the mean colour, the foreground crop
  M * X: 'a photo of a boat.'

The masks of the last two are dilated and blurred at random, as CAMs are
soft and larger than the object. Images go through the same pipeline as in
SemPLeS: ImageNet-normalised, masked there (0 is the mean colour), then
converted by ``FrozenCLIP.to_clip_input`` to CLIP's normalisation.

Then it saves an fp16 .safetensors file that
``FrozenCLIP(model_name='semples-synthetic-tiny', pretrained=FILE)`` loads,
a json of the settings and results beside it, and prints zero-shot accuracy
on held-out images, read through FrozenCLIP loading the saved file.

Example::

    python tools/misc/pretrain_synthetic_clip.py \
        --out semples_mm/assets/synthetic_clip.safetensors
"""
import argparse
import json
import math
import os
import os.path as osp
import time

import cv2
import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from semples_mm.datasets.synthetic import (SYNTHETIC_CLASSES,
                                           SYNTHETIC_CONTEXTS,
                                           SyntheticRenderer, caption_for)
from semples_mm.models.clip import SYNTHETIC_CLIP_MODEL_NAME, FrozenCLIP
from semples_mm.models.clip.frozen_clip import IMAGENET_MEAN, IMAGENET_STD

# Relative frequency of each kind of training pair.
KIND_WEIGHTS = {
    'object_on_own_context': 3,
    'object_on_other_context': 2,
    'object_only': 2,
    'context_only': 2,
    'background_crop': 3,
    'foreground_crop': 2,
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out', default=osp.join(osp.dirname(__file__), '..', '..',
                                  'semples_mm', 'assets',
                                  'synthetic_clip.safetensors'),
        help='output .safetensors file (a .json with the same stem is '
        'written beside it)')
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--weight-decay', type=float, default=0.05)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--eval-images', type=int, default=200,
                        help='held-out images per evaluation kind')
    return parser.parse_args()


def soft_mask(rng, mask: np.ndarray) -> np.ndarray:
    """A CAM-like soft version (H, W) float in [0, 1] of a binary mask."""
    mask = (mask > 0).astype(np.float32)
    radius = int(rng.integers(0, 4))
    if radius:
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        mask = cv2.dilate(mask, kernel)
    sigma = float(rng.uniform(0.0, 2.0))
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return np.clip(mask, 0.0, 1.0)


def render_pair(rng, renderer, kind):
    """One training pair: image uint8 (H, W, 3), keep-mask (H, W), caption.

    The keep-mask multiplies the ImageNet-normalised image (1 keeps a pixel,
    0 turns it into the mean colour).
    """
    num_classes = len(SYNTHETIC_CLASSES)
    size = renderer.image_size
    keep = np.ones((size, size), np.float32)
    if kind == 'context_only':
        context = int(rng.integers(num_classes))
        image, _ = renderer.render(rng, [], context)
        return image, keep, caption_for([], context)
    count = 2 if rng.uniform() < 0.25 else 1
    objects = [int(i) for i in rng.choice(num_classes, count, replace=False)]
    if kind == 'object_only':
        image, _ = renderer.render(rng, objects, None, grey_background=True)
        return image, keep, caption_for(objects, None)
    if kind == 'object_on_other_context':
        others = [c for c in range(num_classes) if c not in objects]
        context = int(others[int(rng.integers(len(others)))])
    else:
        context = objects[int(rng.integers(count))]
    image, mask = renderer.render(rng, objects, context)
    if kind == 'background_crop':
        return image, 1.0 - soft_mask(rng, mask), caption_for([], context)
    if kind == 'foreground_crop':
        return image, soft_mask(rng, mask), caption_for(objects, None)
    return image, keep, caption_for(objects, context)


def to_clip_batch(frozen_clip, images, keeps):
    """uint8 (N, H, W, 3) + keep masks (N, H, W) -> CLIP input (N, 3, h, w)."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    x = x * torch.from_numpy(np.stack(keeps))[:, None]
    return frozen_clip.to_clip_input(x)


def sample_batch(rng, renderer, frozen_clip, batch_size):
    kinds = list(KIND_WEIGHTS)
    probs = np.array([KIND_WEIGHTS[k] for k in kinds], np.float64)
    probs /= probs.sum()
    images, keeps, captions = [], [], []
    for kind in rng.choice(kinds, batch_size, p=probs):
        image, keep, caption = render_pair(rng, renderer, str(kind))
        images.append(image)
        keeps.append(keep)
        captions.append(caption)
    return to_clip_batch(frozen_clip, images, keeps), captions


def contrastive_loss(image_features, text_features, caption_ids, logit_scale):
    """Symmetric InfoNCE where several images may share one caption.

    Args:
        image_features: (N, D) normalised.
        text_features: (U, D) normalised, one per distinct caption.
        caption_ids: (N,) index of each image's caption in 0..U-1.
        logit_scale: scalar, log of the temperature's inverse.
    """
    logits = logit_scale.exp() * image_features @ text_features.t()  # (N, U)
    image_to_text = F.cross_entropy(logits, caption_ids)
    # Each caption is the anchor for all its images: mean log-likelihood of
    # its positives among all images of the batch.
    log_prob = logits.t().log_softmax(dim=1)  # (U, N)
    positives = F.one_hot(caption_ids, logits.shape[1]).t().float()
    text_to_image = -((log_prob * positives).sum(1) /
                      positives.sum(1)).mean()
    return (image_to_text + text_to_image) / 2


def train(args, frozen_clip):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([args.seed, 0])
    renderer = SyntheticRenderer(frozen_clip.image_size[0])
    model = open_clip.create_model(SYNTHETIC_CLIP_MODEL_NAME)
    model.train()
    tokenizer = open_clip.get_tokenizer(SYNTHETIC_CLIP_MODEL_NAME)
    decay = [p for n, p in model.named_parameters()
             if p.ndim >= 2 and 'embedding' not in n]
    no_decay = [p for n, p in model.named_parameters()
                if not (p.ndim >= 2 and 'embedding' not in n)]
    optimizer = torch.optim.AdamW(
        [dict(params=decay, weight_decay=args.weight_decay),
         dict(params=no_decay, weight_decay=0.0)], lr=args.lr)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * progress))

    bar = tqdm(range(args.steps), desc='pretrain synthetic CLIP')
    for step in bar:
        for group in optimizer.param_groups:
            group['lr'] = lr_at(step)
        images, captions = sample_batch(rng, renderer, frozen_clip,
                                        args.batch_size)
        distinct = sorted(set(captions))
        caption_ids = torch.tensor([distinct.index(c) for c in captions])
        image_features = model.encode_image(images, normalize=True)
        text_features = model.encode_text(tokenizer(distinct), normalize=True)
        loss = contrastive_loss(image_features, text_features, caption_ids,
                                model.logit_scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        bar.set_postfix(loss=f'{loss.item():.3f}',
                        scale=f'{model.logit_scale.exp().item():.1f}')
    return model


def save(model, path, metadata):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    state = {k: v.detach().half().contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, path, metadata={k: str(v) for k, v in metadata.items()})


@torch.no_grad()
def evaluate(frozen_clip, num_images, seed):
    """Zero-shot accuracy (%) of a FrozenCLIP on held-out rendered images.

    Objects are classified among 'a photo of a {class}.', contexts among
    'a photo of {context}.', separately.
    """
    num_classes = len(SYNTHETIC_CLASSES)
    rng = np.random.default_rng([seed, 1])  # another stream than training
    renderer = SyntheticRenderer(frozen_clip.image_size[0])
    class_text = frozen_clip.encode_text(
        [caption_for([c], None) for c in range(num_classes)])
    context_text = frozen_clip.encode_text(
        [caption_for([], c) for c in range(num_classes)])
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def features(images, keeps):
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
        x = (x - mean) / std * torch.from_numpy(np.stack(keeps))[:, None]
        return frozen_clip.encode_image(x)  # the SemPLeS-time pipeline

    def accuracy(feats, text, labels):
        predicted = (feats @ text.t()).argmax(1)
        return round(100.0 * (predicted == torch.tensor(labels)).float()
                     .mean().item(), 1)

    results = {}
    samples = {kind: ([], [], [], []) for kind in (
        'object_only', 'context_only', 'object_on_own_context',
        'object_on_other_context', 'background_crop', 'foreground_crop')}
    full = np.ones((renderer.image_size, ) * 2, np.float32)
    for index in range(num_images):
        cls = index % num_classes
        ctx = int(rng.integers(num_classes))
        other = int((cls + 1 + rng.integers(num_classes - 1)) % num_classes)
        image, _ = renderer.render(rng, [cls], None, grey_background=True)
        samples['object_only'][0].append(image)
        image, _ = renderer.render(rng, [], ctx)
        samples['context_only'][0].append(image)
        for kind, context in (('object_on_own_context', cls),
                              ('object_on_other_context', other)):
            image, _ = renderer.render(rng, [cls], context)
            samples[kind][0].append(image)
            samples[kind][2].append(cls)
            samples[kind][3].append(context)
        image, mask = renderer.render(rng, [cls], other)
        hard = (mask > 0).astype(np.float32)
        samples['background_crop'][0].append(image)
        samples['background_crop'][1].append(1.0 - hard)
        samples['foreground_crop'][0].append(image)
        samples['foreground_crop'][1].append(hard)
        samples['object_only'][2].append(cls)
        samples['context_only'][3].append(ctx)
        samples['background_crop'][3].append(other)
        samples['foreground_crop'][2].append(cls)
    for kind, (images, keeps, objects, contexts) in samples.items():
        feats = features(images, keeps or [full] * len(images))
        if objects:
            results[f'{kind}/object'] = accuracy(feats, class_text, objects)
        if contexts:
            results[f'{kind}/context'] = accuracy(feats, context_text,
                                                  contexts)
    return results


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    out = osp.abspath(args.out)
    # Only its input conversion is used while training: the same code that
    # converts ImageNet-normalised crops for CLIP at SemPLeS time.
    converter = FrozenCLIP(model_name=SYNTHETIC_CLIP_MODEL_NAME)
    start = time.time()
    model = train(args, converter)
    train_seconds = time.time() - start
    settings = dict(model_name=SYNTHETIC_CLIP_MODEL_NAME, seed=args.seed,
                    steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                    weight_decay=args.weight_decay, warmup=args.warmup,
                    threads=args.threads, kind_weights=KIND_WEIGHTS,
                    train_seconds=round(train_seconds, 1))
    save(model, out, dict(quick_gelu='false',
                          model_name=SYNTHETIC_CLIP_MODEL_NAME,
                          seed=args.seed, steps=args.steps))
    clip = FrozenCLIP(model_name=SYNTHETIC_CLIP_MODEL_NAME, pretrained=out)
    results = evaluate(clip, args.eval_images, args.seed)
    settings['zero_shot_accuracy'] = results
    settings['eval_images_per_kind'] = args.eval_images
    with open(osp.splitext(out)[0] + '.json', 'w') as f:
        json.dump(settings, f, indent=2)
    print(f'trained {args.steps} steps in {train_seconds:.0f} s; saved {out} '
          f'({osp.getsize(out) / 2**20:.1f} MiB)')
    print('zero-shot accuracy (%) on held-out images:')
    for key, value in results.items():
        print(f'  {key:34s} {value:5.1f}')


if __name__ == '__main__':
    main()
