"""feature create / list / archive through the real CLI."""

from __future__ import annotations

import pytest


def test_create_each_type(cli):
    metered = cli("feature", "create", "--name", "API calls", "--type", "metered", "--unit", "call", "--json")
    assert metered.exit_code == 0, metered
    assert {k: metered.json()[k] for k in ("identifier", "name", "type", "unit")} == {
        "identifier": "api-calls", "name": "API calls", "type": "metered", "unit": "call"}
    boolean = cli("feature", "create", "--name", "Single sign-on", "--type", "boolean", "--id", "sso")
    assert boolean.exit_code == 0 and boolean.stdout == "Created boolean feature sso (Single sign-on).\n"
    config = cli("feature", "create", "--name", "Max projects", "--type", "config", "--json")
    assert config.json()["type"] == "config" and config.json()["unit"] is None
    listed = cli("feature", "list", "--json").json()
    assert [f["identifier"] for f in listed] == ["api-calls", "max-projects", "sso"]
    assert [f["identifier"] for f in cli("feature", "list", "--type", "boolean", "--json").json()] == ["sso"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "X", "--type", "counter"], "boolean, metered, config"),
        (["--name", "X", "--type", "boolean", "--unit", "GB"], "only for metered"),
        (["--name", "", "--type", "boolean"], "name is missing"),
        (["--name", "X", "--type", "boolean", "--id", "Has Space"], "not a valid feature identifier"),
    ],
)
def test_bad_input_is_exit_2(cli, args, message):
    result = cli("feature", "create", *args)
    assert result.exit_code == 2, result
    assert message in result.stderr
    assert cli("feature", "list", "--json").json() == []


def test_identifiers_are_never_reused_even_after_archiving(cli):
    cli("feature", "create", "--name", "SSO", "--type", "boolean")
    assert cli("feature", "archive", "sso", "--yes").exit_code == 0
    again = cli("feature", "create", "--name", "SSO", "--type", "boolean", "--json")
    assert again.json()["identifier"] == "sso-2"
    taken = cli("feature", "create", "--name", "SSO", "--type", "metered", "--id", "sso")
    assert taken.exit_code == 1 and "already taken" in taken.stderr
    assert [f["identifier"] for f in cli("feature", "list", "--all", "--json").json()] == ["sso", "sso-2"]


def test_archived_feature_can_not_be_granted_by_new_plans_but_old_plans_keep_it(cli):
    cli("product", "create", "api")
    cli("feature", "create", "--name", "SSO", "--type", "boolean")
    cli("plan", "create", "old", "--product", "api", "--feature", "sso=true")
    cli("feature", "archive", "sso", "--yes")
    new = cli("plan", "create", "new", "--product", "api", "--feature", "sso=true")
    assert new.exit_code == 1 and "archived" in new.stderr
    assert cli("plan", "show", "old", "--json").json()["entitlements"][0]["feature"] == "sso"
