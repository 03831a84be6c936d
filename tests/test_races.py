"""Process-level races of every read-then-write path: processes started at one barrier run the same
step on the same rows, round after round, and the invariant the step must keep is checked after.

On SQLite a write transaction is BEGIN IMMEDIATE (one writer at a time), so these pass by
construction; on PostgreSQL (TOLLGATE_TEST_DB) write transactions are READ COMMITTED and each path
must lock what its decision is about first (src/tollgate/locks.py). Each test's workers are forked
processes with their own Tollgate handle; a step's outcome is "ok", the class of the TollgateError it
raised (a refusal), or "BUG ..." for any other exception. No step may end in BUG or StorageError:
the losers of a race are refused by the rule they lost to, in one sentence.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ON_POSTGRES
from sqlalchemy import func, select

from tollgate import Tollgate, migrations
from tollgate.catalog import LicensePolicy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample-catalog.toml"
Step = Callable[[Tollgate, int], object]


def race(db: Path | str, rounds: int, *steps: Step, timeout: float = 60) -> list[list[str]]:
    """Run each step in its own process, `rounds` times, every round started by all at once (a
    barrier). Returns each step's outcomes, round by round."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(steps))
    results = ctx.Queue()

    def worker(index: int, step: Step) -> None:
        from tollgate.errors import TollgateError

        outcomes = []
        try:
            tg = Tollgate(db)
            tg.db.engine  # open (and warm up) before the first round
            for round_ in range(rounds):
                barrier.wait(timeout)
                try:
                    step(tg, round_)
                    outcomes.append("ok")
                except TollgateError as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}")
                except Exception as exc:  # reported: the test expects none
                    outcomes.append(f"BUG {type(exc).__name__}: {exc} {traceback.format_exc()[-800:]}")
            tg.close()
        except Exception as exc:
            outcomes.append(f"BUG worker: {exc!r}")
            barrier.abort()
        results.put((index, outcomes))

    procs = [ctx.Process(target=worker, args=(i, step)) for i, step in enumerate(steps)]
    for proc in procs:
        proc.start()
    try:
        collected = dict(results.get(timeout=timeout * rounds) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return [collected[i] for i in range(len(steps))]


def kinds(outcomes: list[list[str]]) -> Counter:
    """How many outcomes of each kind ("ok", "RuleViolation", ...), over all steps and rounds."""
    return Counter(o.split(":", 1)[0] for step in outcomes for o in step)


def assert_clean(outcomes: list[list[str]], *allowed: str) -> Counter:
    found = kinds(outcomes)
    bad = [o for step in outcomes for o in step if o.split(":", 1)[0] not in ("ok", *allowed)]
    assert bad == [], bad[:5]
    return found


def _catalog(tg: Tollgate, *, license: LicensePolicy | None = None, trial_days: int | None = None) -> None:
    tg.create_product("App", identifier="app")
    tg.create_feature("API calls", type="metered", identifier="api-calls")
    tg.create_plan("pro", product="app", feature_values=["api-calls=1000"], license=license,
                   prices=[("month", "USD", "10.00")], trial_days=trial_days)


def _journal_count(tg: Tollgate, action: str) -> Counter:
    from tollgate.models import Journal

    with tg.db.read() as session:
        rows = session.execute(select(Journal.object_id).where(Journal.action == action)).all()
    return Counter(object_id for (object_id,) in rows)


# -- customer archive vs sub add ------------------------------------------------------------------------


def test_archive_racing_subscribe_never_leaves_an_archived_customer_with_a_live_subscription(isolated_db):
    rounds = 40
    with Tollgate(isolated_db) as tg:
        _catalog(tg, trial_days=14)
        for r in range(rounds):
            tg.add_customer(f"Customer {r}", identifier=f"c{r}")
    outcomes = race(isolated_db, rounds,
                    lambda tg, r: tg.archive_customer(f"c{r}"),
                    lambda tg, r: tg.add_subscription(f"c{r}", "pro"))
    assert_clean(outcomes, "RuleViolation")
    from tollgate.customers import live_subscription_ids
    from tollgate.models import Customer

    with Tollgate(isolated_db) as tg, tg.db.read() as session:
        customers = session.execute(select(Customer)).scalars().all()
        broken = [c.identifier for c in customers
                  if c.status == "archived" and live_subscription_ids(session, c.id)]
        billed = [p.customer for p in tg.invoice_previews() if p.customer in {c.identifier for c in customers
                                                                                if c.status == "archived"}]
    assert broken == [] and billed == []
    for r, (archive, subscribe) in enumerate(zip(*outcomes)):
        assert (archive == "ok") != (subscribe == "ok"), (r, archive, subscribe)  # exactly one wins


def _journal_order(tg: Tollgate) -> list[tuple[str, str, dict]]:
    """(action, object id, details) of every journal entry, in the order they were written."""
    return [(e.action, e.object_id, e.details) for e in tg.journal()]


def test_two_concurrent_sub_adds_of_one_customer_and_plan_add_one(isolated_db):
    """The customer's row lock orders them: the second sees the first and is refused, naming it."""
    rounds = 30
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        for r in range(rounds):
            tg.add_customer(f"Customer {r}", identifier=f"c{r}")
    outcomes = race(isolated_db, rounds, *[lambda tg, r: tg.add_subscription(f"c{r}", "pro")] * 2)
    found = assert_clean(outcomes, "RuleViolation")
    assert found == Counter({"ok": rounds, "RuleViolation": rounds})
    assert all("already has a live subscription" in o for step in outcomes for o in step if o != "ok")
    with Tollgate(isolated_db) as tg:
        assert Counter(s.customer for s in tg.subscriptions()) == Counter({f"c{r}": 1 for r in range(rounds)})


def test_plan_archive_racing_subscribe_never_subscribes_to_an_archived_plan(isolated_db):
    """Both may succeed only as if the subscription came first (its journal entry is the earlier one)."""
    rounds = 30
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        for r in range(rounds):
            tg.create_plan(f"p{r}", product="app")
            tg.add_customer(f"Customer {r}", identifier=f"c{r}")
    outcomes = race(isolated_db, rounds,
                    lambda tg, r: tg.archive_plan(f"p{r}"),
                    lambda tg, r: tg.add_subscription(f"c{r}", f"p{r}"))
    assert_clean(outcomes, "RuleViolation")
    assert all(o == "ok" for o in outcomes[0])
    with Tollgate(isolated_db) as tg:
        archived: set[str] = set()
        for action, object_id, details in _journal_order(tg):
            if action == "plan.archive":
                archived.add(object_id)
            elif action == "subscription.create":
                assert details["plan"] not in archived, f"{object_id} subscribed to {details['plan']} after its archive"


def test_concurrent_customer_adds_never_clash_on_identifiers(isolated_db):
    """Two adds of one name get two generated identifiers; two adds of one given identifier: one is
    refused (Conflict, exit 1), never a duplicate-key error."""
    rounds = 30
    outcomes = race(isolated_db, rounds,
                    lambda tg, r: tg.add_customer(f"Acme {r}"),
                    lambda tg, r: tg.add_customer(f"Acme {r}"),
                    lambda tg, r: tg.add_customer("Given", identifier=f"given-{r}"),
                    lambda tg, r: tg.add_customer("Given", identifier=f"given-{r}"))
    assert_clean(outcomes, "Conflict")
    assert all(o == "ok" for o in outcomes[0] + outcomes[1])
    with Tollgate(isolated_db) as tg:
        names = Counter(c.name for c in tg.customers())
    assert names == Counter({**{f"Acme {r}": 2 for r in range(rounds)}, "Given": rounds})


# -- licenses: regenerate, regenerate vs cancel, activate ------------------------------------------------


def _licensed_subscriptions(tg: Tollgate, count: int, *, limit: int | None = None) -> list[tuple[str, str]]:
    _catalog(tg, license=LicensePolicy(activation_limit=limit))
    made = []
    for r in range(count):
        tg.add_customer(f"Customer {r}", identifier=f"c{r}")
        sub = tg.add_subscription(f"c{r}", "pro")
        made.append((sub.id, tg.licenses(customer=f"c{r}")[0].key))
    return made


def _live_keys(tg: Tollgate) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for lic in tg.licenses():
        if lic.status == "active":
            found.setdefault(lic.subscription, []).append(lic.key)
    return found


def test_concurrent_regenerates_leave_exactly_one_live_key_per_subscription(isolated_db):
    rounds, racers = 25, 3
    with Tollgate(isolated_db) as tg:
        made = _licensed_subscriptions(tg, rounds)
    outcomes = race(isolated_db, rounds, *[lambda tg, r: tg.regenerate_license(made[r][1])] * racers)
    assert_clean(outcomes, "RuleViolation")
    with Tollgate(isolated_db) as tg:
        live = _live_keys(tg)
        assert {sub: len(live.get(sub, [])) for sub, _ in made} == {sub: 1 for sub, _ in made}
        assert sum(_journal_count(tg, "license.regenerate").values()) == rounds
    for r in range(rounds):
        assert [step[r] for step in outcomes].count("ok") == 1, [step[r] for step in outcomes]


def test_regenerate_racing_cancel_never_leaves_a_live_key_on_a_canceled_subscription(isolated_db):
    rounds = 30
    with Tollgate(isolated_db) as tg:
        made = _licensed_subscriptions(tg, rounds)
    outcomes = race(isolated_db, rounds,
                    lambda tg, r: tg.regenerate_license(made[r][1]),
                    lambda tg, r: tg.cancel_subscription(made[r][0]))
    assert_clean(outcomes, "RuleViolation")
    assert all(o == "ok" for o in outcomes[1])  # a cancel never loses
    with Tollgate(isolated_db) as tg:
        assert _live_keys(tg) == {}


def test_concurrent_activations_never_pass_the_activation_limit(isolated_db):
    rounds, racers, limit = 20, 4, 2
    with Tollgate(isolated_db) as tg:
        made = _licensed_subscriptions(tg, rounds, limit=limit)
    outcomes = race(isolated_db, rounds,
                    *[lambda tg, r, i=i: tg.activate_license(made[r][1], f"host-{i}") for i in range(racers)])
    assert_clean(outcomes, "LicenseRefused")
    with Tollgate(isolated_db) as tg:
        assert [len(tg.license(key).activations) for _, key in made] == [limit] * rounds
    for r in range(rounds):
        assert [step[r] for step in outcomes].count("ok") == limit


def test_concurrent_revokes_and_deactivations_happen_once(isolated_db):
    """Two `license revoke` of a key, two `license deactivate` of one instance: one of each is done
    (and journaled), the other refused."""
    rounds = 25
    with Tollgate(isolated_db) as tg:
        made = _licensed_subscriptions(tg, rounds * 2)
        instances = [tg.activate_license(made[rounds + r][1], "host").instance_id for r in range(rounds)]
    outcomes = race(isolated_db, rounds,
                    *[lambda tg, r: tg.revoke_license(made[r][1])] * 2,
                    *[lambda tg, r: tg.deactivate_license(made[rounds + r][1], instances[r])] * 2)
    assert_clean(outcomes, "RuleViolation")
    with Tollgate(isolated_db) as tg:
        assert _journal_count(tg, "license.revoke") == Counter({key: 1 for _, key in made[:rounds]})
        assert _journal_count(tg, "license.deactivate") == Counter({key: 1 for _, key in made[rounds:]})


def test_concurrent_customer_edits_keep_the_search_text_right(isolated_db):
    """`customer edit --name` racing `customer edit --email`: both apply, and search finds both."""
    rounds = 30
    with Tollgate(isolated_db) as tg:
        for r in range(rounds):
            tg.add_customer(f"Old {r}", identifier=f"c{r}", email=f"old{r}@example.com")
    outcomes = race(isolated_db, rounds,
                    lambda tg, r: tg.edit_customer(f"c{r}", name=f"Renamed {r} end"),
                    lambda tg, r: tg.edit_customer(f"c{r}", email=f"new{r}@example.com"))
    assert_clean(outcomes)
    with Tollgate(isolated_db) as tg:
        for r in range(rounds):
            assert [c.identifier for c in tg.customers(search=f"Renamed {r} end")] == [f"c{r}"]
            assert [c.identifier for c in tg.customers(search=f"new{r}@")] == [f"c{r}"]


# -- subscriptions: cancel vs edit, edit vs edit --------------------------------------------------------


def test_cancel_racing_edit_is_never_lost(isolated_db):
    """An immediate cancel and `sub edit --status expired` of the same subscription: exactly one ends it
    (the other is refused: it is already ended); two edits of the same adjustment: both apply, in turn."""
    rounds = 30
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        subs = []
        for r in range(rounds):
            tg.add_customer(f"Customer {r}", identifier=f"c{r}")
            subs.append(tg.add_subscription(f"c{r}", "pro").id)
    outcomes = race(isolated_db, rounds,
                    lambda tg, r: tg.cancel_subscription(subs[r]),
                    lambda tg, r: tg.edit_subscription(subs[r], status="expired"),
                    lambda tg, r: tg.edit_subscription(subs[r], features=["api-calls=5"]))
    assert_clean(outcomes, "RuleViolation")
    with Tollgate(isolated_db) as tg:
        views = {s.id: s for s in tg.subscriptions()}
        final = {sub: view.status for sub, view in views.items()}
        ended = _journal_count(tg, "subscription.cancel") + Counter(
            e.object_id for e in tg.journal() if e.action == "subscription.update" and "status" in e.details)
    for r, sub in enumerate(subs):
        cancel, expire, adjust = (step[r] for step in outcomes)
        assert (cancel == "ok") != (expire == "ok"), (r, cancel, expire)
        limits = [str(a.limit) for a in views[sub].adjustments]
        assert limits == (["5"] if adjust == "ok" else []), (r, adjust, limits)
        assert final[sub] == ("canceled" if cancel == "ok" else "expired")
        assert ended[sub] == 1


# -- overrides ---------------------------------------------------------------------------------------------


def test_concurrent_override_sets_keep_one_override_per_customer_and_feature(isolated_db):
    rounds, racers = 30, 3
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        for r in range(rounds):
            tg.add_customer(f"Customer {r}", identifier=f"c{r}")
    outcomes = race(isolated_db, rounds,
                    *[lambda tg, r, i=i: tg.set_override(f"c{r}", "api-calls", 100 + i) for i in range(racers)],
                    lambda tg, r: tg.archive_customer(f"c{r}"))
    assert_clean(outcomes, "RuleViolation")
    unset = race(isolated_db, rounds, *[lambda tg, r: tg.unset_override(f"c{r}", "api-calls")] * 2)
    assert_clean(unset, "NotFound")
    from tollgate.models import Journal, Override

    with Tollgate(isolated_db) as tg, tg.db.read() as session:
        per_pair = session.execute(select(Override.customer_id, func.count()).group_by(Override.customer_id)).all()
        assert all(count == 1 for _, count in per_pair)
        entries = session.execute(select(Journal.object_id, Journal.action).order_by(Journal.id)).all()
    archived_at: dict[str, int] = {}
    for index, (object_id, action) in enumerate(entries):  # the journal is in commit order per customer
        customer = object_id.split("/")[0]
        if action == "customer.archive":
            archived_at[customer] = index
        elif action in ("override.set", "override.update") and customer in archived_at:
            raise AssertionError(f"{action} of {object_id} after {customer} was archived")
    with Tollgate(isolated_db) as tg:
        assert tg.overrides() == []
        assert sum(_journal_count(tg, "override.unset").values()) == sum(o == "ok" for step in unset for o in step)


# -- imports ---------------------------------------------------------------------------------------------


def test_concurrent_customer_imports_of_the_same_identifiers_serialize(isolated_db, tmp_path):
    rounds, racers, size = 6, 3, 150
    files = []
    for r in range(rounds):
        path = tmp_path / f"customers-{r}.csv"
        path.write_text("identifier,name,email\n" + "".join(
            f"r{r}-c{i},Customer {r}-{i},c{i}@r{r}.example\n" for i in range(size)))
        files.append(path)

    def step(tg: Tollgate, r: int) -> object:
        from tollgate.rowfiles import read_rows

        return tg.import_customers(read_rows(str(files[r]), "csv"))

    outcomes = race(isolated_db, rounds, *[step] * racers)
    assert_clean(outcomes)  # every import succeeds: the first creates, the others find them unchanged
    with Tollgate(isolated_db) as tg:
        assert len(tg.customers()) == rounds * size
        created = _journal_count(tg, "customer.create")
        assert set(created.values()) == {1} and len(created) == rounds * size


def test_concurrent_catalog_imports_serialize(isolated_db, tmp_path):
    rounds, racers = 3, 3
    text = SAMPLE.read_text()
    files = []
    for r in range(rounds):  # the sample, then changes to it: a renamed product, a new feature
        folder = tmp_path / f"catalog-{r}"
        (folder / "assets").mkdir(parents=True)
        for asset in (REPO / "assets").glob("*"):
            (folder / "assets" / asset.name).write_bytes(asset.read_bytes())
        changed = text if r == 0 else text.replace('name = "Lumen AI"', f'name = "Lumen AI {r}"') + (
            f'\n[features.extra-{r}]\nname = "Extra {r}"\ntype = "boolean"\n')
        (folder / "catalog.toml").write_text(changed)
        files.append(folder / "catalog.toml")
    outcomes = race(isolated_db, rounds, *[lambda tg, r: tg.import_catalog(files[r])] * racers)
    assert_clean(outcomes)
    with Tollgate(isolated_db) as tg:
        again = tg.import_catalog(files[-1], dry_run=True)
        assert not again.changed  # everything of the last file is in, once
        assert tg.product("lumen-ai").name == f"Lumen AI {rounds - 1}"


def test_concurrent_link_adds_of_one_name_add_it_once(isolated_db):
    """The plan-attached catalog changes (links, downloads, usage charges) take the catalog's lock too."""
    rounds, racers = 25, 3
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
    outcomes = race(isolated_db, rounds,
                    *[lambda tg, r, i=i: tg.add_link("pro", f"Link {r}", f"https://example.com/{r}/{i}")
                      for i in range(racers)])
    assert_clean(outcomes, "Conflict")
    with Tollgate(isolated_db) as tg:
        assert sorted(link.name for link in tg.links(plan="pro")) == sorted(f"Link {r}" for r in range(rounds))


# -- usage: void, --set and consume -------------------------------------------------------------------------


def test_concurrent_voids_of_one_event_void_it_once(isolated_db):
    rounds, racers = 30, 3
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        tg.add_customer("Acme", identifier="acme")
        tg.add_subscription("acme", "pro")
        for r in range(rounds):
            tg.report_usage("acme", "api-calls", 1, key=f"e{r}")
    outcomes = race(isolated_db, rounds, *[lambda tg, r: tg.void_usage(f"e{r}", reason="test")] * racers)
    assert_clean(outcomes, "RuleViolation")
    with Tollgate(isolated_db) as tg:
        assert tg.check("acme", "api-calls").used == 0  # (the second void's row is skipped by its key)
        assert _journal_count(tg, "usage.void") == Counter({f"e{r}": 1 for r in range(rounds)})
    for r in range(rounds):
        assert [step[r] for step in outcomes].count("ok") == 1, [step[r] for step in outcomes]


def test_concurrent_consumes_with_one_key_record_it_once(isolated_db):
    """The same idempotency key consumed by several processes at once: one event, whoever wins."""
    rounds, racers = 30, 3
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        tg.add_customer("Acme", identifier="acme")
        tg.add_subscription("acme", "pro")
    outcomes = race(isolated_db, rounds,
                    *[lambda tg, r: tg.consume("acme", "api-calls", 1, key=f"k{r}")] * racers)
    assert_clean(outcomes)
    with Tollgate(isolated_db) as tg:
        assert tg.check("acme", "api-calls").used == rounds


def test_concurrent_set_totals_leave_one_of_the_totals_set(isolated_db):
    rounds, racers = 20, 3
    with Tollgate(isolated_db) as tg:
        _catalog(tg)
        for r in range(rounds):
            tg.add_customer(f"Customer {r}", identifier=f"c{r}")
            tg.add_subscription(f"c{r}", "pro")
    outcomes = race(isolated_db, rounds, *[lambda tg, r, i=i: tg.report_usage(f"c{r}", "api-calls", 10 * (i + 1),
                                                                             set_total=True)
                                           for i in range(racers)])
    assert_clean(outcomes)
    with Tollgate(isolated_db) as tg:
        totals = [tg.check(f"c{r}", "api-calls").used for r in range(rounds)]
    assert all(total in (10, 20, 30) for total in totals), totals


# -- schema migration ------------------------------------------------------------------------------------


def test_processes_opening_an_older_database_at_once_migrate_it_once(isolated_db, monkeypatch):
    """Each round adds a migration (a new column) and every process opens the database at once: one
    applies it, the others wait for the schema lock (SQLite: BEGIN IMMEDIATE) and find it done."""
    from sqlalchemy import text

    from tollgate import schema

    added = [text("ALTER TABLE customer ADD COLUMN race_a INTEGER"), text("ALTER TABLE customer ADD COLUMN race_b INTEGER"),
             text("ALTER TABLE customer ADD COLUMN race_c INTEGER"), text("ALTER TABLE customer ADD COLUMN race_d INTEGER")]
    rounds, racers, base = len(added), 4, schema.SCHEMA_VERSION
    with Tollgate(isolated_db) as tg:
        tg.add_customer("Acme", identifier="acme")

    def open_newer(tg: Tollgate, r: int) -> None:
        version = base + 1 + r
        schema.SCHEMA_VERSION = version  # (a forked worker: this process only)
        migrations.MIGRATIONS[version] = lambda conn: conn.execute(added[r])
        with Tollgate(isolated_db) as newer:
            with newer.db.engine.connect() as conn:
                assert schema.schema_version_in(conn) == version
            newer.customer("acme")

    outcomes = race(isolated_db, rounds, *[open_newer] * racers)
    assert_clean(outcomes)
    monkeypatch.setattr(schema, "SCHEMA_VERSION", base + rounds)  # this process now knows the newest schema
    with Tollgate(isolated_db).db.bare_engine().connect() as conn:
        assert schema.schema_version_in(conn) == base + rounds
    if isinstance(isolated_db, Path):  # one backup per migration, made by the process that migrated
        assert len(list(isolated_db.parent.glob(f"{isolated_db.name}.schema-*.bak"))) == rounds
