"""The ClickHouse half of the access declaration: users and scopes, users.xml for servers
without access control, SQL for servers with it, and who ``ebi query`` runs as."""

from __future__ import annotations

import argparse
import io
import xml.etree.ElementTree as ET
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from sinks.clickhouse.backend import Features
from streams.access import analysts
from streams.access.clickhouse_roles import (
    DataAccess,
    data_users,
    rbac_sql,
    scopes,
    users_xml,
)
from streams.access.declaration import DeclarationError, load_declaration
from streams.cli import access
from streams.credentials import clickhouse_login
from streams.settings import Secret, Settings
from streams.stack.pki import ensure_credentials

MODERN = Features.for_version((24, 8, 1))


def declare(tmp_path: Path, users: str) -> Path:
    path = tmp_path / "access.toml"
    path.write_text(f'[principals]\nadmin = ["admin"]\n\n[clickhouse.users]\n{users}\n')
    return path


def test_the_local_declaration_gives_every_role_its_scope() -> None:
    users = data_users(load_declaration())
    assert users["analyst_32"].scope().database("ebi") == "ebi_r32"  # type: ignore[union-attr]
    assert users["analyst_3201"].region == "3201"
    assert users["analyst_32_cleared"].scope().name == "r32_ts"  # type: ignore[union-attr]
    found = scopes(users.values())
    assert set(found) == {"r32", "r3201", "r320102", "r11", "r32_ts", "ops", "audit"}
    assert found["ops"].dead_letters == "full" and found["audit"].dead_letters == "masked"
    assert users["ebi_sink"].scope() is None


