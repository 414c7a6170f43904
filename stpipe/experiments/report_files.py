"""The scale of ``stpipe report``'s chart (``report.png``, drawn by :func:`stpipe.experiments.report.plot`): a
y-axis that spans the values, not 0 … max, and bars that carry their values, so 0.936 and 0.917 differ visibly.

>>> y_limits([0.936, 0.917, None])
(0.9075, 0.9455)
>>> value_labels([0.936, None])
['0.9360', '']
"""

from __future__ import annotations


