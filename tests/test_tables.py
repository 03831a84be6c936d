"""tables.py spells some tables a second time, for start-up speed: it must match models/ exactly."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String
from sqlmodel import SQLModel

from tollgate import models, tables

models.load_all()

# The type family each SQLAlchemy column type belongs to (AutoString is a String, Text too, ...).
FAMILIES = (BigInteger, Integer, Boolean, DateTime, String)


def family(sqltype) -> type:
    impl = getattr(sqltype, "impl", sqltype)
    impl = impl() if isinstance(impl, type) else impl
    return next(f for f in FAMILIES if isinstance(impl, f))


@pytest.mark.parametrize("light", tables.ALL, ids=lambda t: t.name)
def test_light_table_matches_the_model(light):
    model = SQLModel.metadata.tables[light.name]
    assert [c.name for c in light.columns] == [c.name for c in model.columns]
    for light_column in light.columns:
        assert family(light_column.type) is family(model.columns[light_column.name].type), light_column.name


def test_the_check_notices_a_wrong_type():
    from sqlalchemy import column, table

    wrong = table("customer", *(column(c.name, String) for c in tables.customer.columns))
    with pytest.raises(AssertionError):
        test_light_table_matches_the_model(wrong)
