"""Merge SBD's extra masks into PASCAL VOC 2012 (the "trainaug" set).

Reads SBD's class masks ``<sbd_root>/cls/<id>.mat`` (MATLAB struct
``GTcls.Segmentation``, class ids 0..20) and writes them as VOC palette PNGs
to ``<voc_root>/SegmentationClassAug/<id>.png``. Images that also have a VOC
2012 mask (``SegmentationClass/<id>.png``, with 255 on object boundaries)
keep the VOC mask. Writes the list
``ImageSets/Segmentation/trainaug.txt`` = (SBD train + SBD val + VOC train)
minus VOC val, sorted (10,582 ids for the official releases).

Example:
    python tools/dataset_converters/voc_aug.py data/VOCdevkit/VOC2012 \
        data/benchmark_RELEASE/dataset --nproc 4
"""
import argparse
import os
import os.path as osp
from multiprocessing import Pool

import numpy as np
from PIL import Image
from scipy.io import loadmat
from tqdm import tqdm

from semples_mm.utils.mask_png import save_mask_png


def read_ids(path):
    if not osp.isfile(path):
        raise FileNotFoundError(f'image list {path} does not exist; check '
                                'the VOC / SBD roots')
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def load_sbd_mask(mat_path):
    """SBD class mask (H, W) uint8 from ``GTcls.Segmentation``."""
    try:
        mat = loadmat(mat_path, squeeze_me=True, struct_as_record=False)
    except Exception as e:  # scipy raises several types for bad files
        raise ValueError(f'cannot read SBD mask {mat_path}: {e}') from e
    if 'GTcls' not in mat:
        raise KeyError(f'{mat_path} has no GTcls struct (keys: '
                       f'{sorted(k for k in mat if not k.startswith("__"))});'
                       ' give the SBD "cls" folder, not "inst"')
    mask = np.asarray(mat['GTcls'].Segmentation)
    if mask.ndim != 2 or mask.max() > 20:
        raise ValueError(f'{mat_path}: GTcls.Segmentation has shape '
                         f'{mask.shape} and max {mask.max()}; expected a 2-D '
                         'map of VOC class ids 0..20')
    return mask.astype(np.uint8)


def convert_one(job):
    img_id, voc_mask_dir, sbd_cls_dir, out_dir = job
    voc_png = osp.join(voc_mask_dir, img_id + '.png')
    if osp.isfile(voc_png):
        with Image.open(voc_png) as image:
            mask = np.array(image)
    else:
        mask = load_sbd_mask(osp.join(sbd_cls_dir, img_id + '.mat'))
    save_mask_png(mask, osp.join(out_dir, img_id + '.png'))
    return img_id


def build_trainaug(voc_root, sbd_root, out_dir=None, nproc=1):
    """Convert the masks and write the trainaug list; returns the list."""
    seg_sets = osp.join(voc_root, 'ImageSets', 'Segmentation')
    voc_train = read_ids(osp.join(seg_sets, 'train.txt'))
    voc_val = set(read_ids(osp.join(seg_sets, 'val.txt')))
    sbd_ids = read_ids(osp.join(sbd_root, 'train.txt')) + \
        read_ids(osp.join(sbd_root, 'val.txt'))
    trainaug = sorted(set(sbd_ids + voc_train) - voc_val)

    out_dir = out_dir or osp.join(voc_root, 'SegmentationClassAug')
    os.makedirs(out_dir, exist_ok=True)
    voc_mask_dir = osp.join(voc_root, 'SegmentationClass')
    sbd_cls_dir = osp.join(sbd_root, 'cls')
    # Masks for every image with an annotation (trainaug and VOC val), so
    # SegmentationClassAug serves training and evaluation alike.
    all_ids = sorted(set(sbd_ids) | set(voc_train) | voc_val)
    jobs = [(i, voc_mask_dir, sbd_cls_dir, out_dir) for i in all_ids]
    missing = [i for i in all_ids
               if not osp.isfile(osp.join(voc_mask_dir, i + '.png'))
               and not osp.isfile(osp.join(sbd_cls_dir, i + '.mat'))]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} images have neither a VOC mask in '
            f'{voc_mask_dir} nor an SBD mask in {sbd_cls_dir}, e.g. '
            f'{missing[:5]}; check both roots')
    bar = tqdm(total=len(jobs), desc='SegmentationClassAug', unit='mask')
    if nproc > 1:
        with Pool(nproc) as pool:
            for _ in pool.imap_unordered(convert_one, jobs, chunksize=32):
                bar.update()
    else:
        for job in jobs:
            convert_one(job)
            bar.update()
    bar.close()
    with open(osp.join(seg_sets, 'trainaug.txt'), 'w') as f:
        f.write(''.join(i + '\n' for i in trainaug))
    return trainaug


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert SBD masks to VOC PNGs and write trainaug.txt')
    parser.add_argument('voc_root', help='VOCdevkit/VOC2012')
    parser.add_argument('sbd_root',
                        help='SBD benchmark_RELEASE/dataset (cls/, '
                        'train.txt, val.txt)')
    parser.add_argument('--out-dir', default=None,
                        help='default: <voc_root>/SegmentationClassAug')
    parser.add_argument('--nproc', type=int, default=1)
    return parser.parse_args()


def main():
    args = parse_args()
    ids = build_trainaug(args.voc_root, args.sbd_root, args.out_dir,
                         args.nproc)
    print(f'trainaug: {len(ids)} images')


if __name__ == '__main__':
    main()
