"""Benchmark runs: training steps of each phase (ours or the authors' way,
with CLIP trainable as they ship it or frozen) and the pseudo-mask export
path, on random batches of a config's shapes."""
import copy
import os
import platform
import statistics
import time
from typing import Dict, List, Optional, Sequence

import torch

from semples_mm.models.cams import CAMInference
from semples_mm.pseudo_labels import (export_settings, infer_batch_cams,
                                      inference_settings)
from .batches import (config_image_size, export_image_sizes, random_batch,
                      selection_batch_size)
from .building import build_model, build_optim, enter_phase, snapshot_state
from .export_end_to_end import time_export_end_to_end
from .measure import (PeakMemory, bf16_peak_tflops, count_flops,
                      step_time_stats, synchronize, time_steps)
from .profiling import profile_step
from .reference import reference_train_step

TRAIN_PHASES = ('cam', 'match', 'prompt', 'refine')
# 'select': the model selection's CAM inference (BestCAMSelectionHook's
# model.val_step with the model's test_cfg) on whole images
INFERENCE_PHASES = ('export', 'select')
PHASES = TRAIN_PHASES + INFERENCE_PHASES
# 'reference': the authors' training steps as shipped (CLIP's weights
# require grad); 'reference_frozen_clip': the same with CLIP frozen.
REFERENCE_IMPLS = ('reference', 'reference_frozen_clip')
IMPLS = ('ours', ) + REFERENCE_IMPLS
FLOPS_NOTE = (
    'FLOPs: torch.utils.flop_counter.FlopCounterMode over one extra step '
    '(matmuls, convolutions, attention of the CAM network, CLIP and '
    'prompts, forward and backward; element-wise work not counted).')


def device_description(device: str) -> str:
    """The GPU's name, or the CPU's model name."""
    if device == 'cuda':
        return torch.cuda.get_device_name()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def export_batch(model, batch: dict, settings: dict) -> torch.Tensor:
    """The pseudo-mask export's CAM work for ``batch`` as one dataloader
    batch (:func:`infer_batch_cams` with the export ``settings``); PNG
    writing excluded.

    Returns:
        Tensor: the last image's (K, H, W) normalised CAMs.
    """
    inference = CAMInference(**inference_settings(settings))
    with torch.no_grad():
        return infer_batch_cams(model, inference, batch['inputs'],
                                batch['data_samples'])[-1]


