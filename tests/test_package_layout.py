"""The package shape: ``semples_mm`` holds the components and the APIs and
never reaches into ``semples_experiments`` (runner, benchmark) or the
checkout; a non-editable install carries the configs the runner needs."""
import ast
import os
import shutil
import subprocess
import sys
import textwrap

from conftest import REPO_ROOT

COMPONENTS = REPO_ROOT / 'semples_mm'


def imported_modules(path):
    """Absolute module names a Python file imports."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module)
    return names


def test_components_import_neither_the_runner_nor_the_benchmark():
    offending = {
        str(path.relative_to(REPO_ROOT)): name
        for path in COMPONENTS.rglob('*.py')
        for name in imported_modules(path)
        if name.split('.')[0] == 'semples_experiments'}
    assert not offending
    # importing the components (which registers them) loads none of it
    out = subprocess.run(
        [sys.executable, '-c', 'import sys, semples_mm; print(sorted(m for m '
         "in sys.modules if m.startswith('semples_experiments')))"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'


def test_the_checker_sees_an_import(tmp_path):
    module = tmp_path / 'm.py'
    module.write_text('from semples_experiments.runner import run\n'
                      'import os.path\n')
    assert imported_modules(module) == ['semples_experiments.runner',
                                        'os.path']


def test_a_non_editable_install_carries_the_runner_configs(tmp_path):
    """``pip install .`` (a wheel, not editable) into a folder of its own:
    from another folder, the runner's default DeepLabV2 config is the
    installed copy and loads with its bases."""
    source = tmp_path / 'source'  # a copy: the build writes into its tree
    source.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(REPO_ROOT / name, source)
    for name in ('requirements', 'semples_mm', 'semples_experiments',
                 'configs'):
        shutil.copytree(REPO_ROOT / name, source / name,
                        ignore=shutil.ignore_patterns('__pycache__'))
    target = tmp_path / 'site'
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
         '--no-build-isolation', '--target', str(target), str(source)],
        check=True, capture_output=True, text=True)
    script = textwrap.dedent('''
        from mmengine.config import Config
        import semples_experiments
        from semples_experiments.runner.run import SMALL_DEEPLAB_CONFIG
        from semples_experiments.shipped_configs import shipped_config
        path = shipped_config(SMALL_DEEPLAB_CONFIG)
        cfg = Config.fromfile(path)
        print(semples_experiments.__file__)
        print(path)
        print(cfg.model.type)
    ''')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    out = subprocess.run(
        [sys.executable, '-c', script], cwd=elsewhere, capture_output=True,
        text=True, env=dict(os.environ, PYTHONPATH=str(target)))
    assert out.returncode == 0, out.stderr[-3000:]
    package, config, model = out.stdout.split()
    assert package.startswith(str(target))
    assert config == str(target / 'semples_experiments' / 'configs' /
                         'deeplabv2' / 'deeplabv2_tiny_synthetic_pseudo.py')
    assert model == 'EncoderDecoder'
