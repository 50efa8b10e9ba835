from . import clip, heads, losses, segmentors  # noqa: F401
