"""Experiments around the ``semples_mm`` components; registers nothing.

- :mod:`semples_experiments.runner`: the experiment runner
  (``tools/run_experiment.py``): SemPLeS training, pseudo masks after each
  phase, DeepLabV2 on them and its mIoU, resumable step by step.
- :mod:`semples_experiments.benchmark`: the benchmark (``tools/benchmark.py``,
  ``tools/analysis_tools/recipe_cost.py``): training steps and CAM inference
  timed and counted, against the authors' way of computing the losses.
"""
