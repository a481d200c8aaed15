"""The web UI in a real browser (headless Chromium): units on every value, the flow value selector
following the chosen flow, a bounded legend, axis labels neither clipped nor overlapping at 1280
and 1920 px, sortable tables, the status page's trouble panel and the drill-down pages (interface,
agent, host), against `sflowpipe up --demo` and against a replayed real capture
(overflowd__sflow.pcap: one port at ~99 % out utilisation, with discards).

uPlot draws its axis labels on a canvas, so there are no label elements to ask for boxes: the
checks read what each axis drew (its label strings, the values they stand for) from the page,
measure each label's width with a canvas context set to that axis's own font, place it where
uPlot centres (x axis) or right-aligns (y axis) it, and compare those boxes with each other and
with the axis's size and the plot's box."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sflowpipe.broker import free_port
from tests.test_up import _browser
from tests.up_helpers import ELEPHANT_SOURCES, free_udp_port, read_banner, wait_for

pytestmark = pytest.mark.kafka

TOP = 5  # flows.html: series on the trend chart besides "other"
DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

# Every drawn axis label of every chart on the page: its box in CSS px relative to the plot's
# canvas, measured with the axis's own font; the axis's size, tick length and gap; the plot's and
# its chart container's boxes in the page.
AXES_JS = """
const ctx = document.createElement("canvas").getContext("2d");
return sp.charts.filter(c => c.plot && document.body.contains(c.plot.root)).map(c => {
  const u = c.plot, dpr = devicePixelRatio;
  const axes = u.axes.map((axis, i) => {
    if (!axis.show || !axis._values) return null;
    ctx.font = axis.font[0];
    const scale = i === 0 ? "x" : axis.scale;
    const labels = axis._values.map((text, j) => {
      const width = Math.max(...String(text).split("\\n").map(l => ctx.measureText(l).width)) / dpr;
      return { text: String(text), width, at: u.bbox.left / dpr + u.valToPos(axis._splits[j], scale), y: u.valToPos(axis._splits[j], scale) };
    });
    return { side: axis.side, size: axis._size, tick: axis.ticks.show ? axis.ticks.size : 0, gap: axis.gap,
             label: axis.label || null, labels };
  }).filter(a => a);
  const box = r => { const b = r.getBoundingClientRect(); return { left: b.left, right: b.right, top: b.top, bottom: b.bottom }; };
  return { title: c.title, width: u.width, plotLeft: u.bbox.left / dpr, plotWidth: u.bbox.width / dpr, axes,
           canvas: box(u.root.querySelector("canvas")), container: box(u.root.parentElement) };
});
"""


# The trend chart's first plotted total (every series, "other" included) and its largest since.
def wait_steady(url: str, timeout: float = 90) -> None:
    """Until the top value at ``url`` (an /activeflows query) changes by less than 20 % in 2 s."""
    import requests

    def top() -> float:
        rows = requests.get(url, timeout=10).json()
        return rows[0]["value"] if len(rows) >= 3 else 0.0

    deadline = time.monotonic() + timeout
    before = top()
    while time.monotonic() < deadline:
        time.sleep(2)
        now = top()
        if before > 0 and abs(now - before) < 0.2 * before:
            return
        before = now
    raise AssertionError(f"{url}: no steady top value within {timeout:.0f} s")


TOTALS_JS = """
const d = sp.charts[0].data, total = j => d.slice(1).reduce((s, series) => s + (series[j] || 0), 0);
return [total(0), Math.max(...d[0].map((_, j) => total(j)))];
"""


def check_axes(driver, page: str, units: dict[str, str] | None = None) -> list[dict]:
    """Assert no chart on the page has a clipped or overlapping axis label; returns the report."""
    charts = driver.execute_script(AXES_JS)
    assert charts, f"{page}: no chart drawn"
    for c in charts:
        where = f"{page} chart {c['title']!r} at {driver.get_window_size()['width']} px"
        # the canvas lies inside its chart panel
        assert c["canvas"]["left"] >= c["container"]["left"] - 0.5 and c["canvas"]["right"] <= c["container"]["right"] + 0.5, where
        sides = {a["side"]: a for a in c["axes"]}
        x, y = sides[2], sides[3]
        assert len(x["labels"]) >= 2 and len(y["labels"]) >= 2, (where, x["labels"], y["labels"])
        # x: time and date on each label, centred under its tick, inside the canvas, apart from each other
        boxes = sorted((lab["at"] - lab["width"] / 2, lab["at"] + lab["width"] / 2, lab["text"]) for lab in x["labels"])
        for left, right, text in boxes:
            assert re.fullmatch(r"\d\d:\d\d(:\d\d)?\n\d{4}-\d\d-\d\d", text), (where, text)
            assert left >= 0 and right <= c["width"], (where, "x label clipped", text, left, right, c["width"])
        for (_, r1, t1), (l2, _, t2) in zip(boxes, boxes[1:]):
            assert r1 + 4 <= l2, (where, "x labels overlap", t1, t2, r1, l2)
        # y: every label fits the axis's width beside its tick; the unit named on the axis
        for lab in y["labels"]:
            assert lab["width"] + y["tick"] + y["gap"] <= y["size"], (where, "y label clipped", lab, y["size"])
        assert y["size"] <= c["plotLeft"] + 0.5, where
        if units and c["title"] in units:
            assert y["label"] == units[c["title"]], (where, y["label"])
            assert all(lab["text"].endswith(units[c["title"]]) for lab in y["labels"]), (where, y["labels"])
    return charts


def cells(driver, table: str) -> list[list[str]]:
    return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'))"
                                 ".map(r => Array.from(r.cells).map(c => c.textContent.trim()))", table)


def texts(driver, css: str) -> list[str]:
    """The text of each element matching ``css``, read in one script (the pages redraw every few
    seconds: an element found earlier may be gone)."""
    return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText)", css)


def click(driver, css: str) -> str:
    """Click the first element matching ``css`` (found again if a redraw replaced it); its text."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):
        try:
            el = driver.find_element(By.CSS_SELECTOR, css)
            text = el.text
            el.click()
            return text
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"{css}: replaced on every try")


