"""Read learnt background prompts as words and as candidate texts.

    python tools/visualize_prompts.py CONFIG CHECKPOINT [--topk 5] \
        [--candidates "a photo of water." ...] [--candidates-file FILE]

For each class of the model's ``prompt_learner`` (ctx (K, L, W)), prints
the ``topk`` vocabulary words nearest to each context vector (cosine to the
CLIP token embedding table, decoded with the CLIP tokenizer), and the
candidate texts ranked by the cosine of their CLIP text feature to the
prompt's (``clip.encode_prompts(ctx)`` vs ``clip.encode_text(texts)``).
Without candidates, "a photo of {name}." for every class name is used.
"""
import argparse

import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument('--candidates', nargs='+', default=None,
                        help='texts to rank against each prompt')
    parser.add_argument('--candidates-file',
                        help='text file with one candidate text per line')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def _decode(tokenizer, token_id):
    try:
        return tokenizer.decode([int(token_id)]).strip()
    except (KeyError, IndexError):  # id outside the BPE vocabulary
        return f'<{int(token_id)}>'


@torch.no_grad()
def describe_prompts(model, candidates=None, topk=5):
    """Nearest words and candidate texts of every class prompt.

    Args:
        model: has ``prompt_learner`` (``forward() -> ctx (K, L, W)``,
            ``class_names``) and ``clip`` (FrozenCLIP: ``.model`` with
            ``token_embedding``, ``.tokenizer``, ``encode_prompts``,
            ``encode_text``).
        candidates (list[str], optional): texts to rank.
        topk (int): words per context vector, texts per class.

    Returns:
        dict: ``{class_name: dict(words=[[(word, cos), ...] per vector],
        texts=[(text, cos), ...])}``.
    """
    learner, clip = model.prompt_learner, model.clip
    ctx = learner()  # (K, L, W)
    table = clip.model.token_embedding.weight  # (V, W)
    word_sims = torch.einsum('klw,vw->klv', F.normalize(ctx.float(), dim=-1),
                             F.normalize(table.float(), dim=-1))
    word_vals, word_ids = word_sims.topk(min(topk, table.shape[0]), dim=-1)
    names = list(getattr(learner, 'class_names',
                         [f'class{k}' for k in range(ctx.shape[0])]))
    candidates = candidates or [f'a photo of {name}.' for name in names]
    prompt_feats = F.normalize(clip.encode_prompts(ctx).float(), dim=-1)
    text_feats = F.normalize(clip.encode_text(list(candidates)).float(),
                             dim=-1).to(prompt_feats.device)
    text_sims = prompt_feats @ text_feats.t()  # (K, N)
    text_vals, text_ids = text_sims.topk(min(topk, len(candidates)), dim=-1)
    report = {}
    for k, name in enumerate(names):
        report[name] = dict(
            words=[[(_decode(clip.tokenizer, i), round(float(v), 3))
                    for i, v in zip(ids, vals)]
                   for ids, vals in zip(word_ids[k], word_vals[k])],
            texts=[(candidates[int(i)], round(float(v), 3))
                   for i, v in zip(text_ids[k], text_vals[k])])
    return report


def format_report(report):
    lines = []
    for name, info in report.items():
        lines.append(f'== {name}')
        lines.append('  nearest texts: ' + ', '.join(
            f'{text!r} ({sim})' for text, sim in info['texts']))
        for index, words in enumerate(info['words']):
            lines.append(f'  ctx {index:2d}: ' + ' '.join(
                f'{word}({sim})' for word, sim in words))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    import semples_mm  # noqa: F401  (registers our components)

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.eval()
    for attr in ('prompt_learner', 'clip'):
        if not hasattr(model, attr):
            raise AttributeError(f'{args.config}: the model '
                                 f'{type(model).__name__} has no {attr}; '
                                 'this tool reads SemPLeS prompts')
    candidates = list(args.candidates or [])
    if args.candidates_file:
        with open(args.candidates_file) as file:
            candidates += [line.strip() for line in file if line.strip()]
    report = describe_prompts(model, candidates or None, args.topk)
    print(format_report(report))
    return report


if __name__ == '__main__':
    main()
