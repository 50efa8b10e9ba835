"""Run the tests that compare floats or written masks under the thread counts
and instruction sets of other CPUs, each setting twice, and print a table.

    python tools/misc/flake_hunt.py                      # every setting
    python tools/misc/flake_hunt.py --threads 1 --isa default -- -k clip

The tests are those marked ``float_compare`` (a new test that compares
floats or masks opts in with ``@pytest.mark.float_compare``). Each setting
runs them in a fresh pytest process with

- ``OMP_NUM_THREADS`` (and ``MKL_NUM_THREADS``) 1, 2 and 3: threads split
  sums into other partial sums;
- the instruction set capped for all three kernel libraries: torch's own
  kernels (``ATEN_CPU_CAPABILITY``), oneDNN's convolutions and matmuls
  (``ONEDNN_MAX_CPU_ISA``) and MKL's BLAS (``MKL_ENABLE_INSTRUCTIONS``), so
  that the kernels a CPU without AVX-512 (e.g. an AMD EPYC) or without AVX2
  would pick run on this one: ``default`` (no vector kernels in torch,
  SSE4 in oneDNN and MKL), ``avx2`` and, where the CPU has it, ``avx512``.
  On an Intel Xeon, ``default`` reproduced the per-pair vs batched gradient
  differences that failed a test on an AMD EPYC with AVX2 (its MKL takes
  other kernels than Intel's AVX2 path).

A test that passes in one setting and fails in another compares with a
tolerance that ignores summation order: give it one that does
(tests/float_compare.py). A test that fails in only one of a setting's two
runs shows a computation that is not repeatable at all.

With the tests' float_compare helper recording (``FLOAT_COMPARE_RECORD``,
set here), the report also lists the call sites that came closest to their
bound over all runs. Exit status 1 if any run failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = 'float_compare'
# instruction set -> (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA,
# MKL_ENABLE_INSTRUCTIONS, the /proc/cpuinfo flag it needs)
ISAS = {
    'default': ('default', 'SSE41', 'SSE4_2', 'sse4_2'),
    'avx2': ('avx2', 'AVX2', 'AVX2', 'avx2'),
    'avx512': ('avx512', 'AVX512_CORE', 'AVX512', 'avx512f'),
}


def cpu_flags():
    """The CPU's feature flags (Linux /proc/cpuinfo); empty elsewhere."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('flags'):
                return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def setting_env(threads, isa):
    aten, onednn, mkl, _ = ISAS[isa]
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               ATEN_CPU_CAPABILITY=aten, ONEDNN_MAX_CPU_ISA=onednn,
               MKL_ENABLE_INSTRUCTIONS=mkl)
    # this checkout's package, whatever the environment has installed
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    return env


def effective_capability(env):
    """torch's CPU capability under ``env`` (shows that the cap took)."""
    done = subprocess.run(
        [sys.executable, '-c', 'import torch; '
         'print(torch.backends.cpu.get_cpu_capability())'],
        env=env, capture_output=True, text=True)
    return done.stdout.strip() or 'error'


def read_junit(path):
    """(passed test ids, failed test ids) of a pytest --junitxml file."""
    passed, failed = [], []
    if not path.exists():
        return passed, failed
    for case in ElementTree.parse(path).iter('testcase'):
        module = case.get('classname', '').replace('.', '/')
        test_id = f"{module}.py::{case.get('name')}"
        if case.find('failure') is not None or case.find('error') is not None:
            failed.append(test_id)
        elif case.find('skipped') is None:
            passed.append(test_id)
    return passed, failed


