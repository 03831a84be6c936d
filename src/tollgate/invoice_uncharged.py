"""The note an invoice preview adds for usage nobody pays for: events in a billed period of a
subscription on a feature that no plan of the customer's subscriptions has a usage charge for (in
any currency: a charge in another currency is noted by invoices._applicable). Without it the usage would vanish from the bill silently.

Cost: one query on the day rollups per batch of customers finds the candidates (customer, feature
with usage in the batch's billed span); only those are summed exactly (usage.window_batch.window_totals).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from tollgate import tables


def uncharged_usage_notes(session: Any, billed: list[tuple[Any, list[Any]]], charged_features: dict[int, set[int]],
                          features: dict[int, tuple[str, str | None]]) -> dict[int, list[str]]:
    """Notes by customer id. `billed`: (Terms, the access windows of its billed periods) for each
    subscription on the previews; `charged_features`: customer id -> the features a plan of theirs charges."""
    from tollgate.money import format_decimal
    from tollgate.usage.window_batch import window_totals

    spans = [(terms, window) for terms, windows in billed for window in windows]
    if not spans:
        return {}
    day = tables.usage_rollup
    first = min(window.start for _, window in spans)
    last = max(window.end or datetime.max for _, window in spans)
    customer_ids = sorted({terms.customer_id for terms, _ in spans})
    used: dict[int, set[int]] = {}
    for start in range(0, len(customer_ids), 500):
        rows = session.execute(
            select(day.c.customer_id, day.c.feature_id).distinct()
            .where(day.c.level == 0, day.c.customer_id.in_(customer_ids[start:start + 500]),
                   day.c.start >= datetime.combine(first.date(), datetime.min.time()), day.c.start < last))
        for customer_id, feature_id in rows:
            used.setdefault(customer_id, set()).add(feature_id)
    windows = []
    for index, (terms, window) in enumerate(spans):
        for feature_id in sorted(used.get(terms.customer_id, set()) - charged_features.get(terms.customer_id, set())):
            windows.append(((index, feature_id), terms.customer_id, feature_id, window.start, window.end))
    notes: dict[int, list[str]] = {}
    totals: dict[tuple[int, int], int] = {}
    subscription = {terms.id: terms for terms, _ in spans}
    for (index, feature_id), micros in window_totals(session, windows).items():
        key = (spans[index][0].id, feature_id)
        totals[key] = totals.get(key, 0) + micros
    for (terms_id, feature_id), micros in totals.items():
        terms = subscription[terms_id]
        if micros > 0:
            feature, unit = features[feature_id]
            quantity = format_decimal(_quantity(micros))
            text = (f"{terms.public_id} ({terms.plan}): {quantity} {unit or feature} of '{feature}' used in the "
                    f"period, but the plan has no usage charge for '{feature}': not billed.")
            found = notes.setdefault(terms.customer_id, [])
            if text not in found:
                found.append(text)
    return notes


def _quantity(micros: int) -> Any:
    from tollgate.money import from_micros

    return from_micros(micros)
