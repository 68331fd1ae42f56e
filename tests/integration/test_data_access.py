"""Who may read what, on the real ClickHouse 18.16 server of the session (no SQL access
control there: per-user databases, users.xml, scope databases the sink's inserts fill), with
the users of deploy/access/local.toml ``[clickhouse.users]``; and the statements for servers
with access control, parsed and their masked views run on chdb."""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.catalog import default_catalog
from sinks.clickhouse import Backend, ClickHouseError, connect
from sinks.clickhouse.backend import DENIED_CODES
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.regions import drop, existing
from sinks.reconcile import reconcile
from sinks.replay import select
from sinks.store import open_store
from streams.access.analysts import connect_reader
from streams.access.clickhouse_roles import data_users, rbac_sql
from streams.access.declaration import load_declaration
from streams.cli import access
from streams.credentials import read_credentials
from streams.settings import Secret, Settings
from tests.integration.test_sink_kit import load_in_process
from tests.unit.sinks import factories as f

pytestmark = pytest.mark.integration

# enterprises of this module (unique numbers: other tests share the session's database)
E32, E3201, E11 = 7101, 7102, 7103      # 320102 (a county of city 3201), 320501, 110101
REGION = {E32: "320102", E3201: "320501", E11: "110101"}
PROVINCE_11 = f"ent-{E11:04d}"


def _telemetry(offset: int, enterprise: int) -> dict[str, Any]:
    return f.telemetry(offset, readings=8, sensors=4, enterprise=enterprise, gateway=enterprise,
                       region=REGION[enterprise], topic="it.telemetry", late_every=3)


