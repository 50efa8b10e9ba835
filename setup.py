"""Installs the ``semples_mm`` package (distribution ``semples-mm``)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt`` without comments."""
    lines = (HERE / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines
            if line.split('#')[0].strip()]


def read_version():
    namespace = {}
    exec((HERE / 'semples_mm' / 'version.py').read_text(), namespace)
    return namespace['__version__']


setup(
    name='semples-mm',
    version=read_version(),
    description='SemPLeS (WACV 2025) weakly-supervised semantic segmentation '
    'as mmsegmentation components',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['semples_mm', 'semples_mm.*']),
    package_data={'semples_mm': ['models/clip/model_configs/*.json',
                                 'assets/*']},
    include_package_data=True,
    install_requires=read_requirements('runtime'),
    extras_require={
        'tests': read_requirements('tests'),
        'optional': read_requirements('optional'),
    },
    zip_safe=False,
)
