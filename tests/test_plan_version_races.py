"""Plan versions under concurrency (see test_races.py for the harness): plan changes racing each other
and `sub add` (on PostgreSQL: READ COMMITTED) never make two version 2s and never supersede a version
nobody is on (plan_versions.py locks the plan before counting its subscribers)."""

from __future__ import annotations

import pytest
from test_races import _catalog, assert_clean, race
from tollgate import Tollgate

pytestmark = pytest.mark.slow


def test_plan_changes_racing_each_other_and_sub_add_keep_one_version_per_change(isolated_db):
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        for n in range(6):
            tg.add_customer(f"C{n}", identifier=f"c{n}")
        tg.add_subscription("c0", "pro")
    rounds = 5

    def charge(racer: int):
        def step(tg: Tollgate, r: int) -> None:
            tg.set_usage_charge("pro", {"feature": "api-calls", "currency": "USD", "model": "flat",
                                        "unit_price": f"0.{r}{racer}1"})
        return step

    def subscribe(tg: Tollgate, r: int) -> None:
        tg.add_subscription(f"c{r + 1}", "pro")

    outcomes = race(isolated_db, rounds, charge(1), charge(2), subscribe)
    assert_clean(outcomes)
    with Tollgate(isolated_db) as tg:
        versions = tg.versions("pro")
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        assert all(v.subscribers > 0 for v in versions[:-1]), versions  # superseded only when someone was on it
        assert sum(v.subscribers for v in versions) == rounds + 1


def test_a_new_subscription_racing_a_plan_change_keeps_what_it_bought(isolated_db, tmp_path):
    """`sub add` reads the current version under the plan's share lock and the change locks the plan
    before counting its subscribers: so a subscription committed on a version is never followed by
    an in-place edit of that version (what it bought, read in its own transaction, stays)."""
    import json

    from sqlmodel import select

    from tollgate import plan_specs, subscriptions
    from tollgate.models import Plan, Subscription

    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        for n in range(8):
            tg.add_customer(f"C{n}", identifier=f"c{n}")
    bought = tmp_path / "bought.jsonl"
    rounds = 8

    def change(tg: Tollgate, r: int) -> None:
        tg.set_usage_charge("pro", {"feature": "api-calls", "currency": "USD", "model": "flat",
                                    "unit_price": f"0.{r + 1}"})

    def subscribe(tg: Tollgate, r: int) -> None:
        with tg.db.write() as session:
            sub = subscriptions.add_subscription(session, customer=f"c{r}", plan="pro")
            plan = session.get(Plan, sub.plan_id)
            spec = plan_specs.plan_specs(session, [plan], versions={plan.id: sub.plan_version_id})[plan.id]
            charges = [c.unit_price for c in spec.charges] if spec.charges else []
            public_id = sub.public_id
        with bought.open("a") as out:
            out.write(json.dumps({"sub": public_id, "charges": [str(c) for c in charges]}) + "\n")

    assert_clean(race(isolated_db, rounds, change, subscribe))
    with Tollgate(isolated_db) as tg, tg.db.read() as session:
        plan = session.exec(select(Plan).where(Plan.identifier == "pro")).one()
        for line in bought.read_text().splitlines():
            entry = json.loads(line)
            sub = session.exec(select(Subscription).where(Subscription.public_id == entry["sub"])).one()
            spec = plan_specs.plan_specs(session, [plan], versions={plan.id: sub.plan_version_id})[plan.id]
            assert [str(c.unit_price) for c in spec.charges] == entry["charges"], entry
