"""The settings' sources as `load_settings` reads them (sflowpipe/settings.py): the YAML file, the
``SFLOWPIPE_*`` variables over it key by key, the command-line overrides over both. It replaced
pydantic-settings (start-up time, README "Start-up"); these pin what that library did for us."""

from __future__ import annotations

import json
import os

import pytest

from sflowpipe.settings import SettingsError, environment_values, load_settings


@pytest.fixture
def config(tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.upper().startswith("SFLOWPIPE_")]:
        monkeypatch.delenv(var)

    def write(text: str) -> str:
        path = tmp_path / "s.yaml"
        path.write_text(text)
        return str(path)
    return write


def test_precedence_file_then_environment_then_overrides(config, monkeypatch):
    path = config("decode: {port: 7000, listen_address: 127.0.0.1}\nkafka: {partitions: 3, linger_ms: 5}\n")
    monkeypatch.setenv("SFLOWPIPE_DECODE__PORT", "7001")
    monkeypatch.setenv("SFLOWPIPE_KAFKA__PARTITIONS", "4")
    s = load_settings(path, **{"kafka.partitions": 5})
    assert (s.decode.port, s.decode.listen_address) == (7001, "127.0.0.1")  # merged key by key, not replaced
    assert (s.kafka.partitions, s.kafka.linger_ms) == (5, 5)
    assert load_settings().decode.port == 7001  # without a file, the environment over the defaults


def test_a_section_variable_holds_json_merged_into_the_file_and_under_its_own_variables(config, monkeypatch):
    """How `up` hands the secrets to its stages: SFLOWPIPE_<SECTION> as JSON beside a file without them."""
    path = config("api: {basic_user: ops, listen: '127.0.0.1:9000'}\n")
    monkeypatch.setenv("SFLOWPIPE_API", json.dumps({"basic_password": "pw", "token": "a"}))
    monkeypatch.setenv("sflowpipe_api__token", "b")  # names in any case; the deeper variable wins
    s = load_settings(path)
    assert s.api.basic_user == "ops" and s.api.listen == "127.0.0.1:9000"
    assert s.api.basic_password.get_secret_value() == "pw" and s.api.token.get_secret_value() == "b"


def test_mappings_and_lists_take_json_and_plain_settings_stay_text(config, monkeypatch):
    monkeypatch.setenv("SFLOWPIPE_SINKS__SYSLOG__TOPICS", '["events", "flows"]')
    monkeypatch.setenv("SFLOWPIPE_KAFKA__PRODUCER", '{"linger.ms": "5"}')
    monkeypatch.setenv("SFLOWPIPE_KAFKA__PRODUCER__ACKS", "all")
    monkeypatch.setenv("SFLOWPIPE_KAFKA__SCHEMA_REGISTRY_URL", '{"not": "json for a string"}')
    env = environment_values(os.environ)
    assert env["kafka"]["schema_registry_url"] == '{"not": "json for a string"}'
    s = load_settings()
    assert s.sinks.syslog.topics == ["events", "flows"] and s.kafka.producer == {"linger.ms": "5", "acks": "all"}


def test_a_section_variable_that_is_not_json_is_refused_naming_it(config, monkeypatch):
    monkeypatch.setenv("SFLOWPIPE_SINKS__SYSLOG__TOPICS", "events")
    with pytest.raises(SettingsError, match=r"^SFLOWPIPE_SINKS__SYSLOG__TOPICS: expected JSON"):
        load_settings()


def test_file_faults_are_one_line(config):
    with pytest.raises(SettingsError, match="expected a mapping of settings"):
        load_settings(config("- a\n"))
    with pytest.raises(SettingsError, match="^1: unknown setting"):  # was a TypeError from Settings(**data)
        load_settings(config("1: x\n"))
    with pytest.raises(SettingsError, match="decode.port"):
        load_settings(config("decode: {port: 99999}\n"))
