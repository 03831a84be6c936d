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
        assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
        assert all(v["subscribers"] > 0 for v in versions[:-1]), versions  # superseded only when someone was on it
        assert sum(v["subscribers"] for v in versions) == rounds + 1
