"""Shell completion, driven the way shells drive it: a subprocess with the environment variables the
generated scripts set (bash: COMP_WORDS/COMP_CWORD; zsh and fish: _TYPER_COMPLETE_ARGS), plus the
committed bash script run in a real bash, and the completers themselves on a seeded database."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tollgate.cli import complete

pytestmark = pytest.mark.sqlite_only("completion reads the SQLite file with sqlite3; a server URL completes nothing")

REPO = Path(__file__).resolve().parent.parent
COMPLETIONS = REPO / "completions"
SCRIPT_FILES = {"bash": "tollgate.bash", "zsh": "_tollgate", "fish": "tollgate.fish"}
NOW = "2026-01-01 00:00:00.000000"


# -- running the program as a shell would ----------------------------------------------------------


def _env(**extra: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_complete(shell: str, line: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `python -m tollgate` with the completion protocol for `shell`, completing `line`
    (everything typed so far; a trailing space means a new, empty word)."""
    if shell == "bash":
        words = line.split(" ")
        protocol = {"COMP_WORDS": "\n".join(words), "COMP_CWORD": str(len(words) - 1)}
    else:
        protocol = {"_TYPER_COMPLETE_ARGS": line}
        if shell == "fish":
            protocol["_TYPER_COMPLETE_FISH_ACTION"] = env.pop("action", None) or "get-args"
    return subprocess.run(
        [sys.executable, "-m", "tollgate"],
        env=_env(_TOLLGATE_COMPLETE=f"complete_{shell}", **protocol, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def bash_candidates(line: str, **env: str | None) -> list[str]:
    result = run_complete("bash", line, **env)
    assert result.returncode == 0, result
    assert result.stderr == "", result.stderr
    return [c for c in result.stdout.split("\n") if c]


# -- a seeded database ------------------------------------------------------------------------------


def _insert(conn: sqlite3.Connection, table: str, **values) -> int:
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    return conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values.values())).lastrowid


@pytest.fixture
def seeded(tg, db_path) -> Path:
    """Customers through the library; the catalog, subscriptions and licenses with raw SQL."""
    tg.add_customer("Acme, Inc.")  # acme-inc, archived below
    tg.add_customer("Acorn Ltd")  # acorn-ltd
    tg.add_customer("Beta GmbH", identifier="beta")
    tg.add_customer('Colon: "Quoted" $HOME `tick`', identifier="colon-co")
    tg.archive_customer("acme-inc")
    tg.close()
    conn = sqlite3.connect(db_path)
    with conn:
        ids = dict(conn.execute("SELECT identifier, id FROM customer"))
        studio = _insert(conn, "product", identifier="ai-studio", name="AI Studio", status="active",
                         created_at=NOW, updated_at=NOW)
        _insert(conn, "product", identifier="old-app", name="Old App", status="archived", created_at=NOW,
                updated_at=NOW)
        for ident, name, type_, unit in [("api-calls", "API calls", "metered", "call"), ("sso", "SSO", "boolean", None),
                                         ("ai-tokens", "AI tokens", "metered", "token"),
                                         ("max-projects", "Max projects", "config", None)]:
            _insert(conn, "feature", identifier=ident, name=name, type=type_, unit=unit, status="active",
                    created_at=NOW, updated_at=NOW)
        pro = _insert(conn, "plan", identifier="pro", product_id=studio, name="Pro", status="active",
                      created_at=NOW, updated_at=NOW)
        legacy = _insert(conn, "plan", identifier="plus-legacy", product_id=studio, name="Plus (legacy)",
                         status="archived", created_at=NOW, updated_at=NOW)
        _insert(conn, "plan", identifier="plus", product_id=studio, name="Plus", status="active",
                created_at=NOW, updated_at=NOW)
        version = _insert(conn, "plan_version", plan_id=pro, version=1, created_at=NOW)
        for interval, currency in [("month", "USD"), ("year", "EUR")]:
            _insert(conn, "plan_price", plan_version_id=version, interval=interval, currency=currency,
                    amount_minor=4900)
        subs = [("sub_aaa111", "acorn-ltd", pro, "active"), ("sub_aab222", "beta", pro, "canceled"),
                ("sub_aac333", "beta", legacy, "trialing")]
        for public_id, customer, plan, status in subs:
            _insert(conn, "subscription", public_id=public_id, customer_id=ids[customer], plan_id=plan, status=status,
                    start_at=NOW, created_at=NOW, updated_at=NOW)
        for key, customer, status in [("TG-AAAA-1111", "acorn-ltd", "active"), ("TG-AAAB-2222", "beta", "revoked"),
                                      ("TG-AAAC-3333", "beta", "active")]:
            _insert(conn, "license", key=key, customer_id=ids[customer], plan_id=pro, status=status, created_at=NOW)
        _insert(conn, "plan_download", public_id="dl_installer", plan_id=pro, name="Installer", sha256="0" * 64,
                size=10, enabled=True, position=0, created_at=NOW)
        _insert(conn, "plan_link", public_id="ln_community", plan_id=pro, name="Community", url="https://x.example",
                position=0, created_at=NOW)
        _insert(conn, "plan_link", public_id="ln_archive", plan_id=legacy, name="Old docs", url="https://y.example",
                position=0, created_at=NOW)
        _insert(conn, "plan_download", public_id="dl_legacy", plan_id=legacy, name="Old installer", sha256="1" * 64,
                size=10, enabled=True, position=0, created_at=NOW)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db_path