class Benchmark:
    """Times phases of one config's model on one random batch.

    Every run restarts from the same initial weights, no gradients and a
    fresh optimizer, so ours and the references do the same first step
    (their first-step losses are recorded and compared); a reference run
    leaves CLIP's ``requires_grad`` flags as it found them and drops the
    gradients it left on weights no optimizer zeroes.

    Args:
        cfg (Config): loaded config (see :func:`load_config`).
        batch_size (int): images per step.
        iters (int): timed steps per run.
        warmup (int): untimed steps before them.
        device (str): 'cpu' or 'cuda'.
        seed (int): seed of the weights and the batch.
        flops (bool): count FLOPs with one extra step per run.
        peak_tflops (float, optional): bf16 peak of the GPU for the model
            FLOPs utilisation; None looks the GPU up in
            :data:`BF16_PEAK_TFLOPS`.
        prompt_bank (bool): our prompt phase reads its crop features from a
            ``FixedViewBankCropFeatures`` filled with the batch's images
            before the timed steps (its build time is reported apart).
        export_batch_size (int, optional): images per export batch;
            default ``pseudo_label_cfg.batch_size``, else ``batch_size``.
        export_image_size (Sequence[int], optional): (H, W) of the dataset
            images the export (and the selection) reads; the export
            pipeline's Resize is applied to it (see
            :func:`export_image_sizes` for the default).
        profile (bool): after the timed steps of a run, profile one more
            (:func:`profile_step`: time by operator and module beside the
            FLOP counts), into the run's ``profile``.
    """

    def __init__(self, cfg, batch_size: int, iters: int = 20,
                 warmup: int = 3, device: str = 'cpu', seed: int = 0,
                 flops: bool = True, peak_tflops: Optional[float] = None,
                 prompt_bank: bool = False,
                 export_batch_size: Optional[int] = None,
                 export_image_size: Optional[Sequence[int]] = None,
                 profile: bool = False):
        if device == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError(
                'benchmark: device cuda was asked for, but CUDA is not '
                'available here (torch.cuda.is_available() is False); use '
                'device cpu.')
        if device not in ('cpu', 'cuda'):
            raise ValueError(f"benchmark: device {device!r}; use 'cpu' or "
                             "'cuda'.")
        if batch_size < 1 or warmup < 0:
            raise ValueError(f'benchmark: batch_size={batch_size} must be '
                             f'>= 1 and warmup={warmup} >= 0.')
        if export_batch_size is not None and export_batch_size < 1:
            raise ValueError('benchmark: export_batch_size='
                             f'{export_batch_size} must be >= 1.')
        if prompt_bank:
            cfg = copy.deepcopy(cfg)
            cfg.model.prompt_crop_features = dict(
                type='FixedViewBankCropFeatures', flip=False)
        self.cfg = cfg
        self.batch_size = batch_size
        self.iters = iters
        self.warmup = warmup
        self.device = device
        self.seed = seed
        self.flops = flops
        self.prompt_bank = prompt_bank
        self.profile = profile
        self.bank_build_s = None
        self.export_batch_size = export_batch_size or (
            cfg.get('pseudo_label_cfg') or {}).get('batch_size') or batch_size
        self.export_image_size = export_image_size
        self.export_sizes = None  # (image (H, W), network input (H, W))
        torch.manual_seed(seed)
        self.model = build_model(cfg, device)
        self.initial_state = snapshot_state(self.model)
        self.image_size = config_image_size(cfg)
        self.num_classes = self.model.cam_head.num_classes
        self.memory = PeakMemory(device)
        self.device_name = device_description(device)
        if peak_tflops is None and device == 'cuda':
            peak_tflops = bf16_peak_tflops(self.device_name)
        self.peak_tflops = peak_tflops if device == 'cuda' else None

    # -------------------------------------------------------------- runs
    def _batch(self) -> dict:
        return random_batch(self.batch_size, self.image_size,
                            self.num_classes, self.seed, self.device)

    def _export_sizes(self):
        """(image (H, W), network input (H, W)), see
        :func:`export_image_sizes`."""
        if self.export_sizes is None:
            self.export_sizes = export_image_sizes(self.cfg,
                                                   self.export_image_size)
        return self.export_sizes

    def _export_settings(self) -> dict:
        """The export's settings, as every export resolves them."""
        return export_settings(self.cfg)

    def _export_batch(self, batch_size: Optional[int] = None) -> dict:
        """Whole images as the export reads them: resized by its pipeline,
        with their own size as ``ori_shape`` (the CAMs' output size);
        ``export_batch_size`` of them unless ``batch_size`` says."""
        image_size, input_size = self._export_sizes()
        return random_batch(batch_size or self.export_batch_size, input_size,
                            self.num_classes, self.seed, self.device,
                            ori_shape=image_size)

    def _restart(self):
        """Initial weights (no end-of-cam snapshot; the text cache is
        emptied by the load), no gradients."""
        self.model.load_state_dict(self.initial_state)
        self.model.zero_grad(set_to_none=True)
        self.model.train()

    def _train_step_fn(self, phase: str, impl: str, batch: dict):
        names = self.model.schedule.names
        if phase not in names:
            raise ValueError(
                f'benchmark: phase {phase!r} is not in the model phases '
                f'{list(names)} of this config.')
        self._restart()
        enter_phase(self.model, phase)
        self.model.crop_features.reset()  # each run starts cold
        if phase == 'prompt' and impl == 'ours' and self.prompt_bank:
            start = time.perf_counter()
            self.model.crop_features.fill(self.model.crop_encoder, [batch])
            synchronize(self.device)
            self.bank_build_s = time.perf_counter() - start
        optim_wrapper = build_optim(self.cfg, self.model)
        if impl == 'ours':
            return lambda: self.model.train_step(batch, optim_wrapper)
        frozen_clip = impl == 'reference_frozen_clip'
        return lambda: reference_train_step(self.model, batch, optim_wrapper,
                                            frozen_clip=frozen_clip)

    def _export_fn(self, batch: dict):
        self._restart()
        self.model.eval()
        settings = self._export_settings()
        return lambda: export_batch(self.model, batch, settings)

    def _select_fn(self, batch: dict):
        """What BestCAMSelectionHook runs per batch (before its metric)."""
        self._restart()
        self.model.eval()

        def step():
            with torch.no_grad():
                return self.model.val_step(batch)

        return step

    def _inputs(self, phase: str, impl: str):
        """The batch of a phase and its step."""
        if phase == 'export':
            batch = self._export_batch()
            return batch, self._export_fn(batch)
        if phase == 'select':
            batch = self._export_batch(selection_batch_size(self.cfg))
            return batch, self._select_fn(batch)
        batch = self._batch()
        return batch, self._train_step_fn(phase, impl, batch)

    def run_export_end_to_end(self, num_images: int,
                              num_workers: Optional[int] = None,
                              data_root: Optional[str] = None) -> dict:
        """The whole export (data loading, inference, PNG writing) of
        ``num_images`` random images of the export image size, through the
        config's ``val_dataloader`` (:func:`time_export_end_to_end`).

        Returns:
            dict: its figures, with the scales and flip used.
        """
        if num_images < 1:
            raise ValueError('benchmark: the end-to-end export needs at '
                             f'least one image, got {num_images}.')
        self._restart()
        settings = self._export_settings()
        result = time_export_end_to_end(
            self.model, self.cfg, num_images, self._export_sizes()[0],
            self.export_batch_size, settings, num_workers=num_workers,
            data_root=data_root, seed=self.seed)
        result.update(scales=list(settings['scales']),
                      flip=settings['flip'], amp=settings['amp'])
        return result

    def run(self, phase: str, impl: str = 'ours') -> dict:
        """Time one phase with one implementation.

        Args:
            phase (str): one of :data:`PHASES`.
            impl (str): 'ours' (``model.train_step``), 'reference'
                (:func:`reference_train_step`: the authors' steps, CLIP
                trainable) or 'reference_frozen_clip' (the same, CLIP
                frozen); 'export' and 'select' have only 'ours'.

        Returns:
            dict: the figures of the run (see ``tools/benchmark.py``).
        """
        if phase not in PHASES:
            raise ValueError(f'benchmark: unknown phase {phase!r}; use one '
                             f'of {PHASES}.')
        if impl not in IMPLS:
            raise ValueError(f'benchmark: unknown implementation {impl!r}; '
                             f'use one of {IMPLS}.')
        if phase in INFERENCE_PHASES and impl != 'ours':
            raise ValueError(f'benchmark: the {phase} phase has no reference '
                             'implementation; time it without --reference.')
        batch, step = self._inputs(phase, impl)
        try:
            return self._measure(phase, impl, batch, step)
        finally:
            # The authors' way leaves gradients on CLIP's weights (and the
            # frozen prompts) that no optimizer zeroes; they would count in
            # the next run's memory.
            self.model.zero_grad(set_to_none=True)

    def _measure(self, phase: str, impl: str, batch: dict, step) -> dict:
        """Time ``step``, count its FLOPs; the figures of :meth:`run`."""
        batch_size = len(batch['inputs'])
        pairs = int(sum(float(s.gt_class_labels.sum())
                        for s in batch['data_samples']))
        training = phase in TRAIN_PHASES
        self.memory.reset()
        times, first, cpu_times = time_steps(step, self.iters, self.warmup,
                                             self.device)
        peak = self.memory.peak_bytes()
        stats = step_time_stats(times)
        result = dict(
            phase=phase, impl=impl, batch_size=batch_size,
            images_per_s=batch_size / stats['median'],
            pairs_per_s=pairs / stats['median'] if training else None,
            pairs_per_batch=pairs if training else None,
            step_time_s=stats,
            step_cpu_s=statistics.median(cpu_times),
            peak_memory_bytes=peak,
            step_memory_bytes=peak - self.memory.start_bytes,
            first_step_losses={
                k: float(v.detach() if torch.is_tensor(v) else v)
                for k, v in first.items()} if training else None,
            flops_per_step=None, achieved_tflops=None, mfu=None)
        if phase == 'prompt' and impl == 'ours' and self.prompt_bank:
            result['prompt_bank_build_images_per_s'] = (self.batch_size /
                                                        self.bank_build_s)
        hit_rate = getattr(self.model.crop_features, 'hit_rate', None)
        if phase == 'prompt' and impl == 'ours' and hit_rate is not None:
            # The one batch repeats: every view misses once, then hits.
            result['prompt_cache_hit_rate'] = hit_rate
        if phase in INFERENCE_PHASES:
            inference = self.model.cam_inference if phase == 'select' else \
                CAMInference(**inference_settings(self._export_settings()))
            image_size, input_size = self._export_sizes()
            result['export_settings'] = dict(
                scales=list(inference.scales), flip=inference.flip,
                amp=inference.amp, image_size=list(image_size),
                input_size=list(input_size))
        if self.flops:
            flops = count_flops(step)
            result['flops_per_step'] = flops
            result['achieved_tflops'] = flops / stats['median'] / 1e12
            if self.peak_tflops:
                result['mfu'] = result['achieved_tflops'] / self.peak_tflops
        if self.profile:
            result['profile'] = profile_step(self.model, step, self.device)
        self.model.crop_features.reset()
        return result

    # ------------------------------------------------------------ report
    def meta(self) -> dict:
        return dict(
            device=self.device, device_name=self.device_name,
            torch_version=torch.__version__,
            torch_threads=torch.get_num_threads(),
            omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
            batch_size=self.batch_size, iters=self.iters,
            warmup=self.warmup, seed=self.seed,
            image_size=list(self.image_size), num_classes=self.num_classes,
            memory_kind=self.memory.kind,
            peak_tflops_bf16=self.peak_tflops,
            flops_note=FLOPS_NOTE if self.flops else None)


