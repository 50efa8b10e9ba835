"""The pipeline's summary file: results, finished steps and their inputs."""
import json
import os
import os.path as osp
import tempfile
import time
from typing import Callable, Optional

from mmengine.dist import barrier, is_main_process
from mmengine.logging import print_log

from ..utils.fingerprint import changed_keys, flatten


class InputsChanged(RuntimeError):
    """A finished step's inputs changed and reruns were refused."""


class PipelineRecord:
    """``<work_dir>/summary.json``, rewritten atomically after every change.

    ``steps[name]`` holds ``status`` ('done'), ``wall_s`` (seconds of the
    run that finished the step; runs that were killed do not count),
    ``inputs`` (what the step depended on, flattened to ``{key: repr}``)
    and ``result``. A finished step is skipped only while its inputs are
    the same; when they changed, it runs again (every later step has the
    changed step's outputs among its inputs, so it follows), or, with
    ``no_rerun``, :class:`InputsChanged` names what changed.

    Under several processes every rank keeps the record and takes the
    same decisions; rank 0 alone writes the file and changes outputs, and
    every step ends at a barrier, so that the next step's checks see its
    outputs on every rank.

    Args:
        path (str): the JSON file; read if it exists.
        no_rerun (bool): refuse to rerun a finished step whose inputs
            changed.
    """

    def __init__(self, path: str, no_rerun: bool = False):
        self.path = path
        self.no_rerun = no_rerun
        self.data = {}
        if osp.exists(path):
            with open(path) as file:
                try:
                    self.data = json.load(file)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f'{path} is not valid JSON ({error}); delete it to '
                        'let the pipeline check its steps afresh') from error
        self.data.setdefault('steps', {})

    def save(self):
        if not is_main_process():
            return
        folder = osp.dirname(osp.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        handle, temp_path = tempfile.mkstemp(dir=folder, suffix='.json.part')
        with os.fdopen(handle, 'w') as file:
            json.dump(self.data, file, indent=2, sort_keys=True)
        os.replace(temp_path, self.path)

    def update(self, **results):
        self.data.update(results)
        self.save()

    def result(self, step: str):
        """The stored result of a finished step (None if none)."""
        return self.data['steps'].get(step, {}).get('result')

    def run_step(self, step: str, function: Callable, inputs: dict,
                 finished: Optional[Callable[[], Optional[str]]] = None,
                 on_changed: Optional[Callable[[], None]] = None) -> bool:
        """Run ``function()`` unless the step is finished with these inputs.

        Args:
            step (str): step name.
            function (callable): does the step; its return value (JSON, or
                None) is stored as the step's ``result``.
            inputs (dict): what the step depends on (configs, settings,
                digests of upstream outputs).
            finished (callable, optional): a reason (str) when the step's
                outputs exist (and load), else None: a step marked done
                whose outputs are gone or broken runs again, and outputs
                found without a record (e.g. a summary.json deleted by
                hand) count as done with the inputs as they are now.
            on_changed (callable, optional): called before a rerun caused by
                changed inputs (e.g. to move stale outputs aside).

        Returns:
            bool: True if the step ran, False if it was skipped.
        """
        flat = flatten(inputs)
        entry = self.data['steps'].get(step, {})
        reason = None
        if entry.get('status') == 'done':
            stored = entry.get('inputs')
            missing = finished is not None and not finished()
            if missing:
                print_log(f'[pipeline] step {step}: marked done, but its '
                          'outputs are missing or broken; running it again',
                          logger='current')
            elif stored is None or stored == flat:
                reason = f'marked done in {self.path}'
            else:
                changes = changed_keys(stored, flat)
                if self.no_rerun:
                    raise InputsChanged(
                        f'[pipeline] step {step}: its inputs changed since '
                        f'it ran ({changes}); rerun without --no-rerun to '
                        'redo it and the steps after it, or restore the '
                        'settings.')
                print_log(f'[pipeline] step {step}: inputs changed '
                          f'({changes}); running it again', logger='current')
                if on_changed is not None and is_main_process():
                    on_changed()
                barrier()
        elif finished is not None:
            reason = finished()
        if reason:
            print_log(f'[pipeline] step {step}: skipped ({reason})',
                      logger='current')
            entry = self.data['steps'].setdefault(step, {})
            entry.update(status='done', skipped_in_last_run=True,
                         inputs=entry.get('inputs') or flat)
            self.save()
            barrier()
            return False
        print_log(f'[pipeline] step {step}: running', logger='current')
        start = time.perf_counter()
        result = function()
        wall = round(time.perf_counter() - start, 1)
        entry = dict(status='done', wall_s=wall, skipped_in_last_run=False,
                     inputs=flat)
        if result is not None:  # as the file will hold it (str keys, lists)
            entry['result'] = json.loads(json.dumps(result))
        self.data['steps'][step] = entry
        self.save()
        barrier()
        print_log(f'[pipeline] step {step}: done in {wall} s',
                  logger='current')
        return True