def _records(base: int, authorised: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Records of all three places; offsets from ``base``."""
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "telemetry.clean", "heartbeats.clean", "incidents.clean", "hazards.clean", "alerts",
        "gateway.status", "deadletter")}
    for i, ent in enumerate((E32, E3201, E11)):
        o = base + 10 * i
        region = REGION[ent]
        out["telemetry.clean"] += [_telemetry(o, ent), _telemetry(o + 1, ent)]
        out["heartbeats.clean"].append({
            "source": f.source("it.heartbeats", 0, o), "gateway_id": f"gw-{ent:04d}",
            "enterprise_id": f"ent-{ent:04d}", "region_code": region, "sent_at": f.T0 + o,
            "sequence": o, "interval_s": 60, "firmware": "1.0", "received_at": f.T0 + o + 5,
            "online": True, "tag": None})
        out["incidents.clean"].append({
            **f.incident(o, topic="it.incidents", incident_id=f"inc-{ent}-{base}",
                         region=region),
            "publication": "AUTHORISED" if authorised else "INTERNAL",
            "description": f"tank fire, site manager Zhang at {region}"})
        out["hazards.clean"].append({
            **f.hazard(o, topic="it.hazards", hazard_id=f"hz-{ent}-{base}"),
            "enterprise_id": f"ent-{ent:04d}", "region_code": region,
            "description": "reactor R-2 runs at 4.1 MPa"})
        out["alerts"].append({**f.alert(o), "alert_id": f"al-{ent}-{base}",
                              "enterprise_id": f"ent-{ent:04d}", "region_code": region})
        out["gateway.status"].append({**f.gateway_status(o), "gateway_id": f"gw-{ent:04d}",
                                      "enterprise_id": f"ent-{ent:04d}",
                                      "region_code": region})
    out["deadletter"].append(f.dead_letter(base + 5, topic="it.telemetry"))  # its own offset
    return out


def _url(port: int, db: str, user: str = "", password: str = "") -> str:
    who = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@" \
        if user else ""
    return f"clickhouse://{who}127.0.0.1:{port}/{db}"


class Access:
    """The session's server, its base database and the declared users' passwords."""

    def __init__(self, settings: Settings, admin: Backend) -> None:
        self.settings = settings
        self.admin = admin
        self.db = admin.config.database
        self.port = settings.clickhouse_tcp_port
        self.passwords = read_credentials(settings.data_dir)["clickhouse"]

    def login(self, user: str, db: str | None = None) -> Backend:
        return connect(_url(self.port, db or self.db, user, self.passwords[user]))

    def reader(self, user: str) -> Backend:
        """``user``'s own scope database, found the way ``ebi query`` finds it."""
        return connect_reader(self.as_user(user)).backend

    def as_user(self, user: str) -> Settings:
        return self.settings.replace(clickhouse_user=user)


@pytest.fixture(scope="module")
def secured(stack_settings: Settings, clickhouse_server_url: str) -> Iterator[Access]:
    """The base database migrated by the admin, data of three places written by the sink's
    own user before and after ``ebi access apply`` built the scopes; the scopes are removed
    at the end (other tests share the database)."""
    admin = connect(clickhouse_server_url)
    migrate(admin)
    settings = stack_settings.replace(clickhouse_url=_url(stack_settings.clickhouse_tcp_port,
                                                          admin.config.database))
    setup = Access(settings, admin)
    sink = setup.login("ebi_sink")
    load_in_process(sink, _records(900_000))                 # before the scopes exist
    parser = argparse.ArgumentParser()
    access.add(parser)
    assert access.run(parser.parse_args(["apply", "--only", "clickhouse"]), settings) == 0
    load_in_process(sink, _records(910_000, authorised=True))   # through the copying views
    sink.close()
    yield setup
    for name in existing(admin, setup.db):
        drop(admin, setup.db, name)
    admin.close()


def _tables(backend: Backend) -> dict[str, set[str]]:
    """Every table and view the user can see in their database -> its columns."""
    out: dict[str, set[str]] = {}
    for table, column in backend.query(
            "SELECT table, name FROM system.columns WHERE database = currentDatabase()").rows:
        out.setdefault(str(table), set()).add(str(column))
    return out


def test_a_province_analyst_sees_no_row_of_another_province_anywhere(secured: Access) -> None:
    analyst = secured.reader("analyst_32")
    assert analyst.config.database == f"{secured.db}_r32"
    tables = _tables(analyst)
    assert {"readings", "readings_raw", "reading_minutes", "sensor_minutes", "enterprise_days",
            "incident_days", "incidents", "hazards", "alerts", "gateway_state",
            "heartbeats"} <= set(tables)
    assert not {"dead_letters", "dead_letters_raw", "ledger", "ledger_v"} & set(tables)
    seen = 0
    for table, columns in tables.items():
        if "region_code" in columns:
            assert analyst.query(f"SELECT count() FROM {table} WHERE NOT "
                                 "(region_code LIKE '32%')").scalar() == 0, table
            seen += int(analyst.query(f"SELECT count() FROM {table}").scalar())
        if "enterprise_id" in columns:
            assert analyst.query(f"SELECT count() FROM {table} WHERE enterprise_id = "
                                 f"'{PROVINCE_11}'").scalar() == 0, table
    assert seen > 0
    # both cities of the province, rows written before and after the scope was built
    assert analyst.query(
        "SELECT count() FROM readings WHERE enterprise_id IN ('ent-7101', 'ent-7102')"
    ).scalar() == 2 * 2 * 2 * 8
    # joins and subqueries inside the scope stay in it
    assert analyst.query("""
SELECT count() FROM readings AS r ANY INNER JOIN (
    SELECT enterprise_id, day, region_code AS day_region FROM enterprise_days
) AS d USING enterprise_id
WHERE NOT (d.day_region LIKE '32%') OR NOT (r.region_code LIKE '32%')""").scalar() == 0
    assert analyst.query(
        "SELECT groupUniqArray(substring(region_code, 1, 2)) FROM (SELECT region_code FROM "
        "incidents UNION ALL SELECT region_code FROM hazards_raw UNION ALL SELECT "
        "region_code FROM reading_minutes)").scalar() == ["32"]
    analyst.close()


@pytest.mark.parametrize("sql", [
    "SELECT count() FROM {db}.readings_raw",
    "SELECT count() FROM {db}.readings",
    "SELECT count() FROM {db}_r11.readings",
    "SELECT count() FROM {db}_ops.dead_letters",
    "SELECT count() FROM readings AS a ANY LEFT JOIN {db}.readings_raw AS b USING reading_id",
    "SELECT count() FROM readings WHERE reading_id IN (SELECT reading_id FROM {db}.readings_raw)",
    "SELECT count() FROM (SELECT * FROM {db}_r11.incidents)",
    "SELECT count() FROM merge('{db}', '^readings_raw$')",
    "SELECT count() FROM remote('127.0.0.1:{port}', '{db}', 'readings_raw')",
    "SELECT count() FROM url('http://127.0.0.1:{http}/?query=SELECT%201', TSV, 'a UInt8')",
    "INSERT INTO readings_raw (reading_id) VALUES ('x')",
    "DROP TABLE readings_raw",
    "SET readonly = 0",
])
def test_the_analyst_cannot_reach_outside_the_scope(secured: Access, sql: str) -> None:
    analyst = secured.reader("analyst_32")
    try:
        with pytest.raises(ClickHouseError) as caught:
            analyst.query(sql.format(db=secured.db, port=secured.port,
                                     http=secured.settings.clickhouse_http_port))
        assert caught.value.code in (164, 291, 392), str(caught.value)
    finally:
        analyst.close()


def test_system_tables_show_only_the_scope(secured: Access) -> None:
    analyst = secured.reader("analyst_32")
    for table in ("tables", "columns", "parts"):
        databases = {str(d) for (d,) in analyst.query(
            f"SELECT DISTINCT database FROM system.{table}").rows}
        assert databases <= {f"{secured.db}_r32", "system"}, table
    assert {str(d) for (d,) in analyst.query("SELECT name FROM system.databases").rows} == {
        f"{secured.db}_r32", "system"}
    analyst.close()


@pytest.mark.parametrize(("user", "prefix", "enterprises"), [
    ("analyst_3201", "3201", {"ent-7101"}),
    ("analyst_320102", "320102", {"ent-7101"}),
    ("analyst_11", "11", {PROVINCE_11}),
])
def test_city_and_county_analysts_see_their_part_only(secured: Access, user: str, prefix: str,
                                                       enterprises: set[str]) -> None:
    analyst = secured.reader(user)
    for table, columns in _tables(analyst).items():
        if "region_code" in columns:
            assert analyst.query(f"SELECT count() FROM {table} WHERE NOT "
                                 f"(region_code LIKE '{prefix}%')").scalar() == 0, table
    found = {str(e) for (e,) in analyst.query(
        "SELECT DISTINCT enterprise_id FROM readings WHERE enterprise_id LIKE 'ent-71%'").rows}
    assert found == enterprises
    analyst.close()


def test_a_role_without_clearance_sees_masked_values(secured: Access) -> None:
    plain, cleared = secured.reader("analyst_32"), secured.reader("analyst_32_cleared")
    assert cleared.config.database == f"{secured.db}_r32_ts"

    def values(backend: Backend, sql: str) -> list[Any]:
        return [r[0] for r in backend.query(sql).rows]

    process = "SELECT value FROM readings WHERE metric = 'TEMPERATURE' AND enterprise_id " \
              "= 'ent-7101'"
    gas = process.replace("TEMPERATURE", "METHANE")
    assert values(plain, process) and all(v is None for v in values(plain, process))
    assert all(v is not None for v in values(cleared, process))
    assert all(v is not None for v in values(plain, gas))
    for sql in ("SELECT arrayJoin(arrayMap(x -> tupleElement(x, 2), groupUniqArrayMerge(pairs))) "
                "FROM reading_minutes WHERE metric = 'TEMPERATURE' GROUP BY sensor_id",
                "SELECT max_value FROM sensor_minutes WHERE metric = 'TEMPERATURE'",
                "SELECT avg_value FROM sensor_minutes WHERE metric = 'TEMPERATURE'"):
        assert values(plain, sql) and all(v is None for v in values(plain, sql)), sql
        assert all(v is not None for v in values(cleared, sql)), sql
    hazards = "SELECT description FROM hazards WHERE enterprise_id = 'ent-7101'"
    assert values(plain, hazards) == [None, None]      # one per batch
    assert set(values(cleared, hazards)) == {"reactor R-2 runs at 4.1 MPa"}
    for backend in (plain, cleared):   # personal: neither is cleared for it
        assert set(values(backend, "SELECT description FROM incident_reports")) == {None}
    alerts = "SELECT value FROM alerts WHERE alert_id LIKE 'al-71%'"
    assert set(values(plain, alerts)) == {None}
    assert set(values(cleared, alerts)) == {1.6}
    # economic loss: a trade secret until the report is authorised for publication
    loss = dict(plain.query("SELECT publication, any(direct_economic_loss_cny) FROM "
                            "incident_reports GROUP BY publication").rows)
    assert loss == {"INTERNAL": None, "AUTHORISED": 1.5e6}
    comments = dict(plain.query("SELECT name, comment FROM system.columns WHERE table = "
                                "'hazards_raw' AND database = currentDatabase()").rows)
    assert comments["description"].startswith("classification: trade_secret; masked here")
    plain.close()
    cleared.close()


def test_dead_letter_bytes_are_for_operators_only(secured: Access) -> None:
    operator, auditor = secured.reader("ebi_operator"), secured.reader("ebi_auditor")
    where = "WHERE source_offset = 900005"
    assert operator.query(f"SELECT hex(value), error_message FROM dead_letters {where}"
                          ).rows == [("000000000102", "TRUNCATED_AVRO: test")]
    assert auditor.query(f"SELECT value, key, error_message, error_code FROM dead_letters "
                         f"{where}").rows == [(None, None, None, "TRUNCATED_AVRO")]
    for backend in (operator, auditor):   # every region, the ledger
        assert backend.query(f"SELECT count() FROM readings WHERE enterprise_id = "
                             f"'{PROVINCE_11}'").scalar() == 2 * 2 * 8
        assert backend.query("SELECT count() FROM ledger_v").scalar() > 0
        assert backend.query("SELECT value FROM readings WHERE metric = 'TEMPERATURE' "
                             "LIMIT 1").scalar() is None
        backend.close()


def test_an_operator_replays_and_reconciles_in_their_own_database(
        secured: Access, capsys: pytest.CaptureFixture[str]) -> None:
    """The operator may open ``<db>_ops`` only: ``ebi dead-letters replay`` and ``ebi
    reconcile`` find it as ``ebi query`` does, and their queries run there unchanged."""
    as_operator = secured.as_user("ebi_operator")
    for command in ("dead-letters", "reconcile"):
        backend = open_store(as_operator, command, own_database=True)
        assert backend is not None and backend.config.database == f"{secured.db}_ops"
        assert f"ebi {command}: as ebi_operator in {secured.db}_ops" in capsys.readouterr().err
        backend.close()
    backend = open_store(as_operator, "dead-letters", own_database=True)
    assert backend is not None
    rows = select(backend, ["it.telemetry"])
    assert [(r.source_offset, r.value) for r in rows if r.source_offset == 900005] == \
        [(900005, b"\x00\x00\x00\x00\x01\x02")]
    kind = default_catalog().of_input("telemetry")
    checks = reconcile(backend, {("it.telemetry", 0): (900_000, 900_002)},
                       {"it.telemetry": kind})
    assert [(c.enriched, c.readings_found) for c in checks] == [(2, 16)]
    backend.close()
    # without the fallback the base database stays closed to the operator
    assert open_store(as_operator, "reconcile") is None


def test_the_sink_writes_but_cannot_read_analyst_views_or_change_tables(
        secured: Access) -> None:
    sink = secured.login("ebi_sink")
    for statement, codes in [
        (f"SELECT count() FROM {secured.db}_r32.readings", (291,)),
        (f"SELECT count() FROM {secured.db}_ops.dead_letters", (291,)),
        (f"DROP TABLE {secured.db}.readings_raw", (392,)),
        (f"TRUNCATE TABLE {secured.db}.ledger", (392,)),
        (f"ALTER TABLE {secured.db}.readings_raw DELETE WHERE 1", (392,)),
        (f"ALTER TABLE {secured.db}.readings_raw ADD COLUMN x UInt8", (392,)),
        (f"CREATE TABLE {secured.db}.rogue (a UInt8) ENGINE = Memory", (392,)),
        (f"RENAME TABLE {secured.db}.ledger TO {secured.db}.ledger_old", (392,)),
        (f"DROP TABLE {secured.db}.scope_r32__readings_raw", (392,)),
        ("SET allow_ddl = 1", (392,)),
    ]:
        with pytest.raises(ClickHouseError) as caught:
            sink.command(statement)
        assert caught.value.code in codes, f"{statement}: {caught.value}"
    assert sink.query(f"SELECT count() FROM {secured.db}.ledger").scalar() > 0  # its own
    sink.close()
    # `ebi sink` opens its database with create_database (denied, the database is there)
    # and leaves the migrations, which it may not run, to the admin
    sink = connect(_url(secured.port, secured.db, "ebi_sink", secured.passwords["ebi_sink"]),
                   create_database=True)
    with pytest.raises(ClickHouseError) as caught:
        migrate(sink)
    assert caught.value.code in DENIED_CODES
    sink.close()
    with pytest.raises(ClickHouseError):   # nor log in anywhere else
        secured.login("ebi_sink", f"{secured.db}_r32")


def test_unauthenticated_and_wrong_logins_are_refused(secured: Access) -> None:
    for user, password in (("default", ""), ("analyst_32", ""), ("analyst_32", "wrong"),
                           ("nobody", "x")):
        with pytest.raises(ClickHouseError):
            connect(_url(secured.port, f"{secured.db}_r32", user, password)).close()
        with pytest.raises(ClickHouseError):
            connect(_url(secured.port, "system", user, password)).close()
    http = f"http://127.0.0.1:{secured.settings.clickhouse_http_port}/"

    def ask(sql: str, auth: str | None = None, db: str = "") -> str:
        headers = {"Authorization": f"Basic {base64.b64encode(auth.encode()).decode()}"} \
            if auth else {}
        url = http + (f"?database={db}" if db else "")
        request = urllib.request.Request(url, data=sql.encode(), headers=headers)
        with urllib.request.urlopen(request, timeout=10) as rsp:
            return str(rsp.read().decode())

    with pytest.raises(urllib.error.HTTPError):
        ask("SELECT 1")
    with pytest.raises(urllib.error.HTTPError):
        ask(f"SELECT count() FROM {secured.db}.readings_raw",
            f"analyst_32:{secured.passwords['analyst_32']}")
    answer = ask("SELECT DISTINCT substring(region_code, 1, 2) FROM readings",
                 f"analyst_32:{secured.passwords['analyst_32']}", f"{secured.db}_r32")
    assert answer.split() == ["32"]


def _ebi(secured: Access, *argv: str, user: str = "analyst_32",
         identity: str = "admin") -> subprocess.CompletedProcess[str]:
    """``ebi`` as a process, the way an analyst runs it: the login from EBI_CLICKHOUSE_USER
    and a password file (0600), the base database's URL."""
    secrets = secured.settings.data_dir / "secrets"
    path = secrets / f"clickhouse-{user}.password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secured.passwords[user] + "\n")
    env = {**os.environ, "EBI_DATA_DIR": str(secured.settings.data_dir),
           "EBI_CLICKHOUSE_URL": _url(secured.port, secured.db), "EBI_IDENTITY": identity,
           "EBI_CLICKHOUSE_USER": user, "EBI_CLICKHOUSE_PASSWORD_FILE": str(path)}
    if identity == "sink":
        env.pop("EBI_CLICKHOUSE_USER")
        env.pop("EBI_CLICKHOUSE_PASSWORD_FILE")
    return subprocess.run([sys.executable, "-m", "streams", *argv], env=env,
                          capture_output=True, text=True, timeout=120)


def test_ebi_query_and_report_run_as_the_calling_analyst(secured: Access) -> None:
    done = _ebi(secured, "query", "SELECT DISTINCT substring(region_code, 1, 2) AS p FROM "
                "readings", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["p", "32"]
    assert f"as analyst_32 in {secured.db}_r32 (scope r32: region 32" in done.stderr
    report = _ebi(secured, "report", "--since", "2025-12-31", "--until", "2026-02-01",
                  "--format", "json")
    assert report.returncode == 0, report.stderr
    assert " UTC region 32\n" in report.stdout and "Dead letters" not in report.stdout
    assert "ent-7101" in report.stdout and PROVINCE_11 not in report.stdout
    outside = _ebi(secured, "report", "--region", "11")
    assert outside.returncode == 2 and "outside your scope" in outside.stderr
    refused = _ebi(secured, "query", "SELECT 1", identity="sink")
    assert refused.returncode == 1 and "the sink's login" in refused.stderr
    for text in (done.stderr, report.stderr, outside.stderr):
        assert secured.passwords["analyst_32"] not in text


def test_apply_again_changes_nothing(secured: Access,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    access.add(parser)
    assert access.run(parser.parse_args(["apply", "--only", "clickhouse"]),
                      secured.settings) == 0
    assert "0 scope(s) built, 7 up to date, 0 removed" in capsys.readouterr().out


def test_access_control_statements_parse_and_mask_on_chdb(chdb_url: str) -> None:
    """The SQL for servers with access control, on current ClickHouse (chdb has no users:
    the statements are parsed, and the masked views, which need no users, are run)."""
    backend = connect(f"{chdb_url}?database=acl", create_database=True)
    try:
        migrate(backend)
        load_in_process(backend, _records(920_000))
        users = data_users(load_declaration())
        statements = rbac_sql(users, "acl", backend.features,
                              {u: Secret("pw") for u in users})
        for kind in ("CREATE ROLE", "CREATE USER", "GRANT INSERT", "GRANT SELECT(",
                     "CREATE ROW POLICY", "CREATE OR REPLACE VIEW", "GRANT acl_r32 TO",
                     "ALTER USER"):
            assert any(s.startswith(kind) for s in statements), kind
        for statement in statements:
            if statement.startswith("--"):
                continue
            backend.query(f"EXPLAIN AST {statement}")   # parses
            if statement.startswith(("CREATE OR REPLACE VIEW", "CREATE DATABASE")):
                backend.command(statement)
        rows = backend.query("SELECT DISTINCT substring(region_code, 1, 2), metric, "
                             "value IS NULL FROM acl_r32.readings WHERE enterprise_id LIKE "
                             "'ent-71%' ORDER BY metric").rows
        assert {r[0] for r in rows} == {"32"}
        assert {(r[1], r[2]) for r in rows} == {("CARBON_MONOXIDE", 0), ("FLAMMABLE_GAS", 0),
                                                ("METHANE", 0), ("TEMPERATURE", 1)}
        assert backend.query("SELECT count() FROM acl_r32.sensor_minutes WHERE NOT "
                             "(region_code LIKE '32%')").scalar() == 0
        assert backend.query("SELECT value FROM acl_audit.dead_letters LIMIT 1").scalar() \
            is None
        assert backend.query("SELECT hex(value) FROM acl_ops.dead_letters LIMIT 1").scalar() \
            == "000000000102"
    finally:
        backend.close()
