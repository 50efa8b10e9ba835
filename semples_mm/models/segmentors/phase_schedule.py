"""The phases of a SemPLeS run, the iterations each one owns and their
learning rates."""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

from mmengine.optim import OptimWrapper, OptimWrapperDict

PHASE_NAMES = ('cam', 'match', 'prompt', 'refine')
# The model parts (config keys) each phase's loss needs.
PARTS_NEEDED_BY = dict(clip=('match', 'prompt', 'refine'),
                       prompt_learner=('prompt', 'refine'),
                       match_loss=('match', 'refine'),
                       prompt_loss=('prompt', ), refine_loss=('refine', ))


class Phase(NamedTuple):
    """One phase: its name, length, the optimizer it steps (a key of the
    runner's ``OptimWrapperDict``), the factor on that optimizer's learning
    rates, the iterations it owns, ``start <= i < end`` (0-based), and its
    epochs (None: not counted in epochs)."""
    name: str
    iters: int
    optimizer: str
    lr_mult: float
    start: int
    end: int
    epochs: Optional[int] = None


class PhaseSchedule:
    """The phases of ``model.phases``, in training order, and the learning
    rate of every iteration.

    The one place that knows which phase owns an iteration: the segmentor
    (which optimizer to step, with which learning rate, when to start it
    afresh), :class:`PhasedTrainLoop` (run length, per-phase dataloaders,
    validation at phase ends), the pseudo-label, selection and
    visualisation hooks (phase ends) and the experiment runner all read it.

    Within a phase the learning rate is ``lr * lr_mult * f(t)``, computed
    from the iteration alone so that a resumed run is exact. ``t`` counts
    the phase's epochs (iterations when the phase gives no ``epochs``); the
    cosine is timm's: ``f(t) = eta + (1 - eta) (1 + cos(pi t / T)) / 2``
    over the phase's ``T`` epochs, after a linear warm-up from
    ``warmup_ratio`` over the first ``warmup_epochs`` (the cosine not
    shifted by it, as timm's ``warmup_prefix=False``). By default ``t``
    moves every iteration; ``by_epoch=True`` steps it as the authors' timm
    scheduler, ``scheduler.step(epoch)`` after each epoch: epoch ``e``
    trains at ``f(max(e - 1, 0))``, so the first two epochs at the start
    value and the last at ``f(T - 2)``.

    Args:
        phases (Sequence[dict]): ``dict(name=..., iters=..., optimizer=...,
            lr_mult=1.0, epochs=None)`` in training order; names from
            ('cam', 'match', 'prompt', 'refine'), each at most once, in that
            order. ``optimizer`` names the optimizer wrapper the phase steps
            (e.g. 'cam' or 'prompt' of
            ``ModuleGroupsOptimWrapperConstructor``); ``epochs`` divides
            ``iters``.
        lr_schedule (dict, optional): ``policy`` 'cosine' (default) or
            'constant'; ``eta_min_ratio`` (default 0), the cosine's final
            factor; ``by_epoch`` (default False); ``warmup_epochs`` (default
            0) and ``warmup_ratio`` (default 0), the warm-up's length and
            start factor. ``by_epoch`` and warm-ups need every phase's
            ``epochs``.

    Example:
        >>> schedule = PhaseSchedule([
        ...     dict(name='cam', iters=4, optimizer='cam'),
        ...     dict(name='prompt', iters=2, optimizer='prompt')])
        >>> schedule.at(4).name, schedule['prompt'].end, schedule.total_iters
        ('prompt', 6, 6)
    """

    def __init__(self, phases: Sequence[dict],
                 lr_schedule: Optional[dict] = None):
        checked: List[Phase] = []
        end = 0
        for i, phase in enumerate(phases):
            phase = dict(phase)
            unknown = set(phase) - {'name', 'iters', 'optimizer', 'lr_mult',
                                    'epochs'}
            if unknown:
                raise ValueError(
                    f'model.phases[{i}] has unknown key(s) {sorted(unknown)};'
                    ' a phase is dict(name=, iters=, optimizer=, lr_mult=, '
                    'epochs=).')
            name, iters = phase.get('name'), phase.get('iters')
            optimizer = phase.get('optimizer')
            lr_mult = phase.get('lr_mult', 1.0)
            if name not in PHASE_NAMES:
                raise ValueError(f'model.phases[{i}].name={name!r} is not one '
                                 f'of {PHASE_NAMES}.')
            if not isinstance(iters, int) or isinstance(iters, bool) or \
                    iters < 1:
                raise ValueError(f'model.phases[{i}].iters={iters!r} must be '
                                 'a positive int.')
            if not isinstance(optimizer, str) or not optimizer:
                raise ValueError(
                    f'model.phases[{i}] ({name}) must name the optimizer it '
                    f"steps, e.g. optimizer='cam'; got {optimizer!r}.")
            if not isinstance(lr_mult, (int, float)) or \
                    isinstance(lr_mult, bool) or lr_mult <= 0:
                raise ValueError(f'model.phases[{i}].lr_mult={lr_mult!r} '
                                 'must be a positive number.')
            epochs = phase.get('epochs')
            if epochs is not None and (
                    not isinstance(epochs, int) or isinstance(epochs, bool)
                    or epochs < 1 or iters % epochs):
                raise ValueError(
                    f'model.phases[{i}].epochs={epochs!r} must be a positive '
                    f'int that divides its iters={iters}.')
            checked.append(Phase(name, iters, optimizer, float(lr_mult), end,
                                 end + iters, epochs))
            end += iters
        order = [PHASE_NAMES.index(p.name) for p in checked]
        if not checked or order != sorted(set(order)):
            raise ValueError(
                'model.phases must name each phase at most once, in the '
                f'order {PHASE_NAMES}; got {[p.name for p in checked]}.')
        self.phases: Tuple[Phase, ...] = tuple(checked)
        self.lr_schedule = self._checked_lr_schedule(lr_schedule or {})

    def _checked_lr_schedule(self, cfg: dict) -> dict:
        defaults = dict(policy='cosine', eta_min_ratio=0.0, by_epoch=False,
                        warmup_epochs=0, warmup_ratio=0.0)
        unknown = set(cfg) - set(defaults)
        if unknown:
            raise ValueError(
                f'model.lr_schedule has unknown key(s) {sorted(unknown)}; it '
                f'takes {sorted(defaults)}.')
        schedule = dict(defaults, **cfg)
        if schedule['policy'] not in ('cosine', 'constant'):
            raise ValueError(f"model.lr_schedule.policy="
                             f"{schedule['policy']!r}; use 'cosine' or "
                             "'constant'.")
        for key in ('eta_min_ratio', 'warmup_ratio'):
            ratio = schedule[key]
            if isinstance(ratio, bool) or not isinstance(
                    ratio, (int, float)) or not 0 <= ratio <= 1:
                raise ValueError(f'model.lr_schedule.{key} must be a number '
                                 f'in [0, 1], got {ratio!r}.')
        warmup = schedule['warmup_epochs']
        if not isinstance(warmup, int) or isinstance(warmup, bool) or \
                warmup < 0:
            raise ValueError('model.lr_schedule.warmup_epochs must be an int '
                             f'>= 0, got {warmup!r}.')
        by_epochs = [p.name for p in self.phases if p.epochs is None]
        if (schedule['by_epoch'] or warmup) and by_epochs:
            raise ValueError(
                'model.lr_schedule counts epochs (by_epoch or warmup_epochs) '
                f'but model.phases {by_epochs} give no epochs; add epochs=N '
                'to each phase.')
        return schedule

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(p.name for p in self.phases)

    @property
    def total_iters(self) -> int:
        """Iterations of all phases together (the config's max_iters)."""
        return self.phases[-1].end

    @property
    def optimizers(self) -> Tuple[str, ...]:
        """The optimizer names the phases step, each once, in order."""
        return tuple(dict.fromkeys(p.optimizer for p in self.phases))

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(f'no phase {name!r} in model.phases {list(self.names)}')

    def __iter__(self):
        return iter(self.phases)

    def at(self, iteration: int) -> Phase:
        """The phase that trains iteration ``iteration`` (0-based); the last
        phase for iterations past the end."""
        for phase in self.phases:
            if iteration < phase.end:
                return phase
        return self.phases[-1]

    def lr_factor(self, iteration: int) -> float:
        """The factor on the optimizer's configured learning rates at
        ``iteration`` (0-based): the owning phase's ``lr_mult`` times
        ``f(t)`` of the class docstring."""
        phase = self.at(iteration)
        schedule = self.lr_schedule
        if schedule['policy'] == 'constant':
            return phase.lr_mult
        epochs = phase.epochs or phase.iters  # T, in epochs
        per_epoch = phase.iters // epochs
        done = iteration - phase.start
        t = max(done // per_epoch - 1, 0) if schedule['by_epoch'] else \
            done / per_epoch
        warmup = schedule['warmup_epochs']
        if t < warmup:
            start = schedule['warmup_ratio']
            return phase.lr_mult * (start + t * (1 - start) / warmup)
        low = schedule['eta_min_ratio']
        return phase.lr_mult * (
            low + (1 - low) * 0.5 * (1 + math.cos(math.pi * t / epochs)))

    def check_parts(self, **parts) -> None:
        """Raise if a phase lacks a model part its loss needs (``parts``:
        config key -> config or None)."""
        for key, cfg in parts.items():
            needed_by = [p for p in PARTS_NEEDED_BY[key] if p in self]
            if needed_by and not cfg:
                raise ValueError(f'phases {needed_by} need model.{key} in '
                                 'the config.')

    def optim_wrapper(self, name: str, optim_wrapper) -> OptimWrapper:
        """The wrapper phase ``name`` steps: its entry of an
        ``OptimWrapperDict``, or a plain wrapper when the phases name one
        optimizer only."""
        wanted = self[name].optimizer
        if isinstance(optim_wrapper, OptimWrapperDict):
            if wanted not in optim_wrapper:
                raise KeyError(
                    f"phase '{name}' steps optim_wrapper.{wanted}, which the "
                    f'config does not define (it has '
                    f'{list(optim_wrapper.keys())}).')
            return optim_wrapper[wanted]
        if len(self.optimizers) > 1:
            raise TypeError(
                f'model.phases step {self.optimizers}, so optim_wrapper '
                'needs those groups (ModuleGroupsOptimWrapperConstructor).')
        return optim_wrapper

    def __repr__(self) -> str:
        return 'PhaseSchedule(' + ', '.join(
            f'{p.name}[{p.start}:{p.end}]->{p.optimizer}'
            for p in self.phases) + ')'
