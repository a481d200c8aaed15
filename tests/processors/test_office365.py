"""Office365Ranges against a real HTTP server on 127.0.0.1 serving the web service's JSON."""

from __future__ import annotations

import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from processors.groups import AddressGroups
from processors.office365 import CACHE_FILE, GROUPSET, EndpointsError, Office365Ranges, parse_endpoints
from sflowpipe.settings import EnrichSettings
from tests.waiting import until

# The shape of https://endpoints.office.com/endpoints/worldwide (a few real endpoint sets, trimmed).
ENDPOINTS = [
    {"id": 1, "serviceArea": "Exchange", "serviceAreaDisplayName": "Exchange Online",
     "urls": ["outlook.cloud.microsoft", "outlook.office.com", "outlook.office365.com"],
     "ips": ["13.107.6.152/31", "13.107.18.10/31", "13.107.128.0/22", "23.103.160.0/20",
             "40.96.0.0/13", "40.104.0.0/15", "52.96.0.0/14", "131.253.33.215/32", "132.245.0.0/16",
             "150.171.32.0/22", "204.79.197.215/32", "2603:1006::/40", "2603:1016::/36", "2620:1ec:4::152/128"],
     "tcpPorts": "80,443", "expressRoute": True, "category": "Optimize", "required": True},
    {"id": 2, "serviceArea": "Exchange", "serviceAreaDisplayName": "Exchange Online",
     "urls": ["outlook.office365.com", "smtp.office365.com"],
     "ips": ["13.107.6.152/31", "40.96.0.0/13", "2603:1006::/40"],
     "tcpPorts": "143,587,993,995", "expressRoute": False, "category": "Allow", "required": False},
    {"id": 31, "serviceArea": "SharePoint", "serviceAreaDisplayName": "SharePoint Online and OneDrive for Business",
     "urls": ["*.sharepoint.com"],
     "ips": ["13.107.136.0/22", "40.108.128.0/17", "52.104.0.0/14", "104.146.128.0/17", "150.171.40.0/22",
             "2603:1061:1300::/40", "2620:1ec:8f8::/46", "2620:1ec:908::/46", "2a01:111:f402::/48"],
     "tcpPorts": "80,443", "expressRoute": True, "category": "Optimize", "required": True},
    {"id": 11, "serviceArea": "Skype", "serviceAreaDisplayName": "Skype for Business Online and Microsoft Teams",
     "ips": ["13.107.64.0/18", "52.112.0.0/14", "52.122.0.0/15", "2603:1063::/38"],
     "udpPorts": "3478,3479,3480,3481", "expressRoute": True, "category": "Optimize", "required": True},
    {"id": 46, "serviceArea": "Common", "serviceAreaDisplayName": "Microsoft 365 Common and Office Online",
     "urls": ["*.auth.microsoft.com", "*.msftidentity.com", "login.microsoftonline.com"],
     # 40.96.0.0/13 also listed by Exchange above: Exchange must keep it
     "ips": ["20.20.32.0/19", "20.190.128.0/18", "20.231.128.0/19", "40.96.0.0/13", "40.126.0.0/18",
             "2603:1006:2000::/48", "2603:1007:200::/48", "2603:1016:1400::/48"],
     "tcpPorts": "80,443", "expressRoute": True, "category": "Allow", "required": True},
    {"id": 47, "serviceArea": "Common", "serviceAreaDisplayName": "Microsoft 365 Common and Office Online",
     "urls": ["*.officeapps.live.com", "*.online.office.com", "office.live.com"],
     "tcpPorts": "80,443", "expressRoute": False, "category": "Default", "required": True,
     "notes": "URL only: no ips"},
]