def ctx_with(**params):
    """A stand-in for the Click context a completer receives: `--db` on the root, the rest below."""
    root = SimpleNamespace(params={"db": params.pop("db", None)}, parent=None)
    return SimpleNamespace(params=params, parent=root)


def values(pairs) -> list[str]:
    return [value for value, _help in pairs]


# -- the protocol, through a subprocess --------------------------------------------------------------


def test_bash_completes_a_partial_customer_id_active_ones_first(seeded):
    assert bash_candidates("tollgate customer show ac") == ["acorn-ltd", "acme-inc"]
    assert bash_candidates("tollgate customer show ") == ["acorn-ltd", "beta", "colon-co", "acme-inc"]
    assert bash_candidates("tollgate customer edit b") == ["beta"]
    assert bash_candidates("tollgate customer archive zzz") == []


def test_bash_completes_the_customer_option_of_log(seeded):
    assert bash_candidates("tollgate log --customer a") == ["acorn-ltd", "acme-inc"]
    assert bash_candidates("tollgate log -c be") == ["beta"]


def test_zsh_protocol_gives_candidates_with_their_help_escaped(seeded):
    result = run_complete("zsh", "tollgate customer show ")
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    assert out.startswith("_arguments '*: :((") and out.rstrip().endswith("))'")
    assert '"acorn-ltd":"Acorn Ltd"' in out
    assert '"acme-inc":"Acme, Inc. (archived)"' in out
    # zsh's own escaping: colons, quotes, $ and backticks in a customer's name cannot break the line
    assert r'"colon-co":"Colon\\: ""Quoted"" \$HOME \`tick\`"' in out


def test_zsh_protocol_with_a_partial_word(seeded):
    out = run_complete("zsh", "tollgate customer show acm").stdout
    assert '"acme-inc"' in out and "acorn-ltd" not in out


def test_fish_protocol_gives_value_tab_help_lines(seeded):
    result = run_complete("fish", "tollgate customer show a")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == ["acorn-ltd\tAcorn Ltd", "acme-inc\tAcme, Inc. (archived)"]


def test_fish_is_args_says_whether_there_are_candidates(seeded):
    assert run_complete("fish", "tollgate customer show a", action="is-args").returncode == 0
    assert run_complete("fish", "tollgate customer show zz", action="is-args").returncode == 1


def test_commands_options_and_choices_still_complete(seeded):
    root = bash_candidates("tollgate ")
    assert {"customer", "db", "log", "completion"} <= set(root)
    assert bash_candidates("tollgate cu") == ["customer"]
    assert bash_candidates("tollgate customer ") == ["add", "archive", "edit", "import", "list", "show", "unarchive"]
    assert root[: len(set(root) - {"--db", "--debug", "--version", "--install-completion", "--show-completion",
                                    "--help", "-h"})] == sorted(c for c in root if not c.startswith("-"))
    assert bash_candidates("tollgate customer show --") == ["--html", "--json", "--help"]
    assert bash_candidates("tollgate completion ") == ["bash", "zsh", "fish"]
    assert "--db" in bash_candidates("tollgate --")
    zsh = run_complete("zsh", "tollgate cu").stdout
    assert '"customer":"Customers\\\\: the people and companies you..."' in zsh


