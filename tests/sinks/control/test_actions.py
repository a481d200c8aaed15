"""The HTTP action against a real local HTTP server: templates, retries, final failures."""

from __future__ import annotations

import json

import pytest

from sflowpipe.settings import ControlPolicy
from sinks.control.actions import ActionFailed, DryRunAction, HttpAction, make_action, render
from sinks.control.state import event_fields
from tests.sinks.http_server import RecordingServer, Reply


def http_policy(url: str, max_retries: int = 3) -> ControlPolicy:
    return ControlPolicy.model_validate({
        "threshold": "udp_reflection",
        "action": {"type": "http", "max_retries": max_retries, "backoff_s": 0.01, "timeout_s": 2,
                   "apply": {"method": "POST", "url": url + "/block/${k0}?port=$k1",
                             "body": '{"address": "$k0", "key": "$key", "policy": "$policy", "value": $value}'},
                   "release": {"method": "DELETE", "url": url + "/block/${k0}"}}})


def control() -> dict:
    ev = {"agent": "192.0.2.200", "dataSource": "3", "metric": "reflection", "value": 5e4, "threshold": 1e4,
          "flowKey": "192.0.2.10,53"}
    return {"policy": "dns", "key": "192.0.2.10,53", "fields": event_fields("dns", ev)}


def test_render_quotes_url_values_not_the_body():
    p = http_policy("http://h")
    fields = {**control()["fields"], "k0": "a b/c"}
    method, url, body = render(p.action.apply, fields)
    assert method == "POST" and url == "http://h/block/a%20b%2Fc?port=53"
    assert json.loads(body)["address"] == "a b/c"
    # no body template: the fields as JSON
    assert json.loads(render(p.action.release, fields)[2])["key"] == "192.0.2.10,53"


def test_apply_and_release_requests():
    with RecordingServer() as ctl:
        a = make_action(http_policy(ctl.url), "dns")
        assert isinstance(a, HttpAction)
        a.apply(control())
        a.release(control())
    assert [(c.method, c.path) for c in ctl.requests] == [("POST", "/block/192.0.2.10?port=53"),
                                                        ("DELETE", "/block/192.0.2.10")]
    body = json.loads(ctl.requests[0].body)
    assert body == {"address": "192.0.2.10", "key": "192.0.2.10,53", "policy": "dns", "value": 50000.0}


def test_retries_with_backoff_then_succeeds():
    slept = []
    with RecordingServer(script=[Reply(503, b'{}'), Reply(500, b'{}'), Reply(429, b'{}')]) as ctl:
        a = HttpAction(http_policy(ctl.url), "dns", sleep=slept.append)
        a.apply(control())
    assert [c.status for c in ctl.requests] == [503, 500, 429, 200]
    assert len(slept) == 3 and slept[0] < slept[2]  # doubling (with jitter 0.5-1.5: 0.005-0.015 then 0.02-0.06)


def test_gives_up_after_the_budget_and_at_once_on_4xx():
    with RecordingServer(Reply(503, b'{}')) as ctl:
        a = HttpAction(http_policy(ctl.url, max_retries=2), "dns", sleep=lambda s: None)
        with pytest.raises(ActionFailed, match="after 2 retries"):
            a.apply(control())
        assert len(ctl.requests) == 3
    with RecordingServer(Reply(403, b'{}')) as ctl:
        a = HttpAction(http_policy(ctl.url), "dns", sleep=lambda s: None)
        with pytest.raises(ActionFailed, match="HTTP 403"):
            a.release(control())
        assert len(ctl.requests) == 1


def test_connection_refused_is_retried():
    from sflowpipe.broker import free_port

    a = HttpAction(http_policy(f"http://127.0.0.1:{free_port()}", max_retries=1), "dns",
                   sleep=lambda s: None)
    with pytest.raises(ActionFailed, match="after 1 retries"):
        a.apply(control())
    assert a.attempts == 2


def test_bad_templates_and_dryrun():
    with pytest.raises(ValueError, match="bad template"):
        HttpAction(http_policy("http://h/$nope"), "dns")
    with pytest.raises(ValueError, match="needs apply and release"):
        make_action(ControlPolicy.model_validate({"threshold": "t", "action": {"type": "http"}}), "x")
    d = make_action(ControlPolicy(threshold="t"), "x")
    assert isinstance(d, DryRunAction)
    d.apply(control())
    d.release(control())
    assert len(d.applied) == len(d.released) == 1
