"""The runtime implements exactly the vocabulary tables of ``quivers.core``."""

from __future__ import annotations

import pytest
import torch

from quivers.core.vocabulary import ARITH_FUNCTIONS, PARAM_SOURCES, RECURRENCES, REDUCTIONS
from quivers.runtime import program
from quivers.runtime.errors import QvrBuildError
from quivers.runtime.ir import ParamSource, SpaceT
from quivers.runtime.param_sources import ContinuousSource


def test_every_arithmetic_function_is_implemented():
    assert set(program._FUNCS) == set(ARITH_FUNCTIONS)


def test_reductions_keep_a_width_one_axis_and_the_rest_are_elementwise():
    x = torch.rand(4, 3) + 0.5
    for name, fn in program._FUNCS.items():
        if name in RECURRENCES:  # two arguments: the recursion's shape is its series'
            assert tuple(fn(torch.tensor(0.5), x).shape) == (4, 3), name
            continue
        want = (4, 1) if name in REDUCTIONS else (4, 3)
        assert tuple(fn(x).shape) == want, name


def test_ar_filter_is_the_first_order_recursion_over_the_plate_axis():
    e = torch.randn(6, 2)
    z = program._FUNCS["ar_filter"](torch.tensor(-0.7), e)
    want = [e[0]]
    for t in range(1, 6):
        want.append(-0.7 * want[-1] + e[t])
    assert torch.allclose(z, torch.stack(want))
    chains = program._FUNCS["ar_filter"](torch.tensor([0.5, -0.7]), torch.stack([e, e]))
    assert torch.allclose(chains[1], z)  # leading axes (vectorised chains) pass through


@pytest.mark.parametrize("kind", sorted(PARAM_SOURCES))
def test_every_param_source_builds(kind: str):
    widths = (5,) if PARAM_SOURCES[kind].widths else ()
    source = ContinuousSource(SpaceT("real", 3), 2, ParamSource(kind, widths), None)
    assert tuple(source(torch.zeros(4, 3)).shape) == (4, 2)


def test_an_unknown_param_source_names_the_known_ones():
    with pytest.raises(QvrBuildError, match="linear or mlp"):
        ContinuousSource(SpaceT("real", 3), 2, ParamSource("cubic", ()), None)
