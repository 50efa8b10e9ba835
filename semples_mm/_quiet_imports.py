"""Keep two third-party start-up messages out of ``import semples_mm``.

The OpenMMLab stack this project pins prints them on every fresh import, and
neither is about the user's setup:

- mmcv-lite (onedl-mmcv) warns ``Fail to import
  ``MultiScaleDeformableAttention`` ...`` (a UserWarning raised while
  ``mmcv/cnn/bricks/transformer.py`` is imported): the lite build has no
  compiled ops, and SemPLeS uses none.
- onedl-mmsegmentation prints ``Could not import OneDL`` once from
  ``mmseg/datasets/__init__.py`` and once from
  ``mmseg/datasets/transforms/__init__.py``, where its optional OneDL dataset
  and transform fail to import (they need mmpretrain and the OneDL SDK). It
  is ``print_log(..., level=logging.DEBUG)`` without a logger, which
  mmengine turns into a plain ``print`` to stdout, whatever the level.

Exactly these are dropped, nothing else: the warning by its message and
module, the printed line by its whole text while semples_mm imports its
components (the first import of mmseg.datasets happens there).
"""
import re
import sys
import warnings
from contextlib import contextmanager

MMCV_LITE_WARNING = 'Fail to import ``MultiScaleDeformableAttention``'
MMCV_LITE_WARNING_MODULE = r'mmcv\.cnn\.bricks\.transformer$'
ONEDL_LINE = 'Could not import OneDL'


def ignore_mmcv_lite_warning():
    """A filter for mmcv-lite's MultiScaleDeformableAttention warning only.

    Added for good rather than inside ``warnings.catch_warnings()``: leaving
    that block would also drop every filter the libraries imported inside it
    install for themselves. It matches one message of one module, raised
    once, when that module is first imported.
    """
    warnings.filterwarnings(
        'ignore', message=re.escape(MMCV_LITE_WARNING), category=UserWarning,
        module=MMCV_LITE_WARNING_MODULE)


class _DropLine:
    """A stdout that forwards every line but one exact line."""

    def __init__(self, stream, line: str):
        self._stream = stream
        self._line = line
        self._pending = ''

    def write(self, text: str) -> int:
        # print() writes the text and the newline in separate calls, so
        # whole lines are assembled before they are judged.
        self._pending += text
        *lines, self._pending = self._pending.split('\n')
        for line in lines:
            if line != self._line:
                self._stream.write(line + '\n')
        return len(text)

    def flush(self):
        self._stream.flush()

    def release(self):
        """Forward an unfinished last line (never the dropped one)."""
        if self._pending:
            self._stream.write(self._pending)
            self._pending = ''

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextmanager
def quiet_third_party_imports():
    """Around the imports of semples_mm's components."""
    ignore_mmcv_lite_warning()
    stdout = sys.stdout
    filtered = _DropLine(stdout, ONEDL_LINE)
    sys.stdout = filtered
    try:
        yield
    finally:
        filtered.release()
        if sys.stdout is filtered:
            sys.stdout = stdout
