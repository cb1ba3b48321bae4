"""Percentiles for the benchmarks: the standard library's, with an empty or one-value sample
handled (statistics.quantiles wants two values). Medians: statistics.median directly."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` (0.01..0.99) percentile, interpolated between the values as numpy's
    default does (statistics' "inclusive" method); NaN when there are none."""
    if not values:
        return math.nan
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]
