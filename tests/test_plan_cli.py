"""plan create / list / show / archive / charge through the real CLI."""

from __future__ import annotations

import pytest


@pytest.fixture
def catalog(cli):
    cli("product", "create", "ai-studio", "--name", "AI Studio")
    cli("feature", "create", "--name", "AI tokens", "--type", "metered", "--unit", "token")
    cli("feature", "create", "--name", "SSO", "--type", "boolean")
    cli("feature", "create", "--name", "Max projects", "--type", "config")
    cli("feature", "create", "--name", "Region", "--type", "config")
    return cli


def test_create_with_prices_and_every_kind_of_feature(catalog):
    made = catalog(
        "plan", "create", "pro", "--product", "ai-studio", "--name", "Pro", "--trial-days", "14",
        "--price", "49", "--currency", "usd", "--interval", "month",
        "--price", "470.00", "--currency", "EUR", "--interval", "year",
        "--feature", "ai-tokens=100000", "--hard", "ai-tokens", "--reset", "ai-tokens=day",
        "--alert", "ai-tokens=90", "--alert", "ai-tokens=75%",
        "--feature", "sso=true", "--feature", "max-projects=10", "--feature", "region=eu",
        "--json",
    )
    assert made.exit_code == 0, made
    plan = made.json()
    assert (plan["identifier"], plan["product"], plan["name"], plan["trial_days"], plan["status"]) == (
        "pro", "ai-studio", "Pro", 14, "active")
    assert plan["prices"] == [
        {"interval": "month", "currency": "USD", "amount": "49.00"},
        {"interval": "year", "currency": "EUR", "amount": "470.00"},
    ]
    assert plan["entitlements"] == [
        {"feature": "ai-tokens", "type": "metered", "limit": "100000", "unlimited": False, "reset": "day",
         "hard": True, "alerts": [75, 90]},
        {"feature": "max-projects", "type": "config", "value": 10},
        {"feature": "region", "type": "config", "value": "eu"},
        {"feature": "sso", "type": "boolean", "value": True},
    ]
    assert plan["usage_charges"] == [] and plan["license"] is None
    assert catalog("plan", "show", "pro", "--json").json() == plan


def test_one_currency_and_interval_apply_to_every_price(catalog):
    made = catalog("plan", "create", "p", "--product", "ai-studio", "--price", "10", "--price", "20",
                   "--currency", "USD", "--interval", "month", "--interval", "year", "--json")
    assert made.exit_code == 0, made
    assert [(p["interval"], p["amount"]) for p in made.json()["prices"]] == [("month", "10.00"), ("year", "20.00")]


def test_metered_defaults_are_monthly_and_soft_and_a_plan_without_price_is_free(catalog):
    made = catalog("plan", "create", "free", "--product", "ai-studio", "--feature", "ai-tokens=unlimited")
    assert made.exit_code == 0, made
    assert made.stdout == "Created plan free (Free) of ai-studio: free, 1 entitlement(s).\n"
    plan = catalog("plan", "show", "free", "--json").json()
    assert plan["prices"] == []
    assert plan["entitlements"][0] == {"feature": "ai-tokens", "type": "metered", "limit": None, "unlimited": True,
                                       "reset": "month", "hard": False, "alerts": []}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--product", "nope"], "needs the product 'nope'"),
        (["--product", "ai-studio", "--feature", "nope=1"], "tollgate feature create --id nope"),
        (["--product", "gone", "--feature", "a=1", "--feature", "b=true"],
         "needs the product 'gone' and the feature(s) 'a', 'b'"),
        (["--product", "gone", "--feature", "a=1", "--hard", "h", "--reset", "r=day", "--alert", "x=80"],
         "needs the product 'gone' and the feature(s) 'a', 'h', 'r', 'x'"),  # every option's, at once
        (["--product", "ai-studio", "--feature", "sso=maybe"], "true or false"),
        (["--product", "ai-studio", "--feature", "ai-tokens=lots"], "allowance"),
        (["--product", "ai-studio", "--feature", "ai-tokens"], "FEATURE=VALUE"),
        (["--product", "ai-studio", "--feature", "sso=true", "--hard", "sso"], "metered"),
        (["--product", "ai-studio", "--hard", "ai-tokens"], "does not grant"),
        (["--product", "ai-studio", "--feature", "ai-tokens=5", "--reset", "ai-tokens=hourly"], "reset cadence"),
        (["--product", "ai-studio", "--feature", "ai-tokens=5", "--alert", "ai-tokens=0"], "alert threshold"),
        (["--product", "ai-studio", "--price", "10"], "--currency"),
        (["--product", "ai-studio", "--price", "10", "--currency", "USD"], "--interval"),
        (["--product", "ai-studio", "--price", "10", "--price", "20", "--currency", "USD", "--currency", "EUR",
          "--currency", "GBP", "--interval", "month"], "once per price"),
        (["--product", "ai-studio", "--price", "-1", "--currency", "USD", "--interval", "month"], "negative"),
        (["--product", "ai-studio", "--price", "9.999", "--currency", "USD", "--interval", "month"], "decimal places"),
        (["--product", "ai-studio", "--price", "1", "--currency", "XYZ", "--interval", "month"], "ISO 4217"),
        (["--product", "ai-studio", "--price", "1", "--currency", "USD", "--interval", "weekly"], "billing interval"),
        (["--product", "ai-studio", "--price", "1", "--price", "2", "--currency", "USD", "--interval", "month"],
         "two prices"),
        (["--product", "ai-studio", "--trial-days", "0"], "trial_days"),
    ],
)
def test_bad_input_is_exit_2_and_creates_nothing(catalog, args, message):
    result = catalog("plan", "create", "pro", *args)
    assert result.exit_code == 2, result
    assert message in result.stderr
    assert result.stdout == ""
    assert catalog("plan", "list", "--all", "--json").json() == []