def shots_dir(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("SFLOWPIPE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def severe_logs(driver) -> list[dict]:
    """Browser errors, but the expected: a refused browse definition (400)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
            and not ("/flow/browse_" in e.get("message", "") and "status of 400" in e.get("message", ""))]


# A chart's history as drawn: its x range, its times and each series' non-null values (the page's
# sp.charts[i], i from the order the page made them).
CHART_JS = """
const c = sp.charts[arguments[0]];
if (!c || !c.plot) return null;
const has = j => c.data.slice(1).some(s => s[j] !== null && s[j] !== undefined);
const filled = c.data[0].filter((t, j) => has(j));
return { xrange: c.xrange, title: c.title, names: c.names, times: c.data[0], first: filled.length ? filled[0] : null,
         series: c.data.slice(1).map(s => s.filter(v => v !== null && v !== undefined)) };
"""

# The page's requests to a /history endpoint, with the status each was answered (Chromium's
# resource timing carries it).
HISTORY_REQUESTS_JS = """
return performance.getEntriesByType('resource').filter(e => e.name.includes('/history/'))
  .map(e => ({ url: e.name, status: e.responseStatus }));
"""


def history_chart(driver, index: int, opened: float, wait) -> dict:
    """Wait until chart ``index`` shows history (an x range set, values in it), its first point
    half a minute or more before ``opened`` (the page's own live samples cannot be); its report."""
    def full(d):
        c = d.execute_script(CHART_JS, index)
        return c if c and c["xrange"] and any(c["series"]) and c["first"] is not None and c["first"] < opened - 30 \
            else None
    c = wait.until(full)
    assert c["xrange"][1] - c["xrange"][0] >= 600, c["xrange"]  # the range asked for, not 4 live minutes
    return c


def history_answered(driver, endpoint: str) -> list[dict]:
    reqs = [r for r in driver.execute_script(HISTORY_REQUESTS_JS) if endpoint in r["url"]]
    assert reqs and all(r["status"] == 200 for r in reqs), reqs
    return reqs


@pytest.fixture
def replayed(tmp_path, captures_dir):
    """`sflowpipe up --replay overflowd__sflow.pcap` (the capture read in place, on a loop)."""
    sflow_port, http_port = free_udp_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sflowpipe.cli", "up", "--replay",
                             str(captures_dir / "overflowd__sflow.pcap"), "--sflow-port", str(sflow_port),
                             "--http-port", str(http_port), "--data-dir", str(tmp_path / "replay")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    banner = read_banner(proc)
    if "sflowpipe is up" not in banner:
        proc.kill()
        pytest.fail("sflowpipe up --replay did not come up:\n" + banner)
    yield f"http://127.0.0.1:{http_port}"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]


@pytest.fixture
def api_without_clickhouse(tmp_path):
    """The API alone (no broker) on a loopback port, its history on a chdb:// directory no sink
    runs on: every /history request is a 503 naming that."""
    import asyncio
    import threading

    from aiohttp import web

    from api.history import ClickHouseReader, History
    from api.server import Api
    from api.state import ApiState
    from sflowpipe.settings import ClickHouseSettings, Settings

    port, loop, held = free_port(), asyncio.new_event_loop(), {}

    async def start():
        s = Settings()
        held["reader"] = ClickHouseReader(ClickHouseSettings(dsn=f"chdb://{tmp_path}/nobody"), timeout=5)
        api = Api(s.api, s.limits, ApiState(s.api), lambda *a: None, History(held["reader"]))
        held["runner"] = web.AppRunner(api.app())
        await held["runner"].setup()
        await web.TCPSite(held["runner"], "127.0.0.1", port).start()

    ready = threading.Event()

    def serve():
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30), "the API did not start"
    yield f"http://127.0.0.1:{port}", tmp_path / "nobody"
    asyncio.run_coroutine_threadsafe(held["runner"].cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    held["reader"].close()


def test_clickhouse_away_and_a_bad_range_are_said_beside_the_range_picker(api_without_clickhouse):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, directory = api_without_clickhouse
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 30, poll_frequency=0.5)
        # (the flows and counters pages ask once a flow or an interface is there: none without a broker)
        for page, prefix in (("index.html?range=1h", "rates"), ("interface.html?agent=192.0.2.1&ifindex=3&range=15m", "range"),
                             ("host.html?ip=192.0.2.9&range=6h", "range"), ("agent.html?agent=192.0.2.1", "range")):
            driver.get(f"{url}/ui/{page}")
            wait.until(lambda d: "ClickHouse unavailable" in d.find_element(By.ID, f"{prefix}-message").text)
            text = driver.find_element(By.ID, f"{prefix}-message").text
            assert "no ClickHouse sink is running on" in text and str(directory) in text, (page, text)
        # a custom range with no start: the API's 400 under the picker's "from"
        driver.get(f"{url}/ui/interface.html?agent=192.0.2.1&ifindex=3&from=soon&to=later")
        wait.until(lambda d: d.find_element(By.ID, "range-from-error").text or d.find_element(By.ID, "range-message").text)
        assert Select(driver.find_element(By.ID, "range-range")).first_selected_option.text == "custom…"
        assert driver.find_element(By.ID, "range-from-error").text, driver.find_element(By.ID, "range-message").text
    finally:
        driver.quit()


# first in the module: its own `up` stops before the demo's (module-scoped) one starts
def test_the_saturated_port_of_a_real_capture_is_first_on_the_status_page_one_click_away(replayed, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = shots_dir(tmp_path)
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 90, poll_frequency=0.5)
        driver.get(replayed + "/ui/index.html")

        # the capture's 52 ports: #47 (100 Mbit/s) runs at ~99 % out, with discards; the next is ~10 %
        # (each port's utilisation needs two of its counter samples: the list settles as they come)
        wait.until(lambda d: len(texts(d, "#trouble-util li a")) == 5 and "#47" in texts(d, "#trouble-util li")[0])
        items = texts(driver, "#trouble-util li")
        m = re.search(r"out ([\d.]+) %", items[0])
        assert "192.168.1.1 #47" in items[0] and m and float(m.group(1)) > 95, items
        assert float(re.search(r"([\d.]+) %", items[1]).group(1)) < 50, items
        wait.until(lambda d: "#47" in " ".join(texts(d, "#trouble-discards li")))
        driver.save_screenshot(str(shots / "status-capture.png"))
        # one click: the interface page of that port
        click(driver, "#trouble-util li a")
        wait.until(lambda d: "interface.html" in d.current_url)
        assert "agent=192.168.1.1" in driver.current_url and "ifindex=47" in driver.current_url
        assert "Interface #47" in driver.find_element(By.ID, "title").text

        def card(name):
            found = texts(driver, f'.card[data-name="{name}"] .v')
            return found[0] if found else ""
        wait.until(lambda d: card("out utilisation").endswith(" %"))
        assert float(card("out utilisation").split()[0]) > 95
        assert card("speed") == "100 Mbit/s"
        assert card("discards").endswith("/s") and float(card("discards").split()[0]) > 0
        # the flows sampled on it: the capture's one conversation, addresses linking to host pages
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#flows tbody a.drill"))
        assert "192.168.1.2" in " ".join(texts(driver, "#flows tbody tr"))
        wait.until(lambda d: len(d.execute_script("return sp.charts[0].data[0]")) >= 3)
        check_axes(driver, "interface", {"Traffic": "bit/s", "Utilisation": "%", "Errors and discards": "/s"})
        driver.save_screenshot(str(shots / "interface.png"))
        # the counters page puts the same port on top by default
        driver.get(replayed + "/ui/counters.html")
        wait.until(lambda d: len(cells(d, "#interfaces")) == 52)
        assert cells(driver, "#interfaces")[0][0] == "47"
        assert not severe_logs(driver)
        # the other pages on the capture: its agent (52 ports, #47 first), the conversation's host and
        # flows, the capture's event(s)
        driver.get(replayed + "/ui/agent.html?agent=192.168.1.1")
        wait.until(lambda d: len(cells(d, "#interfaces")) == 52 and cells(d, "#interfaces")[0][0] == "47")
        driver.get(replayed + "/ui/host.html?ip=192.168.1.2")
        wait.until(lambda d: (p := cells(d, "#peers")) and p[0][3].endswith("bit/s"))
        driver.get(replayed + "/ui/flows.html?flow=pair")
        wait.until(lambda d: (t := cells(d, "#top")) and "192.168.1.2" in " ".join(r[1] for r in t))
        driver.get(replayed + "/ui/events.html")
        wait.until(lambda d: (e := cells(d, "#events")) and DATE_TIME.fullmatch(e[0][1]))
        assert not severe_logs(driver)

        # the same port's history from ClickHouse: the last 15 minutes, ~99 % out throughout
        # (a page opened a minute later than the replay began: its points before that are history)
        def port_history(d):
            opened = time.time()
            d.get(replayed + "/ui/interface.html?agent=192.168.1.1&ifindex=47&range=15m")
            try:
                return history_chart(d, 1, opened, WebDriverWait(d, 15, poll_frequency=0.5))
            except Exception:
                return None
        util = WebDriverWait(driver, 150, poll_frequency=5).until(port_history)
        assert util["names"] == ["in", "out"] and max(util["series"][1]) > 95, util
        assert driver.find_element(By.ID, "range-range").get_attribute("value") == "15m"
        history_answered(driver, "/history/counters/json")
        check_axes(driver, "interface history", {"Traffic": "bit/s", "Utilisation": "%"})
        driver.save_screenshot(str(shots / "interface-history-capture.png"))

        # the explore page: the capture's flows from ClickHouse, the conversation on top
        driver.get(replayed + "/ui/explore.html?dimensions=src_ip,dst_ip&range=15m&n=5")
        wait.until(lambda d: len(cells(d, "#totals")) >= 1 and d.execute_script(
            "return window.exploreChart && window.exploreChart.data.slice(1).some(s => s.some(v => v > 0))"))
        assert "192.168.1.2" in " ".join(r[1] for r in cells(driver, "#totals"))
        assert driver.find_element(By.ID, "error").text == ""
        driver.save_screenshot(str(shots / "explore-capture.png"))
        # the API explorer: the document's operations listed, one tried on the capture's agent
        driver.get(replayed + "/ui/api.html")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")) > 10)
        assert "/history/counters/json" in driver.execute_script(
            "return Array.from(document.querySelectorAll('.opblock-summary-path')).map(e => e.getAttribute('data-path'))")
        block = driver.find_element(By.XPATH, "//div[contains(@class, 'opblock-get')][.//*[@data-path='/agents/json']]")
        block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(lambda d: "is-open" in block.get_attribute("class"))
        block.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
        block.find_element(By.CSS_SELECTOR, "button.execute").click()
        wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"))
        assert block.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status").text.strip() == "200"
        assert "192.168.1.1" in block.find_element(By.CSS_SELECTOR, ".live-responses-table .response-col_description pre").text
        driver.save_screenshot(str(shots / "api-capture.png"))
        assert not severe_logs(driver)
    finally:
        driver.quit()


def test_flows_page_units_value_selector_legend_axes_and_errors(up, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = shots_dir(tmp_path)
    # the page's premise: the API's pair values are past their own ramp from 0 at the demo's start (the
    # page must show them at once, not climb again); right after `up`, the API itself still has none
    wait_steady(up["url"] + "/activeflows/ALL/pair/json?maxFlows=3")
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.5)
        driver.get(up["url"] + "/ui/flows.html")
        wait.until(lambda d: len(Select(d.find_element(By.ID, "defined")).options) > 1)
        # a defined bytes flow: the value selector follows it, values in bytes/s
        Select(driver.find_element(By.ID, "defined")).select_by_value("pair")
        value = driver.find_element(By.ID, "value")
        assert value.get_attribute("value") == "bytes" and not value.is_enabled()
        wait.until(lambda d: len(cells(d, "#top")) >= 3 and cells(d, "#top")[0][2].endswith(" MB/s"))
        assert "value bytes" in driver.find_element(By.ID, "which").text
        # no ramp from 0: a defined flow's values are plotted as the API has them at once
        wait.until(lambda d: len(d.execute_script("return sp.charts[0].data[0]")) >= 3)
        first, top = driver.execute_script(TOTALS_JS)
        assert first > 0.3 * top, (first, top)
        check_axes(driver, "flows", {"Top flows (B/s)": "B/s"})
        # the same flow in bits/s: explicitly x 8
        bytes_top = driver.execute_script("return sp.charts[0].data[1].at(-1)")
        Select(driver.find_element(By.ID, "as")).select_by_value("bits")
        wait.until(lambda d: cells(d, "#top") and cells(d, "#top")[0][2].endswith("bit/s"))
        wait.until(lambda d: len(d.execute_script("return sp.charts[0].data[0]")) >= 2)
        bits_top = driver.execute_script("return sp.charts[0].data[1].at(-1)")
        assert 4 * bytes_top < bits_top < 16 * bytes_top, (bytes_top, bits_top)
        assert "bytes/s × 8" in driver.find_element(By.ID, "which").text
        # a frames flow: frames/s
        Select(driver.find_element(By.ID, "defined")).select_by_value("reflection")
        assert driver.find_element(By.ID, "value").get_attribute("value") == "frames"
        wait.until(lambda d: "frames/s" in d.find_element(By.ID, "which").text)
        # browsing many keys: the legend holds the top N and "other", not every key ever seen
        Select(driver.find_element(By.ID, "defined")).select_by_value("")
        keys = driver.find_element(By.ID, "keys")
        keys.clear()
        keys.send_keys("ipsource,ipdestination,tcpdestinationport,tcpsourceport")
        Select(driver.find_element(By.ID, "value")).select_by_value("bps")
        driver.find_element(By.CSS_SELECTOR, "#browse button").click()
        wait.until(lambda d: len(cells(d, "#top")) > TOP + 2)
        # a new flow's values climb from 0 for ~3 t: nothing plotted until they have
        wait.until(lambda d: len(d.execute_script("return sp.charts[0].data[0]")) >= 1)
        first, top = driver.execute_script(TOTALS_JS)
        assert first > 0.3 * top, (first, top)
        for width in (1280, 1920):
            driver.set_window_size(width, 1000)
            seen = set()
            for _ in range(8):  # over several redraws (keys come and go from the top N)
                time.sleep(1)
                names = driver.execute_script("return Array.from(document.querySelectorAll('#trend .u-legend .u-series'))"
                                              ".slice(1).map(e => e.textContent)")
                assert len(names) <= TOP + 1, names
                seen.update(n.split(":")[0] for n in names)
            assert any(n.startswith("other") for n in seen), seen
            assert all(row[2].endswith("bit/s") for row in cells(driver, "#top"))
            check_axes(driver, "flows", {"Top flows (bit/s)": "bit/s"})
        driver.set_window_size(1280, 900)
        driver.save_screenshot(str(shots / "flows.png"))
        # a bad key: the API's message next to the keys, the chart emptied
        keys = driver.find_element(By.ID, "keys")
        keys.clear()
        keys.send_keys("ipsource,nosuchkey")
        driver.find_element(By.CSS_SELECTOR, "#browse button").click()
        wait.until(lambda d: "nosuchkey" in d.find_element(By.ID, "keys-error").text)
        assert driver.find_element(By.ID, "keys").get_attribute("aria-invalid") == "true"
        assert cells(driver, "#top") == []
        # a bad filter: its message next to the filter
        keys.clear()
        keys.send_keys("ipsource")
        flt = driver.find_element(By.ID, "filter")
        flt.send_keys("ipprotocol=6&&")
        driver.find_element(By.CSS_SELECTOR, "#browse button").click()
        wait.until(lambda d: d.find_element(By.ID, "filter-error").text.strip())
        assert driver.find_element(By.ID, "filter").get_attribute("aria-invalid") == "true"
        assert driver.find_element(By.ID, "keys-error").text == ""
        flt.clear()
        # drill-down: an address in a flow key opens its host page, with its peers
        driver.find_element(By.CSS_SELECTOR, "#browse button").click()
        Select(driver.find_element(By.ID, "defined")).select_by_value("pair")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#top tbody a[href^='host.html']"))
        ip = click(driver, "#top tbody a[href^='host.html']")
        wait.until(lambda d: "host.html" in d.current_url)
        assert driver.find_element(By.ID, "title").text == f"Host {ip}"
        wait.until(lambda d: cells(d, "#peers") and cells(d, "#peers")[0][3].endswith("bit/s"))
        wait.until(lambda d: len(d.execute_script("return sp.charts[0].data[0]")) >= 3)
        check_axes(driver, "host", {"Traffic of this host": "bit/s"})
        driver.save_screenshot(str(shots / "host.png"))
        assert not severe_logs(driver)
    finally:
        driver.quit()


def test_counters_sortable_with_units_and_events_with_units_and_dates(up, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = shots_dir(tmp_path)
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.5)
        driver.get(up["url"] + "/ui/counters.html")
        wait.until(lambda d: len(cells(d, "#interfaces")) == 8)
        rows = cells(driver, "#interfaces")
        heads = [th.text.rstrip(" ▲▼") for th in driver.find_elements(By.CSS_SELECTOR, "#interfaces thead th")]
        peak = heads.index("peak util")
        assert all(r[2].endswith("bit/s") and r[3].endswith("bit/s") for r in rows), rows
        assert all(r[peak].endswith(" %") and r[heads.index("errors")].endswith("/s") for r in rows), rows
        # by default the busiest port first
        values = [float(r[peak].split()[0]) for r in rows]
        assert values == sorted(values, reverse=True), values
        # a header click sorts by that column, a second click the other way
        driver.find_element(By.XPATH, "//table[@id='interfaces']//th[starts-with(., 'data source')]").click()
        order = [int(r[0]) for r in cells(driver, "#interfaces")]
        assert order == sorted(order), order
        driver.find_element(By.XPATH, "//table[@id='interfaces']//th[starts-with(., 'data source')]").click()
        order = [int(r[0]) for r in cells(driver, "#interfaces")]
        assert order == sorted(order, reverse=True), order
        time.sleep(2.5)  # a refresh keeps the order chosen
        assert [int(r[0]) for r in cells(driver, "#interfaces")] == sorted(order, reverse=True)
        wait.until(lambda d: len(d.execute_script("return sp.charts[0].data[0]")) >= 3)
        for width in (1280, 1920):
            driver.set_window_size(width, 1000)
            time.sleep(2.5)
            check_axes(driver, "counters", {"Interface traffic": "bit/s"})
        driver.set_window_size(1280, 900)
        driver.save_screenshot(str(shots / "counters.png"))
        # a row opens its interface page
        click(driver, "#interfaces tbody tr a.drill")
        wait.until(lambda d: "interface.html" in d.current_url)

        driver.get(up["url"] + "/ui/events.html")
        wait.until(lambda d: cells(d, "#events"))
        ev = cells(driver, "#events")[0]
        assert DATE_TIME.fullmatch(ev[1]), ev
        # the elephant threshold on the bytes flow `pair`: bytes/s with bits/s beside
        assert re.fullmatch(r"[\d.]+ [kMG]?B/s \([\d.]+ [kMG]?bit/s\)", ev[6]), ev
        assert re.fullmatch(r"[\d.]+ [kMG]?B/s \([\d.]+ [kMG]?bit/s\)", ev[7]), ev
        driver.save_screenshot(str(shots / "events.png"))
        assert not severe_logs(driver)
    finally:
        driver.quit()


def test_status_trouble_panel_and_drill_down_to_interface_and_agent(up, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = shots_dir(tmp_path)
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.5)
        driver.get(up["url"] + "/ui/index.html")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#trouble-util li a")) == 5)
        items = texts(driver, "#trouble-util li")
        utils = [float(re.search(r"(?:in|out) ([\d.]+) %", t).group(1)) for t in items]
        assert utils == sorted(utils, reverse=True), items
        for name in ("trouble-errors", "trouble-discards", "trouble-agents", "trouble-sinks"):
            assert texts(driver, f"#{name} li"), name  # an entry or "none"
        # ingester ids readable, the raw id in the tooltip
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ingesters tbody td span.id"))
        shown, raw = driver.execute_script("const s = document.querySelector('#ingesters tbody td span.id'); "
                                           "return [s.textContent, s.title]")
        host, pid, index = raw.split(":")[:3]
        assert shown == f"{host}, pid {pid}, #{index}", (shown, raw)
        wait.until(lambda d: len(d.execute_script("return sp.charts[0].data[0]")) >= 3)
        for width in (1280, 1920):
            driver.set_window_size(width, 1000)
            time.sleep(2.5)
            check_axes(driver, "status", {"sFlow received": "/s"})
        driver.set_window_size(1280, 900)
        driver.save_screenshot(str(shots / "status.png"))
        # one click from the trouble list to the busiest interface's page
        label = click(driver, "#trouble-util li a")
        wait.until(lambda d: "interface.html" in d.current_url)
        agent, ds = re.fullmatch(r"(\S+) #(\S+).*", label).groups()
        assert f"Interface #{ds}" in driver.find_element(By.ID, "title").text
        wait.until(lambda d: any(t.endswith("bit/s") for t in texts(d, '.card[data-name="in"] .v')))
        # its agent's page: interfaces busiest first, top flows, events
        click(driver, "#title a.drill")
        wait.until(lambda d: "agent.html" in d.current_url and len(cells(d, "#interfaces")) == 8)
        wait.until(lambda d: cells(d, "#flows"))
        heads = [th.text.rstrip(" ▲▼") for th in driver.find_elements(By.CSS_SELECTOR, "#interfaces thead th")]
        peak = [float(r[heads.index("peak util")].split()[0]) for r in cells(driver, "#interfaces")]
        assert peak == sorted(peak, reverse=True)
        assert cells(driver, "#flows")[0][2].endswith("bit/s")
        assert all(DATE_TIME.fullmatch(r[0]) for r in cells(driver, "#events"))
        assert driver.find_element(By.ID, "title").text == f"Agent {agent}"
        driver.save_screenshot(str(shots / "agent.png"))
        assert not severe_logs(driver)
    finally:
        driver.quit()


def test_history_ranges_open_the_charts_full_and_explore_drills_down_with_the_range(up, tmp_path):
    """With range=15m the status, interface, counters, flows, host and agent charts show ClickHouse
    history (a /history request answered 200, points from before the page opened); explore's rows
    link to the interface and host pages, which keep the range; a flow whose keys have no ClickHouse
    column says so. Last in the module: the demo has run for minutes by now."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = shots_dir(tmp_path)
    # wait until ClickHouse holds more than a minute of the demo's samples
    def status():
        r = requests.get(up["url"] + "/history/status/json", params={"range": "15m"}, timeout=30)
        if r.status_code != 200:
            return None
        body = r.json()
        filled = [t for i, t in enumerate(body["times"]) if any(a["flow_samples_per_s"][i] for a in body["series"])]
        return body if filled and filled[-1] - filled[0] >= 90 else None
    assert wait_for(status, timeout=240, interval=3), "no two minutes of history in ClickHouse"
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.5)
        # status: the chart of the last 15 minutes opens full
        opened = time.time()
        driver.get(up["url"] + "/ui/index.html?range=15m")
        c = history_chart(driver, 0, opened, wait)
        assert c["names"] == ["flow samples/s", "counter samples/s"] and max(c["series"][0]) > 0, c
        assert driver.find_element(By.ID, "rates-range").get_attribute("value") == "15m"
        history_answered(driver, "/history/status/json")
        check_axes(driver, "status history", {"sFlow received": "/s"})
        driver.save_screenshot(str(shots / "status-history.png"))
        # back to live: the browser's own samples again, the URL without a range
        Select(driver.find_element(By.ID, "rates-range")).select_by_value("")
        wait.until(lambda d: (c := d.execute_script(CHART_JS, 0)) and not c["xrange"] and len(c["times"]) >= 2)
        assert "range=" not in driver.current_url

        # explore: a row's interface link opens that interface's page with the range kept
        driver.get(up["url"] + "/ui/explore.html?dimensions=agent,in_if&range=15m&n=5")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#totals tbody td.open a[href^='interface.html']"))
        href = driver.find_element(By.CSS_SELECTOR, "#totals tbody td.open a[href^='interface.html']").get_attribute("href")
        opened = time.time()
        click(driver, "#totals tbody td.open a[href^='interface.html']")
        wait.until(lambda d: "interface.html" in d.current_url)
        assert driver.current_url == href and "range=15m" in href, (driver.current_url, href)
        assert driver.find_element(By.ID, "range-range").get_attribute("value") == "15m"
        c = history_chart(driver, 0, opened, wait)
        assert c["names"] == ["in", "out"] and max(c["series"][0] + c["series"][1]) > 0, c
        history_answered(driver, "/history/counters/json")
        check_axes(driver, "interface history", {"Traffic": "bit/s", "Utilisation": "%", "Errors and discards": "/s"})
        driver.save_screenshot(str(shots / "interface-history.png"))
        # its tables in the range too, from ClickHouse: the top flows in through it (averages) and its events
        wait.until(lambda d: (f := cells(d, "#flows")) and f[0][2].endswith("(average)"))
        wait.until(lambda d: any("/history/events/json" in r["url"] for r in d.execute_script(HISTORY_REQUESTS_JS)))
        history_answered(driver, "/history/events/json")
        history_answered(driver, "/history/flows/json")
        # its links (the agent) carry the range on
        wait.until(lambda d: "range=15m" in d.find_element(By.CSS_SELECTOR, "#title a.drill").get_attribute("href"))
        click(driver, "#title a.drill")
        wait.until(lambda d: "agent.html" in d.current_url and "range=15m" in d.current_url)
        c = history_chart(driver, 0, opened, wait)
        assert c["names"] and all(n.startswith("in_if ") or n == "other" for n in c["names"]), c
        history_answered(driver, "/history/flows/json")

        # explore: a source address's host page, in the same range
        driver.get(up["url"] + "/ui/explore.html?dimensions=src_ip,dst_ip&range=15m&n=5")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#totals tbody td.open a[href^='host.html']"))
        opened = time.time()
        click(driver, "#totals tbody td.open a[href^='host.html']")
        wait.until(lambda d: "host.html" in d.current_url and "range=15m" in d.current_url)
        c = history_chart(driver, 0, opened, wait)
        assert c["names"] == ["sent", "received"] and max(c["series"][0]) > 0, c
        wait.until(lambda d: cells(d, "#peers") and cells(d, "#peers")[0][3].endswith("bit/s"))
        assert "history from ClickHouse" in driver.find_element(By.ID, "which").text
        wait.until(lambda d: any("/history/events/json" in r["url"] for r in d.execute_script(HISTORY_REQUESTS_JS)))
        history_answered(driver, "/history/events/json")  # its events: the range's, from ClickHouse

        # counters: the busiest interface's history
        opened = time.time()
        driver.get(up["url"] + "/ui/counters.html?range=1h")
        c = history_chart(driver, 0, opened, wait)
        assert c["names"] == ["in", "out"], c
        assert c["xrange"][1] - c["xrange"][0] >= 3000
        check_axes(driver, "counters history", {"Interface traffic": "bit/s"})

        # flows: the defined flow `pair` (ipsource,ipdestination; bytes) over src_ip, dst_ip
        opened = time.time()
        driver.get(up["url"] + "/ui/flows.html?flow=pair&range=15m")
        c = history_chart(driver, 0, opened, wait)
        assert len(c["names"]) <= TOP + 1 and all(" → " in n or n == "other" for n in c["names"]), c
        assert {n.split(" → ")[0] for n in c["names"][:3]} == ELEPHANT_SOURCES
        assert "dimensions src_ip, dst_ip" in driver.find_element(By.ID, "history-which").text
        wait.until(lambda d: cells(d, "#top") and cells(d, "#top")[0][2].endswith("B/s"))
        check_axes(driver, "flows history", {"Top flows (B/s)": "B/s"})
        driver.save_screenshot(str(shots / "flows-history.png"))
        # a key with no flow-sample column: said so beside the picker, no chart
        Select(driver.find_element(By.ID, "defined")).select_by_value("")
        keys = driver.find_element(By.ID, "keys")
        keys.clear()
        keys.send_keys("ipsource,icmpunreachablehost")
        driver.find_element(By.CSS_SELECTOR, "#browse button").click()
        wait.until(lambda d: "icmpunreachablehost has no ClickHouse column" in d.find_element(By.ID, "range-message").text)
        assert not driver.execute_script(CHART_JS, 0)["names"]
        assert not severe_logs(driver)
    finally:
        driver.quit()
