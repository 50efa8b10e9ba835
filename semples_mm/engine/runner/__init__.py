from .phased_train_loop import PhasedTrainLoop, merge_dataloader_cfg

__all__ = ['PhasedTrainLoop', 'merge_dataloader_cfg']
