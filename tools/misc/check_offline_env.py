"""Check which of semples-mm's imports an environment lacks, with versions.

    python tools/misc/check_offline_env.py

Run it on an offline machine after installing the wheels of
``tools/misc/offline_wheels.sh`` (PYTHONPATH holding them and this
repository): it names every missing module, says where it should come from,
and exits 1 if anything is missing, so a GPU session learns that in seconds
rather than inside a long benchmark.
"""
import argparse
import importlib
import sys

# module -> where it comes from when missing
MODULES = {
    'torch': 'the machine image (PyTorch)',
    'torchvision': 'the machine image',
    'numpy': 'the machine image',
    'scipy': 'the machine image',
    'matplotlib': 'the machine image',
    'cv2': 'the machine image (opencv-python or -headless)',
    'PIL': 'the machine image (Pillow)',
    'rich': 'the machine image',
    'yaml': 'the machine image (PyYAML)',
    'regex': 'the machine image',
    'tqdm': 'the machine image',
    'huggingface_hub': 'the machine image',
    'safetensors': 'the machine image',
    'timm': 'the machine image',
    'packaging': 'the machine image',
    'addict': 'offline_wheels.sh',
    'termcolor': 'offline_wheels.sh',
    'yapf': 'offline_wheels.sh',
    'platformdirs': 'offline_wheels.sh',
    'ftfy': 'offline_wheels.sh',
    'wcwidth': 'offline_wheels.sh',
    'prettytable': 'offline_wheels.sh',
    'mmengine': 'offline_wheels.sh (onedl-mmengine)',
    'mmcv': 'offline_wheels.sh (onedl-mmcv)',
    'mmseg': 'offline_wheels.sh (onedl-mmsegmentation)',
    'open_clip': 'offline_wheels.sh (open_clip_torch)',
    'semples_mm': 'this repository on PYTHONPATH',
}


def main(argv=None) -> int:
    argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2]).parse_args(argv)
    missing = []
    for name, source in MODULES.items():
        try:
            module = importlib.import_module(name)
        except Exception as error:  # ImportError, or a broken dependency
            missing.append(name)
            print(f'MISSING {name:<16} from {source}: '
                  f'{type(error).__name__}: {error}')
            continue
        print(f'ok      {name:<16} {getattr(module, "__version__", "")}')
    import_ok = 'torch' not in missing
    if import_ok:
        import torch
        cuda = torch.cuda.is_available()
        print(f'python {sys.version.split()[0]}, torch {torch.__version__}, '
              f'CUDA {"available: " + torch.cuda.get_device_name() if cuda else "not available"}')
    if missing:
        print(f'{len(missing)} module(s) missing: {", ".join(missing)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
