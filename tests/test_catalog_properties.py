"""Properties of the catalog file: export -> import into an empty database -> export is byte-identical
for any catalog; and no document, however broken, gets anything but a clean InvalidInput."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollgate import blobs, catalog_dump, catalog_toml
from tollgate.catalog import Download, FeatureSpec, LicensePolicy, Link, PlanSpec, Price, ProductSpec
from tollgate.errors import InvalidInput
from tollgate.grants import RESETS, Grant, INTERVALS
from tollgate.rating import charge_from_dict
from tollgate import text as text_rule

IDENT = st.from_regex(r"\A[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}\Z")
NAME = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\x85"), min_size=1, max_size=24
).map(str.strip).filter(bool).filter(lambda t: text_rule.refused_character(t) is None)  # what the text rule allows
DESCRIPTION = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x7f\r\u2028\u2029\x85",
                          max_codepoint=0x2FFF).filter(lambda c: c in "\n\t" or (ord(c) >= 0x20 and not 0x80 <= ord(c) <= 0x9f)),
            max_size=60).map(str.strip).map(lambda t: t or None)
    .filter(lambda t: t is None or text_rule.refused_character(t, multiline=True) is None),
)
CURRENCIES = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}


def decimal_with(places: int, top: int = 10**6):
    return st.integers(0, top * 10**places).map(lambda n: Decimal(n).scaleb(-places))


def plain(number: Decimal) -> Decimal:
    from tollgate.money import format_decimal

    return Decimal(format_decimal(number))


@st.composite
def prices(draw):
    keys = draw(st.lists(st.tuples(st.sampled_from(INTERVALS), st.sampled_from(sorted(CURRENCIES))), unique=True,
                         max_size=4))
    result = []
    for interval, currency in keys:
        digits = CURRENCIES[currency]
        amount = draw(decimal_with(digits)).quantize(Decimal(1).scaleb(-digits))
        result.append(Price(interval, currency, amount))
    return tuple(result)


def grant_for(feature: FeatureSpec):
    if feature.type == "boolean":
        return st.builds(lambda v: Grant(feature.identifier, "boolean", value=v), st.booleans())
    if feature.type == "config":
        numbers = st.one_of(
            st.integers(-10**9, 10**9),
            decimal_with(4, 10**5).filter(lambda d: d != d.to_integral_value()).map(plain),
        )
        text = NAME.filter(lambda t: not t.lstrip("-").replace(".", "", 1).isdigit())
        return st.builds(lambda v: Grant(feature.identifier, "config", value=v), st.one_of(numbers, text))

    @st.composite
    def metered(draw):
        limit = draw(st.one_of(st.none(), decimal_with(draw(st.sampled_from((0, 2, 6))), 10**9).map(plain)))
        bounded = limit is not None
        return Grant(
            feature.identifier, "metered", limit=limit, reset=draw(st.sampled_from(RESETS)),
            hard=bounded and draw(st.booleans()),
            alerts=tuple(sorted(set(draw(st.lists(st.integers(1, 1000), max_size=3))))) if bounded else (),
        )

    return metered()


@st.composite
def usage_charge(draw, feature: str):
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    digits = CURRENCIES[currency]
    money = lambda: draw(decimal_with(digits, 1000)).quantize(Decimal(1).scaleb(-digits))  # noqa: E731
    rate = lambda: plain(draw(decimal_with(draw(st.sampled_from((0, 2, 6))), 10)))  # noqa: E731
    model = draw(st.sampled_from(("flat", "package", "tiered", "volume", "stair-step")))
    data: dict = {"feature": feature, "currency": currency, "model": model}
    if draw(st.booleans()):
        data["included"] = draw(st.integers(0, 10**6))
    if model == "flat":
        data["unit_price"] = str(rate())
    elif model == "package":
        data["package_size"] = draw(st.integers(1, 10**4))
        data["package_price"] = str(money())
    else:
        bounds = sorted(set(draw(st.lists(st.integers(1, 10**7), min_size=1, max_size=3))))
        if model == "stair-step":
            data["tiers"] = [{"up_to": b, "flat_price": str(money())} for b in bounds]
        else:
            data["tiers"] = [{"up_to": b, "unit_price": str(rate())} for b in bounds] + [{"unit_price": str(rate())}]
    return charge_from_dict(data, path="generated")


@st.composite
def catalogs(draw):
    products = {
        ident: ProductSpec(ident, draw(NAME), draw(DESCRIPTION), draw(st.booleans()))
        for ident in draw(st.lists(IDENT, min_size=1, max_size=3, unique=True))
    }
    features = {}
    for ident in draw(st.lists(IDENT, max_size=5, unique=True)):
        feature_type = draw(st.sampled_from(("boolean", "metered", "config")))
        unit = draw(st.one_of(st.none(), st.sampled_from(("token", "GB", "call")))) if feature_type == "metered" else None
        features[ident] = FeatureSpec(ident, draw(NAME), feature_type, unit, draw(DESCRIPTION), draw(st.booleans()))
    plans = {}
    contents: dict[str, bytes] = {}
    for ident in draw(st.lists(IDENT, max_size=4, unique=True)):
        product = draw(st.sampled_from(sorted(products)))
        chosen = draw(st.lists(st.sampled_from(sorted(features)), unique=True)) if features else []
        grants = tuple(draw(grant_for(features[f])) for f in chosen)
        metered = [g.feature for g in grants if g.type == "metered"]
        charges = {}
        for feature in draw(st.lists(st.sampled_from(metered), unique=True)) if metered else []:
            charge = draw(usage_charge(feature))
            charges[(charge.feature, charge.currency)] = charge
        downloads = []
        for name in draw(st.lists(NAME, max_size=2, unique=True)):
            content = draw(st.binary(max_size=64))
            sha = __import__("hashlib").sha256(content).hexdigest()
            contents[sha] = content
            downloads.append(Download(name, sha, len(content), draw(st.booleans())))
        links = tuple(Link(name, f"https://example.com/{i}") for i, name in
                      enumerate(draw(st.lists(NAME, max_size=2, unique=True))))
        plans[ident] = PlanSpec(
            identifier=ident, product=product, name=draw(NAME), description=draw(DESCRIPTION),
            trial_days=draw(st.one_of(st.none(), st.integers(1, 3650))), prices=draw(prices()), grants=grants,
            charges=tuple(charges.values()),
            license=draw(st.one_of(st.none(), st.builds(
                LicensePolicy, st.one_of(st.none(), st.integers(1, 100)),
                st.sampled_from(("never", "30d", "6m", "1y")),
                st.one_of(st.none(), st.integers(1, 1_000_000)), st.one_of(st.none(), st.integers(1, 1_000_000))))),
            downloads=tuple(downloads), links=links,
            archived=products[product].archived or draw(st.booleans()),
        ).normalized()
    return catalog_toml.Catalog(products, features, plans), contents


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(catalogs())
def test_export_import_export_is_byte_identical(generated):
    from tollgate import Tollgate

    cat, contents = generated
    text = catalog_dump.dump(cat)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for sha, content in contents.items():
            (folder / sha).write_bytes(content)
            assert blobs.store_blob(folder / sha, data_dir=folder) == (sha, len(content))
        path = folder / "catalog.toml"
        path.write_text(text, encoding="utf-8")
        tg = Tollgate(folder / "tollgate.db")
        try:
            result = tg.import_catalog(path)
            assert result.counts()["create"] == len(cat.products) + len(cat.features) + len(cat.plans)
            with tg.db.read() as session:
                loaded = catalog_toml.load_catalog(session)
            assert (loaded.products, loaded.features, loaded.plans) == (cat.products, cat.features, cat.plans)
            exported = tg.export_catalog()
            assert exported == text
            again = tg.import_catalog(path)
            assert not again.changed
        finally:
            tg.close()


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
).filter(lambda v: v is not None)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "version": st.one_of(st.just(1), JSONISH),
            "products": st.dictionaries(st.one_of(IDENT, st.text(max_size=6)), JSONISH, max_size=3),
            "features": st.dictionaries(
                st.one_of(IDENT, st.text(max_size=6)),
                st.one_of(JSONISH, st.fixed_dictionaries({"name": NAME, "type": st.sampled_from(
                    ("boolean", "metered", "config", "x"))}, optional={"unit": JSONISH})),
                max_size=3),
            "plans": st.dictionaries(st.one_of(IDENT, st.text(max_size=6)), st.one_of(JSONISH, st.fixed_dictionaries(
                {"product": st.one_of(IDENT, JSONISH)},
                optional={"prices": JSONISH, "entitlements": st.dictionaries(IDENT, JSONISH, max_size=3),
                          "usage_charges": JSONISH, "license": JSONISH, "downloads": JSONISH, "links": JSONISH,
                          "trial_days": JSONISH, "name": JSONISH})), max_size=3),
            "junk": JSONISH,
        },
    )
)
def test_any_document_is_accepted_or_refused_cleanly(document):
    try:
        catalog_toml.parse_catalog(document, source="fuzz.toml", base_dir=Path("/nonexistent"),
                                   existing=catalog_toml.Catalog(), prune=False, data_dir=Path("/nonexistent"))
    except InvalidInput as exc:
        assert str(exc).startswith("fuzz.toml")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_cleanly(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            catalog_toml.read_document(path)
        except InvalidInput:
            pass
