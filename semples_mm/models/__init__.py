from . import (backbones, clip, crop_features, heads, losses,  # noqa: F401
               segmentors)
