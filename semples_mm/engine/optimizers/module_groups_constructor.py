"""One optimizer per named group of sub-modules (OptimWrapperDict)."""
import numbers

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

#: Optimizer arguments that are numbers in every torch optimizer that
#: takes them; a string such as lr='1e-3' fails deep inside torch, without
#: the key's name, so they are checked when the constructor is built.
NUMBER_KEYS = ('lr', 'weight_decay', 'momentum', 'dampening', 'eps',
               'alpha', 'rho', 'lr_decay', 'initial_accumulator_value',
               'lambd', 't0')
#: ... and those that are sequences of numbers (Adam's betas).
NUMBER_SEQUENCE_KEYS = ('betas', 'etas', 'step_sizes')


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_optimizer_settings(optimizer: dict, where: str) -> None:
    """Raise a TypeError naming ``where.key`` for an optimizer argument of
    the wrong type (:data:`NUMBER_KEYS`, :data:`NUMBER_SEQUENCE_KEYS`)."""
    for key, value in (optimizer or {}).items():
        if key in NUMBER_KEYS and not _is_number(value):
            raise TypeError(
                f'{where}.{key}={value!r}: need a number (e.g. 1e-3, not '
                "'1e-3'); correct it in the config.")
        if key in NUMBER_SEQUENCE_KEYS and (
                not isinstance(value, (list, tuple)) or
                not all(_is_number(v) for v in value)):
            raise TypeError(
                f'{where}.{key}={value!r}: need a sequence of numbers (e.g. '
                '(0.9, 0.999)); correct it in the config.')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ModuleGroupsOptimWrapperConstructor:
    """Builds an :class:`OptimWrapperDict` with one wrapper per group.

    Every key of ``optim_wrapper`` but ``constructor`` names a group; its
    value is an ordinary optimizer-wrapper config plus ``modules``, the
    attribute names of the model's sub-modules the group trains (default:
    the group's own name). Sub-modules that are None (an absent neck) are
    skipped. A group set to None is left out, so a config can drop a group
    it inherits (e.g. the prompts' optimizer of a config without prompts).
    Inside a group, ``paramwise_cfg`` works as usual with parameter names
    relative to the model (``backbone.layer1...``).

    Example::

        optim_wrapper = dict(
            constructor='ModuleGroupsOptimWrapperConstructor',
            cam=dict(optimizer=dict(type='AdamW', lr=1e-4),
                     modules=('backbone', 'neck', 'cam_head')),
            prompt=dict(optimizer=dict(type='AdamW', lr=2e-3),
                        modules=('prompt_learner', )))
    """

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        if paramwise_cfg is not None:
            raise ValueError(
                'ModuleGroupsOptimWrapperConstructor: put paramwise_cfg inside '
                'each group of optim_wrapper, not at its top level.')
        optim_wrapper_cfg = {name: cfg for name, cfg in
                             (optim_wrapper_cfg or {}).items()
                             if cfg is not None}
        if not optim_wrapper_cfg:
            raise ValueError('ModuleGroupsOptimWrapperConstructor: '
                             'optim_wrapper names no group.')
        self.groups = {}
        for name, cfg in optim_wrapper_cfg.items():
            cfg = dict(cfg)
            check_optimizer_settings(cfg.get('optimizer'),
                                     f'optim_wrapper.{name}.optimizer')
            modules = tuple(cfg.pop('modules', (name, )))
            group_paramwise = cfg.pop('paramwise_cfg', None)
            self.groups[name] = (modules, DefaultOptimWrapperConstructor(
                cfg, group_paramwise))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = getattr(model, 'module', model)
        wrappers = {}
        for name, (modules, constructor) in self.groups.items():
            missing = [m for m in modules if not hasattr(model, m)]
            if missing:
                raise AttributeError(
                    f'optim_wrapper.{name}.modules names {missing}, which '
                    f'{type(model).__name__} does not have.')
            # A ModuleDict holding references keeps parameter names as in the
            # model, so paramwise_cfg custom_keys read the same.
            group = nn.ModuleDict({
                m: getattr(model, m)
                for m in modules if getattr(model, m) is not None
            })
            wrappers[name] = constructor(group)
        return OptimWrapperDict(**wrappers)
