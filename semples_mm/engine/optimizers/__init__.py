from .bf16_optim_wrapper import BF16OptimWrapper
from .module_groups_constructor import ModuleGroupsOptimWrapperConstructor

__all__ = ['BF16OptimWrapper', 'ModuleGroupsOptimWrapperConstructor']
