"""Step timing, peak memory and FLOP counts of benchmark runs."""
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch.utils.flop_counter import (FlopCounterMode,
                                      sdpa_backward_flop_count,
                                      sdpa_flop_count)

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from NVIDIA's data
# sheets, matched in this order against torch.cuda.get_device_name().
BF16_PEAK_TFLOPS: Tuple[Tuple[str, float], ...] = (
    ('H100 PCIe', 756.0),
    ('H100 NVL', 835.0),
    ('H200 NVL', 835.0),
    ('GH200', 989.4),
    ('H200', 989.4),
    ('H100', 989.4),  # SXM5 (device names such as 'NVIDIA H100 80GB HBM3')
    ('A100', 312.0),
)


def bf16_peak_tflops(device_name: str) -> Optional[float]:
    """The table's bf16 peak for a CUDA device name; None if not listed."""
    for key, peak in BF16_PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None


def synchronize(device: str):
    if device == 'cuda':
        torch.cuda.synchronize()


def time_steps(step: Callable[[], object], iters: int, warmup: int,
               device: str) -> Tuple[List[float], object, List[float]]:
    """Run ``warmup`` untimed then ``iters`` timed calls of ``step``.

    On CUDA the queue is drained before and after every timed step, so a
    step's time is its own work.

    Returns:
        tuple: the timed step durations in seconds, what the first call
        (warm-up or timed) returned, and the CPU seconds of the process
        (all its threads) in each timed step: on a CPU shared with other
        work, wall time counts their share too, CPU time does not.
    """
    if iters < 1:
        raise ValueError(f'benchmark: iters must be >= 1, got {iters}.')
    first = None
    for i in range(warmup):
        out = step()
        if i == 0:
            first = out
    synchronize(device)
    times, cpu_times = [], []
    for i in range(iters):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = step()
        synchronize(device)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        if warmup == 0 and i == 0:
            first = out
    return times, first, cpu_times


def _percentile(sorted_values: List[float], q: float) -> float:
    """Linear-interpolation percentile, q in [0, 100]."""
    position = (len(sorted_values) - 1) * q / 100.
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] -
                                 sorted_values[low]) * (position - low)


def step_time_stats(times: List[float]) -> Dict[str, float]:
    """Median, p10, p90, mean, std, min and max of step times (seconds)."""
    ordered = sorted(times)
    return dict(
        median=statistics.median(ordered),
        p10=_percentile(ordered, 10),
        p90=_percentile(ordered, 90),
        mean=statistics.fmean(ordered),
        std=statistics.pstdev(ordered),
        min=ordered[0],
        max=ordered[-1])


class PeakMemory:
    """Peak memory of one run.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only), reset by
    :meth:`reset`. CPU: the process's peak resident set size; on Linux the
    high-water mark is reset through ``/proc/self/clear_refs`` and read from
    ``VmHWM``, elsewhere ``getrusage`` gives the peak since the process
    started (``self.kind`` says which).
    """

    def __init__(self, device: str):
        self.device = device
        self.start_bytes = 0
        if device == 'cuda':
            self.kind = 'torch.cuda.max_memory_allocated, reset per run'
        elif self._can_reset_rss():
            self.kind = 'peak RSS of the process (VmHWM, reset per run)'
        else:
            self.kind = ('peak RSS of the process since it started '
                         '(getrusage; cannot be reset here)')

    @staticmethod
    def _can_reset_rss() -> bool:
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
            return PeakMemory._vm_hwm() is not None
        except OSError:
            return False

    @staticmethod
    def _status_bytes(field: str) -> Optional[int]:
        """A kB field of ``/proc/self/status`` in bytes."""
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
        return None

    @staticmethod
    def _vm_hwm() -> Optional[int]:
        return PeakMemory._status_bytes('VmHWM:')

    def reset(self):
        """Start a run: reset the peak where possible and note what is
        held now (``start_bytes``: weights, caches), so that a run's own
        memory is its peak minus that."""
        if self.device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = int(torch.cuda.memory_allocated())
        elif self.kind.startswith('peak RSS of the process (VmHWM'):
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
            self.start_bytes = self._status_bytes('VmRSS:')
        else:
            self.start_bytes = 0  # the peak since the start cannot be split

    def peak_bytes(self) -> int:
        if self.device == 'cuda':
            return int(torch.cuda.max_memory_allocated())
        if self.kind.startswith('peak RSS of the process (VmHWM'):
            return int(self._vm_hwm())
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # kilobytes on Linux, bytes on macOS
        return int(max_rss if sys.platform == 'darwin' else max_rss * 1024)


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args,
                         out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_attention_backward_flops(grad_out_shape, query_shape, key_shape,
                                  value_shape, *args, out_shape=None,
                                  **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                    value_shape)


#: Kernels torch's counter does not know (as of torch 2.x it counts the
#: CUDA attention kernels only), with the same formulas as their CUDA
#: twins: the CPU's fused attention (``scaled_dot_product_attention``).
EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu:
    _cpu_attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward:
    _cpu_attention_backward_flops,
}


def flop_counter() -> FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts
    :data:`EXTRA_FLOP_FORMULAS`."""
    return FlopCounterMode(display=False,
                           custom_mapping=dict(EXTRA_FLOP_FORMULAS))


def count_flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of ``step`` (forward and backward), as counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (with
    :data:`EXTRA_FLOP_FORMULAS`): matrix multiplications, convolutions and
    attention; element-wise work is not counted."""
    counter = flop_counter()
    with counter:
        step()
    return int(counter.get_total_flops())
