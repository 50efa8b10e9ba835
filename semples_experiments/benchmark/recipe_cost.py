"""What a whole recipe costs: the counted FLOPs of a config's training
steps, model selections and pseudo-mask export, from benchmark figures,
and the hours they take at a stated rate."""
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .runner import TRAIN_PHASES

#: The columns of the cost table: our program, the authors'.
COST_IMPLS = ('ours', 'reference')


def phase_batch_sizes(cfg) -> Dict[str, int]:
    """Images per step of every training phase: ``train_dataloader``'s
    batch, unless ``train_cfg.phase_dataloaders`` gives the phase its
    own."""
    default = cfg.train_dataloader.batch_size
    own = (cfg.get('train_cfg') or {}).get('phase_dataloaders') or {}
    return {phase['name']: int((own.get(phase['name']) or {}).get(
        'batch_size', default)) for phase in cfg.model.phases}


def selected_phases(cfg) -> Tuple[str, ...]:
    """Phases the config's ``BestCAMSelectionHook`` evaluates in."""
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('type') == 'BestCAMSelectionHook':
            return tuple(hook.get('phases', ('match', 'refine')))
    return ()


def flops_points(reports: Iterable[dict]
                 ) -> Dict[Tuple[str, str], List[Tuple[int, float]]]:
    """{(phase, impl): [(images per step, counted FLOPs per step), ...]} of
    benchmark reports (``tools/benchmark.py --out``)."""
    points: Dict[Tuple[str, str], List[Tuple[int, float]]] = {}
    for report in reports:
        for run in report['runs']:
            if run.get('flops_per_step'):
                points.setdefault((run['phase'], run['impl']), []).append(
                    (int(run['batch_size']), float(run['flops_per_step'])))
    return points


def flops_at(points: Sequence[Tuple[int, float]], images: int) -> float:
    """FLOPs of a step of ``images`` images: from one batch size, in
    proportion; from several, by the least-squares line ``fixed + per
    image x images`` (a step also has work that does not grow with its
    batch, e.g. encoding the class prompts once)."""
    batches = [b for b, _ in points]
    if len(set(batches)) < 2:
        return sum(f / b for b, f in points) / len(points) * images
    mean_b = sum(batches) / len(batches)
    mean_f = sum(f for _, f in points) / len(points)
    slope = sum((b - mean_b) * (f - mean_f) for b, f in points) / sum(
        (b - mean_b)**2 for b in batches)
    return mean_f + slope * (images - mean_b)


def recipe_cost(cfg, points: Dict[Tuple[str, str], List[Tuple[int, float]]],
                train_images: int, selection_images: int,
                export_images: int) -> List[dict]:
    """The FLOPs of every part of a recipe, per implementation.

    Training FLOPs are taken at the config's batch sizes (:func:`flops_at`
    of the measured ones); the selection runs every epoch of its phases
    (``train_images // batch`` steps) and at each phase's end.

    Args:
        cfg (Config): the recipe.
        points (dict): :func:`flops_points` of its benchmark runs;
            ``(phase, 'reference')`` for the authors' program (for 'select'
            and 'export': figures of their inference formula).
        train_images (int): images of the training split (one epoch).
        selection_images (int): images the selection scores each time.
        export_images (int): images the pseudo masks are written for.

    Returns:
        list[dict]: per part ``part``, ``count`` (steps or images),
        ``batch`` (images per step, training only), ``note`` and per
        implementation ``flops_<impl>`` (per step or per image) and
        ``total_<impl>`` (None where a figure is missing).
    """
    batches = phase_batch_sizes(cfg)
    rows = []

    def row(part, count, unit_images, note, key_phase, batch=None):
        entry = dict(part=part, count=count, batch=batch, note=note)
        for impl in COST_IMPLS:
            measured = points.get((key_phase, impl))
            flops = None if measured is None else flops_at(measured,
                                                           unit_images)
            entry[f'flops_{impl}'] = flops
            entry[f'total_{impl}'] = None if flops is None else flops * count
        rows.append(entry)

    for phase in cfg.model.phases:
        name, batch = phase['name'], batches[phase['name']]
        if name in TRAIN_PHASES:
            row(name, int(phase['iters']), batch,
                f"{phase['iters']} steps of {batch}", name, batch)
    for name in selected_phases(cfg):
        phase = next(p for p in cfg.model.phases if p['name'] == name)
        interval = max(1, train_images // batches[name])
        evaluations = math.ceil(phase['iters'] / interval)
        row(f'{name} selection', evaluations * selection_images, 1,
            f'{evaluations} x {selection_images:,} images', 'select')
    row('export', export_images, 1, f'{export_images:,} images', 'export')
    return rows


def format_recipe_cost(rows: List[dict], peak_tflops: float,
                       utilisations: Sequence[Tuple[str, float]],
                       title: Optional[str] = None) -> str:
    """A markdown table of :func:`recipe_cost`'s rows, with the total and
    the hours on one accelerator of ``peak_tflops`` at each named
    utilisation."""
    def tera(value, scale, fmt):
        return '-' if value is None else format(value / scale, fmt)

    lines = [f'{title}', ''] if title else []
    lines += ['| part | steps or images | GFLOP per step or image, ours / '
              'authors\' | PFLOP, ours / authors\' |',
              '| --- | --- | ---: | ---: |']
    totals = {impl: 0.0 for impl in COST_IMPLS}
    for r in rows:
        for impl in COST_IMPLS:
            if r[f'total_{impl}'] is None or totals[impl] is None:
                totals[impl] = None
            else:
                totals[impl] += r[f'total_{impl}']
        lines.append(
            f"| {r['part']} | {r['note']} | "
            f"{tera(r['flops_ours'], 1e9, ',.0f')} / "
            f"{tera(r['flops_reference'], 1e9, ',.0f')} | "
            f"{tera(r['total_ours'], 1e15, ',.0f')} / "
            f"{tera(r['total_reference'], 1e15, ',.0f')} |")
    lines.append(f"| total | | | {tera(totals['ours'], 1e15, ',.0f')} / "
                 f"{tera(totals['reference'], 1e15, ',.0f')} |")
    lines += ['', '| at | hours, ours | hours, authors\' |',
              '| --- | ---: | ---: |']
    for label, utilisation in utilisations:
        rate = peak_tflops * 1e12 * utilisation * 3600
        lines.append(f'| {label} ({utilisation:.1%} of {peak_tflops:g} '
                     f"TFLOP/s) | {tera(totals['ours'], rate, ',.1f')} | "
                     f"{tera(totals['reference'], rate, ',.1f')} |")
    return '\n'.join(lines)
