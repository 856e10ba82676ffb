"""The report of a failing canary in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.browser import SMALLEST_LABEL_PX, UNREADABLE, chromium, requested_urls
from tests.support.servers import AnalyzerServer


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def test_failing_canary_report_in_a_browser(
    browser: webdriver.Chrome, analyzer: AnalyzerServer, artifacts: Path
) -> None:
    # The browser's own Accept header picks the HTML: no format parameter.
    browser.get(f"{analyzer.url}/analyze?service=latency-regression")
    browser.save_screenshot(str(artifacts / "report-latency-regression.png"))

    badge = browser.find_element(By.ID, "verdict")
    assert badge.text.strip().upper().endswith("FAIL")
    assert "verdict-fail" in badge.get_attribute("class")
    assert "beyond the tolerated 1.10x" in browser.find_element(By.ID, "first-reason").text

    chart = browser.find_element(By.ID, "chart-p95_latency")
    over_time = chart.find_element(By.CSS_SELECTOR, "svg")  # the first: each number over the lookback
    series = {path.get_attribute("data-series") for path in over_time.find_elements(By.CSS_SELECTOR, "path.series")}
    assert series == {"canary", "stable", "threshold"}
    threshold = over_time.find_element(By.CSS_SELECTOR, 'path[data-series="threshold"]')
    assert threshold.value_of_css_property("stroke-dasharray") not in ("", "none")
    canary = over_time.find_element(By.CSS_SELECTOR, 'path[data-series="canary"]')
    assert canary.value_of_css_property("stroke-dasharray") in ("", "none")
    # The evidence as it accumulated: the fail side's bound drawn solid against the dashed limit.
    evidence = browser.find_element(By.CSS_SELECTOR, 'svg.evidence[data-check="p95_latency_vs_stable"]')
    drawn = {path.get_attribute("data-series") for path in evidence.find_elements(By.CSS_SELECTOR, "path.series")}
    assert drawn == {"low", "high", "threshold", "recent"}
    low = evidence.find_element(By.CSS_SELECTOR, 'path[data-series="low"]')
    assert low.value_of_css_property("stroke-dasharray") in ("", "none") and low.size["width"] > 100
    # Beside it, in a colour of its own, the recent span closest to failing.
    recent = evidence.find_element(By.CSS_SELECTOR, 'path[data-series="recent"]')
    assert recent.value_of_css_property("stroke") != low.value_of_css_property("stroke") and recent.size["width"] > 100
    legend = chart.find_element(By.CLASS_NAME, "legend").text
    assert "canary" in legend and "stable" in legend and "threshold" in legend
    # The stylesheet applied: the badge is red, not unstyled.
    assert badge.value_of_css_property("background-color") == "rgba(207, 34, 46, 1)"

    # chrome:// and data: URLs stay inside the browser; anything on the network must be loopback.
    network = [url for url in requested_urls(browser) if urlsplit(url).scheme in ("http", "https", "ws", "wss")]
    assert any(url.endswith("/static/report.css") for url in network)
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in network), network


def test_report_form_reruns_the_analysis(browser: webdriver.Chrome, analyzer: AnalyzerServer, artifacts: Path) -> None:
    browser.get(f"{analyzer.url}/analyze?service=latency-regression")
    field = browser.find_element(By.NAME, "service")
    field.clear()
    field.send_keys("no-canary")
    browser.find_element(By.CSS_SELECTOR, "form.rerun button").click()
    # The click navigates: wait for the new page before reading it.
    WebDriverWait(browser, 15).until(expected_conditions.url_contains("service=no-canary"))
    verdict = WebDriverWait(browser, 15).until(expected_conditions.presence_of_element_located((By.ID, "verdict")))
    assert "verdict-inconclusive" in verdict.get_attribute("class")
    assert "no canary data" in browser.find_element(By.ID, "chart-p95_latency").text
    browser.save_screenshot(str(artifacts / "report-no-canary.png"))


@pytest.mark.parametrize("width", [1300, 1920])
@pytest.mark.parametrize("service", ["low-traffic", "latency-regression", "healthy", "not a label value"])
def test_nothing_is_cut_off_or_too_small_to_read(
    browser: webdriver.Chrome, analyzer: AnalyzerServer, artifacts: Path, service: str, width: int
) -> None:
    browser.set_window_size(width, 1600)
    try:
        browser.get(f"{analyzer.url}/analyze?{urlencode({'service': service, 'format': 'html'})}")
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, height + 200)  # the whole page in the screenshot
        browser.save_screenshot(str(artifacts / f"report-{service.replace(' ', '-')}-{width}.png"))
        assert browser.find_element(By.ID, "verdict").text
        if service != "not a label value":  # a report, not the 422 page: its pictures' labels were there to measure
            assert len(browser.find_elements(By.CSS_SELECTOR, "main svg text")) > 20
        problems = browser.execute_script(UNREADABLE, SMALLEST_LABEL_PX)
        assert not problems, "\n".join(problems)
    finally:
        browser.set_window_size(1300, 1600)
