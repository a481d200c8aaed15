"""One Kafka client factory (sflowpipe/kafka.py KafkaClients): no component builds its own client,
and the user's settings reach every client: ``kafka.common`` all of them (the Faust workers through
their credentials), ``kafka.producer`` the producers, ``kafka.consumer`` the consumers."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import faust
import pytest
from confluent_kafka import KafkaException

from sflowpipe.kafka import KafkaClients, UnsupportedSetting, faust_credentials
from sflowpipe.settings import KafkaSettings, Settings
from tests.test_cli_failures import fails_clearly

ROOT = Path(__file__).resolve().parent.parent
CLIENT_CLASSES = {"Producer", "Consumer", "AdminClient", "SerializingProducer", "DeserializingConsumer"}


def constructions(path: Path) -> list[str]:
    """Where a module calls a confluent-kafka client class or builds a Faust app on its own brokers."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in CLIENT_CLASSES:
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}(")
        elif name == "App" and any(k.arg == "broker" for k in node.keywords):
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: faust.App(broker=...)")
    return out


def test_only_the_factory_constructs_kafka_clients():
    found = []
    for package in ("ingest", "processors", "sinks", "api", "sflowpipe", "schemas", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != ROOT / "sflowpipe" / "kafka.py":
                found += constructions(path)
    assert found == [], "construct Kafka clients through sflowpipe.kafka.KafkaClients:\n" + "\n".join(found)
    assert constructions(ROOT / "sflowpipe" / "kafka.py")  # the scan does see constructions


def refused(build) -> str:
    with pytest.raises(KafkaException) as e:
        build()
    return str(e.value)


def test_each_section_reaches_its_clients():
    """librdkafka refuses an unknown property when the client is built: which clients refuse
    shows which settings each was given."""
    common = KafkaClients(KafkaSettings(common={"bogus.common": "1"}))
    for build in (common.producer, lambda: common.consumer("g"), common.admin):
        assert "bogus.common" in refused(build)
    producer = KafkaClients(KafkaSettings(producer={"bogus.producer": "1"}))
    assert "bogus.producer" in refused(producer.producer)
    producer.consumer("g").close()  # not given to consumers or admin clients
    producer.admin()
    consumer = KafkaClients(KafkaSettings(consumer={"bogus.consumer": "1"}))
    assert "bogus.consumer" in refused(lambda: consumer.consumer("g"))
    consumer.producer()
    consumer.admin()


def test_user_settings_win_over_component_defaults():
    clients = KafkaClients(KafkaSettings(common={"client.id": "c"}, consumer={"auto.offset.reset": "bogus"}))
    # the component asks for a valid value; the user's (invalid) one is what librdkafka sees
    assert "auto.offset.reset" in refused(lambda: clients.consumer("g", {"auto.offset.reset": "earliest"}))


@pytest.mark.e2e  # generates a certificate with openssl
def test_security_settings_map_to_faust_credentials(tmp_path):
    from tests.sinks.rsyslog import self_signed

    cert, key = self_signed(tmp_path)
    assert faust_credentials({}) is None and faust_credentials({"client.id": "x", "linger.ms": "5"}) is None
    sasl = faust_credentials({"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                              "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": str(cert),
                              "ssl.certificate.location": str(cert), "ssl.key.location": str(key)})
    assert isinstance(sasl, faust.SASLCredentials) and (sasl.username, sasl.password) == ("u", "p")
    assert sasl.mechanism.value == "SCRAM-SHA-512" and sasl.protocol.value == "SASL_SSL"
    assert isinstance(sasl.ssl_context, ssl.SSLContext) and sasl.ssl_context.check_hostname
    tls = faust_credentials({"security.protocol": "SSL", "ssl.ca.location": str(cert),
                             "ssl.endpoint.identification.algorithm": "none"})
    assert isinstance(tls, faust.SSLCredentials) and not tls.context.check_hostname
    plain = faust_credentials({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                               "sasl.username": "u", "sasl.password": "p"})
    assert plain.protocol.value == "SASL_PLAINTEXT" and plain.ssl_context is None
    with pytest.raises(UnsupportedSetting, match="kafka.common.sasl.oauthbearer.config"):
        faust_credentials({"security.protocol": "SASL_SSL", "sasl.oauthbearer.config": "x"})
    with pytest.raises(UnsupportedSetting, match="sasl.mechanism: OAUTHBEARER"):
        faust_credentials({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"})


def test_the_faust_app_gets_the_common_settings(tmp_path):
    from processors.app import make_app

    settings = Settings(kafka={"bootstrap_servers": "127.0.0.1:1,127.0.0.1:2",
                               "common": {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                                          "sasl.username": "u", "sasl.password": "p", "client.id": "probe"}},
                        processors={"data_dir": str(tmp_path)})
    app = make_app(settings)
    creds = app.conf.broker_credentials
    assert isinstance(creds, faust.SASLCredentials) and creds.username == "u"
    assert app.conf.broker_client_id == "probe"
    assert [str(u) for u in app.conf.broker] == ["kafka://127.0.0.1:1", "kafka://127.0.0.1:2"]


def config_file(tmp_path, section: str, setting: str) -> Path:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(f"kafka:\n  {section}:\n    {setting}: '1'\n"
                   "sinks:\n"
                   "  http:\n    hook:\n      type: webhook\n      url: http://127.0.0.1:9/\n"
                   "  controls:\n    block:\n      threshold: elephant\n      action:\n        type: dryrun\n")
    return cfg


# Each command, with an unknown librdkafka property in one section: it stops at once, saying which.
# Before the factory, several commands never gave that section to some of their clients and ran on.
@pytest.mark.kafka
@pytest.mark.parametrize("section,command", [
    ("consumer", ["api", "--listen", "127.0.0.1:0"]),
    ("consumer", ["prometheus", "--listen", "127.0.0.1:0"]),
    ("consumer", ["control"]),
    ("consumer", ["http-events", "hook"]),
    ("consumer", ["syslog"]),
    ("consumer", ["forward", "--to", "127.0.0.1:9"]),
    ("consumer", ["tail", "flows", "--timeout", "1"]),
    ("consumer", ["process", "--single"]),
    ("producer", ["control"]),
    ("producer", ["definitions", "apply", "DEFS"]),
    ("producer", ["ingest", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]),
    ("common", ["process", "--single"]),
    ("common", ["api", "--listen", "127.0.0.1:0"]),
    ("common", ["clickhouse", "--data-dir", "CH"]),
])
def test_a_refused_client_setting_stops_every_command(section, command, tmp_path, kafka_bootstrap, topic_prefix):
    import os

    setting = f"bogus.{section}.setting"
    defs = tmp_path / "defs.yaml"
    defs.write_text("flows:\n  f1:\n    keys: ipsource\n    value: bytes\n")
    args = [str(defs) if a == "DEFS" else str(tmp_path / "ch") if a == "CH" else a for a in command]
    env_prefix = {"SFLOWPIPE_KAFKA__TOPIC_PREFIX": topic_prefix,
                  "SFLOWPIPE_PROCESSORS__DATA_DIR": str(tmp_path / "proc")}
    old = {k: os.environ.get(k) for k in env_prefix}
    os.environ.update(env_prefix)
    try:
        fails_clearly(["--config", str(config_file(tmp_path, section, setting)), *args, "--bootstrap-servers",
                       kafka_bootstrap], f'No such configuration property: "{setting}"', tmp_path, limit=30.0)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_why_the_broker_did_not_answer_is_the_clients_own_error():
    """require_broker's error callback: a refused login is named as such (it wins over the errors
    around it); otherwise the last specific error, not librdkafka's "N/N brokers are down"."""
    from confluent_kafka import KafkaError

    from sflowpipe.kafka import ClientErrors

    transport = KafkaError(KafkaError._TRANSPORT, "kafka:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed")
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    login = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed")
    errors = ClientErrors()
    for err in (transport, down):
        errors(err)
    assert str(errors.unreachable("kafka:9093", 4.2, "Broker transport failure")) == (
        "Kafka at kafka:9093 unreachable after 4s (kafka:9093/bootstrap: Connect to ipv4#10.0.0.1:9093 failed)")
    for err in (login, transport, down):
        errors(err)
    assert str(errors.unreachable("kafka:9093", 4.2, "Broker transport failure")) == (
        "Kafka at kafka:9093 refused the credentials after 4s (SASL authentication error: Authentication failed)")
    assert str(ClientErrors().unreachable("kafka:9093", 4.2, "Broker transport failure")) == (
        "Kafka at kafka:9093 unreachable after 4s (Broker transport failure)")
