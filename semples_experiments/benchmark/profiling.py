"""Where one benchmark step's time and FLOPs go: ``torch.profiler`` by
operator and by module, beside the FLOP counter's figures."""
import contextlib
import re
from collections import defaultdict
from typing import Callable, Dict, List

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from .measure import flop_counter, synchronize

#: Prefix of the profiler ranges that stand for modules.
MODULE_RANGE = 'module: '


def module_pattern(name: str) -> str:
    """A module's dotted name with its list indices as ``*``, so that the
    blocks of a ViT add up: ``backbone.blocks.3.attn`` ->
    ``backbone.blocks.*.attn``."""
    return re.sub(r'(?<=\.)\d+(?=\.|$)', '*', name)


@contextlib.contextmanager
def module_ranges(model: torch.nn.Module, max_depth: int = 4):
    """Wrap every call of ``model``'s submodules, down to ``max_depth``
    dots, in a profiler range named :data:`MODULE_RANGE` + its
    :func:`module_pattern`."""
    handles = []

    def enter(name):
        def hook(module, args):
            scope = record_function(MODULE_RANGE + name)
            scope.__enter__()
            module._benchmark_ranges.append(scope)
        return hook

    def leave(module, args, output):
        module._benchmark_ranges.pop().__exit__(None, None, None)

    for name, module in model.named_modules():
        if not name or name.count('.') >= max_depth:
            continue
        module._benchmark_ranges = []
        handles.append(module.register_forward_pre_hook(
            enter(module_pattern(name))))
        handles.append(module.register_forward_hook(leave))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for _, module in model.named_modules():
            if hasattr(module, '_benchmark_ranges'):
                del module._benchmark_ranges


def _tracker_roots(model: torch.nn.Module) -> Dict[str, str]:
    """How the FLOP counter names modules: after the outermost module
    *called* (its class name), e.g. ``WeakTrViT.blocks.0`` when a step
    calls ``model.backbone`` directly. Class name -> dotted path in
    ``model`` of the shallowest module of that class ('' for the model)."""
    roots: Dict[str, str] = {}
    depth: Dict[str, int] = {}
    for name, module in model.named_modules():
        key, level = type(module).__name__, name.count('.') if name else -1
        if key not in depth or level < depth[key]:
            roots[key], depth[key] = name, level
    return roots


def _flops_by_module_and_operator(model, step) -> Dict[str, Dict[str, int]]:
    """FLOP counts of one step: {module pattern or 'Global': {operator:
    FLOPs}}, operators as the profiler names them (``aten::addmm``)."""
    counter = flop_counter()
    with counter:
        step()
    roots = _tracker_roots(model)
    counts: Dict[str, Dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, by_op in counter.get_flop_counts().items():
        root, _, rest = name.partition('.')
        if name == 'Global':
            key = name
        elif root in roots:
            key = module_pattern('.'.join(p for p in (roots[root], rest)
                                          if p))
        else:
            continue
        if not key:
            continue  # the model itself: the same as Global
        for op, flops in by_op.items():
            counts[key][str(op).replace('.', '::', 1)] += int(flops)
    return counts


def profile_step(model: torch.nn.Module, step: Callable[[], object],
                 device: str, max_depth: int = 4) -> dict:
    """Profile one call of ``step`` (after the timed ones: warm).

    Returns:
        dict: ``total_ms``, the step's profiled wall time (profiler
        overhead included); ``operators``, per operator ``name``,
        ``calls``, ``self_ms`` (CPU self time; on CUDA, its kernels'),
        ``self_memory_bytes`` (net allocation) and ``flops``; ``modules``,
        per module pattern down to ``max_depth`` dots ``name``, ``calls``,
        ``total_ms`` (inclusive) and ``flops``; each sorted by time.
    """
    flops = _flops_by_module_and_operator(model, step)
    activities = [ProfilerActivity.CPU]
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with module_ranges(model, max_depth), profile(
            activities=activities, profile_memory=True) as prof:
        with record_function('benchmark step'):
            step()
            synchronize(device)
    events = prof.key_averages()
    on_cuda = device == 'cuda'

    def self_us(event):
        return event.self_device_time_total if on_cuda else \
            event.self_cpu_time_total

    def total_us(event):
        return event.device_time_total if on_cuda else event.cpu_time_total

    def memory(event):
        return event.self_device_memory_usage if on_cuda else \
            event.self_cpu_memory_usage

    step_event = next(e for e in events if e.key == 'benchmark step')
    operators: List[dict] = []
    modules: List[dict] = []
    for event in events:
        if event.key.startswith(MODULE_RANGE):
            name = event.key[len(MODULE_RANGE):]
            modules.append(dict(
                name=name, calls=event.count, total_ms=total_us(event) / 1e3,
                flops=sum(flops.get(name, {}).values())))
        elif event.key != 'benchmark step' and self_us(event) > 0:
            operators.append(dict(
                name=event.key, calls=event.count,
                self_ms=self_us(event) / 1e3,
                self_memory_bytes=int(memory(event)),
                flops=flops['Global'].get(event.key, 0)))
    operators.sort(key=lambda row: -row['self_ms'])
    modules.sort(key=lambda row: -row['total_ms'])
    # the step's range closes after a device synchronisation: its wall time
    return dict(total_ms=step_event.cpu_time_total / 1e3,
                operators=operators, modules=modules)


def format_profile(profile_result: dict, title: str, rows: int = 15) -> str:
    """Markdown tables of :func:`profile_step`'s result: the ``rows``
    costliest operators (self time) and modules (inclusive time)."""
    total = profile_result['total_ms']

    def gflop(flops):
        return f'{flops / 1e9:.1f}' if flops else '-'

    def rate(flops, ms):
        return f'{flops / ms / 1e9:.3f}' if flops and ms else '-'

    lines = [f'{title}: {total:.0f} ms profiled', '',
             '| operator | calls | self ms | % of step | net alloc MiB '
             '| GFLOP | TFLOP/s |', '| --- | ---: | ---: | ---: | ---: | ---: '
             '| ---: |']
    for row in profile_result['operators'][:rows]:
        lines.append(
            f"| `{row['name']}` | {row['calls']} | {row['self_ms']:.0f} | "
            f"{100 * row['self_ms'] / total:.1f} | "
            f"{row['self_memory_bytes'] / 2**20:.0f} | "
            f"{gflop(row['flops'])} | {rate(row['flops'], row['self_ms'])} |")
    lines += ['', '| module | calls | total ms | % of step | GFLOP | '
              'TFLOP/s |', '| --- | ---: | ---: | ---: | ---: | ---: |']
    for row in profile_result['modules'][:rows]:
        lines.append(
            f"| `{row['name']}` | {row['calls']} | {row['total_ms']:.0f} | "
            f"{100 * row['total_ms'] / total:.1f} | {gflop(row['flops'])} | "
            f"{rate(row['flops'], row['total_ms'])} |")
    return '\n'.join(lines)
