from . import clip, crop_features, heads, losses, segmentors  # noqa: F401
