"""Readable table of a benchmark report (see :func:`run_benchmark`)."""
from typing import List, Optional

from .profiling import format_profile

#: Images the model selection scores per evaluation: VOC train, and
#: WeakTr's COCO train subset (configs/semples/coco_weaktr.py).
SELECTION_SPLITS = (('VOC train', 1464), ("WeakTr's COCO subset", 1250))


def _bytes(value: Optional[int]) -> str:
    if value is None:
        return '-'
    return f'{value / 2**30:.2f} GiB' if value >= 2**30 else \
        f'{value / 2**20:.0f} MiB'


def _number(value: Optional[float], fmt: str) -> str:
    return '-' if value is None else format(value, fmt)


def format_report(report: dict, title: str = '') -> str:
    """The report as a fixed-width table with its assumptions below it."""
    meta = report['meta']
    height, width = meta['image_size']
    lines: List[str] = []
    if title:
        lines.append(title)
    lines.append(
        f"device {meta['device']} ({meta['device_name']}), torch "
        f"{meta['torch_version']}, {meta['torch_threads']} torch thread(s), "
        f"batch {meta['batch_size']}, {height}x{width} images, "
        f"{meta['num_classes']} classes, median of {meta['iters']} timed "
        f"steps after {meta['warmup']} warm-up")
    impl_width = max([9] + [len(run['impl']) for run in report['runs']])
    header = (f"{'phase':<7} {'impl':<{impl_width}} {'img/s':>9} "
              f"{'pairs/s':>9} "
              f"{'step ms':>9} {'p10-p90 ms':>17} {'cpu s':>7} "
              f"{'peak mem':>10} "
              f"{'run mem':>10} "
              f"{'GFLOP/step':>10} {'TFLOP/s':>8} {'MFU':>6}")
    lines += [header, '-' * len(header)]
    for run in report['runs']:
        t = run['step_time_s']
        spread = f"{t['p10'] * 1e3:.1f}-{t['p90'] * 1e3:.1f}"
        flops = run['flops_per_step']
        gflops = None if flops is None else flops / 1e9
        mfu = None if run['mfu'] is None else run['mfu'] * 100
        lines.append(
            f"{run['phase']:<7} {run['impl']:<{impl_width}} "
            f"{run['images_per_s']:>9.1f} "
            f"{_number(run['pairs_per_s'], '.1f'):>9} "
            f"{t['median'] * 1e3:>9.1f} {spread:>17} "
            f"{_number(run.get('step_cpu_s'), '.1f'):>7} "
            f"{_bytes(run['peak_memory_bytes']):>10} "
            f"{_bytes(run.get('step_memory_bytes')):>10} "
            f"{_number(gflops, '.2f'):>10} "
            f"{_number(run['achieved_tflops'], '.3f'):>8} "
            f"{_number(mfu, '.1f'):>6}")
    if report['comparisons']:
        lines.append('')
        lines.append(
            'speed-up of ours over the authors\' way = its median step time '
            '/ ours; reference: their training steps as shipped (CLIP '
            'trainable, per-pair texts with gradients, stage 3\'s extra '
            'encodings), reference_frozen_clip: the same with CLIP frozen:')
        for row in report['comparisons']:
            note = (' (the same computation all ways: timing noise)'
                    if row['phase'] == 'cam' else '')
            lines.append(
                f"  {row['phase']:<7} {row['speedup']:.2f}x over "
                f"{row['reference']}{note}; first-step losses differ by "
                f"{row['loss_max_rel_diff']:.1e} (max relative)")
    lines.append('')
    for run in report['runs']:
        if run.get('prompt_cache_hit_rate') is not None:
            lines.append(
                'prompt (ours): ViewCacheCropFeatures, hit rate '
                f"{run['prompt_cache_hit_rate']:.0%} (one batch repeated: "
                'the steady state of a prompt phase whose views repeat).')
        if run.get('prompt_bank_build_images_per_s') is not None:
            lines.append(
                'prompt (ours): crop features read from the prompt feature '
                'bank (FixedViewBankCropFeatures), built once for the batch at '
                f"{run['prompt_bank_build_images_per_s']:.1f} img/s "
                '(not in the step time).')
    lines.append('cpu s: median CPU seconds of the process (all threads) '
                 'per timed step; wall time also counts other work on a '
                 f"shared CPU. peak mem: {meta['memory_kind']}; run mem: "
                 'the peak over what was held as the run began (weights, '
                 'caches).')
    if meta['flops_note']:
        lines.append(meta['flops_note'])
    if meta['device'] == 'cuda':
        if meta['peak_tflops_bf16']:
            lines.append(
                'MFU (%): counted FLOPs / median step time / '
                f"{meta['peak_tflops_bf16']:g} TFLOP/s, the dense bf16 "
                f"tensor-core peak assumed for {meta['device_name']} "
                '(NVIDIA data sheet); fp32 steps (no --amp) cannot reach it.')
        else:
            lines.append(
                f"MFU: no bf16 peak known for {meta['device_name']}; pass "
                '--peak-tflops.')
    for run in report['runs']:
        if run['phase'] in ('export', 'select'):
            lines.append(_inference_note(run))
    whole = report.get('export_end_to_end')
    if whole:
        height, width = whole['image_size']
        rate = whole['images_per_s']
        lines.append(
            'whole export (data loading, inference, PNG writing, as '
            f"PseudoLabelHook runs it): {whole['num_images']} random "
            f"{height}x{width} JPEG images at batch {whole['batch_size']} "
            f"with {whole['num_workers']} loader worker(s), scales "
            f"{whole['scales']}, flip {whole['flip']}, bf16 autocast "
            f"{whole['amp']}: "
            f"{whole['seconds']:.1f} s, {rate:.1f} img/s; at that rate "
            f'10,582 images of this size (as many as VOC trainaug) take '
            f'{10582 / rate:.0f} s, 82,081 (COCO train) {82081 / rate:.0f} '
            's.')
    for run in report['runs']:
        if run.get('profile'):
            lines += ['', format_profile(
                run['profile'], f"profile of one {run['phase']} step "
                f"({run['impl']})")]
    return '\n'.join(lines)


def _inference_note(run: dict) -> str:
    """What an export or selection run timed."""
    settings = run['export_settings']
    image_h, image_w = settings['image_size']
    input_h, input_w = settings['input_size']
    what = (f"{run['batch_size']} whole {image_h}x{image_w} images as one "
            f'dataloader batch, resized by the export pipeline to '
            f'{input_h}x{input_w} (scales {settings["scales"]}, flip '
            f'{settings["flip"]}, bf16 autocast {settings["amp"]}), '
            f'normalised at {image_h}x{image_w}')
    if run['phase'] == 'export':
        return (f'export: pseudo-mask CAMs of {what}; PNG writing and data '
                'loading excluded.')
    passes = ', '.join(f'{count:,} images ({split}) {count / rate:.0f} s'
                       for split, count in SELECTION_SPLITS
                       for rate in [run['images_per_s']])
    return (f'select: the model selection\'s CAMs (BestCAMSelectionHook: '
            f"model.val_step with the model's test_cfg) of {what}; its "
            f'metric excluded. One selection pass at this rate: {passes}.')
