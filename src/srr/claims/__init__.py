"""Published claims of the family as named experiments with a verdict (``srr reproduce``; see docs/claims.md).

Each claim module registers its experiments (:func:`register_claim`); :func:`reproduce` runs them and writes the
results, one Markdown table and one HTML page.
"""
from __future__ import annotations

from . import layers  # noqa: F401, I001 - each module registers its claims, in the order of the table
from . import complexity, redunet, learning, attention, selfsup  # noqa: F401, I001
from .base import SCALES, VERDICTS, Claim, Context, Measured, get_claim, list_claims, register_claim, spread, verdict
from .runner import claim_command, html_page, markdown_table, reproduce, splice_readme

__all__ = ["Claim", "Context", "Measured", "register_claim", "get_claim", "list_claims", "verdict", "spread",
           "reproduce", "claim_command", "markdown_table", "html_page", "splice_readme", "SCALES", "VERDICTS"]
