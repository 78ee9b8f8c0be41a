"""Counts of what the reliability tests tried (inputs, cases), printed at the end of a pytest run (see conftest)."""
from collections import Counter

COUNTS: Counter = Counter()


def tried(kind: str, n: int = 1) -> None:
    COUNTS[kind] += n
