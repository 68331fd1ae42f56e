"""Secrets never show: Secret, secret settings from files, repr(Settings), status lines,
error messages; the local PKI and credentials files; the role ACLs derived from the catalog."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from schemas.catalog import default_catalog
from sinks.clickhouse.config import ConfigError, display_url, login_url, parse_url
from streams import clients
from streams.access import kafka_acls
from streams.access.declaration import DeclarationError, load_declaration
from streams.credentials import CredentialsError, kafka_login, read_credentials, scrub
from streams.settings import Secret, Settings, SettingsError, load, redact_url
from streams.stack.pki import ensure_credentials, ensure_pki
from streams.stack.stack import ServiceStatus

PASSWORD = "hunter2-correct-horse"


def test_secret_hides_its_value_everywhere() -> None:
    secret = Secret(PASSWORD)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>30}",
                  "%s" % (secret,), str([secret]),  # noqa: UP031
                  str({"p": secret})):
        assert PASSWORD not in shown
        assert "******" in shown
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD) and secret != Secret("other") and not Secret("")
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_secret_settings_from_environment_or_files(tmp_path: Path) -> None:
    path = tmp_path / "kafka.password"
    path.write_text(PASSWORD + "\n")
    from_file = load(environ={"EBI_KAFKA_PASSWORD_FILE": str(path)})
    assert from_file.kafka_password.reveal() == PASSWORD
    toml = tmp_path / "ebi.toml"
    toml.write_text(f'registry_password_file = "{path}"\nkafka_username = "gw"\n')
    assert load(environ={}, settings_file=toml).registry_password.reveal() == PASSWORD
    assert load(environ={"EBI_CLICKHOUSE_PASSWORD": "x"}).clickhouse_password.reveal() == "x"
    with pytest.raises(SettingsError, match="both kafka_password and kafka_password_file"):
        load(environ={"EBI_KAFKA_PASSWORD_FILE": str(path), "EBI_KAFKA_PASSWORD": "x"})
    with pytest.raises(SettingsError, match="cannot read"):
        load(environ={"EBI_KAFKA_PASSWORD_FILE": str(tmp_path / "missing")})
    with pytest.raises(SettingsError, match="kafka_security"):
        load(environ={"EBI_KAFKA_SECURITY": "none"})
    with pytest.raises(SettingsError, match="unknown"):
        load(environ={"EBI_TOPIC_PREFIX_FILE": str(path)})   # not a secret field


def test_repr_of_settings_shows_no_secret() -> None:
    settings = Settings(kafka_password=Secret(PASSWORD), registry_password=Secret(PASSWORD),
                        clickhouse_password=Secret(PASSWORD),
                        clickhouse_url=f"clickhouse://bob:{PASSWORD}@ch:9000/db",
                        schema_registry_url=f"https://sr:{PASSWORD}@sr.example/apis")
    text = repr(settings)
    assert PASSWORD not in text
    assert "clickhouse://bob:******@ch:9000/db" in text
    assert redact_url("chdb:///var/x") == "chdb:///var/x"


def test_status_lines_and_clickhouse_messages_show_no_password() -> None:
    url = f"clickhouse://bob:{PASSWORD}@ch:9000/db"
    line = ServiceStatus("clickhouse", redact_url(url), False, False, True).line()
    assert PASSWORD not in line
    assert PASSWORD not in display_url(url) and PASSWORD not in parse_url(url).display
    assert PASSWORD not in repr(parse_url(url))
    with pytest.raises(ConfigError) as caught:
        parse_url(f"clickhouse://bob:{PASSWORD}@ch:notaport/db")
    assert PASSWORD not in str(caught.value) and "bob:******@" in str(caught.value)


def test_local_credentials_are_private_and_generated_once(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    first = ensure_credentials(tmp_path, ["admin", "gateway-a"])
    again = ensure_credentials(tmp_path, ["admin", "gateway-a", "sink"])
    assert again["principals"]["admin"] == first["principals"]["admin"]
    assert set(again["principals"]) == {"admin", "gateway-a", "sink"}
    assert set(again["clickhouse"]) == {"default", "ebi_admin", "ebi_sink"}
    assert read_credentials(tmp_path) == again
    assert stat.S_IMODE(pki.dir.stat().st_mode) == 0o700
    for path in pki.dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    ca = pki.ca.read_bytes()
    ensure_pki(tmp_path)
    assert pki.ca.read_bytes() == ca                        # kept, not regenerated
    settings = Settings(data_dir=tmp_path, identity="gateway-a")
    login = kafka_login(settings)
    assert login.username == "gateway-a" and PASSWORD not in repr(login)
    config = clients.kafka_config(settings)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["ssl.ca.location"] == str(pki.ca)
    assert clients.registry_config(settings)["ssl.ca.location"] == str(pki.ca)
    with pytest.raises(CredentialsError, match="identity 'nobody'"):
        kafka_login(settings.replace(identity="nobody"))
    sink = Settings(data_dir=tmp_path, identity="sink",
                    clickhouse_url="clickhouse://127.0.0.1:9000/ebi")
    merged = login_url(sink)
    assert parse_url(merged).user == "ebi_sink"
    assert parse_url(merged).password == again["clickhouse"]["ebi_sink"]
    assert again["clickhouse"]["ebi_sink"] not in display_url(merged)
    assert scrub(f"x {merged} y", [again["clickhouse"]["ebi_sink"]]).count("******") == 1


def test_plaintext_is_an_explicit_opt_in() -> None:
    config = clients.kafka_config(Settings(kafka_security="plaintext"))
    assert config["security.protocol"] == "PLAINTEXT" and "sasl.password" not in config
    assert Settings().kafka_security == "sasl_ssl"
    assert Settings().registry_url.startswith("https://")


def test_role_acls_follow_the_catalog_with_least_privilege() -> None:
    s = Settings(topic_prefix="p.", worker_id="w", sink_group="sg")
    declaration = load_declaration()
    assert declaration.principals["simulator"] == ("gateway", "regional", "registrar")

    def ops(principal: str, role: str) -> set[tuple[str, str, str]]:
        return {(g.operation, g.pattern, g.name) for g in
                kafka_acls.role_grants(role, principal, s) if g.resource == "topic"}

    gateway = ops("gw", "gateway")
    assert gateway == {("WRITE", "literal", f"p.{n}") for n in
                       ("telemetry", "heartbeats", "hazards")}
    assert ops("r", "regional") == {("WRITE", "literal", "p.incidents")}
    assert ops("a", "registrar") == {("WRITE", "literal", "p.enterprises"),
                                     ("WRITE", "literal", "p.sensors"),
                                     ("WRITE", "literal", "p.keys")}
    worker = ops("w", "worker")
    outputs = [t.name for t in default_catalog().worker_outputs()]
    assert {("WRITE", "literal", f"p.{n}") for n in outputs} <= worker
    assert ("READ", "literal", "p.telemetry") in worker
    assert ("READ", "literal", "p.sensors") in worker
    assert ("READ", "literal", "p.keys") in worker
    assert not any(op == "WRITE" and name in ("p.telemetry", "p.sensors")
                   for op, _, name in worker)
    assert ("CREATE", "prefixed", "w-") in worker
    assert not any(op == "CREATE" and pattern == "literal" for op, pattern, _ in worker)
    sink = ops("s", "sink")
    assert sink == {("READ", "literal", f"p.{n}") for n in outputs}
    assert {g.name for g in kafka_acls.role_grants("sink", "s", s)
            if g.resource == "group"} == {"sg"}
    operator = ops("o", "operator")
    assert ("DESCRIBE", "prefixed", "p.") in operator
    # an operator writes one topic, its commands (ebi alarms ack), and creates nothing
    assert {(op, name) for op, _, name in operator if op == "WRITE"} == {
        ("WRITE", "p.alarm.commands")}
    assert not any(op in ("CREATE", "ALTER") for op, _, _ in operator)
    assert kafka_acls.role_grants("admin", "admin", s) == []
    everything = kafka_acls.desired(declaration, s)
    assert not any(g.operation in ("ALTER", "ALTER_CONFIGS", "ALL") for g in everything)


def test_declaration_errors_name_the_file_and_principal(tmp_path: Path) -> None:
    bad = tmp_path / "access.toml"
    bad.write_text('[principals]\ngw = ["gateway", "superhero"]\n')
    with pytest.raises(DeclarationError, match=r"gw.*superhero"):
        load_declaration(bad)
    bad.write_text('[principals]\n"bad name" = ["gateway"]\n')
    with pytest.raises(DeclarationError, match="bad name"):
        load_declaration(bad)
