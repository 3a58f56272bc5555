"""Shared by the report tests: the newcomer's 5-variable smoker table of issue 14."""
from __future__ import annotations

import pytest

from genlab.models.pgm import BayesianNetwork


def newcomer_network() -> BayesianNetwork:
    """The network behind the 5-variable smoker table: 5 edges, and smoker -> cancer
    spans two layers (the old figure drew it straight through cough)."""
    yn = ["no", "yes"]
    return BayesianNetwork.from_cpds(
        {"smoker": yn, "cough": yn, "cancer": yn, "xray": ["normal", "abnormal"], "dyspnoea": yn},
        {"cough": ["smoker"], "cancer": ["smoker", "cough"], "xray": ["cancer"], "dyspnoea": ["cancer"]},
        {"smoker": [0.7, 0.3], "cough": [[0.8, 0.2], [0.3, 0.7]],
         "cancer": [[[0.97, 0.03], [0.9, 0.1]], [[0.8, 0.2], [0.5, 0.5]]],
         "xray": [[0.9, 0.1], [0.2, 0.8]], "dyspnoea": [[0.7, 0.3], [0.35, 0.65]]})


@pytest.fixture
def newcomer_bn() -> BayesianNetwork:
    return newcomer_network()


@pytest.fixture
def newcomer_csv(tmp_path):
    """The newcomer's table: 5,000 rows sampled from ``newcomer_network`` as a CSV file."""
    bn = newcomer_network()
    codes = bn.sample(5000, generator=0)
    lines = [",".join(bn.variables_)]
    lines += [",".join(bn.states_[j][int(v)] for j, v in enumerate(row)) for row in codes]
    path = tmp_path / "smokers.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