def test_values_after_a_plan_typed_earlier_come_from_that_plan(seeded):
    # the word completed is an option's value: Click stops parsing there, yet CUSTOMER and PLAN count
    assert bash_candidates("tollgate sub add acorn-ltd pro --currency ") == ["EUR", "USD"]
    assert bash_candidates("tollgate sub add acorn-ltd pro --interval ") == ["month", "year"]
    assert bash_candidates("tollgate sub add acorn-ltd --interval month pro --currency U") == ["USD"]
    assert "quarter" in bash_candidates("tollgate sub add acorn-ltd plus --interval ")  # unpriced: all
    assert bash_candidates("tollgate sub add a") == ["acorn-ltd"]  # new subscriptions: active customers
    assert bash_candidates("tollgate sub add acorn-ltd p") == ["plus", "pro", "plus-legacy"]


def test_subscriptions_and_features_through_the_protocol(seeded):
    assert bash_candidates("tollgate sub cancel sub_") == ["sub_aaa111", "sub_aac333", "sub_aab222"]
    assert bash_candidates("tollgate check acorn-ltd a") == ["ai-tokens", "api-calls"]
    assert bash_candidates("tollgate override set beta s") == ["sso"]


def test_catalog_commands_complete_their_identifiers_and_vocabularies(seeded):
    assert bash_candidates("tollgate plan show p") == ["plus", "pro", "plus-legacy"]
    assert bash_candidates("tollgate plan archive pr") == ["pro"]
    assert bash_candidates("tollgate plan create x --product ") == ["ai-studio", "old-app"]
    assert bash_candidates("tollgate plan create x --hard a") == ["ai-tokens", "api-calls"]
    assert bash_candidates("tollgate plan charge pro --feature ") == ["ai-tokens", "api-calls"]
    assert bash_candidates("tollgate plan charge pro --currency ") == ["EUR", "USD"]
    assert bash_candidates("tollgate plan charge pro --model st") == ["stair-step"]
    assert bash_candidates("tollgate product show o") == ["old-app"]
    assert bash_candidates("tollgate feature archive m") == ["max-projects"]
    assert bash_candidates("tollgate feature create --type ") == ["boolean", "metered", "config"]


def test_db_on_the_command_line_wins_over_the_environment(seeded, tmp_path):
    other = tmp_path / "elsewhere.db"
    shutil.copy(seeded, other)
    conn = sqlite3.connect(other)
    with conn:
        conn.execute("UPDATE customer SET identifier = 'zeta' WHERE identifier = 'beta'")
    conn.close()
    assert bash_candidates(f"tollgate --db {other} customer show ") == ["acorn-ltd", "colon-co", "zeta", "acme-inc"]
    assert bash_candidates(f"tollgate --db sqlite:///{other} customer show z") == ["zeta"]
    assert bash_candidates("tollgate customer show z") == []  # $TOLLGATE_DB: the seeded one


