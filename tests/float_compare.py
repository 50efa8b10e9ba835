"""Comparing two float32 computations of the same values that differ in
summation order: another batching, chunking, thread count, memory layout or
kernel (the CPU's instruction set picks oneDNN's and MKL's kernels, so CI on
an AMD EPYC sums in another order than a laptop with AVX-512).

The bound relied on, with u = 2**-24 ~ 6.0e-8 float32's unit roundoff (every
addition and multiplication is exact to within a relative u):

1. One sum. Any order of adding n terms (one after another, pairwise, in
   SIMD lanes, split among threads, with fused multiply-adds) gives a result
   within (n - 1) u sum|x_i| of the exact sum, a dot product of length n
   within n u sum|x_i y_i| (to first order in u; Higham, Accuracy and
   Stability of Numerical Algorithms, 2nd ed., sections 3.1 and 4.2). Two
   computations in two orders are each that close to the exact value, so
   within 2 n u sum|x_i| of each other. That is the worst case: the
   rounding errors mostly cancel and a typical difference is about
   sqrt(n) u times the size of the sum.
2. The scale. The test sees the compared values, not the terms, so the
   bound is taken relative to ``scale``, the largest magnitude among the
   expected values (a sum of terms of mixed signs can be smaller than
   sum|x_i|; the factor sqrt(n) between the typical and the worst case
   covers that).
3. Chained sums. A value that comes out of ``depth`` sums in a row (the
   layers of a network; a gradient goes back through as many again) carries
   each layer's rounding on to the next. Layers that keep their outputs at
   the scale of their inputs (normalised layers, softmax, unit-norm
   features) add the errors up: ``depth`` times the bound of one sum.

So two computations may differ elementwise by up to::

    2 * terms * depth * u * scale

``terms``: the length of the longest sum behind the compared values: a
linear layer's input width, a convolution's input channels times its kernel
area, an attention's keys or head width, the elements of a mean, the batch
times the positions for a weight gradient. ``depth``: how many such sums
follow one another from the inputs to the compared values (count a
transformer block as 6: qkv, scores, weighted sum, projection and the
MLP's two layers), for a gradient the forward and the backward pass.

A real mistake (a wrong pairing, a missing term, a mask from the other
phase) changes the values far more: for terms=384, depth=40 the bound is
1.8e-3 of the scale. The bound does not cover a computation that amplifies
its input's rounding (dividing by a small difference, the log of a number
near 0) or a result far smaller than what it is computed from: count such
a step as extra depth, compare before it, or give the inputs' ``scale``.

Exact comparison (``torch.equal``, ``rtol=0, atol=0``) stays right where the
same computation runs twice on the same shapes and threads. Comparisons of
another precision (bf16 or fp16 against fp32) are not covered: their error
is that of the lower precision and they state their own tolerance.

Example::

    from float_compare import assert_close_up_to_rounding

    # ours encodes 14 crops in one batch, the reference 7 and 7; the longest
    # sum is CLIP's MLP (384 terms), 22 sums from the pixels to the loss
    assert_close_up_to_rounding(ours, reference, terms=384, depth=22)

``tools/misc/flake_hunt.py`` runs the tests marked ``float_compare`` under
other thread counts and instruction sets; with ``FLOAT_COMPARE_RECORD`` set
to a file, every call here appends how much of its bound it used, and the
hunt reports the largest use per call site.
"""
import json
import os
import sys
from collections.abc import Mapping, Sequence

import torch

FLOAT32_UNIT_ROUNDOFF = 2.0**-24


def rounding_tolerance(terms: int, depth: int = 1) -> float:
    """The bound of the module docstring relative to the values' scale:
    ``2 * terms * depth * u``. For checks of a relative difference computed
    elsewhere (e.g. the benchmark's ``loss_max_rel_diff``).

    Args:
        terms (int): length of the longest sum behind the values.
        depth (int): how many sums follow one another.
    """
    if terms < 1 or depth < 1:
        raise ValueError(f'terms and depth count sums: at least 1 each, got '
                         f'terms={terms}, depth={depth}')
    return 2 * terms * depth * FLOAT32_UNIT_ROUNDOFF


def _pairs(actual, expected):
    """(actual, expected) tensor pairs of two like structures (tensors or
    numbers, nested in sequences or mappings)."""
    if isinstance(expected, Mapping):
        for key in expected:
            yield from _pairs(actual[key], expected[key])
    elif isinstance(expected, Sequence) and not isinstance(expected, str):
        for a, e in zip(actual, expected):
            yield from _pairs(a, e)
    else:
        yield (torch.as_tensor(actual).detach().double(),
               torch.as_tensor(expected).detach().double())


def _record(used, observed_in_u, terms, depth):
    """Append this call's use of its bound to $FLOAT_COMPARE_RECORD."""
    caller = sys._getframe(2)  # the test that called the assert
    row = dict(test=os.environ.get('PYTEST_CURRENT_TEST', '').rsplit(' ',
                                                                     1)[0],
               site=f'{os.path.basename(caller.f_code.co_filename)}:'
               f'{caller.f_lineno}',
               used=used, observed_in_u=observed_in_u, terms=terms,
               depth=depth)
    with open(os.environ['FLOAT_COMPARE_RECORD'], 'a') as file:
        file.write(json.dumps(row) + '\n')


def assert_close_up_to_rounding(actual, expected, *, terms: int,
                                depth: int = 1, scale: float = None,
                                msg: str = None):
    """Assert that two computations of the same float32 values that sum in
    other orders agree up to the module docstring's bound,
    ``2 * terms * depth * u * scale`` elementwise.

    Args:
        actual, expected: tensors or numbers, or sequences or mappings of
            them (as :func:`torch.testing.assert_close` takes them), of the
            same shapes and dtypes.
        terms (int): length of the longest sum behind the values.
        depth (int): how many sums follow one another (forward, and
            backward for gradients).
        scale (float): the values' magnitude; default the largest
            ``|expected|`` over all tensors. Give it where the values are
            much smaller than the terms they are summed from (e.g. the
            largest gradient of a model when comparing one layer's).
        msg (str): added to the failure message.
    """
    pairs = list(_pairs(actual, expected))
    if scale is None:
        scale = max((float(e.abs().max()) for _, e in pairs if e.numel()),
                    default=0.0)
    allowed = rounding_tolerance(terms, depth) * scale
    if os.environ.get('FLOAT_COMPARE_RECORD'):
        observed = max((float((a - e).abs().max()) for a, e in pairs
                        if a.shape == e.shape and e.numel()), default=0.0)
        used = (observed / allowed if allowed > 0 else
                0.0 if observed == 0 else float('inf'))
        _record(used, observed / FLOAT32_UNIT_ROUNDOFF / scale
                if scale > 0 else 0.0, terms, depth)

    def message(generated):
        note = (f'Allowed: 2 * terms ({terms}) * depth ({depth}) * 2**-24 '
                f'* scale ({scale:.3g}) = {allowed:.3g} (tests/'
                f'float_compare.py)')
        return '\n'.join(filter(None, [msg, generated, note]))

    torch.testing.assert_close(actual, expected, rtol=0, atol=allowed,
                               msg=message)
