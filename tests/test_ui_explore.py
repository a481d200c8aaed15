"""The explore page (history from ClickHouse) in a real browser against `sflowpipe up --demo`: a
chart of the last 15 minutes with data, a y axis with its unit, a bounded legend, no tick label
cut off or overlapping at 1280 and 1920 px, a sortable totals table whose rows drill down, the
Sankey, and a bad filter's error under the filter box."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.test_up import _browser
from tests.up_helpers import ELEPHANT_SOURCES
from tests.up_helpers import wait_for

pytestmark = pytest.mark.kafka

N = 5


def _chart_checks(driver) -> dict:
    """What the page's uPlot chart shows, read in one script (the page may redraw in between)."""
    return driver.execute_script("""
        const u = window.exploreChart;
        if (!u) return null;
        const canvas = u.ctx.canvas;
        return {labels: u.series.slice(1).map(s => s.label),
                points: u.data.slice(1).reduce((n, s) => n + s.filter(v => v > 0).length, 0),
                yLabel: u.axes[1].label,
                legend: document.querySelectorAll('#chart .u-legend .u-series').length - 1,
                boxes: spHistory.labelBoxes(u),
                width: canvas.clientWidth, height: canvas.clientHeight};""")


def _assert_readable(c: dict) -> None:
    assert c["boxes"], "no axis labels"
    for b in c["boxes"]:  # every label inside the chart's canvas: nothing cut off
        assert b["left"] >= 0 and b["right"] <= c["width"] and b["top"] >= 0 and b["bottom"] <= c["height"], b
    xs = sorted((b for b in c["boxes"] if b["axis"] == 0), key=lambda b: b["left"])
    assert len(xs) >= 2
    for a, b in zip(xs, xs[1:]):  # time labels side by side, never on top of each other
        assert a["right"] + 4 <= b["left"], (a, b)
    assert "\n20" in xs[0]["text"], "the first time label carries the date"
    ys = sorted((b for b in c["boxes"] if b["axis"] == 1 and not b.get("title")), key=lambda b: b["top"])
    for a, b in zip(ys, ys[1:]):
        assert a["bottom"] <= b["top"], (a, b)


def test_explore_page_history_chart_table_drill_down_and_sankey(up, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    shots = Path(os.environ.get("SFLOWPIPE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    # the history query returns data once the sink has written some: the elephants lead
    def history() -> dict | None:
        r = requests.get(up["url"] + "/history/flows/json", params={"dimensions": "src_ip", "range": "15m",
                                                                   "n": "3", "value": "bits"}, timeout=30)
        body = r.json() if r.status_code == 200 else None
        return body if body and len(body["totals"]) == 3 and sum(v is not None for v in body["series"][0]["values"]) >= 3 \
            else None
    body = wait_for(history, timeout=180, interval=2)
    assert body, "no history from ClickHouse"
    assert {t["key"][0] for t in body["totals"]} == ELEPHANT_SOURCES and body["unit"] == "bits/s"

    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.5)
        driver.get(up["url"] + f"/ui/explore.html?dimensions=src_ip,dst_ip&range=15m&n={N}&value=bits")
        wait.until(lambda d: (c := _chart_checks(d)) and c["points"] > 3 and len(d.find_elements(
            By.CSS_SELECTOR, "#totals tbody tr")) >= 3)
        c = _chart_checks(driver)
        assert c["yLabel"] == "bits/s"
        assert 1 <= c["legend"] <= N + 1 and len(c["labels"]) <= N + 1
        assert {lab.split(" → ")[0] for lab in c["labels"][:3]} == ELEPHANT_SOURCES
        _assert_readable(c)
        assert driver.find_element(By.ID, "error").text == ""
        assert "Explore" in driver.find_element(By.TAG_NAME, "header").text
        # the Sankey: a node per source and destination, links between them
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sankey svg path")) >= 3)
        driver.save_screenshot(str(shots / "explore.png"))

        # the totals sort by a column header click (ascending, then descending)
        def totals() -> list[str]:
            return driver.execute_script("return Array.from(document.querySelectorAll('#totals tbody tr'))"
                                         ".map(r => r.cells[1].textContent)")
        first = totals()
        driver.find_element(By.CSS_SELECTOR, "#totals th[data-sort=label]").click()
        assert totals() == sorted(first)
        driver.find_element(By.CSS_SELECTOR, "#totals th[data-sort=total]").click()
        assert totals() == first

        # drill down: a row's link filters the page on its key, the chart redraws with it alone
        row = driver.find_element(By.CSS_SELECTOR, "#totals tbody tr a")
        key = row.text
        src, dst = key.split(" → ")
        row.click()
        wait.until(lambda d: "filter=" in d.current_url)
        flt = parse_qs(urlparse(driver.current_url).query)["filter"][0]
        assert flt == f'src_ip = "{src}" and dst_ip = "{dst}"'
        assert driver.find_element(By.ID, "filter").get_attribute("value") == flt
        try:
            wait.until(lambda d: (c := _chart_checks(d)) and c["labels"] == [key] and c["points"] >= 1)
        except Exception:
            c = _chart_checks(driver)
            pytest.fail(f"after the drill-down to {key}: {driver.current_url}, chart {c and c['labels']} "
                        f"({c and c['points']} points), error {driver.find_element(By.ID, 'error').text!r} "
                        f"{driver.find_element(By.ID, 'filter-error').text!r}")
        # back: the unfiltered view again
        driver.back()
        wait.until(lambda d: (c := _chart_checks(d)) and len(c["labels"]) > 1)
        assert driver.find_element(By.ID, "filter").get_attribute("value") == ""

        # a bad filter: the API's error right under the box, pointing at the token
        box = driver.find_element(By.ID, "filter")
        box.clear()
        box.send_keys("src_ip = banana", Keys.ENTER)
        wait.until(lambda d: "not an IP address" in d.find_element(By.ID, "filter-error").text)
        assert box.get_attribute("aria-invalid") == "true"

        # a custom range from the URL: the picker shows it, the chart covers exactly it
        now = int(time.time())
        driver.get(up["url"] + f"/ui/explore.html?dimensions=src_ip&n=3&from={now - 600}&to={now}")
        wait.until(lambda d: (c := _chart_checks(d)) and c["points"] >= 1)
        assert driver.find_element(By.ID, "history-range").get_attribute("value") == "custom"
        assert driver.find_element(By.ID, "history-from").is_displayed()
        assert driver.execute_script("return window.exploreChart.scales.x.max - window.exploreChart.scales.x.min") \
            <= 600

        # a wide screen, lines, 6 hours from the 1-minute rollup (whole 2-minute steps: one
        # comes within 2 minutes of the demo's start): still readable
        driver.set_window_size(1920, 1000)

        def wide() -> dict | None:
            driver.get(up["url"] + "/ui/explore.html?dimensions=dst_ip&range=6h&n=3&value=bytes&mode=lines")
            WebDriverWait(driver, 30, poll_frequency=0.5).until(lambda d: _chart_checks(d))
            c = _chart_checks(driver)
            return c if c["points"] >= 1 else None
        c = wait_for(wide, timeout=240, interval=5)
        assert c, "no 2-minute step in the 6-hour view"
        assert c["yLabel"] == "bytes/s" and c["legend"] <= 4
        _assert_readable(c)
        assert "flows_1m" in driver.find_element(By.ID, "which").text
        driver.save_screenshot(str(shots / "explore-6h.png"))
    finally:
        driver.quit()
