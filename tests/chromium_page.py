"""Headless Chromium checks of an HTML report: layout facts measured by the browser itself.

The page is copied with a small script added that, once everything has loaded, measures the
document width against the viewport, every <img>'s natural width, every SVG figure's drawn box, and the height of every numeric
table cell against one line of text, and writes the findings into a <pre id="tk-check"> element;
``chromium --headless --dump-dom`` then prints the DOM with it. No network, no DevTools client.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

CHECK_JS = """
<script>
window.addEventListener('load', function () {
  var doc = document.documentElement;
  var imgs = Array.from(document.images).map(function (i) {
    return {alt: i.alt, loaded: i.complete && i.naturalWidth > 0}; });
  var figs = Array.from(document.querySelectorAll('svg.fig')).map(function (f) {
    var b = f.getBoundingClientRect();
    return {label: f.getAttribute('aria-label'), width: b.width, height: b.height, right: b.right}; });
  var probe = document.createElement('span'); probe.textContent = '0';
  var bad = [];
  document.querySelectorAll('td.num').forEach(function (td) {
    var p = probe.cloneNode(true); td.appendChild(p);
    var line = p.getBoundingClientRect().height; td.removeChild(p);
    var r = document.createRange(); r.selectNodeContents(td);
    var h = r.getBoundingClientRect().height;
    if (h > line * 1.5) bad.push(td.textContent);
  });
  var out = {scrollWidth: doc.scrollWidth, scrollHeight: doc.scrollHeight, viewport: window.innerWidth, images: imgs, figures: figs, broken_numbers: bad,
             numeric_cells: document.querySelectorAll('td.num').length};
  var pre = document.createElement('pre'); pre.id = 'tk-check'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def chromium() -> str | None:
    """The Chromium binary (Debian `chromium`), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    assert exe
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-dev-shm-usage", "--virtual-time-budget=10000"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def check(html_path: Path, width: int, height: int = 1000) -> dict[str, Any]:
    """Layout facts of ``html_path`` in a ``width`` x ``height`` window (see module doc)."""
    page = html_path.read_text()
    probe = html_path.with_name(html_path.stem + f".check{width}.html")
    probe.write_text(page.replace("</body>", CHECK_JS + "</body>"))
    res = _run([f"--window-size={width},{height}", "--dump-dom", probe.as_uri()])
    m = re.search(r'<pre id="tk-check">(.*?)</pre>', res.stdout, re.S)
    if not m:
        raise AssertionError(f"no check output from chromium: {res.stderr[-2000:]}")
    import html as _h

    return json.loads(_h.unescape(m.group(1)))


def screenshot(html_path: Path, out: Path, width: int, height: int = 2400) -> Path:
    """A PNG screenshot of the page at ``width`` px."""
    _run([f"--window-size={width},{height}", f"--screenshot={out}", html_path.as_uri()])
    return out
