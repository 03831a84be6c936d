"""grants: the value vocabulary shared by plans, subscription adjustments and overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollgate.errors import InvalidInput
from tollgate.grants import (
    Grant,
    grant_dict,
    grant_from_row,
    grant_from_value,
    grant_to_columns,
    parse_feature_assignment,
    parse_grant,
    with_options,
)


def test_feature_assignment_splits_on_the_first_equals_sign():
    assert parse_feature_assignment("api-calls=10000") == ("api-calls", "10000")
    assert parse_feature_assignment("motto=a=b") == ("motto", "a=b")
    for bad in ("api-calls", "=10", "Bad_Name=1", ""):
        with pytest.raises(InvalidInput):
            parse_feature_assignment(bad)


@pytest.mark.parametrize("text, value", [("true", True), ("FALSE", False), ("yes", True), ("off", False)])
def test_boolean_words(text, value):
    assert parse_grant("sso", "boolean", text) == Grant("sso", "boolean", value=value)


def test_boolean_refuses_other_words():
    with pytest.raises(InvalidInput, match="true or false"):
        parse_grant("sso", "boolean", "maybe")


@pytest.mark.parametrize(
    "text, value",
    [("10", 10), ("-3", -3), ("2.50", Decimal("2.5")), ("10.0", 10), ("eu", "eu"), ("1e5", "1e5"), (" eu-west ", "eu-west")],
)
def test_config_numbers_stay_numbers_and_text_stays_text(text, value):
    grant = parse_grant("region", "config", text)
    assert grant.value == value and type(grant.value) is type(value)


def test_metered_allowance_and_unlimited():
    assert parse_grant("api-calls", "metered", "10000").limit == Decimal(10000)
    assert parse_grant("api-calls", "metered", "2.5").limit == Decimal("2.5")
    unlimited = parse_grant("api-calls", "metered", "unlimited")
    assert unlimited.limit is None and unlimited.unlimited
    for bad in ("-1", "lots", "1.0000001", ""):
        with pytest.raises(InvalidInput):
            parse_grant("api-calls", "metered", bad)


def test_options_apply_only_to_metered_and_are_checked():
    grant = with_options(parse_grant("api-calls", "metered", "100"), hard=True, reset="day", alerts=(90, 75))
    assert (grant.hard, grant.reset, grant.alerts) == (True, "day", (75, 90))
    with pytest.raises(InvalidInput, match="metered"):
        with_options(parse_grant("sso", "boolean", "true"), hard=True)
    with pytest.raises(InvalidInput, match="reset cadence"):
        with_options(parse_grant("api-calls", "metered", "100"), reset="fortnight")
    with pytest.raises(InvalidInput, match="unlimited"):
        with_options(parse_grant("api-calls", "metered", "unlimited"), alerts=(75,))


def test_toml_values():
    assert grant_from_value("sso", "boolean", True).value is True
    with pytest.raises(InvalidInput, match="true or false"):
        grant_from_value("sso", "boolean", "true", path="plans.pro.entitlements.sso")
    assert grant_from_value("size", "config", 2.5).value == Decimal("2.5")
    assert grant_from_value("size", "config", "10").value == 10  # text that reads as a number is a number
    with pytest.raises(InvalidInput, match="not true/false"):
        grant_from_value("size", "config", True)
    metered = grant_from_value("t", "metered", {"limit": 100, "hard": True, "alerts": [90, 75]})
    assert metered == Grant("t", "metered", limit=Decimal(100), reset="month", hard=True, alerts=(75, 90))
    assert grant_from_value("t", "metered", "unlimited").limit is None
    with pytest.raises(InvalidInput) as caught:
        grant_from_value("t", "metered", {"limit": 1.5}, path="plans.pro.entitlements.t")
    assert caught.value.path == "plans.pro.entitlements.t.limit"
    with pytest.raises(InvalidInput) as caught:
        grant_from_value("t", "metered", {"limit": 10, "hrad": True}, path="p")
    assert caught.value.path == "p.hrad"
    with pytest.raises(InvalidInput) as caught:
        grant_from_value("t", "metered", {"reset": "day"}, path="p")
    assert caught.value.path == "p.limit"


def test_json_shape():
    assert grant_dict(parse_grant("t", "metered", "unlimited")) == {
        "feature": "t", "type": "metered", "limit": None, "unlimited": True, "reset": "month", "hard": False,
        "alerts": [],
    }
    assert grant_dict(parse_grant("size", "config", "2.5")) == {"feature": "size", "type": "config", "value": "2.5"}


grants = st.one_of(
    st.builds(lambda v: Grant("f", "boolean", value=v), st.booleans()),
    st.builds(lambda v: Grant("f", "config", value=v), st.integers(-10**12, 10**12)),
    st.builds(
        lambda v: Grant("f", "config", value=v),
        st.decimals(min_value=-10**6, max_value=10**6, places=4, allow_nan=False, allow_infinity=False)
        .filter(lambda d: d != d.to_integral_value())
        .map(lambda d: Decimal(format(d.normalize(), "f"))),
    ),
    st.builds(lambda v: Grant("f", "config", value=v), st.text(min_size=1, max_size=30).map(str.strip).filter(
        lambda t: t and t.isprintable() and not t.lstrip("-").replace(".", "", 1).isdigit())),
    st.builds(
        lambda limit, reset, hard, alerts: Grant(
            "f", "metered", limit=limit, reset=reset, hard=hard and limit is not None,
            alerts=tuple(sorted(set(alerts))) if limit is not None else ()),
        st.one_of(st.none(), st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False,
                                         allow_infinity=False).map(lambda d: Decimal(format(d.normalize(), "f")))),
        st.sampled_from(("never", "day", "week", "28d", "month", "quarter", "year")),
        st.booleans(),
        st.lists(st.integers(1, 1000), max_size=4),
    ),
)


@given(grants)
def test_columns_round_trip(grant):
    assert grant_from_row("f", grant.type, grant_to_columns(grant)) == grant


@given(st.text(max_size=40), st.sampled_from(("boolean", "metered", "config")))
def test_parse_grant_never_raises_anything_but_invalid_input(text, feature_type):
    try:
        parse_grant("f", feature_type, text)
    except InvalidInput:
        pass
