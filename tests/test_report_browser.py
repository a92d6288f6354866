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
# at load (synchronously: nothing is left to the browser's virtual clock), decodes every image and writes the outcome onto <body data-check="...">
PROBE_HEAD = """<script>
window.__problems = [];
window.addEventListener("error", e => window.__problems.push(e.message || ("failed to load " + (e.target && (e.target.src || e.target.href)))), true);
const __error = console.error; console.error = (...a) => { window.__problems.push(a.join(" ")); __error(...a); };
function __decoded(img) {  // drawing forces a full decode now; a broken image throws or leaves every pixel transparent
  if (!img.complete || img.naturalWidth === 0) return [0, 0];
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  try { g.drawImage(img, 0, 0); } catch (e) { return [0, 0]; }
  const px = g.getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) return [img.naturalWidth, img.naturalHeight];
  return [0, 0];
}
window.addEventListener("load", () => {
  const sizes = [...document.images].map(__decoded);
  document.body.setAttribute("data-check", JSON.stringify({images: sizes, problems: window.__problems}));
});
</script>"""


def _run_browser(html: Path, profile: Path) -> subprocess.CompletedProcess:
    cmd = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        # a fresh profile each time: a browser that died can leave its profile locked for the next
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=30000",
        "--dump-dom", html.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _probe_outcome(done: subprocess.CompletedProcess) -> re.Match | None:
    return re.search(r'data-check="([^"]*)"', done.stdout)


def _what_went_wrong(done: subprocess.CompletedProcess) -> str:
    """Exit status, output size and the browser's own complaints, without the D-Bus noise of a machine with no session bus."""
    lines = [line for line in done.stderr.splitlines() if "dbus" not in line.lower() and "D-Bus" not in line]
    return f"exit {done.returncode}, {len(done.stdout)} characters of DOM; stderr: " + " | ".join(lines)[-1500:]


def check_in_browser(page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """Open ``page`` (with the probe injected in a copy) headless; the probe's findings and the browser's console lines.

    Skips when the browser cannot run the probe even on an empty page: then the machine, not the report, is at fault.
    """
    probed = tmp_path / f"probed_{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE_HEAD, 1))
    for attempt in range(3):  # a browser on a loaded machine can die or time out; a fresh start usually does not
        done = _run_browser(probed, tmp_path / f"profile{attempt}")
        match = _probe_outcome(done)
        if match:
            break
    if not match:
        control = tmp_path / "control.html"
        control.write_text(f"<!doctype html><html><head>{PROBE_HEAD}</head><body><p>control</p></body></html>")
        control_run = _run_browser(control, tmp_path / "profile-control")
        if not _probe_outcome(control_run):
            pytest.skip(f"chromium cannot run the probe on this machine, even on an empty page ({_what_went_wrong(control_run)[:300]})")
    assert match, f"the page did not finish loading, though an empty page does: {_what_went_wrong(done)}"
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