def loss_difference(ours: Dict[str, float],
                    reference: Dict[str, float]) -> float:
    """Largest relative difference between the losses (keys with 'loss',
    the ones mmengine optimises; inf if those keys differ) of two dicts."""
    ours = {k: v for k, v in ours.items() if 'loss' in k}
    reference = {k: v for k, v in reference.items() if 'loss' in k}
    if set(ours) != set(reference):
        return float('inf')
    return max((abs(ours[k] - reference[k]) / max(abs(ours[k]), 1e-12)
                for k in ours), default=0.0)


def compare(runs: List[dict]) -> List[dict]:
    """Per phase timed ours and a reference way: that reference's median
    step time over ours, and how far their first-step losses are apart;
    one row per phase and reference implementation (``reference``)."""
    by_key = {(r['phase'], r['impl']): r for r in runs}
    rows = []
    for phase in PHASES:
        ours = by_key.get((phase, 'ours'))
        for impl in REFERENCE_IMPLS:
            reference = by_key.get((phase, impl))
            if ours is None or reference is None:
                continue
            rows.append(dict(
                phase=phase, reference=impl,
                speedup=reference['step_time_s']['median'] /
                ours['step_time_s']['median'],
                loss_max_rel_diff=loss_difference(
                    ours['first_step_losses'],
                    reference['first_step_losses'])))
    return rows


