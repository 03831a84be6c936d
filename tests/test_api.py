"""The typed façade: every public `Tollgate` method is annotated and returns views, JSON shapes or
plain values, never a database row; the CLI renders those views and imports no serializer."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tollgate.api import Tollgate
from tollgate.views import CustomerView, FeatureView, ProductView

SRC = Path(__file__).resolve().parent.parent / "src" / "tollgate"


def public_methods() -> list[tuple[str, object]]:
    found = []
    for name, member in inspect.getmembers(Tollgate):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            member = member.fget
        if callable(member):
            found.append((name, member))
    return found


def test_the_facade_has_its_methods():
    names = {name for name, _ in public_methods()}
    assert {"add_customer", "check", "consume", "plan", "report_usage", "invoice_preview", "journal"} <= names
    assert len(names) > 60


@pytest.mark.parametrize("name, method", public_methods(), ids=[name for name, _ in public_methods()])
def test_every_public_method_has_real_types(name, method):
    signature = inspect.signature(method)
    for parameter in list(signature.parameters.values())[1:]:  # after self
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name}) has no type"
        assert parameter.annotation != "Any", f"{name}({parameter.name}) is Any"
    returns = signature.return_annotation
    assert returns is not inspect.Signature.empty, f"{name} has no return type"
    assert not re.search(r"(^|\[|\| )Any(\]|$| \|)", returns), f"{name} returns {returns}"
    assert "dict[" not in returns, f"{name} returns {returns}: a frozen view with to_dict(), not the JSON shape"


def frozen(view: object) -> None:
    assert dataclasses.is_dataclass(view)
    field = dataclasses.fields(view)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(view, field, "changed")
    assert not hasattr(view, "__dict__")  # slots: a copy of the row, not something that carries one


def test_customers_products_and_features_come_back_as_frozen_views(tg):
    added = tg.add_customer("Acme, Inc.", email="billing@acme.example")
    product = tg.create_product("API", identifier="api")
    feature = tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    for view, kind in ((added, CustomerView), (product, ProductView), (feature, FeatureView)):
        assert type(view) is kind
        frozen(view)
    assert tg.customer("acme-inc") == added
    assert tg.customers() == [added]
    assert tg.products() == [product] and tg.product("api") == product
    assert tg.features() == [feature] and tg.feature("api-calls") == feature
    assert tg.customer_profile("acme-inc").customer == added
    archived = tg.archive_product("api")
    assert isinstance(archived, ProductView) and archived.status == "archived" and archived.plans == ()
    frozen(archived)
    assert archived.to_dict() == {**tg.product("api").to_dict(), "plans": []}
    edited = tg.edit_customer("acme-inc", email="")
    assert type(edited) is CustomerView and edited.email is None and added.email == "billing@acme.example"


def test_the_views_to_dict_is_the_json_the_cli_prints(tg, cli):
    tg.add_customer("Acme, Inc.", email="billing@acme.example")
    tg.create_product("API", identifier="api")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    tg.close()
    shown = cli("customer", "list", "--json")
    assert shown.exit_code == 0, shown
    assert shown.json() == [tg.customer("acme-inc").to_dict()]
    assert set(shown.json()[0]) == {"identifier", "billing_id", "name", "email", "status", "created_at",
                                    "updated_at", "archived_at"}
    assert cli("product", "list", "--json").json() == [tg.product("api").to_dict()]
    assert cli("product", "show", "api", "--json").json() == {**tg.product("api").to_dict(), "plans": []}
    assert cli("feature", "list", "--json").json() == [tg.feature("api-calls").to_dict()]
    entries = cli("log", "--json").json()
    assert entries == [e.to_dict() for e in tg.journal()]
    assert {"id", "at", "actor", "action", "object_type", "object", "customer", "details"} == set(entries[0])


def test_the_cli_imports_no_serializer_of_the_library():
    """The CLI renders what the API returns (`.to_dict()`, JSON shapes); it never builds a library
    object's JSON shape itself from a row."""
    shapes = re.compile(r"from tollgate\.(?!cli\b)[\w.]+ import [^\n]*\b(\w+_dicts?|csv_rows)\b")
    offenders = [f"{path.name}: {match.group(0)}" for path in sorted((SRC / "cli").glob("*.py"))
                 for match in shapes.finditer(path.read_text())]
    assert offenders == []


