"""Small model helpers shared by hooks, loops and tools."""
from mmengine.model import is_model_wrapper


def unwrap_model(model):
    """The model inside a DDP (or other mmengine) wrapper, else itself."""
    return model.module if is_model_wrapper(model) else model


def phase_schedule(model, user: str):
    """The ``PhaseSchedule`` of a (wrapped) phased model such as SemPLeS.

    Args:
        model: the runner's model.
        user (str): who asks, for the error message.
    """
    model = unwrap_model(model)
    schedule = getattr(model, 'schedule', None)
    if schedule is None:
        raise AttributeError(
            f'{user} needs a model with phases (model.schedule, e.g. '
            f'SemPLeS); {type(model).__name__} has none. Give iteration '
            'numbers instead, or use a phased model.')
    return schedule
