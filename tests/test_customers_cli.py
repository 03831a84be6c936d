"""customer add / edit / archive / list / show / import through the real CLI (exit codes, JSON, stderr)."""

from __future__ import annotations

import json

import pytest

from tollgate.clock import utcnow
from tollgate.models import Subscription


def add(cli, *args):
    result = cli("customer", "add", *args, "--json")
    assert result.exit_code == 0, result
    return result.json()


def test_add_generates_identifier_billing_id_and_times(cli):
    data = add(cli, "Acme, Inc.", "--email", "billing@acme.example")
    assert data["identifier"] == "acme-inc"
    assert data["billing_id"].startswith("cus_") and len(data["billing_id"]) > 10
    assert data["status"] == "active" and data["archived_at"] is None
    assert data["created_at"] == data["updated_at"] and data["created_at"].endswith("Z")
    assert list(data) == ["identifier", "billing_id", "name", "email", "status", "created_at", "updated_at", "archived_at"]


def test_add_without_json_says_what_it_did(cli):
    result = cli("customer", "add", "Globex")
    assert result.exit_code == 0
    assert "Added customer globex" in result.stdout
    assert result.stderr == ""


def test_taken_slug_gets_a_numbered_suffix(cli):
    assert add(cli, "Acme Inc")["identifier"] == "acme-inc"
    assert add(cli, "ACME inc.")["identifier"] == "acme-inc-2"
    assert add(cli, "acme  INC")["identifier"] == "acme-inc-3"


def test_unicode_name_gets_a_sensible_identifier(cli):
    data = add(cli, "Zoë Ångström")
    assert data["identifier"] == "zoe-angstrom"
    assert data["name"] == "Zoë Ångström"


@pytest.mark.parametrize("name, identifier", [
    ("Ørsted A/S", "orsted-a-s"), ("Straße GmbH", "strasse-gmbh"), ("Łódź Studio", "lodz-studio"),
    ("Москва ООО", "moskva-ooo"), ("Αθήνα Labs", "athina-labs"), ("日本", "riben"),
])
def test_names_in_any_script_are_transliterated(cli, name, identifier):
    assert add(cli, name)["identifier"] == identifier


def test_a_name_with_nothing_to_transliterate_falls_back(cli):
    assert add(cli, "!!!")["identifier"] == "customer"
    assert add(cli, "***")["identifier"] == "customer-2"


def test_explicit_identifier_is_kept(cli):
    assert add(cli, "Acme", "--id", "crm-00042")["identifier"] == "crm-00042"


@pytest.mark.parametrize("args, needle", [
    (["", ], "needs a name"),
    (["   "], "needs a name"),
    (["Acme", "--email", "not-an-email"], "not a valid email"),
    (["Acme", "--email", "a@b"], "not a valid email"),
    (["Acme", "--email", "two@@example.com"], "not a valid email"),
    (["Acme", "--id", "Acme Inc"], "not a valid customer identifier"),
    (["Acme", "--id", "-acme"], "not a valid customer identifier"),
    (["Acme", "--id", "a" * 65], "not a valid customer identifier"),
    (["Evil\x1b[31mName"], "control characters"),
])
def test_bad_input_is_refused_with_exit_2_and_writes_nothing(cli, args, needle):
    result = cli("customer", "add", *args)
    assert result.exit_code == 2, result
    assert needle in result.stderr
    assert result.stdout == ""
    assert cli("customer", "list", "--all", "--json").json() == []


def test_duplicate_explicit_identifier_is_refused(cli):
    add(cli, "Acme", "--id", "acme")
    result = cli("customer", "add", "Other Acme", "--id", "acme")
    assert result.exit_code == 1
    assert "already taken" in result.stderr
    assert [c["name"] for c in cli("customer", "list", "--json").json()] == ["Acme"]


