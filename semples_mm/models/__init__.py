from . import backbones, clip, crop_features, heads, losses, segmentors  # noqa: F401,E501
