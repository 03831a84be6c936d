"""tables.py is generated from models/ by scripts/gen_tables.py: it must say exactly what the models say.

Two checks, so that a failure says what to do and what differs: the generator's output is the file
byte for byte (else: run the generator), and the two MetaData agree table by table on columns, types,
nullability, defaults, keys, unique constraints and indexes (else: the message names each difference).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite

from tollgate import tables

ROOT = Path(__file__).resolve().parent.parent
DIALECTS = (sqlite.dialect(), postgresql.dialect())


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_tables", ROOT / "scripts" / "gen_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def describe(metadata: MetaData) -> dict[str, dict]:
    """Everything about each table that the schema means, in a form that compares with ==."""

    def names(columns) -> tuple[str, ...]:
        return tuple(c.name for c in columns)

    def default(value) -> str | None:
        return None if value is None else repr(getattr(value, "arg", value))

    out = {}
    for table in metadata.tables.values():
        columns = {}
        for c in table.columns:
            columns[c.name] = {
                "type": repr(gen._base_type(c.type)),
                "ddl": tuple(c.type.compile(dialect=d) for d in DIALECTS),
                "nullable": c.nullable,
                "primary_key": c.primary_key,
                "autoincrement": c.autoincrement,
                "default": default(c.default),
                "server_default": default(c.server_default),
                "foreign_keys": sorted((fk.target_fullname, fk.ondelete, fk.onupdate) for fk in c.foreign_keys),
            }
        out[table.name] = {
            "column order": names(table.columns),
            "columns": columns,
            "primary key": (table.primary_key.name, names(table.primary_key.columns)),
            "unique constraints": sorted(
                (str(u.name), names(u.columns)) for u in table.constraints if isinstance(u, UniqueConstraint)
            ),
            "foreign key constraints": sorted(
                (str(f.name), names(f.columns), tuple(e.target_fullname for e in f.elements), f.ondelete, f.onupdate)
                for f in table.foreign_key_constraints
            ),
            "indexes": sorted(
                (str(i.name), names(i.columns), bool(i.unique), json.dumps(dict(i.dialect_kwargs), sort_keys=True, default=str))
                for i in table.indexes
            ),
        }
    return out


def differences(expected: MetaData, actual: MetaData) -> list[str]:
    """Each way `actual` (tables.py) differs from `expected` (the models), one line each."""
    want, got = describe(expected), describe(actual)
    lines = [f"table {name}: in the models, missing from tables.py" for name in sorted(set(want) - set(got))]
    lines += [f"table {name}: in tables.py, not in the models" for name in sorted(set(got) - set(want))]
    for name in sorted(set(want) & set(got)):
        w, g = want[name], got[name]
        for column in [c for c in w["column order"] if c not in g["columns"]]:
            lines.append(f"{name}.{column}: in the model, missing from tables.py")
        for column in [c for c in g["column order"] if c not in w["columns"]]:
            lines.append(f"{name}.{column}: in tables.py, not in the model")
        for column in [c for c in w["column order"] if c in g["columns"]]:
            for aspect, value in w["columns"][column].items():
                if g["columns"][column][aspect] != value:
                    lines.append(f"{name}.{column}: {aspect} is {g['columns'][column][aspect]!r} in tables.py, "
                                 f"{value!r} in the model")
        for aspect in ("column order", "primary key", "unique constraints", "foreign key constraints", "indexes"):
            if w[aspect] != g[aspect] and (aspect != "column order" or set(w[aspect]) == set(g[aspect])):
                lines.append(f"{name}: {aspect} are {g[aspect]!r} in tables.py, {w[aspect]!r} in the model")
    return lines


@pytest.fixture(scope="module")
def models_metadata() -> MetaData:
    return gen.model_metadata()


def test_tables_py_is_what_the_generator_writes(models_metadata):
    written = (ROOT / "src" / "tollgate" / "tables.py").read_text()
    assert gen.render(models_metadata) == written, (
        "src/tollgate/tables.py is out of date with src/tollgate/models/: run python scripts/gen_tables.py"
    )


def test_tables_py_has_every_table_column_type_key_and_index_of_the_models(models_metadata):
    assert differences(models_metadata, tables.metadata) == []
    assert {t.name for t in tables.ALL} == set(models_metadata.tables)
    for table in tables.ALL:
        assert getattr(tables, table.name) is table


def test_the_hot_path_names_still_work():
    for name in ("customer", "feature", "plan", "plan_entitlement", "subscription", "subscription_feature",
                 "override", "usage_event"):
        table = getattr(tables, name)
        assert isinstance(table, Table) and table.name == name and table.metadata is tables.metadata
    from tollgate.tables import usage_event

    assert usage_event is tables.usage_event
    assert [c.name for c in usage_event.primary_key.columns] == ["id"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tables.nope  # noqa: B018


def _copy(metadata: MetaData) -> MetaData:
    copy = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: setattr(m.tables["usage_event"].c.voids, "nullable", False), "usage_event.voids: nullable"),
        (lambda m: setattr(m.tables["customer"].c.name, "type", String(20)), "customer.name: type"),
        (lambda m: setattr(m.tables["usage_event"].c.occurred_at, "type", String()), "usage_event.occurred_at: type"),
        (lambda m: m.tables["subscription"].indexes.clear(), "subscription: indexes"),
        (lambda m: m.tables["override"].append_constraint(UniqueConstraint("note")), "override: unique constraints"),
        (lambda m: m.tables["plan"].append_column(Column("extra", Integer)), "plan.extra: in tables.py, not in"),
        (lambda m: m.remove(m.tables["plan_link"]), "table plan_link: in the models, missing from tables.py"),
        (lambda m: m.tables["usage_event"].append_constraint(ForeignKeyConstraint(["voids"], ["usage_event.key"])),
         "usage_event: foreign key constraints"),
    ],
    ids=["nullability", "length", "type", "index", "unique", "column", "table", "foreign key"],
)
def test_the_comparison_names_each_kind_of_drift(models_metadata, change, expected):
    drifted = _copy(tables.metadata)
    change(drifted)
    found = differences(models_metadata, drifted)
    assert any(line.startswith(expected) for line in found), found


def test_the_generator_writes_any_new_model_faithfully(models_metadata):
    """A table the generator has never seen (the lead adds models later): columns of every kind, a
    composite key, a foreign key, a unique constraint, a multi-column index, a default."""
    metadata = _copy(models_metadata)
    Table(
        "gen_tables_probe",
        metadata,
        Column("customer_id", Integer, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True),
        Column("feature_id", Integer, ForeignKey("feature.id"), primary_key=True),
        Column("period_start", DateTime, primary_key=True),
        Column("total_micros", BigInteger, nullable=False, default=0),
        Column("label", String(40), server_default="none"),
        UniqueConstraint("customer_id", "label", name="uq_gen_tables_probe_label"),
        Index("ix_gen_tables_probe_feature_period", "feature_id", "period_start", unique=True),
    )
    module = types.ModuleType("generated_tables")
    exec(compile(gen.render(metadata), "generated_tables", "exec"), module.__dict__)  # noqa: S102
    assert differences(metadata, module.metadata) == []
    assert module.gen_tables_probe.c.total_micros.default.arg == 0


def test_tables_built_from_many_threads_at_once_are_built_once(models_metadata):
    from concurrent.futures import ThreadPoolExecutor

    module = types.ModuleType("generated_tables")
    exec(compile(gen.render(models_metadata), "generated_tables", "exec"), module.__dict__)  # noqa: S102
    names = ["license_activation", "subscription_feature", "usage_event", "customer"] * 8
    with ThreadPoolExecutor(8) as pool:
        built = list(pool.map(lambda name: getattr(module, name), names))
    assert all(table is getattr(module, table.name) for table in built)
    assert differences(models_metadata, module.metadata) == []


def test_what_the_generator_cannot_spell_stops_it_with_a_message():
    metadata = MetaData()
    Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", DateTime, default=lambda: None))
    with pytest.raises(gen.Unsupported, match=r"t\.at: its default .* not a plain value"):
        gen.render(metadata)
    clash = MetaData()
    Table("ALL", clash, Column("id", Integer, primary_key=True))
    with pytest.raises(gen.Unsupported, match="ALL"):
        gen.render(clash)


def test_the_generator_script_checks_the_file(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_tables.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


PROBE = """
import json, sys
from tollgate import tables
before = [n for n in tables._BUILD if n in vars(tables)]
tables.usage_event
after = [n for n in tables._BUILD if n in vars(tables)]
print(json.dumps({"before": before, "after": after, "modules": sorted(sys.modules)}))
"""


def test_importing_tables_costs_no_sqlmodel_pydantic_or_orm_and_builds_only_what_is_used():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(result.stdout)
    heavy = [m for m in data["modules"] if m.split(".")[0] in {"sqlmodel", "pydantic", "pydantic_core"}
             or m.startswith("sqlalchemy.orm")]
    assert heavy == []
    assert data["before"] == []
    assert data["after"] == ["customer", "feature", "usage_event"]
