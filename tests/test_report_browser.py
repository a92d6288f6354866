"""The compare report's HTML in a real headless browser: no console errors, every image decodes.

Needs Chromium (Debian: ``apt-get install chromium``); skipped when it is not installed.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from segdil.compare.plots import plot_cost_accuracy, plot_pool_sweep, plot_size_curves
from segdil.compare.report import write_report

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine (Debian: apt-get install chromium); the HTML report is not checked in a browser")]

# injected first in <head>: records script errors, console.error calls and resources that fail to load;
# after load, decodes every image and writes the outcome onto <body data-check="...">
PROBE_HEAD = """<script>
window.__problems = [];
window.addEventListener("error", e => window.__problems.push(e.message || ("failed to load " + (e.target && (e.target.src || e.target.href)))), true);
const __error = console.error; console.error = (...a) => { window.__problems.push(a.join(" ")); __error(...a); };
window.addEventListener("load", () => {
  const imgs = [...document.images];
  Promise.all(imgs.map(i => i.decode().then(() => [i.naturalWidth, i.naturalHeight], () => [0, 0]))).then(sizes => {
    document.body.setAttribute("data-check", JSON.stringify({images: sizes, problems: window.__problems}));
  });
});
</script>"""


def check_in_browser(page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """Open ``page`` (with the probe injected in a copy) headless; the probe's findings and the browser's console lines."""
    probed = tmp_path / f"probed_{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE_HEAD, 1))
    for attempt in range(3):  # a loaded machine can end the virtual-time budget before the images decode
        cmd = [
            BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            # a fresh profile each time: a browser that died can leave its profile locked for the next
            "--no-first-run", f"--user-data-dir={tmp_path / f'profile{attempt}'}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=30000",
            "--dump-dom", probed.resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        match = re.search(r'data-check="([^"]*)"', done.stdout)
        if match:
            break
    assert match, f"the page did not finish loading: {done.stderr[-2000:]}"
    found = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return found, console


def _report(tmp_path: Path) -> Path:
    from test_compare import _fake_results

    results = _fake_results(tmp_path)
    figures = {
        "size_iou": plot_size_curves(results, "iou", tmp_path / "figures" / "size_iou.png"),
        "pool_sweep": plot_pool_sweep(results, tmp_path / "figures" / "pool_sweep.png"),
        "cost_accuracy": plot_cost_accuracy(results, tmp_path / "figures" / "cost_accuracy.png"),
    }
    write_report(results, figures, tmp_path)
    return tmp_path / "report.html"


def test_report_html_loads_without_errors_and_every_image_decodes(tmp_path):
    page = _report(tmp_path)
    shutil.rmtree(tmp_path / "figures")  # self-contained: nothing beside the page is needed
    found, console = check_in_browser(page, tmp_path)
    assert found["problems"] == [] and console == []
    assert len(found["images"]) == 3 and all(w > 100 and h > 100 for w, h in found["images"]), found


def test_the_browser_check_catches_a_broken_image_and_a_missing_file(tmp_path):
    page = _report(tmp_path)
    html = page.read_text()
    first = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = html[:first] + "AAAA" + html[first + 4 :]  # a corrupt PNG header
    broken = broken.replace("</body>", '<img alt="x" src="figures/missing.png"></body>')
    page.write_text(broken)
    found, _ = check_in_browser(page, tmp_path)
    assert [w for w, _ in found["images"]].count(0) == 2 and any("missing.png" in p for p in found["problems"]), found
