"""Links: http(s) URLs only, listed per plan or for an entitled customer, removed by id."""

from __future__ import annotations

import pytest


@pytest.fixture
def shop(tg):
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("app", product="editor", prices=[("once", "USD", "39.00")])
    tg.create_plan("other", product="editor", prices=[("month", "USD", "9.00")])
    tg.add_customer("Acme", identifier="acme")
    tg.add_customer("Globex", identifier="globex")
    return tg


def add(cli, *args) -> dict:
    result = cli("link", "add", *args, "--json")
    assert result.exit_code == 0, result
    return result.json()


def test_add_and_list(shop, cli):
    forum = add(cli, "app", "Community forum", "https://community.example.com/")
    assert forum == {"id": forum["id"], "plan": "app", "name": "Community forum", "url": "https://community.example.com/"}
    assert forum["id"].startswith("ln_")
    docs = add(cli, "app", "Docs", "http://docs.example.com/v2?lang=en#start")
    assert cli("link", "list", "app", "--json").json() == [forum, docs]
    assert shop.plan("app").to_dict()["links"] == [forum, docs]
    plain = cli("link", "add", "app", "Changelog", "https://example.com/changelog")
    assert plain.exit_code == 0 and "Added link ln_" in plain.stdout
    table = cli("link", "list", "app")
    assert table.exit_code == 0 and "community.example.com" in table.stdout
    assert "link.add" in [e.action for e in shop.journal()]


@pytest.mark.parametrize("url, needle", [
    ("javascript:alert(1)", "not a web address"),
    ("JavaScript:alert(document.cookie)", "not a web address"),
    ("example.com/community", "not a web address"),  # no scheme
    ("//example.com/community", "not a web address"),  # no scheme
    ("https://exa mple.com/", "not a web address"),  # a space
    ("https://example.com/a b", "not a web address"),
    ("https://example.com/\tx", "not a web address"),
    ("https://", "not a web address"),  # no host
    ("https:///path", "not a web address"),
    ("http://:8080/", "no host"),
    ("http://user@/", "no host"),
    ("http://example.com:notaport/", "no host"),
    ("ftp://example.com/file", "not a web address"),
    ("file:///etc/passwd", "not a web address"),
    ("data:text/html,<script>alert(1)</script>", "not a web address"),
    ("", "not a web address"),
])
def test_bad_urls_are_refused_with_exit_2(shop, cli, url, needle):
    result = cli("link", "add", "app", "Bad", url)
    assert result.exit_code == 2, result
    assert needle in result.stderr and result.stdout == ""
    assert shop.links("app") == []


def test_names_are_unique_per_plan_and_required(shop, cli):
    add(cli, "app", "Forum", "https://forum.example.com/")
    taken = cli("link", "add", "app", "Forum", "https://other.example.com/")
    assert taken.exit_code == 1 and "already has a link named" in taken.stderr
    add(cli, "other", "Forum", "https://forum.example.com/")  # another plan may use the name
    assert cli("link", "add", "app", "  ", "https://x.example.com/").exit_code == 2
    assert cli("link", "add", "ghost", "Forum", "https://x.example.com/").exit_code == 2


def test_list_for_a_customer_shows_links_of_live_subscriptions(shop, cli):
    forum = add(cli, "app", "Forum", "https://forum.example.com/")
    add(cli, "other", "Dashboard", "https://dash.example.com/")
    assert cli("link", "list", "--customer", "acme", "--json").json() == []
    sub = shop.add_subscription("acme", "app")
    assert cli("link", "list", "--customer", "acme", "--json").json() == [forum]
    assert cli("link", "list", "--customer", "globex", "--json").json() == []
    shop.cancel_subscription(sub.id)
    assert cli("link", "list", "--customer", "acme", "--json").json() == []


def test_links_stay_until_a_cancel_at_period_end_takes_effect(shop):
    from datetime import timedelta

    add_link = shop.add_link("other", "Dashboard", "https://dash.example.com/")
    sub = shop.add_subscription("acme", "other")
    end = shop.cancel_subscription(sub.id, at_period_end=True).cancel_at
    assert shop.links(customer="acme") == [add_link]
    assert shop.links(customer="acme", at=end - timedelta(seconds=1)) == [add_link]
    assert shop.links(customer="acme", at=end) == []


def test_list_needs_a_plan_or_a_customer(shop, cli):
    assert cli("link", "list").exit_code == 2
    assert cli("link", "list", "--customer", "ghost").exit_code == 2


def test_remove(shop, cli):
    forum = add(cli, "app", "Forum", "https://forum.example.com/")
    result = cli("link", "remove", forum["id"], "--json")
    assert result.exit_code == 0 and result.json() == forum
    assert cli("link", "list", "app", "--json").json() == []
    again = cli("link", "remove", forum["id"])
    assert again.exit_code == 2 and "No link has the id" in again.stderr
    assert "link.remove" in [e.action for e in shop.journal()]


def test_customer_show_lists_entitled_links(shop, cli):
    forum = add(cli, "app", "Forum", "https://forum.example.com/")
    shop.add_subscription("acme", "app")
    assert cli("customer", "show", "acme", "--json").json()["links"] == [forum]
    text = cli("customer", "show", "acme").stdout
    assert "Links" in text and "https://forum.example.com/" in text
    assert "Links: none" in cli("customer", "show", "globex").stdout