def test_no_database_yet_gives_nothing_and_creates_nothing(tmp_path):
    home = tmp_path / "home"
    xdg = tmp_path / "xdg"
    home.mkdir()
    before = sorted(p for p in tmp_path.rglob("*"))
    for env in (
        {"TOLLGATE_DB": str(tmp_path / "missing" / "tollgate.db")},
        {"TOLLGATE_DB": str(tmp_path / "tollgate.db")},
        {"TOLLGATE_DB": None, "XDG_DATA_HOME": str(xdg), "HOME": str(home)},  # the user data folder
    ):
        for shell in ("bash", "zsh", "fish"):
            line = "tollgate customer show a"
            result = run_complete(shell, line, **env)
            assert result.stderr == "", result.stderr
            if shell == "bash":
                assert result.stdout.strip() == ""
            elif shell == "zsh":
                assert result.stdout.strip() == "_files"  # Typer's protocol for "no candidates"
            else:
                assert result.stdout.strip() == ""
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_postgresql_url_gives_no_identifiers_and_no_error():
    for url in ("postgresql://nobody@127.0.0.1:1/none", "postgresql+psycopg://x/y"):
        result = run_complete("bash", "tollgate customer show a", TOLLGATE_DB=url)
        assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", "")
    # commands still complete against a server URL
    assert bash_candidates("tollgate cu", TOLLGATE_DB="postgresql://x/y") == ["customer"]


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_file_that_is_not_a_tollgate_database_gives_nothing(tmp_path, content):
    path = tmp_path / "junk.db"
    path.write_bytes(content)
    result = run_complete("bash", "tollgate customer show a", TOLLGATE_DB=str(path))
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", "")
    assert path.read_bytes() == content


