"""The flow language's sFlow-RT additions against `sflowpipe up --demo`, defined the way InMon's
apps define them over REST: ai-metrics' keyless flow over ``direction=ingress`` and its
``aggMode: edge`` flow, top-flows' Ethernet sources with ``oui:``, a ``dropped: true`` flow; a key
that needs data sFlow does not carry is refused with a 400 saying so."""

from __future__ import annotations

import json

import pytest
import requests

from tests.test_up import _wait

pytestmark = pytest.mark.kafka


def _rows(rt: str, name: str) -> list | None:
    rows = requests.get(rt + f"/activeflows/ALL/{name}/json?maxFlows=20&minValue=0.01", timeout=10).json()
    return rows or None


def test_inmon_app_definitions_compute_on_the_demo(up):  # noqa: F811
    rt = up["url"]
    defs = {
        "ai_bytes": {"value": "bytes", "filter": "direction=ingress", "t": 2},  # ai-metrics: no keys
        "ai_edge": {"keys": "ipsource", "value": "bytes", "t": 2, "aggMode": "edge"},
        "tf_macs": {"keys": "macsource,oui:macsource", "value": "frames", "t": 2, "n": 10, "fs": "_SEP_"},
        "ai_drop_reasons": {"keys": "reason", "value": "frames", "t": 2, "dropped": True},
    }
    for name, body in defs.items():
        r = requests.put(rt + f"/flow/{name}/json", data=json.dumps(body), timeout=10)
        assert r.status_code in (200, 204), (name, r.text)
    try:
        total = _wait(lambda: _rows(rt, "ai_bytes"), 60)
        assert total and [row["key"] for row in total] == [""] and total[0]["value"] > 0
        edge = _wait(lambda: _rows(rt, "ai_edge"), 60)
        assert edge and all(row["value"] > 0 for row in edge)  # no topology: every ingress port is an edge
        macs = _wait(lambda: _rows(rt, "tf_macs"), 60)
        # the demo's frames come from 02:00:00:00:00:01 (locally administered: an OUI, no vendor)
        assert macs and {row["key"] for row in macs} == {"020000000001_SEP_020000"}
        got = requests.get(rt + "/flow/ai_drop_reasons/json", timeout=10).json()
        assert got["dropped"] is True and got["keys"] == "reason"
        bad = requests.put(rt + "/flow/members/json", data=json.dumps({"keys": "map:macsource:ixp_member"}),
                           timeout=10)
        assert bad.status_code == 400 and "needs data sFlow does not carry" in bad.json()["error"]
        assert bad.json()["token"] == "map"
    finally:
        for name in defs:
            requests.delete(rt + f"/flow/{name}/json", timeout=10)


def test_topology_link_flows_and_flowkeys_on_the_demo(up):  # noqa: F811
    """PUT /topology/json (the demo's two agents joined port for port), a link:inputifindex flow
    over it, and /flowkeys/json listing the keys the workers saw (with ms since)."""
    rt = up["url"]
    topo = {"nodes": {f"sw{a}": {"agent": f"192.0.2.{200 + a}", "ports": {f"p{i}": {"ifindex": str(i)}
                                                                            for i in range(1, 9)}}
                      for a in (0, 1)},
            "links": {f"l{i}": {"node1": "sw0", "port1": f"p{i}", "node2": "sw1", "port2": f"p{i}"}
                      for i in range(1, 9)}}
    assert requests.put(rt + "/topology/json", data=json.dumps(topo), timeout=10).status_code in (200, 204)
    r = requests.put(rt + "/flow/bylink/json", data=json.dumps({"keys": "link:inputifindex", "value": "bps"}),
                     timeout=10)
    assert r.status_code in (200, 204), r.text
    try:
        links = _wait(lambda: {row["key"] for row in _rows(rt, "bylink") or ()}, 60)
        assert links and links <= {f"l{i}" for i in range(1, 9)}, links
        assert requests.get(rt + "/topology/json", timeout=10).json() == topo
        keys = _wait(lambda: requests.get(rt + "/flowkeys/json", timeout=10).json() or None, 30)
        assert {"agent", "ipsource", "macsource", "direction", "inputifindex", "tcpdestinationport",
                "udpdestinationport"} <= set(keys), sorted(keys)
        assert all(isinstance(ms, int) and 0 <= ms < 60_000 for ms in keys.values())
        assert "reason" not in keys and "vxlanvni" not in keys  # the demo sends no drops, no tunnels
        # payload keys read columns the workers decode only while a flow uses them: then they are listed
        # (the `up` is shared: while another module's flow reads DNS keys they are listed, and for the
        # minute /flowkeys/json remembers a key after it is deleted)
        defined = requests.get(rt + "/flow/json", timeout=10).json()
        if not any("dns" in str(d.get("keys", "")) for d in defined.values()):
            assert _wait(lambda: "dnsqname" not in requests.get(rt + "/flowkeys/json", timeout=10).json(), 90)
        r = requests.put(rt + "/flow/domains/json", data=json.dumps({"keys": "dnsqname", "value": "requests"}),
                         timeout=10)
        assert r.status_code in (200, 204), r.text
        assert _wait(lambda: "dnsqname" in requests.get(rt + "/flowkeys/json", timeout=10).json(), 30)
    finally:
        for name in ("bylink", "domains"):
            requests.delete(rt + f"/flow/{name}/json", timeout=10)
