"""What produced the masks in an output folder, so exports never mix."""
import glob
import json
import os
import os.path as osp
import tempfile
import time
from typing import Optional

from mmengine.logging import print_log

from ..utils.fingerprint import json_fingerprint, state_fingerprint
from .settings import describe

MANIFEST_NAME = '.export.json'


def export_producer(model, dataset, settings: dict,
                    split: Optional[str]) -> dict:
    """What the masks of an export depend on: the CAM network's weights
    (a digest), the settings, the image list and the classes; their
    ``fingerprint``."""
    state = model.cam_network_state() if hasattr(
        model, 'cam_network_state') else model.state_dict()
    metainfo = getattr(dataset, 'metainfo', None) or {}
    producer = dict(
        model=type(model).__name__, weights=state_fingerprint(state),
        settings=describe(settings),
        ann_file=osp.abspath(dataset.ann_file) if getattr(
            dataset, 'ann_file', None) else None,
        num_images=len(dataset) if hasattr(dataset, '__len__') else None,
        classes=list(metainfo.get('classes') or []))
    producer['fingerprint'] = json_fingerprint(producer)
    producer['split'] = split  # a name, not an input of the masks
    return producer


def read_manifest(out_dir: str) -> Optional[dict]:
    path = osp.join(out_dir, MANIFEST_NAME)
    if not osp.isfile(path):
        return None
    with open(path) as file:
        return json.load(file)


def write_manifest(out_dir: str, manifest: dict) -> None:
    handle, temp = tempfile.mkstemp(dir=out_dir, suffix='.json.part')
    with os.fdopen(handle, 'w') as file:
        json.dump(manifest, file, indent=2)
    os.replace(temp, osp.join(out_dir, MANIFEST_NAME))


def _describe(manifest: dict) -> str:
    settings = manifest.get('settings', {})
    return (f"{manifest.get('model')} weights {manifest.get('weights')}, "
            f"split {manifest.get('split')}, scales "
            f"{settings.get('scales')}, flip {settings.get('flip')}, "
            f"bg_threshold {settings.get('bg_threshold')}, crf "
            f"{settings.get('crf')}, started {manifest.get('started')}"
            + (f", checkpoint {manifest['checkpoint']}"
               if manifest.get('checkpoint') else ''))


def claim_out_dir(out_dir: str, producer: dict, overwrite: bool = False,
                  checkpoint: Optional[str] = None) -> str:
    """Make ``out_dir`` this export's: 'continue' when it holds (part of)
    the same export, 'new' when empty or cleaned (``overwrite``); raises
    when it holds masks of another export or of an unknown one."""
    os.makedirs(out_dir, exist_ok=True)
    existing = read_manifest(out_dir)
    masks = glob.glob(osp.join(out_dir, '*.png'))
    if existing is not None and \
            existing.get('fingerprint') == producer['fingerprint']:
        return 'continue'
    if existing is not None or masks:
        held = (f'{len(masks)} masks of another export ({_describe(existing)})'
                if existing is not None else
                f'{len(masks)} masks whose export is unknown (no '
                f'{MANIFEST_NAME})')
        if not overwrite:
            raise RuntimeError(
                f'{out_dir} holds {held}; this export differs '
                f"(weights {producer['weights']}, settings "
                f"{producer['settings']}). Write into another folder, or "
                'pass overwrite (--overwrite) to replace them.')
        print_log(f'{out_dir}: removing {held} (overwrite)',
                  logger='current')
        for path in masks:
            os.remove(path)
    write_manifest(out_dir, dict(
        producer, checkpoint=checkpoint, complete=False,
        started=time.strftime('%Y-%m-%d %H:%M:%S')))
    return 'new'


def finish_manifest(out_dir: str, num_images: int) -> None:
    """Mark the folder's export complete."""
    manifest = read_manifest(out_dir)
    manifest.update(complete=True, num_images_written=num_images,
                    finished=time.strftime('%Y-%m-%d %H:%M:%S'))
    write_manifest(out_dir, manifest)
