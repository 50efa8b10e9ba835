"""Pretrain the small CLIP of the synthetic world ('semples-synthetic-tiny').

SemPLeS needs a CLIP that already knows the world's objects and contexts; no
real CLIP can be downloaded on the development machines, so this tool trains
a 5M-parameter open_clip model contrastively (symmetric InfoNCE, learnable
logit scale) on image-caption pairs rendered on the fly. Which pairs, and how
they are captioned, is the caption distribution ``--captions``, a named
setting fixed before any SemPLeS run and written into the settings json.

``--captions grounded`` (default; the shipped ``synthetic_clip``):

- an object on its own or another context: 'a photo of a boat on water.'
- an object alone on the grey (mean-colour) ground: 'a photo of a boat.'
- a context alone: 'a photo of water.'
- an object on a context with the object region at the mean colour, the
  background crop (1 - M) * X that SemPLeS feeds CLIP: 'a photo of water.'
- the same with the background at the mean colour, the foreground crop
  M * X: 'a photo of a boat.'

The masks of the last two are dilated and blurred at random, as CAMs are
soft and larger than the object. Such a CLIP already knows that 'a photo of
a boat.' excludes water, which leaves SemPLeS's learnt background prompts
little to do.

``--captions web`` (the shipped ``synthetic_webclip``), modelled on web
alt-text, which names the object and rarely its usual background:

- an object on its own context (most pairs), captioned with the objects
  only, 'a photo of a boat.'; the context is named ('a photo of a boat on
  water.') in a small fraction of them;
- a context alone: 'a photo of water.';
- an object on another context, rarer, captioned like the above;
- an object alone on the grey ground, rare: 'a photo of a boat.';
- no masked crops.

Its 'a photo of a boat.' ends up closer to pictures of water than to those
of the other contexts, as real CLIP's does; the tool measures that bias
(``measure_bias``), and synthetic_webclip.json records it.

Images go through the same pipeline as in SemPLeS: ImageNet-normalised,
masked there (0 is the mean colour), then converted by
``ClipInputConverter`` (what ``FrozenCLIP`` converts them with) to CLIP's
normalisation. Captions are built by
``caption_for``, whose objects-only caption is the SemPLeS configs' class
text (``text_template='a photo of a {}.'``).

Then it saves an fp16 .safetensors file that
``FrozenCLIP(model_name='semples-synthetic-tiny', pretrained=FILE)`` loads,
a json of the settings and results beside it, and prints zero-shot accuracy
and the context bias on held-out images, read through FrozenCLIP loading the
saved file. ``--compare FILE`` measures another CLIP file the same way and
stores it in the json; ``--measure FILE`` only measures, without training.

Examples::

    python tools/misc/pretrain_synthetic_clip.py \
        --out semples_mm/assets/synthetic_clip.safetensors
    python tools/misc/pretrain_synthetic_clip.py --captions web \
        --steps 500 --out semples_mm/assets/synthetic_webclip.safetensors \
        --compare semples_mm/assets/synthetic_clip.safetensors
    python tools/misc/pretrain_synthetic_clip.py \
        --measure semples_mm/assets/synthetic_clip.safetensors
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
from semples_mm.models.clip import (SYNTHETIC_CLIP_MODEL_NAME,
                                    ClipInputConverter, FrozenCLIP)
from semples_mm.models.clip.input_conversion import (IMAGENET_MEAN,
                                                     IMAGENET_STD)

# The caption distributions ``--captions`` chooses from. ``kind_weights``:
# relative frequency of each kind of training pair; ``context_named``: the
# probability that the caption of an object on a context names the context
# ('a photo of a boat on water.' rather than 'a photo of a boat.').
CAPTION_DISTRIBUTIONS = {
    # Captions that always name the context, object-only images on grey and
    # the masked crops SemPLeS feeds CLIP (the shipped synthetic_clip).
    'grounded': dict(
        kind_weights={
            'object_on_own_context': 3,
            'object_on_other_context': 2,
            'object_only': 2,
            'context_only': 2,
            'background_crop': 3,
            'foreground_crop': 2,
        },
        context_named=1.0),
    # Web alt-text: the object named, its usual background rarely. Fixed
    # before any SemPLeS run from what the issue describes, not tuned on
    # SemPLeS results: 60% objects on their own context, 20% contexts alone
    # (real CLIP knows 'water'), 15% objects on another context (rarer than
    # on their own, as on the web), 5% objects on the grey ground (the rare
    # product shot on a plain ground: rare, not absent, so the grey of
    # SemPLeS's masked regions is not wholly foreign), no masked crops; the
    # context named in 10% of object-on-context captions.
    'web': dict(
        kind_weights={
            'object_on_own_context': 12,
            'object_on_other_context': 3,
            'object_only': 1,
            'context_only': 4,
        },
        context_named=0.1),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--captions', default='grounded', choices=list(CAPTION_DISTRIBUTIONS),
        help='caption distribution of the training pairs (see the module '
        'docstring and CAPTION_DISTRIBUTIONS)')
    parser.add_argument(
        '--out', default=None,
        help='output .safetensors file (a .json with the same stem is '
        'written beside it); default semples_mm/assets/synthetic_clip'
        '.safetensors for --captions grounded, synthetic_<captions>clip'
        '.safetensors otherwise')
    parser.add_argument(
        '--compare', default=None,
        help='another CLIP file (semples-synthetic-tiny) measured on the '
        'same held-out images; stored in the json under "comparison"')
    parser.add_argument(
        '--measure', default=None,
        help='only measure this CLIP file (and --compare) and print it; no '
        'training')
    parser.add_argument(
        '--write', action='store_true',
        help='with --measure: replace the measurements in the json beside '
        'the measured file, keeping its training settings')
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--weight-decay', type=float, default=0.05)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--eval-images', type=int, default=200,
                        help='held-out images per evaluation kind')
    parser.add_argument('--bias-images', type=int, default=40,
                        help='held-out images per class and kind for the '
                        'context bias')
    return parser.parse_args()


def default_out(captions: str) -> str:
    name = ('synthetic_clip' if captions == 'grounded' else
            f'synthetic_{captions}clip')
    return osp.join(osp.dirname(__file__), '..', '..', 'semples_mm',
                    'assets', f'{name}.safetensors')


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


def render_pair(rng, renderer, kind, context_named=1.0):
    """One training pair: image uint8 (H, W, 3), keep-mask (H, W), caption.

    The keep-mask multiplies the ImageNet-normalised image (1 keeps a pixel,
    0 turns it into the mean colour). ``context_named`` is the probability
    that an object-on-context caption names the context.
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
    # Drawn only when it can fail, so 'grounded' consumes the random stream
    # exactly as before this setting existed (its shipped file rebuilds).
    if context_named < 1.0 and rng.uniform() >= context_named:
        return image, keep, caption_for(objects, None)
    return image, keep, caption_for(objects, context)


