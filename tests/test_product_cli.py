"""product create / list / show / archive through the real CLI."""

from __future__ import annotations


def test_create_generates_identifier_from_name(cli):
    made = cli("product", "create", "--name", "AI Studio", "--description", "Text and images", "--json")
    assert made.exit_code == 0, made
    data = made.json()
    assert data["identifier"] == "ai-studio"
    assert (data["name"], data["description"], data["status"]) == ("AI Studio", "Text and images", "active")
    again = cli("product", "create", "--name", "AI Studio", "--json")
    assert again.json()["identifier"] == "ai-studio-2"


def test_create_with_identifier_only_and_says_what_it_did(cli):
    made = cli("product", "create", "time-master")
    assert made.exit_code == 0, made
    assert made.stdout == "Created product time-master (Time Master).\n"
    assert made.stderr == ""


def test_create_needs_identifier_or_name_and_refuses_taken_or_bad_ones(cli):
    missing = cli("product", "create")
    assert missing.exit_code == 2 and "identifier or a --name" in missing.stderr
    cli("product", "create", "api")
    taken = cli("product", "create", "api", "--name", "API")
    assert taken.exit_code == 1 and "already taken" in taken.stderr
    bad = cli("product", "create", "Not_Valid", "--name", "X")
    assert bad.exit_code == 2 and "not a valid product identifier" in bad.stderr
    assert cli("product", "list", "--json").json()[0]["identifier"] == "api"


def test_list_and_archive_cascades_to_plans(cli):
    cli("product", "create", "api")
    cli("product", "create", "other")
    cli("plan", "create", "basic", "--product", "api")
    cli("plan", "create", "keep", "--product", "other")
    refused = cli("product", "archive", "api")  # no terminal to confirm on, no --yes
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    archived = cli("product", "archive", "api", "--yes")
    assert archived.exit_code == 0, archived
    assert archived.stdout == "Archived product api and its plan(s) basic.\n"
    assert [p["identifier"] for p in cli("product", "list", "--json").json()] == ["other"]
    assert [p["identifier"] for p in cli("product", "list", "--archived", "--json").json()] == ["api"]
    assert cli("plan", "show", "basic", "--json").json()["status"] == "archived"
    assert cli("plan", "show", "keep", "--json").json()["status"] == "active"
    twice = cli("product", "archive", "api", "--yes")
    assert twice.exit_code == 1 and "already archived" in twice.stderr
    new_plan = cli("plan", "create", "late", "--product", "api")
    assert new_plan.exit_code == 1 and "archived" in new_plan.stderr


def test_show_lists_plans_and_unknown_is_exit_2(cli):
    cli("product", "create", "api")
    cli("plan", "create", "basic", "--product", "api")
    shown = cli("product", "show", "api", "--json")
    assert shown.json()["plans"] == ["basic"]
    assert "basic" in cli("product", "show", "api").stdout
    unknown = cli("product", "show", "nope")
    assert unknown.exit_code == 2
    assert "No product has the identifier 'nope'" in unknown.stderr


def test_plain_table_when_piped(cli):
    cli("product", "create", "api", "--name", "API")
    listed = cli("product", "list")
    assert listed.stdout.splitlines()[0].split() == ["identifier", "name", "status", "description"]
    assert listed.stdout.splitlines()[1].split() == ["api", "API", "active"]
    csv = cli("product", "list", "--csv")
    assert csv.stdout.splitlines() == ["identifier,name,status,description", "api,API,active,"]
