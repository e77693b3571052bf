"""The offline site (`make site`) and `dvc plots show`, opened in a real browser.

Every page is opened in headless Chromium (the system's Debian package, driven by playwright;
no browser is downloaded) with the network cut off: the test fails on any failed or non-local
request, any image that did not load, any link to a page or anchor that does not exist, and any
console error. Screenshots of the front page and of one notebook page are saved under the test's
temporary folder (the path is printed; `pytest -s` shows it).
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from slics.site.build import build
from slics.utils.config import project_root

pytestmark = pytest.mark.slow

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")


def _chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
    executable = _chromium()
    if executable is None:
        pytest.skip("Chromium is not installed and could not be installed (`make browser`: apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _problems_on(browser, url: str, screenshot: Path | None = None, ready: str = "true") -> tuple[list[str], object]:
    """Open ``url`` offline; return what went wrong there, and the page (closed by the caller)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            problems.append(f"non-local request {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda r: problems.append(f"failed request {r.url[:120]} ({r.failure})"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text[:200]}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url, wait_until="load")
    page.wait_for_function(ready, timeout=60_000)
    broken_images = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 120))")
    problems += [f"image did not load: {src}" for src in broken_images]
    for href in page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
        parsed = urlparse(href)
        if parsed.scheme != "file":
            continue  # links out of the site are shown, never loaded
        target = Path(unquote(parsed.path))
        if not target.is_file():
            problems.append(f"broken link {href}")
        elif parsed.fragment and target == Path(unquote(urlparse(url).path)):
            if not page.evaluate("id => document.getElementById(id) !== null", unquote(parsed.fragment)):
                problems.append(f"broken anchor {href}")
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=False)
    return problems, page


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    started = time.monotonic()
    pages = build(out)
    return out, pages, time.monotonic() - started


def test_site_builds_quickly_with_one_page_per_notebook(site):
    out, pages, seconds = site
    notebooks = sorted(p.stem for p in (project_root() / "results" / "notebooks").glob("*.ipynb"))
    assert sorted(p.stem for p in (out / "notebooks").glob("*.html")) == notebooks
    assert {"index.html", "benchmarks.html", "data.html"} <= {p.name for p in pages}
    assert (out / ".slics-site").is_file()                 # a rebuild may replace this folder (check_site_folder)
    assert seconds < 120
    for page in out.rglob("*.html"):
        text = page.read_text()
        assert "cdn." not in text and "https://cdnjs" not in text and "require.js" not in text, page


def test_every_page_loads_offline_without_errors(browser, site, tmp_path):
    out, pages, _ = site
    shots = tmp_path / "screenshots"
    shots.mkdir()
    notebook_shot = "notebooks/02_ista_clip.html"
    found = {}
    math_ready = "!window.MathJax || document.body.dataset.mathReady === '1'"  # set by the page template
    for path in pages:
        rel = path.relative_to(out).as_posix()
        shot = shots / "front.png" if rel == "index.html" else shots / "notebook.png" if rel == notebook_shot else None
        problems, page = _problems_on(browser, path.as_uri(), shot, ready=math_ready)
        if rel == notebook_shot:
            assert page.evaluate("document.querySelectorAll('mjx-container').length") > 0, "MathJax rendered nothing"
        if rel == "index.html":
            assert page.evaluate("document.querySelectorAll('table.headline tr.holds').length") > 0
        page.close()
        if problems:
            found[rel] = problems
    assert not found, found
    for name in ("front.png", "notebook.png"):
        assert (shots / name).stat().st_size > 10_000  # a rendered page, not a blank one
    print(f"screenshots in {shots}")


def test_a_broken_image_and_a_broken_link_are_caught(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="missing.png"><a href="nowhere.html">x</a>'
                   '<a href="#nope">y</a><script>console.error("boom")</script></body></html>')
    problems, page = _problems_on(browser, bad.as_uri())
    page.close()
    text = "\n".join(problems)
    for expected in ("image did not load", "broken link", "broken anchor", "console error: boom", "failed request"):
        assert expected in text, (expected, problems)


def test_dvc_plots_render_offline(browser, tmp_path):
    """`dvc plots show` with the project's template: vendored vega draws each data plot."""
    root = project_root()
    shutil.copytree(root / ".dvc" / "plots", tmp_path / ".dvc" / "plots")  # the template's relative script paths
    out = tmp_path / "dvc_plots"
    subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", str(out)], cwd=root, check=True, capture_output=True)
    problems, page = _problems_on(browser, (out / "index.html").as_uri(),
                                  ready="document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= 3")
    images = page.evaluate("document.images.length")
    page.close()
    assert not problems, problems
    assert images >= len(list((root / "results" / "figures").glob("*.png")))
