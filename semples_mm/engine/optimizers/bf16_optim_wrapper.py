"""bfloat16 autocast for training steps on any device, CPUs included."""
from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward passes run under ``torch.autocast``
    with bfloat16.

    mmengine's ``AmpOptimWrapper`` needs a GPU; this is what ``--amp``
    selects on a CPU (``semples_mm.utils.launch.enable_amp``), where CPUs
    with AVX512-BF16 or AMX run convolutions and matmuls faster in bf16.
    bf16 keeps fp32's exponent range, so no loss scaling is needed.

    Args:
        device_type (str, optional): autocast device type; None takes the
            device of the model's first parameter at each step.
        **kwargs: ``OptimWrapper`` arguments (optimizer, accumulative
            counts, clip_grad).
    """

    def __init__(self, device_type: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module):
        device_type = self.device_type or next(
            model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=torch.bfloat16):
            yield
