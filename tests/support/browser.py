"""Headless Chromium (Debian's chromium + chromium-driver) through Selenium, on loopback only."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from app.demo.local_prometheus import install_debian_packages

PACKAGES = ("chromium", "chromium-driver")


def ensure_chromium() -> tuple[str, str]:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        install_debian_packages(*PACKAGES)
    return shutil.which("chromium") or "", shutil.which("chromedriver") or ""


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    binary, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1300,1600",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # The performance log lists every request the page made: the test proves none left loopback. The browser
    # log holds the console, where a Content-Security-Policy violation is reported.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requested_urls(browser: webdriver.Chrome) -> list[str]:
    return list(requests_made(browser))


def requests_made(browser: webdriver.Chrome) -> dict[str, str | None]:
    """Every URL the page asked for, with the reason the browser blocked the request before it left (e.g.
    "csp"), or None when it went out. Reads the performance log, which keeps each entry for one reader."""
    urls: dict[str, str] = {}
    blocked: dict[str, str] = {}
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked[params["requestId"]] = params["blockedReason"]
    return {url: blocked.get(request_id) for request_id, url in urls.items()}


def console_errors(browser: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


# What a reader must be able to read whole, at the report's usual widths: every badge and box of text shows all
# of its text (an "INCONCLUSIVE" badge once lost its last letter at 1300 px), the page never scrolls sideways,
# and every label drawn in a picture lies inside that picture, clear of the others, at a size one can read (an
# SVG's text scales with its picture: the interval graphics' labels were once drawn at 6 px).
SMALLEST_LABEL_PX = 11
UNREADABLE = r"""
const smallest = arguments[0], problems = [];
const name = (el) => {
  const classes = (el.getAttribute("class") || "").trim().split(/\s+/).filter(Boolean).map((c) => "." + c).join("");
  return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${classes} "${el.textContent.trim().slice(0, 40)}"`;
};
const root = document.documentElement;
if (root.scrollWidth > root.clientWidth) problems.push(`the page scrolls sideways: ${root.scrollWidth}px`);
for (const el of document.querySelectorAll("body *:not(svg):not(svg *)")) {
  if (getComputedStyle(el).display === "inline") continue;  // wraps: its box is its lines
  if (el.scrollWidth > el.clientWidth + 1) {
    problems.push(`${name(el)} is cut off: its content is ${el.scrollWidth}px wide in ${el.clientWidth}px`);
  }
}
const apart = (a, b) => a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5
    || b.bottom <= a.top + 0.5;
for (const svg of document.querySelectorAll("main svg")) {
  const box = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll("text")];
  const boxes = texts.map((text) => text.getBoundingClientRect());
  texts.forEach((text, i) => {
    const drawn = parseFloat(getComputedStyle(text).fontSize) * text.getScreenCTM().a;
    if (drawn < smallest) problems.push(`${name(text)} is drawn at ${drawn.toFixed(1)}px`);
    const b = boxes[i];
    if (b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5) {
      problems.push(`${name(text)} runs off its picture ${name(svg.closest("[data-check]") || svg)}`);
    }
    boxes.slice(0, i).forEach((other, j) => {
      if (!apart(b, other)) problems.push(`${name(text)} runs into ${name(texts[j])}`);
    });
  });
}
return problems;
"""
