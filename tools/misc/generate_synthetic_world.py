"""Write the embedded synthetic world (VOC layout) to a folder.

Example:
    python tools/misc/generate_synthetic_world.py data/synthetic_world \
        --seed 0 --num-train 2000 --num-val 300
"""
import argparse
import time

from semples_mm.datasets.synthetic import generate_synthetic_world


def parse_args():
    parser = argparse.ArgumentParser(
        description='Generate the synthetic WSSS world in PASCAL VOC layout.')
    parser.add_argument('root', help='output folder (must not exist, be '
                        'empty, or hold a world with the same settings)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=300)
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--context-prob', type=float, default=0.85,
                        help='probability that an image shows the context '
                        'of one of its objects')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a world generated with other settings')
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.perf_counter()
    root = generate_synthetic_world(
        args.root, seed=args.seed, num_train=args.num_train,
        num_val=args.num_val, image_size=args.image_size,
        context_prob=args.context_prob, overwrite=args.overwrite)
    print(f'synthetic world in {root} '
          f'({time.perf_counter() - start:.1f} s)')


if __name__ == '__main__':
    main()
