"""Security properties that hold across the code base: no SQL built from strings, private files,
literal display of user text, database errors that stay in one sentence."""

from __future__ import annotations

import ast
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "tollgate"
SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|PRAGMA|CREATE\s+TABLE|ALTER\s+TABLE|DROP\s+TABLE|VACUUM)\b",
                 re.IGNORECASE)
ALLOW = "sql-format-ok"  # a reviewed exception: an integer PRAGMA value, which SQLite cannot bind


def formatted_sql(path: Path) -> list[str]:
    """Places where SQL text is built by f-string, % or .format (instead of bound parameters)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        text = None
        if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
            text = str(node.left.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
              and isinstance(node.func.value, ast.Constant)):
            text = str(node.func.value.value)
        if text and SQL.search(text) and ALLOW not in lines[node.lineno - 1]:
            found.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def test_no_sql_is_built_by_string_formatting():
    offenders = [hit for path in sorted(SRC.rglob("*.py")) for hit in formatted_sql(path)]
    assert offenders == []


def test_the_sql_grep_catches_what_it_should(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text('table = "x"\nq = f"SELECT * FROM {table}"\nr = "DELETE FROM t WHERE id = %s" % 3\n')
    global SRC
    saved, SRC = SRC, tmp_path
    try:
        assert len(formatted_sql(sample)) == 2
    finally:
        SRC = saved


def test_library_modules_import_neither_typer_nor_rich():
    offenders = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("typer", "rich", "click")]
    assert offenders == []


def test_library_never_prints():
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in SRC.rglob("*.py")
        if "cli" not in path.relative_to(SRC).parts
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "exit")
    ]
    assert offenders == []


def make_read_only(folder: Path):
    """Make a folder truly read-only, even for root: a read-only bind mount (root) or chmod (others).
    Returns an undo function."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return lambda: os.chmod(folder, 0o755)
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
    return lambda: subprocess.run(["umount", str(folder)], check=True)


def test_read_only_database_folder_is_one_clear_sentence(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    env = dict(os.environ, TOLLGATE_DB=str(folder / "t.db"))
    subprocess.run([sys.executable, "-m", "tollgate", "customer", "add", "Acme"], env=env, check=True,
                   capture_output=True)
    before = (folder / "t.db").read_bytes()
    try:
        undo = make_read_only(folder)
    except (subprocess.CalledProcessError, FileNotFoundError):
        pytest.skip("this machine cannot make a read-only folder (no mount for root)")
    try:
        result = subprocess.run([sys.executable, "-m", "tollgate", "customer", "add", "Globex"],
                                capture_output=True, text=True, env=env)
    finally:
        undo()
    assert result.returncode == 3, result
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")
    assert "read-only" in result.stderr or "cannot be opened" in result.stderr
    assert (folder / "t.db").read_bytes() == before


def test_database_locked_longer_than_the_busy_timeout(tmp_path):
    env = dict(os.environ, TOLLGATE_DB=str(tmp_path / "t.db"), TOLLGATE_BUSY_TIMEOUT_MS="300")
    subprocess.run([sys.executable, "-m", "tollgate", "customer", "add", "Acme"], env=env, check=True,
                   capture_output=True)
    holder = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = subprocess.run([sys.executable, "-m", "tollgate", "customer", "add", "Globex"],
                                capture_output=True, text=True, env=env)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 3, result
    assert "locked by another process" in result.stderr and "Traceback" not in result.stderr
    listed = subprocess.run([sys.executable, "-m", "tollgate", "customer", "list", "--json"],
                            capture_output=True, text=True, env=env)
    assert '"globex"' not in listed.stdout


@pytest.mark.parametrize("name", ["[bold red]x[/]", "\x1b[31mred", "[link=http://evil]x[/link]"])
def test_user_text_is_shown_literally(cli, tg, name):
    from tollgate.models import Customer

    # bypass the name validator (which refuses control characters) to prove the output layer is safe too
    from tollgate.clock import utcnow

    now = utcnow()
    with tg.db.write() as session:
        session.add(Customer(identifier="x", billing_id="cus_x", name=name, search_text="x",
                             created_at=now, updated_at=now))
    out = cli("customer", "list").stdout
    assert "\x1b" not in out
    if "\x1b" in name:
        assert "\\x1b[31mred" in out
    else:
        assert name in out
