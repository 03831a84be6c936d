"""customer add / edit / archive / list / show through the real CLI."""

from __future__ import annotations


def test_add_generates_identifier_and_lists(cli):
    added = cli("customer", "add", "Acme, Inc.", "--email", "billing@acme.example", "--json")
    assert added.exit_code == 0, added
    data = added.json()
    assert data["identifier"] == "acme-inc"
    assert data["billing_id"].startswith("cus_")
    assert data["status"] == "active" and data["archived_at"] is None
    listed = cli("customer", "list", "--json")
    assert [c["identifier"] for c in listed.json()] == ["acme-inc"]
