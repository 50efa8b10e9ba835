"""What produced the masks in an output folder, so exports never mix."""
import glob
import json
import os
import os.path as osp
import time
from typing import Dict, Optional

from mmengine.logging import print_log

from ..utils.atomic_file import atomic_write
from ..utils.fingerprint import json_fingerprint, state_fingerprint
from ..utils.read_back import DamagedFile, read_json
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
    """The folder's ``.export.json`` (None if it has none); a damaged one
    raises :class:`DamagedFile` naming it."""
    path = osp.join(out_dir, MANIFEST_NAME)
    if not osp.exists(path):
        return None
    return read_json(path, (
        'Without it the masks of the folder cannot be told apart from '
        "another export's: export again with overwrite (--overwrite; the "
        'experiment runner does so itself) or into another folder.'))


def write_manifest(out_dir: str, manifest: dict) -> None:
    with atomic_write(osp.join(out_dir, MANIFEST_NAME)) as file:
        json.dump(manifest, file, indent=2)


def mask_sizes(out_dir: str) -> Dict[str, int]:
    """``{file name: bytes}`` of the folder's PNG masks."""
    return {osp.basename(path): osp.getsize(path)
            for path in glob.glob(osp.join(out_dir, '*.png'))}


def damaged_masks(out_dir: str, manifest: dict) -> Dict[str, str]:
    """The masks a complete export recorded (``files``: name -> bytes)
    that are missing or have another size now (truncated, replaced):
    ``{name: why}``; cheap, one stat per file."""
    damaged = {}
    for name, size in sorted((manifest.get('files') or {}).items()):
        path = osp.join(out_dir, name)
        if not osp.isfile(path):
            damaged[name] = 'missing'
        elif osp.getsize(path) != size:
            damaged[name] = (f'{osp.getsize(path)} bytes, written with '
                             f'{size}')
    return damaged


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
    the same export (masks that differ from the sizes a complete export
    recorded are removed, to be written again), 'new' when empty or
    cleaned (``overwrite``); raises when it holds masks of another export
    or of an unknown one (no or a damaged ``.export.json``)."""
    os.makedirs(out_dir, exist_ok=True)
    try:
        existing, damage = read_manifest(out_dir), None
    except DamagedFile as error:
        existing, damage = None, error
    masks = glob.glob(osp.join(out_dir, '*.png'))
    if existing is not None and \
            existing.get('fingerprint') == producer['fingerprint']:
        for name, why in damaged_masks(out_dir, existing).items():
            print_log(f'{out_dir}: {name} ({why}): writing it again',
                      logger='current')
            if osp.exists(osp.join(out_dir, name)):
                os.remove(osp.join(out_dir, name))
        return 'continue'
    if existing is not None or masks or damage is not None:
        held = (f'{len(masks)} masks of another export ({_describe(existing)})'
                if existing is not None else
                f'{len(masks)} masks whose export is unknown ({damage})'
                if damage is not None else
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
    """Mark the folder's export complete, recording each mask's size (a
    later run checks the files against it: :func:`damaged_masks`)."""
    manifest = read_manifest(out_dir)
    manifest.update(complete=True, num_images_written=num_images,
                    finished=time.strftime('%Y-%m-%d %H:%M:%S'),
                    files=mask_sizes(out_dir))
    write_manifest(out_dir, manifest)