def test_identifier_of_an_archived_customer_is_never_reused(cli):
    add(cli, "Acme")
    assert cli("customer", "archive", "acme", "--yes").exit_code == 0
    assert add(cli, "Acme")["identifier"] == "acme-2"
    assert cli("customer", "add", "Acme", "--id", "acme").exit_code == 1


def test_edit_name_and_email_updates_time_and_journal(cli):
    before = add(cli, "Acme", "--email", "old@acme.example")
    result = cli("customer", "edit", "acme", "--name", "Acme Corp", "--email", "new@acme.example", "--json")
    assert result.exit_code == 0, result
    after = result.json()
    assert (after["name"], after["email"], after["identifier"]) == ("Acme Corp", "new@acme.example", "acme")
    assert after["updated_at"] >= before["updated_at"] and after["created_at"] == before["created_at"]
    log = cli("log", "--customer", "acme", "--json").json()
    assert [e["action"] for e in log] == ["customer.create", "customer.update"]
    assert log[1]["details"]["email"] == ["old@acme.example", "new@acme.example"]


def test_edit_with_empty_email_removes_it(cli):
    add(cli, "Acme", "--email", "a@acme.example")
    assert cli("customer", "edit", "acme", "--email", "", "--json").json()["email"] is None


def test_edit_cannot_change_the_identifier(cli):
    add(cli, "Acme")
    result = cli("customer", "edit", "acme", "--id", "acme-2")
    assert result.exit_code == 2
    assert "identifier can never change" in result.stderr
    assert cli("customer", "show", "acme", "--json").exit_code == 0


def test_edit_unknown_customer(cli):
    result = cli("customer", "edit", "nobody", "--name", "X")
    assert result.exit_code == 2
    assert "No customer has the identifier 'nobody'" in result.stderr


def test_edit_with_nothing_to_change(cli):
    add(cli, "Acme")
    result = cli("customer", "edit", "acme")
    assert result.exit_code == 2 and "Nothing to change" in result.stderr


def test_edit_with_invalid_email_changes_nothing(cli):
    add(cli, "Acme", "--email", "a@acme.example")
    assert cli("customer", "edit", "acme", "--name", "New", "--email", "bad").exit_code == 2
    shown = cli("customer", "show", "acme", "--json").json()
    assert (shown["name"], shown["email"]) == ("Acme", "a@acme.example")


def test_archive_without_yes_off_a_terminal_is_refused(cli):
    add(cli, "Acme")
    result = cli("customer", "archive", "acme")
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert cli("customer", "show", "acme", "--json").json()["status"] == "active"


def test_archive_with_yes_hides_from_default_list(cli):
    add(cli, "Acme")
    add(cli, "Globex")
    result = cli("customer", "archive", "acme", "--yes", "--json")
    assert result.exit_code == 0
    assert result.json()["status"] == "archived" and result.json()["archived_at"]
    assert [c["identifier"] for c in cli("customer", "list", "--json").json()] == ["globex"]
    assert [c["identifier"] for c in cli("customer", "list", "--archived", "--json").json()] == ["acme"]
    assert len(cli("customer", "list", "--all", "--json").json()) == 2


def test_archive_twice_is_refused(cli):
    add(cli, "Acme")
    cli("customer", "archive", "acme", "--yes")
    result = cli("customer", "archive", "acme", "--yes")
    assert result.exit_code == 1 and "already archived" in result.stderr


def test_archive_refused_while_a_subscription_is_live(cli, tg):
    add(cli, "Acme")
    _insert_subscription(tg, "acme", status="active")
    result = cli("customer", "archive", "acme", "--yes")
    assert result.exit_code == 1
    assert "live subscription" in result.stderr and "sub cancel" in result.stderr
    assert cli("customer", "show", "acme", "--json").json()["status"] == "active"


def test_archive_allowed_when_subscriptions_are_canceled(cli, tg):
    add(cli, "Acme")
    _insert_subscription(tg, "acme", status="canceled")
    assert cli("customer", "archive", "acme", "--yes").exit_code == 0