def to_clip_batch(converter, images, keeps):
    """uint8 (N, H, W, 3) + keep masks (N, H, W) -> CLIP input (N, 3, h, w)."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    x = x * torch.from_numpy(np.stack(keeps))[:, None]
    return converter(x)


def sample_batch(rng, renderer, converter, batch_size, distribution):
    """A batch of ``batch_size`` pairs drawn from a caption distribution
    (an entry of CAPTION_DISTRIBUTIONS)."""
    weights = distribution['kind_weights']
    kinds = list(weights)
    probs = np.array([weights[k] for k in kinds], np.float64)
    probs /= probs.sum()
    images, keeps, captions = [], [], []
    for kind in rng.choice(kinds, batch_size, p=probs):
        image, keep, caption = render_pair(rng, renderer, str(kind),
                                           distribution['context_named'])
        images.append(image)
        keeps.append(keep)
        captions.append(caption)
    return to_clip_batch(converter, images, keeps), captions


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


def train(args):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([args.seed, 0])
    model = open_clip.create_model(SYNTHETIC_CLIP_MODEL_NAME)
    model.train()
    converter = ClipInputConverter.for_model(model)
    renderer = SyntheticRenderer(converter.image_size[0])
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
        images, captions = sample_batch(
            rng, renderer, converter, args.batch_size,
            CAPTION_DISTRIBUTIONS[args.captions])
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


def image_features(frozen_clip, images, keeps=None):
    """FrozenCLIP features (N, D) of uint8 images (N, H, W, 3), optionally
    masked by keep masks (N, H, W), through the SemPLeS-time pipeline:
    ImageNet-normalised, masked there, then ``encode_image``."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    if keeps is not None:
        x = x * torch.from_numpy(np.stack(keeps))[:, None]
    return frozen_clip.encode_image(x)


