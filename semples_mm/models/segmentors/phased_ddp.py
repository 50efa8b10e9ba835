"""DDP for models that step a different optimizer in each phase."""
from mmengine.model import MMDistributedDataParallel
from mmseg.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class PhasedDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` whose ``train_step`` steps the optimizer
    that the wrapped model's current phase names
    (``module.active_optim_wrapper``), e.g. :class:`SemPLeS`.

    mmengine's DDP expects one optimizer; a SemPLeS phase trains either the
    CAM network or the prompts, so the parameters a phase does not use get
    no gradient: build it with ``find_unused_parameters=True``.
    """

    def train_step(self, data, optim_wrapper):
        wrapper = self.module.active_optim_wrapper(optim_wrapper)
        with wrapper.optim_context(self):
            data = self.module.data_preprocessor(data, training=True)
            losses = self._run_forward(data, mode='loss')
        parsed_loss, log_vars = self.module.parse_losses(losses)
        wrapper.update_params(parsed_loss)
        return log_vars