def run_setting(threads, isa, repeat, pytest_args, folder):
    """One pytest run of the marked tests; returns its table row."""
    env = setting_env(threads, isa)
    name = f'threads{threads}_{isa}_run{repeat}'
    junit = folder / f'{name}.xml'
    env['FLOAT_COMPARE_RECORD'] = str(folder / f'{name}.jsonl')
    command = [sys.executable, '-m', 'pytest', 'tests', '-q',
               '-p', 'no:cacheprovider', '-m', MARKER,
               f'--junitxml={junit}', *pytest_args]
    start = time.time()
    done = subprocess.run(command, cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.time() - start
    (folder / f'{name}.log').write_text(done.stdout + done.stderr)
    passed, failed = read_junit(junit)
    if done.returncode not in (0, 1) and not failed:
        # pytest itself failed (usage error, collection error, no tests)
        failed = [f'pytest exit {done.returncode}: see {name}.log']
    return dict(threads=threads, isa=isa, repeat=repeat,
                aten=effective_capability(env), passed=len(passed),
                failed=failed, wall_s=wall)


def closest_sites(folder, top):
    """The call sites of tests/float_compare.py that came closest to their
    bound: (largest share used, site, test, observed / (u * scale))."""
    worst = defaultdict(lambda: (-1.0, '', 0.0))
    for path in folder.glob('*.jsonl'):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row['used'] > worst[row['site']][0]:
                worst[row['site']] = (row['used'], row['test'],
                                      row['observed_in_u'])
    ranked = sorted(((used, site, test, in_u)
                     for site, (used, test, in_u) in worst.items()),
                    reverse=True)
    return ranked[:top], len(ranked)


def print_report(rows, folder, top):
    print(f"\n{'threads':>7} {'isa':<8} {'run':>3} {'torch cpu':<9} "
          f"{'passed':>6} {'failed':>6} {'wall s':>7}  failing tests")
    for row in rows:
        print(f"{row['threads']:>7} {row['isa']:<8} {row['repeat']:>3} "
              f"{row['aten']:<9} {row['passed']:>6} {len(row['failed']):>6} "
              f"{row['wall_s']:>7.0f}  {' '.join(row['failed'])}")
    ranked, num_sites = closest_sites(folder, top)
    if ranked:
        print(f'\nfloat_compare call sites closest to their bound (of '
              f'{num_sites}; share of the bound used, observed difference '
              f'in units of 2**-24 of the scale):')
        for used, site, test, in_u in ranked:
            print(f'  {used:8.3f}  {in_u:9.1f}  {site}  {test}')
    total = sum(row['wall_s'] for row in rows)
    print(f'\n{len(rows)} runs in {total:.0f} s; logs and junit files in '
          f'{folder}')


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2, 3],
                        help='OMP_NUM_THREADS values (default 1 2 3)')
    parser.add_argument('--isa', nargs='+', choices=list(ISAS),
                        help='default: every one this CPU has')
    parser.add_argument('--repeats', type=int, default=2,
                        help='runs of each setting (default 2)')
    parser.add_argument('--out', type=Path,
                        help='folder for logs (default: a new temporary one)')
    parser.add_argument('--top', type=int, default=15,
                        help='call sites listed by their use of the bound')
    parser.add_argument('pytest_args', nargs='*',
                        help='after --: passed on to pytest, e.g. -k clip')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    flags = cpu_flags()
    isas = args.isa or [isa for isa, (*_, flag) in ISAS.items()
                        if not flags or flag in flags]
    missing = [isa for isa in isas if flags and ISAS[isa][3] not in flags]
    if missing:
        raise SystemExit(f'flake_hunt: this CPU lacks {missing} '
                         f'(no {[ISAS[i][3] for i in missing]} in '
                         f'/proc/cpuinfo); leave them out of --isa')
    folder = args.out or Path(tempfile.mkdtemp(prefix='flake_hunt_'))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for threads in args.threads:
        for isa in isas:
            for repeat in range(1, args.repeats + 1):
                row = run_setting(threads, isa, repeat, args.pytest_args,
                                  folder)
                rows.append(row)
                print(f"threads {threads} {isa} run {repeat}: "
                      f"{row['passed']} passed, {len(row['failed'])} failed "
                      f"in {row['wall_s']:.0f} s", flush=True)
    print_report(rows, folder, args.top)
    return 1 if any(row['failed'] for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