@torch.no_grad()
def measure_bias(frozen_clip, num_images, seed):
    """How close each class text is to its class's context, as one would
    check a real CLIP (is 'a photo of a boat.' close to pictures of water?).

    Held-out images (random stream ``[seed, 2]``; training draws ``[seed,
    0]``, :func:`evaluate` ``[seed, 1]``): for every class k,
    ``num_images`` each of its context alone, the object alone on the grey
    ground, the object on its own context and the object on another
    context. Cosines are means over images of the cosine between the class
    text ``caption_for([k], None)`` ('a photo of a boat.', the SemPLeS class
    text) and each image's feature.

    Returns:
        dict: ``per_class[name]`` with ``own_context`` (context-only images
        of k's context), ``other_contexts`` (mean over the other four
        contexts' context-only images), ``max_other_context``,
        ``margin_mean`` (own_context - other_contexts), ``margin_max``
        (own_context - max_other_context), ``own_context_rank`` (1: the
        own context is the nearest of the five), ``object_only``,
        ``object_on_own_context``, ``object_on_other_context``;
        ``text_to_context_only``, the full 5 x 5 matrix (row: class text,
        column: context); and ``mean`` of each per-class entry over classes.
    """
    num_classes = len(SYNTHETIC_CLASSES)
    rng = np.random.default_rng([seed, 2])
    renderer = SyntheticRenderer(frozen_clip.image_size[0])
    class_text = frozen_clip.encode_text(
        [caption_for([c], None) for c in range(num_classes)])

    def mean_cosines(images):
        return (image_features(frozen_clip, images) @ class_text.t()).mean(0)

    to_context = torch.stack([
        mean_cosines([renderer.render(rng, [], c)[0]
                      for _ in range(num_images)])
        for c in range(num_classes)], dim=1)  # (class text, context)
    per_class = {}
    for k, name in enumerate(SYNTHETIC_CLASSES):
        others = [c for c in range(num_classes) if c != k]
        grey = [renderer.render(rng, [k], None, grey_background=True)[0]
                for _ in range(num_images)]
        on_own = [renderer.render(rng, [k], k)[0]
                  for _ in range(num_images)]
        on_other = [renderer.render(rng, [k], others[i % len(others)])[0]
                    for i in range(num_images)]
        row = to_context[k]
        own, other_mean = row[k].item(), row[others].mean().item()
        max_other = row[others].max().item()
        per_class[name] = {
            key: round(float(value), 4) for key, value in (
                ('own_context', own),
                ('other_contexts', other_mean),
                ('max_other_context', max_other),
                ('margin_mean', own - other_mean),
                ('margin_max', own - max_other),
                ('own_context_rank', 1 + (row > row[k]).sum().item()),
                ('object_only', mean_cosines(grey)[k].item()),
                ('object_on_own_context', mean_cosines(on_own)[k].item()),
                ('object_on_other_context',
                 mean_cosines(on_other)[k].item()))}
    keys = list(next(iter(per_class.values())))
    return dict(
        per_class=per_class,
        mean={key: round(float(np.mean([v[key] for v in per_class.values()])),
                         4) for key in keys},
        text_to_context_only={
            name: {ctx: round(to_context[k, c].item(), 4)
                   for c, ctx in enumerate(SYNTHETIC_CONTEXTS)}
            for k, name in enumerate(SYNTHETIC_CLASSES)},
        images_per_class_and_kind=num_images)


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
        feats = image_features(frozen_clip, images,
                               keeps or [full] * len(images))
        if objects:
            results[f'{kind}/object'] = accuracy(feats, class_text, objects)
        if contexts:
            results[f'{kind}/context'] = accuracy(feats, context_text,
                                                  contexts)
    return results