def run_benchmark(cfg, phases: Sequence[str], impls: Sequence[str],
                  batch_size: int, iters: int = 20, warmup: int = 3,
                  device: str = 'cpu', seed: int = 0, flops: bool = True,
                  peak_tflops: Optional[float] = None,
                  prompt_bank: bool = False,
                  export_batch_size: Optional[int] = None,
                  export_image_size: Optional[Sequence[int]] = None,
                  export_end_to_end: Optional[int] = None,
                  export_num_workers: Optional[int] = None,
                  export_data_root: Optional[str] = None,
                  profile: bool = False,
                  log=print) -> dict:
    """Time ``phases`` with ``impls`` (any of :data:`IMPLS`).

    'export' and 'select' are timed once, with ours only; with
    ``export_end_to_end=N`` the whole export of N random images is timed
    after the phases (:meth:`Benchmark.run_export_end_to_end`); with
    ``profile`` every run profiles one more step.

    Returns:
        dict: ``meta``, ``runs`` (one dict per phase and implementation),
        ``comparisons`` (phases timed both ways) and ``export_end_to_end``
        (None when not asked for).
    """
    bench = Benchmark(cfg, batch_size, iters, warmup, device, seed, flops,
                      peak_tflops, prompt_bank, export_batch_size,
                      export_image_size, profile)
    runs = []
    for phase in phases:
        for impl in impls:
            if phase in INFERENCE_PHASES and impl != 'ours':
                if 'ours' not in impls:
                    raise ValueError(
                        f'benchmark: the {phase} phase has no reference '
                        'implementation; leave out --reference.')
                continue
            log(f'[benchmark] {phase} ({impl}): {warmup} warm-up + '
                f'{iters} timed steps')
            runs.append(bench.run(phase, impl))
    end_to_end = None
    if export_end_to_end:
        log(f'[benchmark] whole export of {export_end_to_end} random images')
        end_to_end = bench.run_export_end_to_end(
            export_end_to_end, export_num_workers, export_data_root)
    return dict(meta=bench.meta(), runs=runs, comparisons=compare(runs),
                export_end_to_end=end_to_end)
