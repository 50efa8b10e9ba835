"""Speed of SemPLeS training and pseudo-mask export (``tools/benchmark.py``).

Times real training steps of a config's model on random batches of its
shapes, and the same losses computed the way the authors' code does
(:mod:`.reference`: as shipped, and with CLIP frozen) as the yardstick.
Registers nothing.
"""
from .batches import (config_image_size, export_image_sizes, random_batch,
                      random_labels, selection_batch_size)
from .building import (build_model, build_optim, check_weight_files,
                       enter_phase, load_config, make_random_init,
                       snapshot_state)
from .measure import (BF16_PEAK_TFLOPS, PeakMemory, bf16_peak_tflops,
                      count_flops, step_time_stats, time_steps)
from .profiling import format_profile, profile_step
from .reference import (clip_weights_trainable, reference_loss,
                        reference_train_step)
from .report import format_report
from .runner import (IMPLS, INFERENCE_PHASES, PHASES, REFERENCE_IMPLS,
                     TRAIN_PHASES,
                     Benchmark, compare, export_batch, loss_difference,
                     run_benchmark)

__all__ = [
    'config_image_size', 'export_image_sizes', 'random_batch',
    'random_labels', 'selection_batch_size', 'build_model', 'build_optim',
    'check_weight_files', 'enter_phase', 'load_config', 'make_random_init',
    'snapshot_state', 'BF16_PEAK_TFLOPS', 'PeakMemory', 'bf16_peak_tflops',
    'count_flops', 'step_time_stats', 'time_steps', 'format_profile',
    'profile_step', 'clip_weights_trainable',
    'reference_loss', 'reference_train_step', 'format_report', 'IMPLS',
    'REFERENCE_IMPLS', 'INFERENCE_PHASES', 'PHASES',
    'TRAIN_PHASES', 'Benchmark', 'compare', 'export_batch',
    'loss_difference', 'run_benchmark'
]
