"""Render an Ascribe HTML report in headless Chromium and report what was drawn.

    render_report.py REPORT.html SCREENSHOT.png PDF.pdf

Opens the file with the system's Chromium (/usr/bin/chromium, Debian package `chromium`)
through Playwright, takes a full-page screenshot and prints the page to PDF, then prints one
JSON object: for each timeline (by its `data-alias`), the number of segments, rotation marks,
alert marks and drift ticks that have a non-empty box on screen; and every URL the page asked
for, so that the caller can check the report fetched nothing.
"""

import json
import sys

from playwright.sync_api import sync_playwright

COUNT_DRAWN = """
() => {
  const drawn = (element) => {
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    return (box.width > 0 || box.height > 0) && style.visibility !== 'hidden'
      && style.display !== 'none';
  };
  const count = (svg, selector) =>
    Array.from(svg.querySelectorAll(selector)).filter(drawn).length;
  return Array.from(document.querySelectorAll('svg.timeline')).map((svg) => ({
    alias: svg.dataset.alias,
    width: svg.getBoundingClientRect().width,
    segments: count(svg, 'rect.segment'),
    segment_widths: Array.from(svg.querySelectorAll('rect.segment'))
      .map((rect) => rect.getBoundingClientRect().width),
    rotations: count(svg, 'line.rotation'),
    alerts: count(svg, 'line.rotation.alert'),
    drift: count(svg, 'line.drift'),
    gaps: count(svg, 'rect.gap'),
  }));
}
"""


def main():
    report, screenshot, pdf = sys.argv[1:4]
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.goto("file://" + report)
        page.wait_for_load_state("load")
        timelines = page.evaluate(COUNT_DRAWN)
        page.screenshot(path=screenshot, full_page=True)
        page.emulate_media(media="print")
        page.pdf(path=pdf, format="A4")
        browser.close()
    print(json.dumps({"timelines": timelines, "requested": requested}))


if __name__ == "__main__":
    main()