def test_an_sqlite_database_of_something_else_gives_nothing(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customer (x)")
    conn.commit()
    conn.close()
    result = run_complete("bash", "tollgate customer show a", TOLLGATE_DB=str(path))
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", "")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_completion_reads_a_checkpointed_database_without_touching_anything(seeded):
    conn = sqlite3.connect(seeded)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()  # the last connection: SQLite removes the -wal and -shm files
    folder = seeded.parent
    files = sorted(p.name for p in folder.iterdir())
    assert not any(name.endswith(("-wal", "-shm")) for name in files)
    digest, mtime = _digest(seeded), seeded.stat().st_mtime_ns
    assert bash_candidates("tollgate customer show ac") == ["acorn-ltd", "acme-inc"]
    assert sorted(p.name for p in folder.iterdir()) == files  # no -wal/-shm/journal left behind
    assert (_digest(seeded), seeded.stat().st_mtime_ns) == (digest, mtime)


def test_completion_sees_changes_still_in_the_write_ahead_log(seeded):
    writer = sqlite3.connect(seeded)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute(
        "INSERT INTO customer (identifier, billing_id, name, status, search_text, created_at, updated_at)"
        " VALUES ('acute', 'cus_acute', 'Acute', 'active', 'acute', ?, ?)",
        (NOW, NOW),
    )
    writer.commit()  # kept open: the row lives in the -wal file only
    try:
        assert Path(f"{seeded}-wal").stat().st_size > 0
        digest = _digest(seeded)
        assert bash_candidates("tollgate customer show ac") == ["acorn-ltd", "acute", "acme-inc"]
        assert _digest(seeded) == digest
    finally:
        writer.close()


def test_completion_under_a_write_lock_still_answers(seeded):
    writer = sqlite3.connect(seeded, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert bash_candidates("tollgate customer show ac") == ["acorn-ltd", "acme-inc"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# -- the committed scripts ----------------------------------------------------------------------------


@pytest.mark.parametrize("shell", sorted(SCRIPT_FILES))
def test_committed_completion_scripts_are_up_to_date(shell):
    printed = subprocess.run(
        [sys.executable, "-m", "tollgate", "completion", shell], capture_output=True, text=True, check=True
    ).stdout
    committed = (COMPLETIONS / SCRIPT_FILES[shell]).read_text()
    assert committed == printed, (
        f"completions/{SCRIPT_FILES[shell]} is out of date; regenerate it with:\n"
        f"  tollgate completion {shell} > completions/{SCRIPT_FILES[shell]}"
    )


def test_completion_command_refuses_an_unknown_shell():
    result = subprocess.run([sys.executable, "-m", "tollgate", "completion", "tcsh"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert "tcsh" in result.stderr


def test_scripts_speak_the_protocol_tested_here():
    bash = (COMPLETIONS / "tollgate.bash").read_text()
    assert "_TOLLGATE_COMPLETE=complete_bash" in bash and "COMP_WORDS=" in bash and "COMP_CWORD=" in bash
    assert "complete -o default -o nosort -F _tollgate_completion tollgate" in bash
    zsh = (COMPLETIONS / "_tollgate").read_text()
    assert zsh.startswith("#compdef tollgate\n")  # so it can live in $fpath as _tollgate
    assert "_TOLLGATE_COMPLETE=complete_zsh" in zsh and "_TYPER_COMPLETE_ARGS=" in zsh
    fish = (COMPLETIONS / "tollgate.fish").read_text()
    assert "_TOLLGATE_COMPLETE=complete_fish" in fish and "_TYPER_COMPLETE_FISH_ACTION=get-args" in fish


def _bash_program_dir(tmp_path: Path) -> Path:
    """A folder with a `tollgate` executable that runs this checkout with this interpreter."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    program = folder / "tollgate"
    program.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tollgate "$@"\n')
    program.chmod(0o755)
    return folder


def _complete_in_bash(script: Path, words: list[str], tmp_path: Path) -> list[str]:
    cword = len(words) - 1
    array = " ".join(f"'{w}'" for w in words)
    program = f"""
set -e
source '{script}'
complete -p tollgate
COMP_WORDS=({array})
COMP_CWORD={cword}
COMP_LINE='{" ".join(words)}'
COMP_POINT=${{#COMP_LINE}}
_tollgate_completion tollgate '{words[-1]}' '{words[-2]}'
printf 'candidate:%s\\n' "${{COMPREPLY[@]}}"
"""
    env = _env(PATH=f"{_bash_program_dir(tmp_path)}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result
    assert "complete -o default -o nosort -F _tollgate_completion tollgate" in result.stdout
    return [line.removeprefix("candidate:") for line in result.stdout.splitlines()
            if line.startswith("candidate:") and line != "candidate:"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_committed_bash_script_completes_a_partial_customer_id_in_real_bash(seeded, tmp_path):
    script = COMPLETIONS / "tollgate.bash"
    assert _complete_in_bash(script, ["tollgate", "customer", "show", "ac"], tmp_path) == ["acorn-ltd", "acme-inc"]
    assert _complete_in_bash(script, ["tollgate", "customer", "sh"], tmp_path) == ["show"]
    assert _complete_in_bash(script, ["tollgate", "log", "--customer", "b"], tmp_path) == ["beta"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_typers_install_completion_still_works(seeded, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = _env(HOME=str(home), _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    shown = subprocess.run([sys.executable, "-m", "tollgate", "--show-completion", "bash"], capture_output=True,
                           text=True, env=env, check=True).stdout
    assert "_TOLLGATE_COMPLETE=complete_bash" in shown
    installed = subprocess.run([sys.executable, "-m", "tollgate", "--install-completion", "bash"],
                               capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed
    script = home / ".bash_completions" / "tollgate.sh"
    assert f"source '{script}'" in (home / ".bashrc").read_text()
    assert _complete_in_bash_typer(script, tmp_path) == ["acme-inc", "acorn-ltd"]  # bash sorts here


def _complete_in_bash_typer(script: Path, tmp_path: Path) -> list[str]:
    program = f"""
source '{script}'
COMP_WORDS=(tollgate customer show ac)
COMP_CWORD=3
_tollgate_completion tollgate ac show
printf '%s\\n' "${{COMPREPLY[@]}}" | sort
"""
    env = _env(PATH=f"{_bash_program_dir(tmp_path)}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, env=env)
    return [line for line in result.stdout.splitlines() if line]


# -- the completers, in process -------------------------------------------------------------------------


def test_customers_active_first_with_names_as_help(seeded):
    pairs = complete.complete_customer(ctx_with(), [], "")
    assert values(pairs) == ["acorn-ltd", "beta", "colon-co", "acme-inc"]
    assert ("acme-inc", "Acme, Inc. (archived)") in pairs
    assert values(complete.complete_active_customer(ctx_with(), [], "")) == ["acorn-ltd", "beta", "colon-co"]


def test_plans_products_features(seeded):
    assert values(complete.complete_plan(ctx_with(), [], "p")) == ["plus", "pro", "plus-legacy"]
    assert ("pro", "Pro (ai-studio)") in complete.complete_plan(ctx_with(), [], "pr")
    assert values(complete.complete_product(ctx_with(), [], "")) == ["ai-studio", "old-app"]
    assert values(complete.complete_feature(ctx_with(), [], "")) == ["ai-tokens", "api-calls", "max-projects", "sso"]
    assert values(complete.complete_metered_feature(ctx_with(), [], "a")) == ["ai-tokens", "api-calls"]
    assert ("api-calls", "API calls (per call)") in complete.complete_metered_feature(ctx_with(), [], "api")


def test_subscriptions_live_first_and_only_the_customers_when_one_was_typed(seeded):
    assert values(complete.complete_subscription(ctx_with(), [], "sub_")) == ["sub_aaa111", "sub_aac333", "sub_aab222"]
    assert values(complete.complete_subscription(ctx_with(customer="beta"), [], "")) == ["sub_aac333", "sub_aab222"]
    assert ("sub_aaa111", "acorn-ltd on pro (active)") in complete.complete_subscription(ctx_with(), [], "")
    assert complete.complete_subscription(ctx_with(customer="nobody"), [], "") == []


def test_license_keys_active_first_and_for_the_customer_typed_earlier(seeded):
    assert values(complete.complete_license(ctx_with(), [], "TG-")) == ["TG-AAAA-1111", "TG-AAAC-3333", "TG-AAAB-2222"]
    assert values(complete.complete_license(ctx_with(customer="beta"), [], "")) == ["TG-AAAC-3333", "TG-AAAB-2222"]


def test_downloads_of_the_plans_a_customer_is_on(seeded):
    assert values(complete.complete_download(ctx_with(), [], "dl_")) == ["dl_installer", "dl_legacy"]
    assert values(complete.complete_download(ctx_with(customer="acorn-ltd"), [], "")) == ["dl_installer"]
    assert values(complete.complete_download(ctx_with(customer="beta"), [], "")) == ["dl_legacy"]  # trialing


def test_links_of_active_plans_first(seeded):
    assert values(complete.complete_link(ctx_with(), [], "ln_")) == ["ln_community", "ln_archive"]
    assert ("ln_archive", "Old docs (plus-legacy)") in complete.complete_link(ctx_with(), [], "")


def test_intervals_and_currencies_follow_the_plan_on_the_line(seeded):
    assert values(complete.complete_interval(ctx_with(), [], "")) == ["month", "year", "28d", "quarter", "half-year", "once"]
    assert values(complete.complete_interval(ctx_with(plan="pro"), [], "")) == ["month", "year"]
    assert values(complete.complete_interval(ctx_with(plan="plus"), [], "q")) == ["quarter"]  # no prices: all
    assert values(complete.complete_currency(ctx_with(plan="pro"), [], "")) == ["EUR", "USD"]
    everything = values(complete.complete_currency(ctx_with(), [], ""))
    assert everything[:2] == ["EUR", "USD"]  # used in this catalog first
    assert "JPY" in everything and "KWD" in everything and len(everything) > 100
    assert values(complete.complete_currency(ctx_with(), [], "JP")) == ["JPY"]


def test_fixed_vocabularies():
    assert values(complete.complete_feature_type(None, [], "")) == ["boolean", "metered", "config"]
    assert values(complete.complete_reset(None, [], "")) == ["never", "day", "week", "28d", "month", "quarter", "year"]
    assert values(complete.complete_reset(None, [], "q")) == ["quarter"]
    assert values(complete.complete_subscription_status(None, [], "")) == [
        "trialing", "active", "past_due", "canceled", "expired"]
    assert values(complete.complete_usage_period(None, [], "w")) == ["week"]
    assert values(complete.complete_row_format(None, [], "")) == ["csv", "json", "jsonl", "toml"]
    assert values(complete.complete_price_model(None, [], "")) == ["flat", "package", "tiered", "volume", "stair-step"]


def test_every_completer_is_silent_and_empty_without_a_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOLLGATE_DB", str(tmp_path / "nothing-here.db"))
    for name in complete.__all__:
        completer = getattr(complete, name)
        if name.startswith("complete_") and name not in {
            "complete_interval", "complete_currency", "complete_feature_type", "complete_reset",
            "complete_subscription_status", "complete_usage_period", "complete_row_format", "complete_price_model",
        }:
            assert completer(ctx_with(customer="x", plan="y"), [], "") == [], name
    assert capsys.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []


def test_arguments_left_unassigned_by_the_parser_are_still_found():
    arguments = [SimpleNamespace(param_type_name="argument", name="customer", nargs=1),
                 SimpleNamespace(param_type_name="option", name="currency", nargs=1),
                 SimpleNamespace(param_type_name="argument", name="plan", nargs=1)]
    ctx = SimpleNamespace(params={"customer": None, "plan": None}, parent=None, args=["acme", "pro"],
                          command=SimpleNamespace(params=arguments))
    assert complete._given(ctx, "customer") == "acme" and complete._given(ctx, "plan") == "pro"
    assert complete._given(ctx, "currency") is None
    ctx.args = ["acme"]
    assert complete._given(ctx, "plan") is None
    variadic = SimpleNamespace(params=[SimpleNamespace(param_type_name="argument", name="files", nargs=-1),
                                       *arguments])
    assert complete._given(SimpleNamespace(params={}, parent=None, args=["a", "b"], command=variadic), "plan") is None


def test_database_location_mirrors_the_library(monkeypatch, tmp_path):
    from tollgate.location import resolve_location

    monkeypatch.setenv("TOLLGATE_DB", str(tmp_path / "env.db"))
    assert complete.database_location(ctx_with()) == resolve_location(None)
    assert complete.database_location(ctx_with(db="/x/y.db")) == resolve_location("/x/y.db")
    assert complete.database_location(None, ["--db", "/a.db"]) == "/a.db"
    assert complete.database_location(None, ["--db=/b.db"]) == "/b.db"
    monkeypatch.delenv("TOLLGATE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert complete.database_location(ctx_with()) == resolve_location(None)
    assert complete.database_file("postgresql://h/db") is None
    assert complete.database_file("sqlite:////tmp/x.db") == "/tmp/x.db"


def test_a_path_with_uri_characters_is_read_correctly(tmp_path, monkeypatch):
    odd = tmp_path / "odd ?#% name.db"
    shutil.copy(_make_db(tmp_path / "plain.db"), odd)
    monkeypatch.setenv("TOLLGATE_DB", str(odd))
    assert values(complete.complete_customer(ctx_with(), [], "")) == ["solo"]


def _make_db(path: Path) -> Path:
    from tollgate import Tollgate

    handle = Tollgate(path)
    handle.add_customer("Solo", identifier="solo")
    handle.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def test_many_matches_are_capped_but_keep_the_true_common_prefix(seeded, monkeypatch):
    conn = sqlite3.connect(seeded)
    with conn:
        for ident in ["acme-a1", "acme-a2", "acme-a3", "acme-a4", "acme-b", "acz"]:
            _insert(conn, "customer", identifier=ident, billing_id=f"cus_{ident}", name=ident, status="active",
                    search_text=ident, created_at=NOW, updated_at=NOW)
    conn.close()
    monkeypatch.setattr(complete, "LIMIT", 3)
    found = values(complete.complete_customer(ctx_with(), [], "ac"))
    assert found[:3] == ["acme-a1", "acme-a2", "acme-a3"]
    # the first and last matches are always there, so a shell never inserts "acme-a" when "acz" exists
    assert "acz" in found and len(found) <= 5
    assert os.path.commonprefix(found) == "ac"


def test_a_completer_never_raises_whatever_it_is_given(seeded):
    class Hostile:
        def __getattr__(self, name):
            raise RuntimeError("boom")

    completers = [getattr(complete, name) for name in complete.__all__ if name.startswith("complete_")]
    assert len(completers) >= 18
    for completer in completers:
        assert completer(Hostile(), None, "x") == [], completer.__name__
        assert completer(None, [], None) is not None, completer.__name__


def test_the_completion_sql_spells_live_as_the_library_does():
    from tollgate.statuses import LIVE_STATUSES

    literal = "IN (" + ", ".join(f"'{status}'" for status in LIVE_STATUSES) + ")"
    source = Path(complete.__file__).read_text()
    assert source.count("status IN (") == source.count(literal) > 0
    assert [value for value, _help in complete.SUBSCRIPTION_STATUSES][:len(LIVE_STATUSES)] == list(LIVE_STATUSES)