def _insert_subscription(tg, customer_identifier: str, *, status: str) -> None:
    """A real subscription row (product and plan included) in the test's real database."""
    from tollgate.customers import get_customer
    from tollgate.models import Plan, PlanVersion, Product

    now = utcnow()
    with tg.db.write() as session:
        customer = get_customer(session, customer_identifier)
        product = Product(identifier="p", name="P", created_at=now, updated_at=now)
        session.add(product)
        session.flush()
        plan = Plan(identifier="basic", product_id=product.id, name="Basic", created_at=now, updated_at=now)
        session.add(plan)
        session.flush()
        version = PlanVersion(plan_id=plan.id, version=1, created_at=now)
        session.add(version)
        session.flush()
        session.add(Subscription(public_id="sub_test", customer_id=customer.id, plan_id=plan.id,
                                 plan_version_id=version.id, status=status, start_at=now, created_at=now,
                                 updated_at=now))


@pytest.mark.parametrize("query, expected", [
    ("ACME", ["acme", "acme-labs"]),
    ("%", ["percent"]),
    ("_", ["under-score"]),
    ("o'brien", ["obrien"]),
    ('"quoted"', ["quoted"]),
    ("'; drop table customer; --", []),
    ("zoë", ["zoe"]),
    ("ZOË", ["zoe"]),
    ("example.org", ["acme-labs"]),
])
def test_search_matches_literally_and_ignores_case(cli, query, expected):
    add(cli, "Acme", "--id", "acme")
    add(cli, "Acme Labs", "--id", "acme-labs", "--email", "ops@example.org")
    add(cli, "100% Juice", "--id", "percent")
    add(cli, "under_score", "--id", "under-score")
    add(cli, "O'Brien", "--id", "obrien")
    add(cli, 'The "Quoted" Co', "--id", "quoted")
    add(cli, "Zoë", "--id", "zoe")
    found = cli("customer", "list", "--search", query, "--json").json()
    assert [c["identifier"] for c in found] == expected
    assert len(cli("customer", "list", "--all", "--json").json()) == 7


def test_list_limit_and_csv(cli):
    for name in ("A", "B", "C"):
        add(cli, f"Customer {name}")
    result = cli("customer", "list", "--limit", "2", "--csv")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("identifier,billing_id,name,email,status")
    assert [line.split(",")[0] for line in lines[1:]] == ["customer-a", "customer-b"]


def test_list_table_is_plain_when_piped(cli):
    add(cli, "Acme", "--email", "a@acme.example")
    out = cli("customer", "list").stdout
    assert out.splitlines()[0].split() == ["identifier", "name", "email", "status", "created"]
    assert "acme" in out and "\x1b[" not in out and "━" not in out


def test_list_limit_must_be_positive(cli):
    result = cli("customer", "list", "--limit", "0")
    assert result.exit_code == 2


def test_markup_and_escape_codes_are_shown_literally(cli):
    add(cli, "[bold]x[/bold]")
    out = cli("customer", "list").stdout
    assert "[bold]x[/bold]" in out
    assert cli("customer", "show", "bold-x-bold").stdout.count("[bold]x[/bold]") == 1


def test_show_profile_and_json(cli):
    add(cli, "Acme", "--email", "a@acme.example")
    text = cli("customer", "show", "acme")
    assert text.exit_code == 0
    for label in ("identifier", "billing id", "name", "email", "created", "updated", "archived"):
        assert label in text.stdout
    data = cli("customer", "show", "acme", "--json").json()
    assert data["email"] == "a@acme.example"


def test_show_unknown_customer_exit_2(cli, empty_db):
    result = cli("customer", "show", "ghost")
    assert result.exit_code == 2 and "ghost" in result.stderr and result.stdout == ""


