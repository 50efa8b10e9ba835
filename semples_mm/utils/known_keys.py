"""Settings dicts refuse keys they do not know, naming the nearest known
one: a typo must fail at build, not be dropped."""
import difflib
from typing import Iterable


def check_known_keys(values: dict, known: Iterable[str], where: str) -> None:
    """Raise a KeyError naming each key of ``values`` not in ``known``.

    Args:
        values (dict): the settings, e.g. a config's ``model.test_cfg``.
        known (Iterable[str]): the keys they may hold.
        where (str): the config key they came from, for the message.
    """
    known = list(known)
    unknown = sorted(set(values or {}) - set(known), key=str)
    if not unknown:
        return
    guesses = {key: difflib.get_close_matches(str(key), known, n=1)
               for key in unknown}
    guesses = [(key, close[0]) for key, close in guesses.items() if close]
    hint = ''
    if len(unknown) == 1 and guesses:
        hint = f' (did you mean {guesses[0][1]!r}?)'
    elif guesses:
        hint = ' (did you mean ' + ', '.join(
            f'{close!r} for {key!r}' for key, close in guesses) + '?)'
    raise KeyError(f'{where}: unknown key(s) {unknown}{hint}; known: '
                   f'{known}. Correct or remove them.')
