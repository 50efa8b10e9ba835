"""The experiment runner: SemPLeS -> pseudo masks -> segmentors (DeepLabV2 by
default) in one command (``tools/run_experiment.py``).

Orchestration only: it writes derived configs, calls the training, export
and test entry points (``semples_mm.apis``), and collects their results.
"""
from .derived_configs import (QUICK_SETTINGS, derive_segmentor_config,
                              derive_semples_config, follows_semples_data,
                              synthetic_world_of)
from .record import ExperimentRecord
from .results import (collect_val_per_phase, format_seed_table,
                      format_table, mean_over_seeds)
from .run import run_experiment, run_seeds

__all__ = [
    'QUICK_SETTINGS', 'derive_semples_config', 'derive_segmentor_config',
    'follows_semples_data', 'synthetic_world_of', 'ExperimentRecord',
    'collect_val_per_phase', 'format_table', 'format_seed_table',
    'mean_over_seeds', 'run_experiment', 'run_seeds'
]