def test_taken_identifier_is_refused(catalog):
    catalog("plan", "create", "pro", "--product", "ai-studio")
    catalog("plan", "archive", "pro", "--yes")
    again = catalog("plan", "create", "pro", "--product", "ai-studio")
    assert again.exit_code == 1 and "never reused" in again.stderr


def test_list_filters_by_product_and_status(catalog):
    catalog("product", "create", "other")
    catalog("plan", "create", "a", "--product", "ai-studio", "--price", "5", "--currency", "USD", "--interval", "month")
    catalog("plan", "create", "b", "--product", "other")
    catalog("plan", "create", "c", "--product", "ai-studio")
    assert catalog("plan", "archive", "c", "--yes").stdout == (
        "Archived plan c; existing subscriptions keep working.\n")
    assert [p["identifier"] for p in catalog("plan", "list", "--json").json()] == ["a", "b"]
    assert [p["identifier"] for p in catalog("plan", "list", "--product", "ai-studio", "--json").json()] == ["a"]
    assert [p["identifier"] for p in catalog("plan", "list", "--all", "--json").json()] == ["a", "b", "c"]
    table = catalog("plan", "list").stdout.splitlines()
    assert table[0].split() == ["identifier", "product", "name", "prices", "trial", "entitlements", "status"]
    assert "5.00 USD / month" in table[1] and "free" in table[2]
    unknown = catalog("plan", "list", "--product", "nope")
    assert unknown.exit_code == 2


def test_show_for_people(catalog):
    catalog("plan", "create", "pro", "--product", "ai-studio", "--feature", "ai-tokens=1000", "--hard", "ai-tokens",
            "--alert", "ai-tokens=80", "--feature", "sso=true")
    catalog("plan", "charge", "pro", "--feature", "ai-tokens", "--currency", "USD", "--model", "flat",
            "--unit-price", "0.01")
    shown = catalog("plan", "show", "pro")
    assert shown.exit_code == 0, shown
    assert "1,000 / month" in shown.stdout and "hard" in shown.stdout and "80%" in shown.stdout
    assert "flat: 0.01 per unit" in shown.stdout
    missing = catalog("plan", "show", "nope")
    assert missing.exit_code == 2 and "No plan has the identifier 'nope'" in missing.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "tiered", "--tier", "1000:0.10", "--tier", "5000:0.05", "--tier", ":0.01", "--included", "100"],
         {"feature": "ai-tokens", "currency": "USD", "model": "tiered", "included": 100,
          "tiers": [{"up_to": 1000, "unit_price": "0.10"}, {"up_to": 5000, "unit_price": "0.05"},
                    {"unit_price": "0.01"}]}),
        (["--model", "package", "--package-size", "100", "--package-price", "10"],
         {"feature": "ai-tokens", "currency": "USD", "model": "package", "package_size": 100,
          "package_price": "10.00"}),
        (["--model", "stair-step", "--tier", "10000:50", "--tier", "50000:150.00"],
         {"feature": "ai-tokens", "currency": "USD", "model": "stair-step",
          "tiers": [{"up_to": 10000, "flat_price": "50.00"}, {"up_to": 50000, "flat_price": "150.00"}]}),
        (["--model", "volume", "--tier", "100000:0.01", "--tier", ":0.007"],
         {"feature": "ai-tokens", "currency": "USD", "model": "volume",
          "tiers": [{"up_to": 100000, "unit_price": "0.01"}, {"unit_price": "0.007"}]}),
    ],
)
def test_charge_models(catalog, args, expected):
    catalog("plan", "create", "pro", "--product", "ai-studio", "--feature", "ai-tokens=1000")
    made = catalog("plan", "charge", "pro", "--feature", "ai-tokens", "--currency", "USD", *args, "--json")
    assert made.exit_code == 0, made
    assert made.json()["usage_charges"] == [expected]


