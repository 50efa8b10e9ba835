"""The runner's summary file: results, started and finished steps and
their inputs."""
import json
import os.path as osp
import time
from typing import Callable, Optional

from mmengine.dist import barrier, is_main_process
from mmengine.logging import print_log

from semples_mm.utils.atomic_file import atomic_write
from semples_mm.utils.fingerprint import changed_keys, flatten
from semples_mm.utils.read_back import read_json


class InputsChanged(RuntimeError):
    """A step's inputs changed since it ran (or started) and reruns were
    refused."""


class ExperimentRecord:
    """``<work_dir>/summary.json``, rewritten atomically after every change.

    ``steps[name]`` holds ``status`` ('running' from the moment the step
    starts, 'done' once it finished), ``inputs`` (what the step depends on,
    flattened to ``{key: repr}``, recorded when it starts), and once done
    ``wall_s`` (seconds of the run that finished the step; runs that were
    killed do not count) and ``result``. A step that was started or
    finished with other inputs than today's runs again from scratch
    (``on_changed`` moves its outputs aside first: a killed training must
    not be resumed under edited settings), and every later step has the
    changed step's outputs among its inputs, so it follows; with
    ``no_rerun``, :class:`InputsChanged` names what changed instead. A
    finished step with today's inputs is skipped while its outputs exist.

    Under several processes every rank keeps the record and takes the
    same decisions; rank 0 alone writes the file and changes outputs, and
    every step ends at a barrier, so that the next step's checks see its
    outputs on every rank.

    Args:
        path (str): the JSON file; read if it exists.
        no_rerun (bool): refuse to rerun a step whose inputs changed.
    """

    def __init__(self, path: str, no_rerun: bool = False):
        self.path = path
        self.no_rerun = no_rerun
        self.data = read_json(
            path, 'Delete it to let the runner check its steps afresh '
            'from their outputs.') if osp.exists(path) else {}
        self.data.setdefault('steps', {})
        self.visited = []  # the steps of this invocation, in order

    def save(self):
        if not is_main_process():
            return
        with atomic_write(self.path) as file:
            json.dump(self.data, file, indent=2, sort_keys=True)

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
            function (callable): does the step (continuing what a killed
                run of it left, with the same inputs); its return value
                (JSON, or None) is stored as the step's ``result``.
            inputs (dict): what the step depends on (configs, settings,
                digests of upstream outputs and of the data).
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
        self.visited.append(step)
        entry = self.data['steps'].get(step, {})
        status, stored = entry.get('status'), entry.get('inputs')
        if status in ('running', 'done') and stored is not None and \
                stored != flat:
            self._inputs_changed(step, status, changed_keys(stored, flat),
                                 on_changed)
            reason = None
        elif status == 'done':
            reason = None
            if finished is None or finished():
                reason = f'marked done in {self.path}'
            else:
                print_log(f'[experiment] step {step}: marked done, but its '
                          'outputs are missing or broken; running it again',
                          logger='current')
        else:  # never started, or killed with these inputs: continue it
            reason = finished() if finished is not None else None
        if reason:
            print_log(f'[experiment] step {step}: skipped ({reason})',
                      logger='current')
            self.data['steps'][step] = dict(
                entry, status='done', skipped_in_last_run=True,
                inputs=stored or flat)
            self.save()
            barrier()
            return False
        print_log(f'[experiment] step {step}: ' + (
            'continuing it (killed before it finished)'
            if status == 'running' and stored == flat else 'running'),
            logger='current')
        self.data['steps'][step] = dict(
            status='running', inputs=flat,
            started=time.strftime('%Y-%m-%d %H:%M:%S'))
        self.save()
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
        print_log(f'[experiment] step {step}: done in {wall} s',
                  logger='current')
        return True

    def _inputs_changed(self, step, status, changes, on_changed):
        """Refuse (``no_rerun``) or set the step's outputs aside."""
        when = 'since it ran' if status == 'done' else \
            'since it started (it was killed before it finished)'
        if self.no_rerun:
            raise InputsChanged(
                f'[experiment] step {step}: its inputs changed ({changes}) '
                f'{when}; rerun without --no-rerun to redo it and the steps '
                'after it, or restore the settings.')
        print_log(f'[experiment] step {step}: inputs changed ({changes}) '
                  f'{when}; running it again', logger='current')
        if on_changed is not None and is_main_process():
            on_changed()
        barrier()
