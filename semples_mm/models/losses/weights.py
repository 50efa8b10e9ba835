"""Build-time checks of loss weights."""
import math


def check_weights(owner: str, **weights) -> None:
    """Raise, naming the argument and its value, unless every weight is a
    finite number >= 0 (a typo in a config fails when the model is built,
    not when its phase starts hours later)."""
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f'{owner}: {name}={value!r} must be a finite '
                             'number >= 0; fix it in the model config.')
