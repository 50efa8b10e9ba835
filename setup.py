"""Installs the ``semples_mm`` components and the ``semples_experiments``
runner and benchmark beside them (distribution ``semples-mm``)."""
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

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


class BuildWithConfigs(build_py):
    """Also copies ``configs/`` into the built ``semples_experiments``
    package: a non-editable install then finds the configs the experiment
    runner uses by default (as mmseg installs its configs with its
    package). An editable install reads them from the checkout."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / 'semples_experiments' / 'configs'
        for path in sorted((HERE / 'configs').rglob('*.py')):
            out = target / path.relative_to(HERE / 'configs')
            self.mkpath(str(out.parent))
            self.copy_file(str(path), str(out))


setup(
    name='semples-mm',
    version=read_version(),
    description='SemPLeS (WACV 2025) weakly-supervised semantic segmentation '
    'as mmsegmentation components',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    # Namespace discovery also lists the data folders (assets/, the CLIP
    # model configs) as packages, which setuptools needs to ship them
    # without a warning.
    packages=find_namespace_packages(include=['semples_mm', 'semples_mm.*',
                                              'semples_experiments',
                                              'semples_experiments.*'],
                                     exclude=['*.__pycache__']),
    package_data={'semples_mm.assets': ['*.json', '*.safetensors'],
                  'semples_mm.models.clip.model_configs': ['*.json']},
    include_package_data=True,
    install_requires=read_requirements('runtime'),
    extras_require={
        'tests': read_requirements('tests'),
        'optional': read_requirements('optional'),
    },
    zip_safe=False,
    cmdclass={'build_py': BuildWithConfigs},
)
