"""The API explorer (api/static/api.html: the bundled Swagger UI over /openapi.json) in a real
browser against `sflowpipe up --demo`, and the live answers checked against the document."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import requests
from openapi_schema_validator import OAS30Validator

from sflowpipe import __version__
from tests.test_up import _browser
from tests.up_helpers import wait_for

STATIC = Path(__file__).resolve().parents[1] / "api" / "static"


def test_the_explorer_page_names_no_other_origin():
    """Everything api.html loads is under /ui/ (vendor/ is filled by scripts/build-ui.sh)."""
    page = (STATIC / "api.html").read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I), "an external URL in api.html"
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r'@import url\("([^"]+)"\)', page)
    assert set(loaded) == {"vendor/swagger-ui.css", "style.css", "favicon.svg", "vendor/swagger-ui-bundle.js",
                           "app.js"}
    for f in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui.LICENSE"):
        assert (STATIC / "vendor" / f).stat().st_size > 1000, f"{f}: run scripts/build-ui.sh"


@pytest.mark.kafka
def test_api_explorer_lists_the_operations_and_tries_one_in_a_real_browser(up, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = Path(os.environ.get("SFLOWPIPE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    origin = up["url"]
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.5)
        # the status page's nav leads to the explorer
        driver.get(origin + "/ui/index.html")
        api_link = wait.until(lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, "header a") if a.text == "API"])
        assert api_link[0].get_attribute("href") == origin + "/ui/api.html"
        api_link[0].click()
        wait.until(lambda d: d.current_url == origin + "/ui/api.html")

        # Swagger UI renders the document below the UI's own nav, its operations listed
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
        nav = {a.text: a for a in driver.find_elements(By.CSS_SELECTOR, "header a")}
        assert list(nav) == ["Status", "Flows", "Events", "Counters", "Explore", "API"]
        assert "active" in nav["API"].get_attribute("class")
        header = driver.find_element(By.TAG_NAME, "header").rect
        explorer = driver.find_element(By.ID, "swagger").rect
        assert header["y"] + header["height"] <= explorer["y"], "the explorer covers the nav"
        assert "sflowpipe REST API" in driver.find_element(By.CSS_SELECTOR, ".info .title").text
        paths = driver.execute_script("return Array.from(document.querySelectorAll('.opblock-summary-path'))"
                                      ".map(e => e.getAttribute('data-path'))")
        for p in ("/activeflows/{agent}/{name}/json", "/flow/{name}/json", "/events/json", "/agents/json",
                  "/version", "/sflowpipe/status/json"):
            assert p in paths, p
        document = requests.get(origin + "/openapi.json", timeout=10).json()
        assert len(paths) == sum(len(ops) for ops in document["paths"].values())
        driver.save_screenshot(str(shots / "api.png"))

        def open_operation(method: str, path: str):
            """The operation's block, expanded (its summary clicked)."""
            block = driver.find_element(By.XPATH, f"//div[contains(@class, 'opblock-{method}')]"
                                                  f"[.//*[@data-path='{path}']]")
            block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
            wait.until(lambda d: "is-open" in block.get_attribute("class"))
            return block

        def try_it(block):
            """Try it out, Execute: the live response's status and body."""
            driver.execute_script("arguments[0].scrollIntoView()", block)
            block.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
            block.find_element(By.CSS_SELECTOR, "button.execute").click()
            status = wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".live-responses-table "
                                                                               "tbody .response-col_status"))
            body = block.find_element(By.CSS_SELECTOR, ".live-responses-table .response-col_description pre")
            url = block.find_element(By.CSS_SELECTOR, ".request-url pre").text
            return status[0].text.strip(), body.text, url

        # GET /version: the running version as text
        status, body, url = try_it(open_operation("get", "/version"))
        assert (status, body.strip().strip('"'), url) == ("200", __version__, origin + "/version")

        # GET /agents/json: the demo's agents, the same as the API gives a script
        block = open_operation("get", "/agents/json")
        status, body, url = try_it(block)
        assert status == "200" and url == origin + "/agents/json"
        agents = json.loads(body)
        assert agents and set(agents) == set(requests.get(origin + "/agents/json", timeout=10).json())
        assert all("sFlowDatagramsReceived" in a for a in agents.values())
        driver.execute_script("arguments[0].scrollIntoView()", block)
        driver.save_screenshot(str(shots / "api-try-it-out.png"))

        # a typed parameter: GET /activeflows with maxFlows=1 typed into its field
        block = open_operation("get", "/activeflows/{agent}/{name}/json")
        driver.execute_script("arguments[0].scrollIntoView()", block)
        block.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
        for name, value in (("agent", "ALL"), ("name", "pair"), ("maxFlows", "1")):
            field = block.find_element(By.CSS_SELECTOR, f"tr[data-param-name='{name}'] input")
            field.clear()
            field.send_keys(value)
        aggmode = block.find_element(By.CSS_SELECTOR, "tr[data-param-name='aggMode'] select")
        assert [o.text for o in aggmode.find_elements(By.TAG_NAME, "option")][-2:] == ["max", "sum"]
        block.find_element(By.CSS_SELECTOR, "button.execute").click()
        status = wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody "
                                                                           ".response-col_status"))
        assert status[0].text.strip() == "200"
        url = block.find_element(By.CSS_SELECTOR, ".request-url pre").text
        assert url.startswith(origin + "/activeflows/ALL/pair/json?") and "maxFlows=1" in url
        rows = json.loads(block.find_element(By.CSS_SELECTOR, ".live-responses-table .response-col_description pre")
                          .text)
        assert len(rows) <= 1 and all({"key", "value", "agent", "dataSource"} <= set(r) for r in rows)

        # nothing left this origin: the page, its scripts, the document and the requests tried
        loaded = driver.execute_script("return performance.getEntriesByType('navigation').concat("
                                       "performance.getEntriesByType('resource')).map(e => e.name)")
        assert any(u.endswith("/openapi.json") for u in loaded) and any(u.endswith("/agents/json") for u in loaded)
        assert [u for u in loaded if not u.startswith(origin + "/")] == []
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not logs, logs
        assert driver.find_element(By.ID, "error").text == ""

        # and back: the nav's Status link
        driver.find_element(By.LINK_TEXT, "Status").click()
        wait.until(lambda d: d.current_url == origin + "/ui/index.html")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ingesters tbody tr"))
    finally:
        driver.quit()
    for name in ("api", "api-try-it-out"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


@pytest.mark.kafka
def test_live_answers_of_the_demo_match_the_document(up):
    """What a running pipeline answers, checked against the schemas the explorer shows."""
    origin = up["url"]
    doc = requests.get(origin + "/openapi.json", timeout=10).json()

    def check(template: str, path: str) -> object:
        schema = doc["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        body = requests.get(origin + path, timeout=10).json()
        OAS30Validator({**schema, "components": doc["components"]}).validate(body)
        return body

    assert wait_for(lambda: check("/activeflows/{agent}/{name}/json", "/activeflows/ALL/pair/json"), 90)
    assert wait_for(lambda: check("/agents/json", "/agents/json"), 60)
    assert wait_for(lambda: check("/events/json", "/events/json?maxEvents=20"), 90)
    assert check("/sflowpipe/status/json", "/sflowpipe/status/json")["ingesters"]
    assert check("/flow/json", "/flow/json")
    assert wait_for(lambda: check("/metric/{agent}/{metric}/json", "/metric/ALL/sum:ifinoctets,max:pair/json"), 60)
    assert wait_for(lambda: check("/dump/{agent}/{metric}/json", "/dump/ALL/ifinoctets/json"), 60)
