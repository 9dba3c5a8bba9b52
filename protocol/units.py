"""How a person reads the venue's figures: one format for each kind.

The margin ratio is equity / maintenance margin (DESIGN.md). Every place a
person reads one — the terminal, the bots, the web page (``static/app.js``
mirrors :func:`ratio_text`), reject messages — shows it the same way: a
percentage with one decimal and thousands separators, as the source article
writes "500%" and "100%". An account with no positions has no ratio (the
venue sends ``None``; the maths says ∞), shown as "no positions".

>>> ratio_text(0.8034)
'80.3%'
>>> ratio_text(11.36)
'1,136.0%'
>>> ratio_text(None)
'no positions'
"""

from __future__ import annotations

import math

NO_RATIO = "no positions"


def ratio_text(ratio: float | None) -> str:
    """A margin ratio (1.0 = equity equals maintenance margin) as a person reads it."""
    if ratio is None or (isinstance(ratio, float) and math.isinf(ratio)):
        return NO_RATIO
    return f"{ratio * 100:,.1f}%"