@pytest.mark.parametrize(("entry", "message"), [
    ('x = { role = "analyst" }', "needs a region"),
    ('x = { role = "analyst", region = "3" }', "not a GB/T 2260 prefix"),
    ('x = { role = "operator", region = "32" }', "only analysts have a region"),
    ('x = { role = "boss" }', "role 'boss'"),
    ('x = { role = "analyst", region = "32", clearance = ["all"] }', "clearance"),
    ('x = { role = "sink", clearance = ["personal"] }', "only readers"),
    ('x-y = { role = "sink" }', "letters, digits and '_'"),
    ('x = { role = "sink", colour = "red" }', "unknown key"),
])
def test_bad_users_are_named(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(DeclarationError, match=message) as caught:
        data_users(load_declaration(declare(tmp_path, entry)))
    assert str(tmp_path) in str(caught.value)


def test_official_codes_name_the_level_above(tmp_path: Path) -> None:
    users = data_users(load_declaration(declare(
        tmp_path, 'a = { role = "analyst", region = "320100" }')))
    assert users["a"].region == "3201"


def test_users_xml_lets_each_reader_open_its_scope_only() -> None:
    users = data_users(load_declaration())
    passwords = {u: f"pw-{u}" for u in ["default", *users]}
    root = ET.fromstring(users_xml(users.values(), passwords, "ebi"))
    entries = {u.tag: u for u in root.find("users")}  # type: ignore[union-attr]
    assert set(entries) == {"default", *users}

    def allowed(name: str) -> list[str]:
        return [d.text or "" for d in entries[name].iter("database")]

    assert allowed("analyst_32") == ["ebi_r32"] and allowed("ebi_sink") == ["ebi"]
    assert allowed("ebi_admin") == [] and allowed("ebi_operator") == ["ebi_ops"]
    assert entries["analyst_32"].findtext("profile") == "ebi_reader"
    assert entries["ebi_sink"].findtext("profile") == "ebi_writer"
    profiles = root.find("profiles")
    assert profiles.find("ebi_reader").findtext("readonly") == "1"  # type: ignore[union-attr]
    assert profiles.find("ebi_writer").findtext("allow_ddl") == "0"  # type: ignore[union-attr]
    text = users_xml(users.values(), passwords, "ebi")
    assert "pw-analyst_32" not in text
    with pytest.raises(DeclarationError, match="no password"):
        users_xml(users.values(), {}, "ebi")


def test_access_control_sql() -> None:
    users = data_users(load_declaration())
    sql = rbac_sql(users, "ebi", MODERN, {"analyst_32": Secret("s3cret")})
    text = "\n".join(sql)
    assert "s3cret" not in text
    assert "GRANT INSERT ON ebi.readings_raw TO ebi_sink" in sql
    assert not any(s.startswith(("GRANT ALTER", "GRANT CREATE", "GRANT DROP")) for s in sql)
    assert not any("ebi_sink" in s and s.startswith("GRANT SELECT ON") for s in sql)
    assert "CREATE ROW POLICY OR REPLACE ebi_r32 ON ebi.readings_raw FOR SELECT USING " \
           "region_code LIKE '32%' TO ebi_r32" in sql
    every = next(s for s in sql if s.startswith("CREATE ROW POLICY OR REPLACE ebi_every_region "
                                                "ON ebi.readings_raw"))
    assert every.endswith("TO ALL EXCEPT ebi_r11, ebi_r32, ebi_r3201, ebi_r320102, ebi_r32_ts")
    grant = next(s for s in sql if s.startswith("GRANT SELECT(") and
                 s.endswith("ON ebi.hazards_raw TO ebi_r32"))
    assert " description" not in grant and "hazard_id" in grant
    assert "GRANT SELECT ON ebi_r32.* TO ebi_r32" in sql
    assert any(s.startswith("CREATE USER IF NOT EXISTS analyst_32 IDENTIFIED WITH "
                            "sha256_hash BY '") for s in sql)
    assert "GRANT ebi_r32 TO analyst_32" in sql
    assert any(s.startswith("-- analyst_11: no password known here") for s in sql)
    assert not any(s.startswith("CREATE USER IF NOT EXISTS analyst_11") for s in sql)
    older = rbac_sql(users, "ebi", Features.for_version((21, 8, 1)), {})
    assert not any("SQL SECURITY" in s for s in older if not s.startswith("--"))
    assert any(s.startswith("-- masked views (ebi_r32) need SQL SECURITY DEFINER") for s in older)


def run_access(*argv: str, settings: Settings) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    access.add(parser)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = access.run(parser.parse_args(list(argv)), settings)
    return code, out.getvalue(), err.getvalue()


def test_cli_sql_users_xml_and_embedded_apply(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, clickhouse_url="clickhouse://127.0.0.1:9000/ebi")
    code, out, _ = run_access("sql", settings=settings)
    assert code == 0 and "CREATE ROLE IF NOT EXISTS ebi_r32;" in out
    assert run_access("sql", "--server-version", "18.16", settings=settings)[0] == 2
    target = tmp_path / "users.xml"
    code, _, err = run_access("users-xml", "--out", str(target), settings=settings)
    assert code == 2 and "no password" in err
    ensure_credentials(tmp_path, (), data_users(load_declaration()))
    code, out, _ = run_access("users-xml", "--out", str(target), settings=settings)
    assert code == 0 and target.stat().st_mode & 0o077 == 0
    assert "<analyst_32>" in target.read_text()
    embedded = Settings(data_dir=tmp_path, clickhouse_url=f"chdb://{tmp_path / 'chdb'}")
    code, out, _ = run_access("apply", "--only", "clickhouse", settings=embedded)
    assert code == 0 and "has no users" in out and DataAccess("embedded").summary() in out


def test_a_declared_users_generated_password_is_found_by_name(tmp_path: Path) -> None:
    ensure_credentials(tmp_path, (), ["analyst_32"])
    login = clickhouse_login(Settings(data_dir=tmp_path, clickhouse_user="analyst_32"))
    assert login is not None and login.username == "analyst_32" and login.password
    given = clickhouse_login(Settings(data_dir=tmp_path, clickhouse_user="analyst_32",
                                      clickhouse_password=Secret("mine")))
    assert given is not None and given.password.reveal() == "mine"


def test_queries_never_run_with_the_sinks_login(tmp_path: Path) -> None:
    url = "clickhouse://127.0.0.1:9/ebi"
    for settings in (Settings(data_dir=tmp_path, clickhouse_url=url, identity="sink"),
                     Settings(data_dir=tmp_path, clickhouse_url=url,
                              clickhouse_user="ebi_sink")):
        with pytest.raises(analysts.ReaderError, match="the sink's login"):
            analysts.connect_reader(settings)


def test_the_embedded_store_says_it_has_no_users() -> None:
    reader = analysts.Reader(object(), "", None)  # type: ignore[arg-type]
    assert "has no users" in reader.note()
    from streams.cli.query import EPILOG

    assert "NO users" in EPILOG
