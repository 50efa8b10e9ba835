"""`import semples_mm` keeps mmcv-lite's and onedl-mmsegmentation's import
noise to itself (semples_mm/_quiet_imports.py)."""
import subprocess

import pytest

NOISE = ('Fail to import ``MultiScaleDeformableAttention``',
         'Could not import OneDL')


def _run(python_exe, python_env, code):
    # -W always: a warning shows on every occurrence, so only a filter of
    # our own can hide it.
    done = subprocess.run([python_exe, '-W', 'always', '-c', code],
                          env=python_env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_import_semples_mm_prints_none_of_the_noise(python_exe, python_env):
    # Control: the stack does print both when imported without semples_mm,
    # else there is nothing left to silence and this test proves nothing.
    stdout, stderr = _run(python_exe, python_env,
                          'import mmcv.cnn.bricks.transformer, mmseg.datasets')
    if not all(message in stdout + stderr for message in NOISE):
        pytest.skip('this mmcv / mmseg install prints none of the messages')
    assert stdout.count('Could not import OneDL') == 2
    stdout, stderr = _run(python_exe, python_env,
                          "import semples_mm; print('imported')")
    for message in NOISE:
        assert message not in stdout and message not in stderr
    # other output still comes through the stdout filter, lines intact
    assert stdout == 'imported\n'
