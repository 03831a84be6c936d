"""Column helpers shared by the table modules."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column


def micros_column(**kwargs) -> Column:
    """A quantity in integer millionths (exact sums in SQL)."""
    return Column(BigInteger, **kwargs)
