"""The pipeline's summary file: results and which steps are finished."""
import json
import os
import os.path as osp
import tempfile
import time

from mmengine.logging import print_log


class PipelineRecord:
    """``<work_dir>/summary.json``, rewritten atomically after every change.

    ``steps[name]`` holds ``status`` ('done') and ``wall_s`` (seconds of the
    run that finished the step; time spent in runs that were killed is not
    counted). Results live beside ``steps`` under their own keys.

    Args:
        path (str): the JSON file; read if it exists.
    """

    def __init__(self, path):
        self.path = path
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
        folder = osp.dirname(osp.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        handle, temp_path = tempfile.mkstemp(dir=folder, suffix='.json.part')
        with os.fdopen(handle, 'w') as file:
            json.dump(self.data, file, indent=2, sort_keys=True)
        os.replace(temp_path, self.path)

    def update(self, **results):
        self.data.update(results)
        self.save()

    def is_done(self, step):
        return self.data['steps'].get(step, {}).get('status') == 'done'

    def run_step(self, step, function, finished=None):
        """Run ``function()`` unless the step is finished.

        Args:
            step (str): step name.
            function (callable): does the step; its return value (a dict or
                None) is stored under ``steps[step]['result']``.
            finished (callable, optional): returns a reason (str) when the
                step's outputs already exist although the record does not
                say so (e.g. a summary.json deleted by hand), else None.

        Returns:
            bool: True if the step ran, False if it was skipped.
        """
        reason = 'marked done in ' + self.path if self.is_done(step) else (
            finished() if finished is not None else None)
        if reason:
            print_log(f'[pipeline] step {step}: skipped ({reason})',
                      logger='current')
            entry = self.data['steps'].setdefault(step, {})
            entry['status'] = 'done'
            entry['skipped_in_last_run'] = True
            self.save()
            return False
        print_log(f'[pipeline] step {step}: running', logger='current')
        start = time.perf_counter()
        result = function()
        wall = round(time.perf_counter() - start, 1)
        entry = dict(status='done', wall_s=wall, skipped_in_last_run=False)
        if result is not None:
            entry['result'] = result
        self.data['steps'][step] = entry
        self.save()
        print_log(f'[pipeline] step {step}: done in {wall} s',
                  logger='current')
        return True