class _Service(ThreadingHTTPServer):
    daemon_threads = True
    body: bytes = b""
    status: int = 200
    requests: int = 0


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        server: _Service = self.server  # type: ignore[assignment]
        server.requests += 1
        self.send_response(server.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(server.body)))
        self.end_headers()
        self.wfile.write(server.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def service():
    server = _Service(("127.0.0.1", 0), _Handler)
    server.body = json.dumps(ENDPOINTS).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/endpoints/worldwide?clientrequestid=x"
    yield server
    server.shutdown()
    server.server_close()


def settings_for(url, tmp_path, refresh_s=3600.0) -> EnrichSettings:
    return EnrichSettings(office365_url=url, office365_refresh_s=refresh_s, cache_dir=str(tmp_path / "cache"))




def test_parse_one_group_per_service_area_workloads_before_common():
    groups = parse_endpoints(json.dumps(ENDPOINTS))
    assert sorted(groups) == ["Common", "Exchange", "SharePoint", "Skype"]
    assert "40.96.0.0/13" in groups["Exchange"] and "40.96.0.0/13" not in groups["Common"]
    assert groups["Exchange"].count("13.107.6.152/31") == 1  # listed twice by Exchange, kept once
    assert "2603:1063::/38" in groups["Skype"]


@pytest.mark.parametrize("payload", [
    b"{not json", b'{"error": "Invalid clientrequestid"}', b"[]", b'[{"id": 1}]',
    b'[{"id": 1, "serviceArea": "Exchange", "ips": ["40.96.0.0/33"]}]', b"\xff\xfe", b'[{"id": 47, '
    b'"serviceArea": "Common", "urls": ["office.live.com"]}]'])
def test_parse_rejects_unusable_responses(payload):
    with pytest.raises(EndpointsError):
        parse_endpoints(payload)


def test_first_fetch(service, tmp_path):
    groups = AddressGroups()
    ranges = Office365Ranges(settings_for(service.url, tmp_path), groups)
    ranges.start()
    try:
        until(lambda: ranges.updates == 1)
        assert ranges.source == "service"
        assert groups.group(GROUPSET, "52.96.10.20") == "Exchange"
        assert groups.group(GROUPSET, "40.97.1.1") == "Exchange"  # in Common too
        assert groups.group(GROUPSET, "20.190.130.5") == "Common"
        assert groups.group(GROUPSET, "52.113.1.1") == "Skype"
        assert groups.group(GROUPSET, "2620:1ec:8f8::1") == "SharePoint"
        assert groups.group(GROUPSET, "2603:1006:2000::5") == "Common"
        assert groups.group(GROUPSET, "2603:1006:0:1::5") == "Exchange"
        assert groups.group(GROUPSET, "8.8.8.8") is None
        assert json.loads((tmp_path / "cache" / CACHE_FILE).read_text()) == ENDPOINTS
    finally:
        ranges.stop()


def test_refresh_picks_up_a_change(service, tmp_path):
    groups = AddressGroups()
    ranges = Office365Ranges(settings_for(service.url, tmp_path, refresh_s=0.1), groups)
    ranges.start()
    try:
        until(lambda: groups.group(GROUPSET, "52.113.1.1") == "Skype")
        changed = copy.deepcopy(ENDPOINTS)
        changed[3]["ips"] = ["198.51.100.0/24"]  # Teams moved
        service.body = json.dumps(changed).encode()
        until(lambda: groups.group(GROUPSET, "198.51.100.7") == "Skype")
        assert groups.group(GROUPSET, "52.113.1.1") is None
        assert service.requests >= 2
    finally:
        ranges.stop()


def test_bad_responses_keep_the_previous_ranges(service, tmp_path, caplog):
    groups = AddressGroups()
    ranges = Office365Ranges(settings_for(service.url, tmp_path), groups)
    assert ranges.refresh()
    saved = (tmp_path / "cache" / CACHE_FILE).read_bytes()
    for status, body in ((200, b"[{\"id\": 1, \"serviceArea\": \"Exch"), (200, b'{"error": "throttled"}'),
                         (503, b"Service Unavailable"), (200, b"[]")):
        service.status, service.body = status, body
        assert not ranges.refresh()
        assert groups.group(GROUPSET, "52.96.10.20") == "Exchange"
        assert (tmp_path / "cache" / CACHE_FILE).read_bytes() == saved  # the disk copy stays the good one
    assert ranges.failures == 4
    assert "keeping the previous ranges" in caplog.text


def test_service_down_uses_the_disk_copy_after_restart(service, tmp_path):
    groups = AddressGroups()
    ranges = Office365Ranges(settings_for(service.url, tmp_path), groups)
    assert ranges.refresh()
    url = service.url
    service.shutdown()
    service.server_close()  # nothing listens there any more: connection refused

    restarted_groups = AddressGroups()
    restarted = Office365Ranges(settings_for(url, tmp_path), restarted_groups)
    restarted.start()
    try:
        assert restarted.source == "disk"  # loaded synchronously by start()
        assert restarted_groups.group(GROUPSET, "52.96.10.20") == "Exchange"
        until(lambda: restarted.failures >= 1)
        assert restarted_groups.group(GROUPSET, "52.96.10.20") == "Exchange"
        assert restarted.source == "disk"
    finally:
        restarted.stop()


def test_no_service_and_no_disk_copy_is_not_fatal(tmp_path):
    groups = AddressGroups()
    ranges = Office365Ranges(settings_for("http://127.0.0.1:9/none", tmp_path), groups)
    ranges.start()
    try:
        until(lambda: ranges.failures >= 1)
        assert groups.group(GROUPSET, "52.96.10.20") is None
    finally:
        ranges.stop()


def test_corrupt_disk_copy_is_ignored(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / CACHE_FILE).write_text("[{")
    ranges = Office365Ranges(settings_for("http://127.0.0.1:9/none", tmp_path), AddressGroups())
    ranges.start()
    ranges.stop()
    assert ranges.source is None


def test_stop_is_prompt(service, tmp_path):
    ranges = Office365Ranges(settings_for(service.url, tmp_path, refresh_s=3600), AddressGroups())
    ranges.start()
    until(lambda: ranges.updates == 1)
    started = time.monotonic()
    ranges.stop()
    assert time.monotonic() - started < 1.0
