"""Paired differences with a 95 % t-interval: how the strategy benchmark says "better".

Two strategies run on the same seed meet the same fair-value path and the same takers
(``sim.agents``), so the per-seed difference of their net PnL is the measurement; its mean over
n seeds gets a Student-t interval (the t quantiles below: scipy is not a dependency). For n - 1
degrees of freedom beyond the table the next smaller entry is used, which is conservative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# two-sided 95 %: the 0.975 quantile of Student's t by degrees of freedom
T_975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}  # fmt: skip


def t_975(df: int) -> float:
    if df < 1:
        raise ValueError(f"need at least 1 degree of freedom, was {df}")
    return T_975[max(k for k in T_975 if k <= df)]


@dataclass(frozen=True, slots=True)
class PairedDiff:
    """Mean of a - b over paired seeds with its 95 % interval, and how often a was ahead."""

    n: int
    mean: float
    low: float
    high: float
    wins: int  # seeds where a - b > 0

    @property
    def above_zero(self) -> bool:
        return self.low > 0

    def as_json(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "mean": round(self.mean, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "wins": self.wins,
            "win_share": round(self.wins / self.n, 3),
        }


def paired_diff(a: Sequence[float], b: Sequence[float]) -> PairedDiff:
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two equally long samples of >= 2, were {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t_975(n - 1) * sd / math.sqrt(n)
    return PairedDiff(n, mean, mean - half, mean + half, sum(1 for d in diffs if d > 0))