def test_unknown_option_is_a_usage_error(cli):
    result = cli("customer", "add", "Acme", "--colour", "blue")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_log_since_filters_and_rejects_bad_dates(cli):
    add(cli, "Acme")
    assert len(cli("log", "--since", "2000-01-01", "--json").json()) == 1
    assert cli("log", "--since", "2999-01-01", "--json").json() == []
    bad = cli("log", "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "not a --since time" in bad.stderr


def test_log_entries_name_actor_action_and_object(cli):
    add(cli, "Acme")
    entry = cli("log", "--json").json()[0]
    assert entry["action"] == "customer.create" and entry["object"] == "acme" and entry["customer"] == "acme"
    assert entry["actor"] and entry["at"].endswith("Z")
    assert json.dumps(entry)  # plain JSON-serialisable


@pytest.mark.parametrize("args", [
    ["customer", "show", "{c}"], ["customer", "edit", "{c}", "--name", "X"], ["entitlements", "{c}"],
    ["check", "{c}", "api-calls"], ["usage", "report", "{c}", "api-calls", "1", "--id", "k1"],
    ["usage", "show", "{c}"], ["invoice", "preview", "{c}"], ["sub", "add", "{c}", "pro"],
])
def test_an_unknown_customer_gets_the_closest_identifier_suggested(cli, tg, args):
    tg.add_customer("Acme, Inc.")
    tg.add_customer("Globex")
    tg.create_product("API", identifier="api")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    tg.create_plan("pro", product="api", feature_values=["api-calls=40"])
    close = cli(*[a.format(c="acme") for a in args])
    assert close.exit_code == 2
    assert close.stderr.startswith("error: No customer has the identifier 'acme'. Did you mean 'acme-inc'?"), close.stderr
    far = cli(*[a.format(c="zzzz") for a in args])
    assert far.exit_code == 2 and "Did you mean" not in far.stderr
    assert far.stderr.startswith("error: No customer has the identifier 'zzzz'.")


def test_customer_show_reads_its_whole_page_in_one_snapshot(tg, cli, monkeypatch):
    """`customer show` (Tollgate.customer_page) reads the profile, the usage and the deliverables in
    one transaction: usage another process commits between the parts is in none of them, so the
    entitlement's `used` and the usage section agree."""
    from tollgate import Tollgate
    from tollgate.usage import report

    tg.create_product("App", identifier="app")
    tg.create_feature("Calls", type="metered", identifier="calls")
    tg.create_plan("pro", product="app", feature_values=["calls=100"])
    tg.add_customer("Acme", identifier="acme")
    tg.add_subscription("acme", "pro")
    tg.report_usage("acme", "calls", 5)
    other = Tollgate(tg.db.location)
    real = report.usage_report

    def another_process_reports_meanwhile(*args, **kwargs):
        other.report_usage("acme", "calls", 7)  # committed on its own connection, mid-page
        return real(*args, **kwargs)

    monkeypatch.setattr(report, "usage_report", another_process_reports_meanwhile)
    result = cli("customer", "show", "acme", "--json")
    assert result.exit_code == 0, result
    page = result.json()
    entitled = [e for e in page["entitlements"] if e["feature"] == "calls"]
    shown = [f for f in page["usage"]["features"] if f["feature"] == "calls"]
    assert entitled[0]["used"] == "5" and shown[0]["used"] == "5" and shown[0]["total"] == "5"
    other.close()
    monkeypatch.undo()
    assert tg.usage("acme").features[0].used == 12  # the other report was kept


def test_the_customer_page_is_the_json_of_customer_show(tg, cli):
    """Tollgate.customer_page(...).to_dict() is exactly what `customer show --json` prints."""
    tg.add_customer("Acme", identifier="acme")
    page = tg.customer_page("acme")
    assert page.profile.customer.identifier == "acme" and page.usage.customer == "acme"
    shown = cli("customer", "show", "acme", "--json")
    assert shown.exit_code == 0, shown
    assert json.loads(json.dumps(page.to_dict(), default=str)) == shown.json()
