"""The report chart (stpipe/experiments/report_files.py): close values differ visibly and carry their values."""

from __future__ import annotations

from stpipe.experiments.report_files import value_labels, y_limits


def test_the_y_axis_spans_the_values_not_zero_to_max():
    lo, hi = y_limits([0.936, 0.917])
    assert 0.8 < lo < 0.917 and 0.936 < hi < 1.0  # 0.936 vs 0.917 take most of the axis, not 2 % of it
    assert (0.936 - 0.917) / (hi - lo) >= 0.4
    assert y_limits([None]) == (0.0, 1.0) and y_limits([0.5]) == (0.0, 1.0)
    assert value_labels([0.936, 0.917, None]) == ["0.9360", "0.9170", ""]
