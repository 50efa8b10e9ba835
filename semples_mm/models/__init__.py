from . import backbones, clip, heads, losses, segmentors  # noqa: F401
