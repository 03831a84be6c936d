"""The subscription status vocabulary, defined once (a pure module: the read path imports it).

A subscription is live (it grants access, until its `cancel_at` if any) in one of LIVE_STATUSES,
and has ended in one of ENDED_STATUSES. cli/complete.py spells LIVE_STATUSES in its SQL (it imports
nothing of the library); tests/test_completion.py checks that the two agree.
"""

from __future__ import annotations

LIVE_STATUSES = ("trialing", "active", "past_due")
ENDED_STATUSES = ("canceled", "expired")
STATUSES = (*LIVE_STATUSES, *ENDED_STATUSES)
