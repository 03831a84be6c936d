"""License keys, activations, downloads, links, deliverables and signing keys come back from `Tollgate`
as frozen, slotted views (times as datetimes, nested things as tuples), and each view's `to_dict()` is
exactly what the CLI prints with --json."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from tollgate.catalog import LicensePolicy
from tollgate.deliverable_views import (
    ActivatedView,
    ActivationView,
    Deliverables,
    DeliveredView,
    DownloadView,
    InstanceView,
    LicenseView,
    LinkView,
    SigningKeyView,
)


def frozen(view: object) -> None:
    assert dataclasses.is_dataclass(view)
    field = dataclasses.fields(view)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(view, field, "changed")
    assert not hasattr(view, "__dict__")  # slotted


@pytest.fixture
def shop(tg, tmp_path):
    """acme bought `app` (a key, limit 3), which has a download and a link."""
    tg.create_product("Editor", identifier="editor")
    tg.create_plan("app", product="editor", prices=[("month", "USD", "9.00")], license=LicensePolicy(3))
    tg.add_customer("Acme", identifier="acme")
    tg.add_subscription("acme", "app")
    (tmp_path / "setup.bin").write_bytes(b"setup")
    tg.add_download("app", tmp_path / "setup.bin")
    tg.add_link("app", "Docs", "https://docs.example.com/")
    return tg


def json_of(cli, *args):
    result = cli(*args, "--json")
    assert result.exit_code == 0, result
    return result.json()


def test_every_view_is_frozen_and_typed(shop, tmp_path):
    [lic] = shop.licenses(customer="acme")
    activated = shop.activate_license(lic.key, "laptop")
    lic = shop.license(lic.key)
    [activation] = lic.activations
    deactivated = shop.deactivate_license(lic.key, activated.instance_id)
    [dl] = shop.downloads("app")
    delivered = shop.fetch_download("acme", dl.id, tmp_path / "out")
    [link] = shop.links("app")
    goods = shop.deliverables("acme")
    [key] = shop.public_keys()
    views = ((lic, LicenseView), (activation, ActivationView), (activated, ActivatedView),
             (deactivated, InstanceView), (dl, DownloadView), (delivered, DeliveredView), (link, LinkView),
             (goods, Deliverables), (key, SigningKeyView))
    for view, kind in views:
        assert type(view) is kind
        frozen(view)
    assert isinstance(lic.created_at, datetime) and lic.expires_at is None and lic.activation_limit == 3
    assert isinstance(activated.activated_at, datetime) and activated.created is True
    assert isinstance(deactivated.deactivated_at, datetime) and deactivated.key == lic.key
    assert type(goods.licenses) is tuple and type(goods.downloads) is tuple and type(goods.links) is tuple
    assert goods.licenses[0].key == lic.key and goods.downloads == (dl,) and goods.links == (link,)
    assert delivered.download == dl and delivered.path.read_bytes() == b"setup"
    assert isinstance(key.created_at, datetime) and key.current and key.public_key.startswith("-----BEGIN")


def test_license_views_to_dict_is_the_cli_json(shop, cli):
    key = shop.licenses()[0].key
    first = json_of(cli, "license", "activate", key, "--name", "laptop")
    assert list(first) == ["instance_id", "name", "activated_at", "key", "deactivated_at", "created"]
    again = shop.activate_license(key, "laptop")  # the same name: its activation, not a new one
    assert again.to_dict() == {**first, "created": False}
    assert json_of(cli, "license", "show", key) == shop.license(key).to_dict()
    assert shop.license(key).to_dict()["activations"] == [
        {"instance_id": first["instance_id"], "name": "laptop", "activated_at": first["activated_at"]}]
    assert json_of(cli, "license", "list") == [lic.to_dict() for lic in shop.licenses()]
    edited = json_of(cli, "license", "edit", key, "--activation-limit", "unlimited", "--expires", "2030-01-31")
    assert edited == shop.license(key).to_dict()
    assert edited["activation_limit"] == "unlimited" and edited["expires_at"] == "2030-01-31T00:00:00Z"
    assert shop.license(key).activation_limit is None and shop.license(key).expires_at == datetime(2030, 1, 31)

    desk = shop.activate_license(key, "desk")
    shown = json_of(cli, "license", "deactivate", key, "--instance", desk.instance_id)
    assert shown["deactivated_at"].endswith("Z")
    assert shown == InstanceView(desk.instance_id, "desk", desk.activated_at, key, None).to_dict() | {
        "deactivated_at": shown["deactivated_at"]}
    gone = shop.deactivate_license(key, first["instance_id"]).to_dict()
    assert list(gone) == list(shown) and gone["deactivated_at"].endswith("Z")

    new = json_of(cli, "license", "regenerate", key, "--yes")
    assert new == shop.license(new["key"]).to_dict() and shop.license(key).replaced_by == new["key"]
    assert json_of(cli, "license", "revoke", new["key"], "--yes") == shop.license(new["key"]).to_dict()


def test_download_link_and_deliverable_views_to_dict_is_the_cli_json(shop, cli, tmp_path):
    [dl] = shop.downloads("app")
    assert json_of(cli, "download", "list", "app") == [dl.to_dict()]
    assert list(dl.to_dict()) == ["id", "plan", "name", "size", "sha256", "enabled"]
    assert json_of(cli, "download", "disable", dl.id) == shop.download(dl.id).to_dict()
    assert shop.download(dl.id).enabled is False
    assert json_of(cli, "download", "enable", dl.id) == dl.to_dict()
    fetched = json_of(cli, "download", "get", "acme", dl.id, "--to", tmp_path / "cli")
    assert fetched == shop.fetch_download("acme", dl.id, tmp_path / "cli", overwrite=True).to_dict()
    assert list(fetched)[-2:] == ["customer", "path"] and fetched["path"] == str(tmp_path / "cli" / "setup.bin")
    (tmp_path / "more.bin").write_bytes(b"more")
    added = json_of(cli, "download", "add", "app", tmp_path / "more.bin")
    assert added == shop.download(added["id"]).to_dict()
    removed = shop.remove_download(added["id"])
    assert removed.to_dict() == added and shop.downloads("app") == [dl]

    [link] = shop.links("app")
    assert json_of(cli, "link", "list", "app") == [link.to_dict()]
    extra = shop.add_link("app", "Forum", "https://forum.example.com/")
    assert json_of(cli, "link", "remove", extra.id) == extra.to_dict()
    assert list(link.to_dict()) == ["id", "plan", "name", "url"]

    whole = json_of(cli, "customer", "show", "acme")
    goods = shop.deliverables("acme").to_dict()
    assert list(goods) == ["licenses", "downloads", "links"]
    assert {name: whole[name] for name in goods} == goods
    assert goods["downloads"] == [dl.to_dict()] and goods["links"] == [link.to_dict()]


def test_signing_key_views_to_dict_is_the_cli_json(shop, cli):
    [old] = shop.public_keys()
    assert json_of(cli, "license", "public-key") == [old.to_dict()]
    assert list(old.to_dict()) == ["kid", "host", "created_at", "retired_at", "current", "public_key"]
    new = json_of(cli, "license", "signing-key", "rotate")
    assert json_of(cli, "license", "public-key", "--all") == [
        {**old.to_dict(), "current": False}, new] == [k.to_dict() for k in shop.public_keys(all_keys=True)]
    retired = shop.retire_signing_key(old.kid)
    assert retired.retired_at is not None and not retired.current
    assert retired.to_dict() == {**old.to_dict(), "current": False, "retired_at": retired.to_dict()["retired_at"]}
    assert json_of(cli, "license", "public-key", "--all") == [new]
