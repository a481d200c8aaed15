"""`sflowpipe up` draws the ports of its stages' own endpoints (metrics, Faust web, Prometheus,
/health) so that none is a port the user chose or one already handed out: a stage that bound the
API's port first left every API request answered by another server (a CI run met a 501 there)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import sflowpipe.up as up_module
from sflowpipe.settings import Settings
from sflowpipe.up import Pipeline


def test_stage_ports_never_the_users_or_each_others(tmp_path, monkeypatch):
    args = SimpleNamespace(http_port=40001, sflow_port=40002, data_dir=str(tmp_path), listen_address="127.0.0.1")
    # what the kernel's free ports could be: the user's ports and repeats come first
    draws = iter([40001, 40002, 40003, 40001, 40003, 40004, 40002, 40005, 40006, 40003, 40007])
    monkeypatch.setattr(up_module, "free_port", lambda host="127.0.0.1": next(draws))
    pipeline = Pipeline(args, Settings())
    got = [pipeline._free_port() for _ in range(5)]
    assert got == [40003, 40004, 40005, 40006, 40007]


def test_stage_settings_keep_the_api_port_to_the_api(tmp_path, monkeypatch):
    args = SimpleNamespace(http_port=40011, sflow_port=40012, data_dir=str(tmp_path), listen_address="127.0.0.1")
    draws = iter([40011, 40011, 40013, 40012, 40014, 40015])
    monkeypatch.setattr(up_module, "free_port", lambda host="127.0.0.1": next(draws))
    pipeline = Pipeline(args, Settings())
    s = pipeline._stage_settings()
    assert pipeline.ports == {"metrics": 40013, "faust": 40014, "prometheus": 40015}
    assert s.api.listen == "127.0.0.1:40011"
    assert s.processors.web_port == 40014 and s.sinks.prometheus.listen == "127.0.0.1:40015"


def test_exactly_once_refused_on_the_embedded_broker(tmp_path, capsys):
    """Tansu has no transactions: `up` without --bootstrap-servers refuses exactly_once before it
    starts anything (a stage failing later would say less)."""
    args = SimpleNamespace(http_port=40021, sflow_port=40022, data_dir=str(tmp_path), listen_address="127.0.0.1",
                           bootstrap_servers=None)
    settings = Settings.model_validate({"processors": {"processing_guarantee": "exactly_once"}})
    pipeline = Pipeline(args, settings)
    with pytest.raises(RuntimeError, match="exactly_once needs Kafka transactions.*--bootstrap-servers"):
        pipeline.start()
    assert pipeline.broker is None and pipeline.stages == []
