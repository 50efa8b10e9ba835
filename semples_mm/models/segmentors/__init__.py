from .phased_ddp import PhasedDistributedDataParallel
from .semples import SemPLeS

__all__ = ['PhasedDistributedDataParallel', 'SemPLeS']
