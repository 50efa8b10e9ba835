"""COCO 2014 instances -> class-id masks for WSSS.

For each image of ``annotations/instances_<split>.json`` writes
``<out_dir>/<split>/<image stem>.png`` (palette PNG, values are class ids):
0 background, 1..80 the categories in increasing category-id order (the
order of ``COCO_CLASSES``), 255 (ignore) on crowd regions not covered by a
non-crowd instance. Instances are painted largest first so small objects on
top stay visible. Also writes ``<coco_root>/ImageSets/<split>.txt`` (all
image stems; the dataset skips images without objects).

Segmentations (polygons, uncompressed and compressed RLE) are decoded by
pycocotools, COCO's own API.

Example:
    python tools/dataset_converters/coco2014.py data/coco2014 \
        --splits train2014 val2014
"""
import argparse
import json
import os
import os.path as osp
from collections import defaultdict

import numpy as np
from pycocotools import mask as coco_mask
from tqdm import tqdm

from semples_mm.utils.mask_png import save_mask_png

IGNORE = 255


def annotation_to_mask(segmentation, height, width) -> np.ndarray:
    """Any COCO segmentation (polygons, uncompressed or compressed RLE)
    -> (h, w) uint8 binary mask, decoded by pycocotools."""
    if isinstance(segmentation, list):  # polygons of one instance
        rle = coco_mask.merge(
            coco_mask.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation['counts'], list):  # uncompressed RLE
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    mask = coco_mask.decode(rle)
    if mask.shape != (height, width):
        raise ValueError(f'segmentation of size {mask.shape} on an image of '
                         f'size {(height, width)}')
    return mask.astype(np.uint8)


def class_mask(image: dict, annotations: list, index_of_cat: dict):
    """The class-id mask (h, w) uint8 of one image."""
    height, width = image['height'], image['width']
    mask = np.zeros((height, width), np.uint8)
    crowd = [a for a in annotations if a.get('iscrowd', 0)]
    objects = sorted((a for a in annotations if not a.get('iscrowd', 0)),
                     key=lambda a: -a.get('area', 0))
    for ann in crowd:
        mask[annotation_to_mask(ann['segmentation'], height, width) > 0] = \
            IGNORE
    for ann in objects:
        mask[annotation_to_mask(ann['segmentation'], height, width) > 0] = \
            index_of_cat[ann['category_id']]
    return mask


def convert_split(coco_root, split, out_dir=None):
    """Write the masks and the image list of one split; returns the count."""
    ann_path = osp.join(coco_root, 'annotations', f'instances_{split}.json')
    if not osp.isfile(ann_path):
        raise FileNotFoundError(f'{ann_path} does not exist; download the '
                                'COCO 2014 annotations into annotations/')
    with open(ann_path) as f:
        coco = json.load(f)
    cat_ids = sorted(c['id'] for c in coco['categories'])
    index_of_cat = {c: i + 1 for i, c in enumerate(cat_ids)}
    by_image = defaultdict(list)
    for ann in coco['annotations']:
        by_image[ann['image_id']].append(ann)

    out_split = osp.join(out_dir or osp.join(coco_root, 'SegmentationClass'),
                         split)
    os.makedirs(out_split, exist_ok=True)
    stems = []
    for image in tqdm(coco['images'], desc=f'{split} masks', unit='img'):
        stem = osp.splitext(image['file_name'])[0]
        mask = class_mask(image, by_image.get(image['id'], []), index_of_cat)
        save_mask_png(mask, osp.join(out_split, stem + '.png'))
        stems.append(stem)
    os.makedirs(osp.join(coco_root, 'ImageSets'), exist_ok=True)
    with open(osp.join(coco_root, 'ImageSets', f'{split}.txt'), 'w') as f:
        f.write(''.join(s + '\n' for s in sorted(stems)))
    return len(stems)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert COCO 2014 instances to class-id masks')
    parser.add_argument('coco_root', help='folder with annotations/, '
                        'train2014/, val2014/')
    parser.add_argument('--splits', nargs='+',
                        default=['train2014', 'val2014'])
    parser.add_argument('--out-dir', default=None,
                        help='default: <coco_root>/SegmentationClass')
    return parser.parse_args()


def main():
    args = parse_args()
    for split in args.splits:
        count = convert_split(args.coco_root, split, args.out_dir)
        print(f'{split}: {count} masks')


if __name__ == '__main__':
    main()
