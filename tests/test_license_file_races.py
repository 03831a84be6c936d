"""Process-level races of `license file` (the helpers of test_races.py): concurrent issues of one key
never pass its activation limit, activations_per_day or files_per_day, and the first issues on a
machine make one signing key. SQLite by construction (BEGIN IMMEDIATE); PostgreSQL by the key's row
lock and the "signing-keys" advisory lock (locks.py)."""

from __future__ import annotations

import pytest
from test_races import _catalog, assert_clean, race

from tollgate import Tollgate
from tollgate.catalog import LicensePolicy

pytestmark = pytest.mark.slow


def _keys(db, count: int, policy: LicensePolicy) -> list[str]:
    with Tollgate(db) as tg:
        _catalog(tg, license=policy)
        for r in range(count):
            tg.add_customer(f"Customer {r}", identifier=f"c{r}")
            tg.add_subscription(f"c{r}", "pro")
        return [tg.licenses(customer=f"c{r}")[0].key for r in range(count)]


def _signing_keys(db) -> int:
    with Tollgate(db) as tg:
        return len(tg.public_keys(all_keys=True))


@pytest.mark.parametrize("policy, same_machine, allowed", [
    (LicensePolicy(activation_limit=2), False, 2),
    (LicensePolicy(activation_limit=None, activations_per_day=2), False, 2),
    (LicensePolicy(activation_limit=None, files_per_day=2), True, 2),
], ids=["activation_limit", "activations_per_day", "files_per_day"])
def test_concurrent_license_files_never_pass_a_limit(isolated_db, policy, same_machine, allowed):
    rounds, racers = 12, 4
    keys = _keys(isolated_db, rounds, policy)
    outcomes = race(isolated_db, rounds, *[
        lambda tg, r, i=i: tg.issue_license_file(keys[r], fingerprint="m" if same_machine else f"m{i}")
        for i in range(racers)])
    assert_clean(outcomes, "LicenseRefused")
    for r in range(rounds):
        assert [step[r] for step in outcomes].count("ok") == allowed, [step[r] for step in outcomes]
    with Tollgate(isolated_db) as tg:
        seats = [len(tg.license(key).activations) for key in keys]
    assert seats == [1 if same_machine else allowed] * rounds
    assert _signing_keys(isolated_db) == 1  # the first round's racers made one key between them
