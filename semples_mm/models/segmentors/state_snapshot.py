"""A copy of a network's weights that travels in the model's state dict."""
from typing import Dict, Optional

import torch
from torch import Tensor, nn

# Buffer names cannot hold '.', the separator of state-dict keys.
_DOT = '/'


class StateSnapshot(nn.Module):
    """Holds a copy of other modules' state (``{'backbone.conv.weight':
    tensor, ...}``) as buffers, so that checkpoints carry it, a resume
    restores it and distributed start-up broadcasts it like any weight.

    Empty until :meth:`store`; loading a state dict makes the snapshot
    exactly the one saved there (or empty when the file holds none), so a
    model loads checkpoints written before or after its snapshot was taken.
    """

    def __init__(self):
        super().__init__()
        # follows .to(); new buffers are created on its device
        self.register_buffer('_device', torch.empty(0), persistent=False)

    def _names(self):
        return [name for name, _ in self.named_buffers(recurse=False)
                if name != '_device']

    def clear(self) -> None:
        for name in self._names():
            delattr(self, name)

    def store(self, state: Dict[str, Tensor]) -> None:
        """Replace the snapshot by a detached copy of ``state``."""
        self.clear()
        for key, value in state.items():
            self.register_buffer(key.replace('.', _DOT),
                                 value.detach().clone())

    def as_dict(self) -> Optional[Dict[str, Tensor]]:
        """The snapshot (keys with their dots), or None when empty."""
        names = self._names()
        return {name.replace(_DOT, '.'): getattr(self, name)
                for name in names} if names else None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        self.clear()
        for key, value in state_dict.items():
            name = key[len(prefix):]
            if key.startswith(prefix) and '.' not in name and name:
                self.register_buffer(name, torch.empty_like(
                    value, device=self._device.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