def measure(frozen_clip, args):
    """Zero-shot accuracy and context bias of a FrozenCLIP on held-out
    images: what the json records for the trained CLIP and ``--compare``."""
    return dict(zero_shot_accuracy=evaluate(frozen_clip, args.eval_images,
                                            args.seed),
                eval_images_per_kind=args.eval_images,
                context_bias=measure_bias(frozen_clip, args.bias_images,
                                          args.seed))


def print_measurement(title, measurement):
    print(f'{title}\nzero-shot accuracy (%) on held-out images:')
    for key, value in measurement['zero_shot_accuracy'].items():
        print(f'  {key:34s} {value:5.1f}')
    bias = measurement['context_bias']
    columns = dict(own_context='own ctx', other_contexts='other ctx',
                   max_other_context='max other', margin_mean='- mean',
                   margin_max='- max', own_context_rank='rank',
                   object_only='obj grey', object_on_own_context='obj own',
                   object_on_other_context='obj other')
    print('cosine of the class text "a photo of a {class}." to held-out '
          'images: context-only images of its own context (own ctx), of '
          'the other contexts (their mean, their max), own ctx minus those '
          '(- mean, - max), rank of the own context among the five (1: '
          'nearest); the object on grey, on its own context, on another '
          'context:')
    print(f'  {"class":6s}' + ''.join(f' {c:>9s}' for c in columns.values()))
    for name, row in list(bias['per_class'].items()) + [('mean',
                                                          bias['mean'])]:
        print(f'  {name:6s}' + ''.join(f' {row[k]:9.3f}' for k in columns))


def load_clip(path):
    return FrozenCLIP(model_name=SYNTHETIC_CLIP_MODEL_NAME,
                      pretrained=osp.abspath(path))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.measure:
        measurement = measure(load_clip(args.measure), args)
        print_measurement(args.measure, measurement)
        if args.compare:
            measurement['comparison'] = dict(
                file=osp.basename(args.compare),
                **measure(load_clip(args.compare), args))
            print_measurement(args.compare, measurement['comparison'])
        if args.write:
            path = osp.splitext(osp.abspath(args.measure))[0] + '.json'
            with open(path) as f:
                settings = json.load(f)
            settings.pop('comparison', None)
            settings.update(measurement)
            with open(path, 'w') as f:
                json.dump(settings, f, indent=2)
            print(f'wrote the measurements into {path}')
        return
    out = osp.abspath(args.out or default_out(args.captions))
    load_before = [round(x, 2) for x in os.getloadavg()]
    start = time.time()
    model = train(args)
    train_seconds = time.time() - start
    distribution = CAPTION_DISTRIBUTIONS[args.captions]
    settings = dict(model_name=SYNTHETIC_CLIP_MODEL_NAME, seed=args.seed,
                    steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                    weight_decay=args.weight_decay, warmup=args.warmup,
                    threads=args.threads, captions=args.captions,
                    kind_weights=distribution['kind_weights'],
                    context_named=distribution['context_named'],
                    train_seconds=round(train_seconds, 1),
                    load_average_1_5_15_min=dict(
                        before=load_before,
                        after=[round(x, 2) for x in os.getloadavg()]))
    save(model, out, dict(quick_gelu='false',
                          model_name=SYNTHETIC_CLIP_MODEL_NAME,
                          seed=args.seed, steps=args.steps,
                          captions=args.captions))
    measurement = measure(load_clip(out), args)
    settings.update(measurement)
    if args.compare:
        settings['comparison'] = dict(file=osp.basename(args.compare),
                                      **measure(load_clip(args.compare), args))
    with open(osp.splitext(out)[0] + '.json', 'w') as f:
        json.dump(settings, f, indent=2)
    print(f'trained {args.steps} steps ({args.captions} captions) in '
          f'{train_seconds:.0f} s; saved {out} '
          f'({osp.getsize(out) / 2**20:.1f} MiB)')
    print_measurement(osp.basename(out), measurement)
    if args.compare:
        print_measurement(osp.basename(args.compare), settings['comparison'])


if __name__ == '__main__':
    main()
