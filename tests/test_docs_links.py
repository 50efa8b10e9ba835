"""The documentation points at things that exist: every relative link and
every repository path named in README.md, docs/*.md and the configs'
comments, and the README's set-up commands are those CI and the tests run."""
import glob
import io
import re
import shlex
import tokenize
from pathlib import Path

import pytest

from conftest import REPO_ROOT, load_tool

# top-level folders whose paths the documents name
REPO_FOLDERS = ('configs', 'tools', 'semples_mm', 'semples_experiments',
                'docs', 'tests', 'requirements', '.ci')
# a path starts at a word boundary (not inside W/configs/... or a URL)
PATH_PATTERN = re.compile(
    r'(?<![\w./~:-])((?:%s)/[\w./*{},<>-]*)' %
    '|'.join(re.escape(folder) for folder in REPO_FOLDERS))
# files of the SemPLeS and WeakTr repositories that the recipe cites as
# sources (docs/reproducing.md: "S docs/Training.md:56"), not ours
OTHER_REPOSITORIES = ('docs/Training.md', )
LINK_PATTERN = re.compile(r'\]\(([^)\s]+)\)')
FENCE = '```'


def documents():
    """{repository-relative name: text} of the README, the docs and the
    configs' comments (config code holds data paths that are not ours)."""
    texts = {'README.md': (REPO_ROOT / 'README.md').read_text()}
    for path in sorted((REPO_ROOT / 'docs').glob('*.md')):
        texts[str(path.relative_to(REPO_ROOT))] = path.read_text()
    for path in sorted((REPO_ROOT / 'configs').rglob('*.py')):
        texts[str(path.relative_to(REPO_ROOT))] = config_comments(
            path.read_text())
    return texts


def config_comments(source):
    """The comment text of a Python file, one comment a line."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return '\n'.join(token.string for token in tokens
                     if token.type == tokenize.COMMENT)


def expand_braces(path):
    """'a/{b,c}.py' -> ['a/b.py', 'a/c.py'] (one level, as the docs use)."""
    match = re.search(r'\{([^{}]*)\}', path)
    if not match:
        return [path]
    return [expanded for choice in match.group(1).split(',')
            for expanded in expand_braces(
                path[:match.start()] + choice + path[match.end():])]


def named_paths(text):
    """Repository paths in ``text``, sentence punctuation stripped."""
    paths = []
    for match in PATH_PATTERN.finditer(text):
        path = match.group(1).rstrip('.,:')
        if path in OTHER_REPOSITORIES:
            continue
        if '<' in path:  # a pattern such as configs/<name>.py names no file
            path = path[:path.index('<')].rsplit('/', 1)[0] + '/'
        paths.extend(expand_braces(path))
    return paths


def relative_links(text):
    """Targets of the Markdown links that are not URLs or anchors."""
    return [target.split('#')[0] for target in LINK_PATTERN.findall(text)
            if not re.match(r'[a-z]+:|#', target)]


def missing_targets(name, text, root=REPO_ROOT):
    """The links and paths of document ``name`` that do not exist under
    ``root``."""
    missing = []
    for target in relative_links(text):
        if not (root / name).parent.joinpath(target).exists():
            missing.append(f'{name}: link ({target})')
    for path in named_paths(text):
        if not glob.glob(str(root / path)):
            missing.append(f'{name}: path {path}')
    return missing


def test_the_parser_finds_paths_and_links(tmp_path):
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'real.py').write_text('')
    (tmp_path / 'docs').mkdir()
    text = ('Run `tools/real.py`, not tools/made_up.py. '
            'See [the docs](docs/nowhere.md#part), '
            '[the paper](https://arxiv.org/abs/2401.11791), '
            '`W/configs/semples.py` (a work dir, not ours), and '
            'tools/{real,unreal}.py.')
    assert named_paths(text) == ['tools/real.py', 'tools/made_up.py',
                                 'docs/nowhere.md', 'tools/real.py',
                                 'tools/unreal.py']
    assert relative_links(text) == ['docs/nowhere.md']
    assert missing_targets('README.md', text, tmp_path) == [
        'README.md: link (docs/nowhere.md)',
        'README.md: path tools/made_up.py',
        'README.md: path docs/nowhere.md',
        'README.md: path tools/unreal.py']
    # a link resolves from its document's folder
    assert missing_targets('docs/a.md', '[up](../tools/real.py)',
                           tmp_path) == []
    assert named_paths(config_comments(
        "x = 'configs/data.py'  # see configs/doc.py\n")) == [
            'configs/doc.py']


def test_every_link_and_path_exists():
    missing = list(dict.fromkeys(  # each problem once, in document order
        problem for name, text in documents().items()
        for problem in missing_targets(name, text)))
    assert not missing, 'documents name what the repository lacks:\n' + \
        '\n'.join(missing)


def test_no_document_points_outside_the_repository():
    """Notes kept beside a checkout (../shared/) are not in a clone."""
    outside = [name for name, text in documents().items()
               if '../shared' in text or 'shared/METHOD' in text]
    assert not outside


def readme_setup_commands():
    """The commands of the README's first bash block."""
    readme = (REPO_ROOT / 'README.md').read_text()
    start = readme.index(FENCE + 'bash\n') + len(FENCE + 'bash\n')
    block = readme[start:readme.index(FENCE, start)]
    commands = []
    for line in block.splitlines():
        line = line.split('#')[0].strip()
        if line:
            commands.extend(part.strip() for part in line.split('&&'))
    return commands


def test_readme_setup_commands_are_those_ci_and_tests_run():
    install, experiment, tests = readme_setup_commands()
    ci = (REPO_ROOT / '.ci' / 'run').read_text()
    assert install == 'bash tools/install.sh'
    assert re.search(r'^' + re.escape(install) + r'$', ci, re.M)
    # the README's test command, as CI runs it with its own venv
    python, *pytest_args = shlex.split(tests)
    assert python == '.venv/bin/python'
    assert re.search(r'^"\$VENV/bin/python" ' +
                     re.escape(' '.join(pytest_args)) + r'( |$)', ci, re.M)

    python, script, *args = shlex.split(experiment)
    assert python == '.venv/bin/python'
    # a test runs the same tool on the same (default) config, at quick size
    runner_tests = [path for path in (REPO_ROOT / 'tests').glob('test_*.py')
                    if any(f"'{name}'" in path.read_text() for name in
                           (Path(script).stem, Path(script).name, script))]
    assert runner_tests, f'no test runs {script}'
    tool = load_tool(Path(script).stem)
    parsed = tool.parse_args(args)
    default = tool.parse_args(['--work-dir', 'W', '--quick'])
    assert Path(parsed.config).resolve() == Path(default.config).resolve()


@pytest.mark.parametrize('figure', sorted(
    glob.glob(str(REPO_ROOT / 'docs' / 'figures' / '*.png'))))
def test_figures_are_small_and_named_with_their_command(figure):
    assert Path(figure).stat().st_size < 200 * 1024
    name = Path(figure).name
    assert any(name in text for text in documents().values()), \
        f'no document shows or regenerates {name}'
