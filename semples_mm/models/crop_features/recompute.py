"""Crop features recomputed at every step, as the authors do."""
from mmseg.registry import MODELS

from .base import CropFeatureSource


@MODELS.register_module()
class RecomputeCropFeatures(CropFeatureSource):
    """Runs the frozen CAM network and CLIP's image tower on every batch.

    Right for random views (the authors' random crops), which never repeat.
    """

    def __call__(self, encoder, inputs, labels, data_samples):
        if inputs is None:
            raise ValueError(
                'RecomputeCropFeatures needs the batch images; the prompt '
                "phase's pipeline must load them (LoadImageFromFile).")
        return encoder.features(inputs, labels)