def test_charge_again_replaces_and_other_currency_adds(catalog):
    catalog("plan", "create", "pro", "--product", "ai-studio", "--feature", "ai-tokens=1000")
    first = catalog("plan", "charge", "pro", "-f", "ai-tokens", "--currency", "USD", "--model", "flat",
                    "--unit-price", "0.01")
    assert first.stdout.startswith("Added the USD usage charge of ai-tokens on plan pro")
    second = catalog("plan", "charge", "pro", "-f", "ai-tokens", "--currency", "USD", "--model", "flat",
                     "--unit-price", "0.02")
    assert second.stdout.startswith("Replaced the USD usage charge")
    catalog("plan", "charge", "pro", "-f", "ai-tokens", "--currency", "EUR", "--model", "flat", "--unit-price", "0.02")
    charges = catalog("plan", "show", "pro", "--json").json()["usage_charges"]
    assert [(c["currency"], c["unit_price"]) for c in charges] == [("EUR", "0.02"), ("USD", "0.02")]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["-f", "sso", "--model", "flat", "--unit-price", "1"], 2, "metered"),
        (["-f", "ai-tokens", "--model", "flat", "--unit-price", "1"], 1, "does not grant"),
        (["-f", "nope", "--model", "flat", "--unit-price", "1"], 2, "No feature"),
        (["-f", "ai-tokens", "--model", "tiered", "--tier", "1000"], 2, "UP_TO:PRICE"),
        (["-f", "ai-tokens", "--model", "tiered", "--tier", "1000:0.1"], 2, "last tiered tier"),
        (["-f", "ai-tokens", "--model", "hourly"], 2, "model"),
        (["-f", "ai-tokens", "--model", "flat", "--unit-price", "-1"], 2, "negative"),
    ],
)
def test_charge_errors(catalog, args, code, message):
    catalog("plan", "create", "pro", "--product", "ai-studio", "--feature", "sso=true")
    catalog("plan", "create", "other", "--product", "ai-studio", "--feature", "ai-tokens=5")
    result = catalog("plan", "charge", "pro", "--currency", "USD", *args)
    assert result.exit_code == code, result
    assert message in result.stderr
    assert catalog("plan", "show", "pro", "--json").json()["usage_charges"] == []


def test_every_change_is_journaled(catalog, tg):
    catalog("plan", "create", "pro", "--product", "ai-studio", "--feature", "ai-tokens=5")
    catalog("plan", "charge", "pro", "-f", "ai-tokens", "--currency", "USD", "--model", "flat", "--unit-price", "1")
    catalog("plan", "archive", "pro", "--yes")
    actions = [(e.action, e.object_id) for e in tg.journal()]
    assert actions[:5] == [("product.create", "ai-studio"), ("feature.create", "ai-tokens"),
                           ("feature.create", "sso"), ("feature.create", "max-projects"), ("feature.create", "region")]
    assert actions[5:] == [("plan.create", "pro"), ("plan.charge.create", "pro"), ("plan.archive", "pro")]


def test_license_policy_from_the_command_line(catalog):
    made = catalog("plan", "create", "app", "--product", "ai-studio", "--price", "39", "--currency", "USD",
                   "--interval", "once", "--license-activations", "3", "--license-expires", "1y", "--json")
    assert made.exit_code == 0, made
    assert made.json()["license"] == {"activation_limit": 3, "expires_after": "1y", "activations_per_day": None,
                                      "files_per_day": None}
    unlimited = catalog("plan", "create", "site", "--product", "ai-studio", "--license-expires", "never", "--json")
    assert unlimited.json()["license"] == {"activation_limit": None, "expires_after": "never",
                                           "activations_per_day": None, "files_per_day": None}
    limited = catalog("plan", "create", "kiosk", "--product", "ai-studio", "--license-activations-per-day", "2",
                      "--license-files-per-day", "5", "--json")
    assert limited.json()["license"] == {"activation_limit": None, "expires_after": "never",
                                         "activations_per_day": 2, "files_per_day": 5}
    assert "2 activations per key per day" in catalog("plan", "show", "kiosk").stdout
    zero = catalog("plan", "create", "none", "--product", "ai-studio", "--license-files-per-day", "0")
    assert zero.exit_code == 2 and "files_per_day" in zero.stderr
    bad = catalog("plan", "create", "bad", "--product", "ai-studio", "--license-activations", "0")
    assert bad.exit_code == 2 and "--license.activation_limit" in bad.stderr
    assert "never expire" in catalog("plan", "show", "site").stdout
