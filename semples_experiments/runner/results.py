"""Results of an experiment run: reading them back and printing tables."""
import glob
import json
import math
import os.path as osp

# (key in summary['pseudo_masks'], row name)
PSEUDO_ROWS = (('cam', 'CAM baseline (after cam)'),
               ('match', 'after match (SLM only)'),
               ('semples', 'SemPLeS (after refine)'))
VAL_KEYS = ('mIoU', 'pseudo/mIoU', 'pseudo/bg_threshold')
# (key in summary['segmentors'][stem], what the segmentor trained on)
SEGMENTOR_ROWS = (('semples_masks', 'SemPLeS masks'),
                  ('ground_truth', 'ground truth (upper bound)'))
# steps of a summary without 'current_steps' (older runners): the
# segmentors' follow
STEP_ORDER = ('world', 'semples', 'export_cam', 'export_match',
              'export_semples', 'export_train_list')


def collect_val_per_phase(work_dir, schedule):
    """Validation metrics at each phase end, from mmengine's scalar logs.

    ``PhasedTrainLoop`` validates at the end of each phase but ``prompt``,
    logged at the step of the iterations done (``phase.end``). Resumed runs
    write new log folders; later lines win.

    Args:
        work_dir (str): the SemPLeS work dir.
        schedule (PhaseSchedule): the run's phases.

    Returns:
        dict: phase name -> {metric: value} for the metrics in VAL_KEYS.
    """
    total = schedule.total_iters
    per_phase = {}
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    for path in files:
        with open(path) as file:
            for line in file:
                entry = json.loads(line)
                if 'step' not in entry or not any(
                        key in entry for key in VAL_KEYS) or 'loss' in entry:
                    continue
                step = min(int(entry['step']), total)
                name = schedule.at(step - 1).name
                per_phase[name] = {k: entry[k] for k in VAL_KEYS
                                   if k in entry}
    return per_phase


def _fmt(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{value:.{digits}f}'


def segmentor_results(summary):
    """``(stem, {source: val result})`` per segmentor of a summary, in the
    order they ran; a summary written before several segmentors has its
    DeepLabV2 under 'deeplabv2'."""
    segmentors = summary.get('segmentors')
    if segmentors is None:
        segmentors = {'DeepLabV2': dict(semples_masks=summary['deeplabv2'])
                      } if 'deeplabv2' in summary else {}
    return [(stem, {key: entry[key] for key, _ in SEGMENTOR_ROWS
                    if key in entry}) for stem, entry in segmentors.items()]


def format_table(summary):
    """Markdown table of one run's ``summary.json``."""
    masks = summary.get('pseudo_masks', {})
    lines = ['| result | mIoU (%) | best bg threshold | split | images |',
             '| --- | --- | --- | --- | --- |']
    edges = []
    for key, name in PSEUDO_ROWS:
        info = masks.get(key, {})
        edge = ' (sweep end!)' if info.get('best_at_sweep_edge') else ''
        if edge:
            edges.append(name)
        lines.append(
            f"| pseudo masks, {name} | {_fmt(info.get('mIoU'))} | "
            f"{_fmt(info.get('best_threshold'), 2)}{edge} | "
            f"{info.get('split', '-')} | {info.get('num_images', '-')} |")
    if edges:
        lines.append(f"| (the best threshold of {', '.join(edges)} is an end "
                     'of the sweep: its mIoU is a lower bound; widen the '
                     "PseudoMaskMetric's bg_thresholds) | | | | |")
    for stem, results in segmentor_results(summary):
        for key, source in SEGMENTOR_ROWS:
            if key in results:
                result = results[key]
                lines.append(
                    f"| {stem} on {source} | {_fmt(result.get('mIoU'))} | - "
                    f"| {result.get('split', '-')} | "
                    f"{result.get('num_images', '-')} |")
    per_phase = summary.get('cam_val_per_phase') or {}
    if per_phase:
        lines += ['', '| phase end | CAM val pseudo/mIoU (%) | '
                  'CAM val mIoU at the config threshold (%) |',
                  '| --- | --- | --- |']
        for name, metrics in per_phase.items():
            lines.append(f"| {name} | {_fmt(metrics.get('pseudo/mIoU'))} | "
                         f"{_fmt(metrics.get('mIoU'))} |")
    steps = summary.get('steps', {})
    if steps:
        lines += ['', '| step | wall time (s) | this run |',
                  '| --- | --- | --- |']
        order = summary.get('current_steps') or [
            s for s in STEP_ORDER if s in steps] + [
            s for s in steps if s not in STEP_ORDER]
        for name in order:
            entry = steps[name]
            lines.append(
                f"| {name} | {_fmt(entry.get('wall_s'))} | "
                f"{'skipped' if entry.get('skipped_in_last_run') else 'ran'}"
                ' |')
    return '\n'.join(lines)


def seed_values(summary):
    """The numbers averaged over seeds: {row name: mIoU}."""
    values = {}
    masks = summary.get('pseudo_masks', {})
    for key, name in PSEUDO_ROWS:
        values[f'pseudo masks, {name}'] = masks.get(key, {}).get('mIoU')
    for stem, results in segmentor_results(summary):
        miou = {key: results[key].get('mIoU') for key, _ in SEGMENTOR_ROWS
                if key in results}
        for key, source in SEGMENTOR_ROWS:
            if key in miou:
                values[f'{stem} on {source} (val)'] = miou[key]
        if miou.get('semples_masks') is not None and \
                miou.get('ground_truth'):
            # the measure WSSS papers report: % of the fully supervised
            values[f'{stem}: SemPLeS masks / ground truth (%)'] = \
                100 * miou['semples_masks'] / miou['ground_truth']
    values['wall time of the run (s)'] = summary.get('total_wall_s')
    return values


def mean_over_seeds(summaries):
    """{row: {'per_seed': {seed: v}, 'mean': m, 'std': s}} over runs."""
    rows = {}
    for summary in summaries:
        for row, value in seed_values(summary).items():
            rows.setdefault(row, {'per_seed': {}})['per_seed'][str(
                summary.get('seed'))] = value
    for row in rows.values():
        values = [v for v in row['per_seed'].values() if v is not None]
        row['mean'] = sum(values) / len(values) if values else None
        row['std'] = math.sqrt(
            sum((v - row['mean'])**2 for v in values) /
            (len(values) - 1)) if len(values) > 1 else None
    return rows


def format_seed_table(rows):
    """Markdown table of :func:`mean_over_seeds`."""
    seeds = []
    for row in rows.values():
        seeds += [s for s in row['per_seed'] if s not in seeds]
    lines = ['| result | ' + ' | '.join(f'seed {s}' for s in seeds) +
             ' | mean | std |',
             '| --- |' + ' --- |' * (len(seeds) + 2)]
    for name, row in rows.items():
        cells = [_fmt(row['per_seed'].get(s)) for s in seeds]
        lines.append(f'| {name} | ' + ' | '.join(cells) +
                     f" | {_fmt(row['mean'])} | {_fmt(row['std'])} |")
    return '\n'.join(lines)