def test_db_info_and_check_are_frozen_views_whose_to_dict_is_the_cli_json(tg, cli):
    tg.add_customer("Acme, Inc.")
    info, report = tg.db_info(), tg.check_database()
    frozen(info)
    frozen(info.tables[0])
    frozen(report)
    assert report.ok and report.differences == () and isinstance(info.tables, tuple)
    assert {t.table: t.rows for t in info.tables}["customer"] == 1
    tg.close()
    assert cli("db", "info", "--json").json() == tg.db_info().to_dict()
    assert cli("db", "check", "--json").json() == report.to_dict()
    assert list(report.to_dict()) == ["location", "integrity", "events", "rollups", "rollup_differences",
                                      "differences", "ok"]


def test_plans_versions_and_charges_are_frozen_views_whose_to_dict_is_the_cli_json(tg, cli):
    from tollgate.catalog import LicensePolicy, Price
    from tollgate.grants import Grant
    from tollgate.plan_views import ChargeResult, PlanVersionView, PlanView
    from tollgate.rating import UsageCharge

    tg.create_product("API", identifier="api")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    created = tg.create_plan("pro", product="api", prices=[("month", "USD", "29")], feature_values=["api-calls=1000"],
                             license=LicensePolicy(3))
    charged = tg.set_usage_charge("pro", {"feature": "api-calls", "currency": "USD", "model": "flat",
                                          "unit_price": "0.01"})
    assert charged.action == "create" and charged.plan == tg.plans()[0] != created  # the charge is in
    link = tg.add_link("pro", "Docs", "https://docs.example.com")
    plan, versions = tg.plan("pro"), tg.versions("pro")
    assert type(created) is PlanView and type(charged) is ChargeResult and type(versions[0]) is PlanVersionView
    for view in (plan, charged, versions[0], plan.links[0]):
        frozen(view)
    assert plan.prices == (Price("month", "USD", Decimal("29.00")),) and plan.license == LicensePolicy(3)
    assert plan.entitlements == (Grant("api-calls", "metered", limit=Decimal(1000)),)
    assert plan.usage_charges == (charged.charge,) and isinstance(charged.charge, UsageCharge)
    assert isinstance(plan.created_at, datetime) and plan.archived_at is None
    assert plan.links[0] == link  # one LinkView: a plan's links are the deliverables' own
    tg.close()
    assert cli("plan", "show", "pro", "--json").json() == plan.to_dict()
    assert cli("plan", "list", "--json").json() == [plan.to_dict()]
    assert cli("plan", "versions", "pro", "--json").json() == [v.to_dict() for v in versions]
    planned = tg.migrate("pro", to=1, dry_run=True)
    frozen(planned)
    assert planned.moves == () and cli("plan", "migrate", "pro", "--to", "1", "--dry-run", "--json").json() == (
        planned.to_dict())
    assert list(plan.to_dict()) == ["identifier", "version", "product", "name", "description", "status",
                                    "trial_days", "prices", "entitlements", "usage_charges", "license",
                                    "downloads", "links", "created_at", "updated_at", "archived_at"]
    archived = tg.archive_plan("pro")
    assert archived.status == "archived" and archived.to_dict() == {
        **plan.to_dict(), "status": "archived", "updated_at": archived.to_dict()["updated_at"],
        "archived_at": archived.to_dict()["archived_at"]}


def test_usage_events_come_back_as_frozen_views_whose_dict_is_the_export_row(tg, cli):
    tg.add_customer("Acme", identifier="acme")
    tg.create_product("API", identifier="api")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    tg.create_plan("pro", product="api", feature_values=["api-calls=1000"])
    tg.add_subscription("acme", "pro")
    tg.report_usage("acme", "api-calls", "2.5", key="req-1", at="2026-11-20T10:00:00Z")
    event = tg.usage_event("req-1")
    frozen(event)
    assert (event.customer, event.feature, event.quantity, event.timestamp, event.id) == (
        "acme", "api-calls", Decimal("2.5"), datetime(2026, 11, 20, 10), "req-1")
    with tg.usage_export(customer="acme") as events:
        exported = list(events)
    assert exported == [event]
    tg.close()
    result = cli("usage", "export", "--customer", "acme", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [event.to_dict()]
