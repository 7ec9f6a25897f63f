"""Open every page of the built book in headless Chromium and check what a reader would see.

For each document in ``_toc.yml`` the page ``<doc>.html`` must exist and, once loaded in a real
browser (served on 127.0.0.1 by ``http.server``):

* show no Python traceback, no papermill error banner and no unrendered Markdown table;
* on a notebook page, show a Colab launch button, and render at least as many figures as the
  executed notebook produced (images in cell outputs, each with ``naturalWidth > 0``);
* have no broken local image (external images need a network and are not checked);
* show no plumbing and nothing of the build machine: no visible set-up or parameters cell
  (``SETUP_MARKERS``; Jupyter Book's ``remove-cell`` tag keeps them off the page), no absolute
  path, user's home or host name (``absolute_paths``);
* fit the content column: no code line (input, output or folded answer) that needs a horizontal
  scroll bar, no table wider than the column (the full tables folded in a closed toggle may
  scroll), no figure shrunk below its natural size by more than 7 % (its 10 pt fonts would shrink
  with it);
* render every formula (MathJax, served by the book itself, has typeset every ``.math`` element,
  no display formula is wider than the column and no TeX command is left in the text), load no
  script or stylesheet from another site, and print no warning (no ``...Warning:`` text and no
  stderr stream in an output).

It also saves screenshots of the landing page, of one evaluation page and of the top of
chapters 03 and 08 into ``_build/html/_screenshots/``. Chromium runs headless with a fresh profile and every background
network feature off; Selenium (the WebDriver API, selenium.dev/documentation/webdriver) talks to
the Debian ``chromedriver`` (so Selenium Manager never downloads a driver; ``DGTRS_CHROMIUM`` /
``DGTRS_CHROMEDRIVER`` point elsewhere). The pages to open are the entries of ``_toc.yml``
(``dgtrs_lib.publishing.toc``). Usage::

    python -m dgtrs_lib.publishing.browser_check _build/html     # exit status 1 when a check fails

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dgtrs_lib.env import repo_root
from dgtrs_lib.publishing.toc import toc_entries

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1400")
ERROR_MARKERS = ("Traceback (most recent call last)", "An Exception was encountered at",
                 "PapermillExecutionError")
# Code cells that are plumbing, not part of the chapter: the profile lookup, papermill's
# parameters, the Colab set-up. None of them may be visible on a page.
SETUP_MARKERS = ('os.environ.get("DGTRS_PROFILE"', "google.colab", "# Parameters", "start(PROFILE)")
# Absolute paths of a machine (the build machine's, a user's home): never on a page.
ABS_PATH_RE = re.compile(r"(?<![\w.~$/:%-])/(?:home|root|tmp|work|Users|usr|opt|var|mnt|srv|private|"
                         r"scratch|builds|runner|github)/[^\s'\"<>)]+")
WARNING_RE = re.compile(r"\b[A-Z]\w*Warning\b:|^\s*warnings\.warn\(", re.M)
TEX_RE = re.compile(r"\$\$|\\\(|\\\[|\\(?:frac|tfrac|mathcal|mathrm|operatorname|sum|text|cdot|left|"
                    r"right|big|Big|exp|log|cos|sin|pi|le|ge|times)\b")
# Pages tried in order for the "evaluation page" screenshot.
EVALUATION_PAGES = ("notebooks/04-long-text-retrieval", "notebooks/05-short-text-retrieval",
                    "notebooks/06-zero-shot-classification", "notebooks/07-semantic-localization",
                    "notebooks/08-ablations", "notebooks/09-reproduction-report")
# Chapters whose opening screen is saved (the page must start with the chapter's prose).
CHAPTER_SHOTS = {"notebooks/03-curriculum-training": "chapter-03.png",
                 "notebooks/08-ablations": "chapter-08.png"}
FIGURE_SHRINK = 0.93  # a figure shown below 93 % of its natural width has fonts under 10 pt


def machine_strings(root: Path | None = None) -> list[str]:
    """Strings that name the build machine: the checkout's absolute path, the home folder, the
    host name (when it is long enough not to be a common word)."""
    out = [str(Path(root or repo_root()).resolve())]
    home = os.path.expanduser("~")
    if home not in ("/", ""):
        out.append(home.rstrip("/") + "/")
    host = socket.gethostname()
    if len(host) >= 6:
        out.append(host)
    return out


def absolute_paths(text: str, machine: list[str] | None = None) -> list[str]:
    """Absolute paths (and the build machine's names) found in a page's text."""
    found = [m.group(0) for m in ABS_PATH_RE.finditer(text)]
    found += [s for s in (machine or []) if s and s in text]
    return list(dict.fromkeys(found))


def chromedriver_path() -> str:
    """The driver: ``DGTRS_CHROMEDRIVER`` if set, else Debian's ``/usr/bin/chromedriver``."""
    return os.environ.get("DGTRS_CHROMEDRIVER") or CHROMEDRIVER


def find_chromium() -> str | None:
    """Path of an installed Chromium (``DGTRS_CHROMIUM`` first) with its driver, or None."""
    if not Path(chromedriver_path()).exists():
        return None
    candidates = [os.environ["DGTRS_CHROMIUM"]] if os.environ.get("DGTRS_CHROMIUM") else CHROMIUM
    return next((p for p in candidates if Path(p).exists()), None)


@dataclass
class PageResult:
    page: str
    problems: list[str] = field(default_factory=list)
    images: int = 0
    expected_images: int = 0


@dataclass
class BrowserReport:
    pages: list[PageResult]
    screenshots: list[Path]

    @property
    def ok(self) -> bool:
        return all(not p.problems for p in self.pages)

    @property
    def problems(self) -> list[str]:
        return [f"{p.page}: {msg}" for p in self.pages for msg in p.problems]

    def summary(self) -> str:
        lines = [f"browser check: {len(self.pages)} page(s), "
                 f"{'all OK' if self.ok else f'{len(self.problems)} problem(s)'}"]
        for p in self.pages:
            figs = f", {p.images}/{p.expected_images} figures" if p.expected_images else ""
            lines.append(f"  {'ok  ' if not p.problems else 'FAIL'} {p.page}{figs}")
        lines += [f"  - {msg}" for msg in self.problems]
        lines += [f"  screenshot: {s}" for s in self.screenshots]
        return "\n".join(lines)


def expected_figures(nb_path: Path) -> int:
    """How many image outputs an executed notebook holds (what its page must show)."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if any(k.startswith("image/") for k in o.get("data", {})))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output readable
        pass


class _Server:
    """``http.server`` on 127.0.0.1 (a free port) serving one folder, in a thread."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False


def _driver(chromium: str, profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    driver = webdriver.Chrome(service=Service(chromedriver_path()), options=options)
    driver.set_page_load_timeout(60)
    return driver


_IMAGES_JS = """
const out = [];
for (const img of document.querySelectorAll('img')) {
  out.push({src: img.currentSrc || img.src, complete: img.complete, w: img.naturalWidth,
            output: !!img.closest('.cell_output, .output')});
}
return out;"""


_LAYOUT_JS = """
const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
const art = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const col = art.getBoundingClientRect();
const out = {column: col.width, setup: [], pres: [], tables: [], math: 0, tex: '', warnings: [],
             stderr: 0, shrunk: [], manifest: 0};
for (const cell of document.querySelectorAll('.cell .cell_input')) {
  if (visible(cell)) out.setup.push(cell.innerText.slice(0, 400));
}
for (const pre of art.querySelectorAll('pre')) {
  if (!visible(pre)) continue;
  if (pre.scrollWidth > pre.clientWidth + 1) {
    const lines = (pre.innerText || pre.textContent).split('\\n');
    const longest = lines.reduce((a, b) => b.length > a.length ? b : a, '');
    out.pres.push([pre.scrollWidth, pre.clientWidth, longest.slice(0, 100)]);
  }
  if (/^\\s*\\{\\s*"profile"/.test(pre.innerText) && !pre.closest('details')) out.manifest += 1;
}
for (const t of art.querySelectorAll('table')) {
  if (!visible(t) || t.closest('details:not([open])')) continue;  // folded full tables may scroll
  const b = t.getBoundingClientRect();
  const box = t.parentElement ? t.parentElement.getBoundingClientRect() : b;
  if (b.width > col.width + 1 || b.right > col.right + 1 || t.scrollWidth > Math.max(box.width, b.width) + 1)
    out.tables.push([Math.round(b.width), (t.innerText || '').split('\\n')[0].slice(0, 80)]);
}
for (const m of art.querySelectorAll('.math')) if (!m.querySelector('mjx-container')) out.math += 1;
out.wide_math = [];
for (const m of art.querySelectorAll('div.math, mjx-container[display="true"]')) {
  if (!visible(m) || m.closest('details:not([open])')) continue;
  const b = m.getBoundingClientRect();
  if (m.scrollWidth > m.clientWidth + 1 || b.right > col.right + 1)
    out.wide_math.push([Math.max(m.scrollWidth, Math.round(b.width)), m.clientWidth,
                        (m.textContent || '').slice(0, 60)]);
}
const clone = art.cloneNode(true);
for (const e of clone.querySelectorAll('pre, code, mjx-container, script, style, .math')) e.remove();
out.tex = clone.textContent;
out.external = Array.from(document.querySelectorAll('script[src], link[rel="stylesheet"][href]'))
  .map(e => e.src || e.href).filter(u => u && !u.startsWith(location.origin));
for (const o of art.querySelectorAll('.cell_output')) {
  if (!visible(o)) continue;
  out.warnings.push(o.innerText);
  for (const e of o.querySelectorAll('.output.stderr, .stderr')) if (visible(e) && e.innerText.trim()) out.stderr += 1;
}
for (const img of art.querySelectorAll('.cell_output img')) {
  if (visible(img) && img.naturalWidth && img.clientWidth < img.naturalWidth * SHRINK)
    out.shrunk.push([img.naturalWidth, img.clientWidth]);
}
return out;""".replace("SHRINK", str(FIGURE_SHRINK))


def _wait_math(driver, timeout: float = 20.0):
    """Wait until MathJax (if the page loads it) has typeset the page."""
    driver.set_script_timeout(timeout)
    try:
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;"
            "let n = 0; const poll = () => { if (ready()) MathJax.startup.promise.then(() => done(true));"
            " else if (++n > 50 || !document.querySelector('script[src*=\"mathjax\"]')) done(false);"
            " else setTimeout(poll, 100); }; poll();")
    except Exception:  # noqa: BLE001 - a page whose MathJax never loads is caught by the raw-TeX check
        pass


def layout_problems(info: dict, *, notebook: bool, machine: list[str], body: str) -> list[str]:
    """The reader-facing failures of one page, from ``_LAYOUT_JS``'s measurements."""
    problems = []
    for text in info.get("setup", []):
        hit = next((m for m in SETUP_MARKERS if m in text), None)
        if hit:
            problems.append(f"shows a set-up cell ({hit!r} in a visible code cell)")
    paths = absolute_paths(body, machine)
    if paths:
        problems.append(f"shows an absolute path or the build machine's name: {paths[0]!r}"
                        + (f" (+{len(paths) - 1} more)" if len(paths) > 1 else ""))
    pres = info.get("pres", [])
    for width, client, line in pres[:3]:
        problems.append(f"a code line overflows the content column ({width} > {client} px): {line!r}")
    if len(pres) > 3:
        problems.append(f"... and {len(pres) - 3} more code line(s) overflow the content column")
    for width, head in info.get("tables", [])[:3]:
        problems.append(f"a table is wider than the content column ({width} > "
                        f"{info.get('column', 0):.0f} px): {head!r}")
    if info.get("external"):
        problems.append(f"loads {len(info['external'])} script(s)/stylesheet(s) from another site "
                        f"(offline they fail), e.g. {info['external'][0]}")
    if info.get("math"):
        problems.append(f"{info['math']} formula(s) left as raw TeX (MathJax did not typeset them)")
    for width, client, text in info.get("wide_math", [])[:2]:
        problems.append(f"a formula is wider than the content column ({width} > {client} px): "
                        f"{text!r}")
    tex = TEX_RE.search(info.get("tex", ""))
    if tex:
        start = max(0, tex.start() - 30)
        problems.append(f"raw TeX in the text: {info['tex'][start:tex.end() + 30].strip()!r}")
    for text in info.get("warnings", []):
        m = WARNING_RE.search(text)
        if m:
            line = text[m.start():].splitlines()[0]
            problems.append(f"a warning in an output: {line[:120]!r}")
            break
    if info.get("stderr"):
        problems.append(f"{info['stderr']} stderr output(s) on the page (warnings or progress bars)")
    if info.get("manifest"):
        problems.append("prints the run manifest in full (it belongs in a collapsed note)")
    for natural, shown in info.get("shrunk", [])[:2]:
        problems.append(f"a figure {natural} px wide is shown at {shown} px: its fonts shrink "
                        "below 10 pt (size it for the content column)")
    return problems


def _wait_images(driver, timeout: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
        and d.execute_script(
            "return Array.from(document.images).filter(i => i.src.startsWith(location.origin))"
            ".every(i => i.complete)"))


def check_page(driver, url: str, origin: str, page: str, expected_images: int,
               notebook: bool, machine: list[str] | None = None) -> PageResult:
    """Load one page and collect its problems."""
    result = PageResult(page=page, expected_images=expected_images)
    try:
        driver.get(url)
        _wait_images(driver)
        _wait_math(driver)
    except Exception as exc:  # noqa: BLE001 - a page that does not load is a problem, not a crash
        result.problems.append(f"did not load: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return result
    body = driver.execute_script("return document.body ? document.body.innerText : ''")
    if "404" in driver.title or not body.strip():
        result.problems.append("empty page or not found")
    for marker in ERROR_MARKERS:
        if marker in body:
            result.problems.append(f"shows {marker!r}")
    if re.search(r"\|\s*-{3,}\s*\|", body):
        result.problems.append("shows an unrendered Markdown table ('|---|')")
    errors = driver.execute_script("return document.querySelectorAll('.output.traceback, "
                                   ".output.error').length")
    if errors:
        result.problems.append(f"{errors} error output(s) rendered")
    images = driver.execute_script(_IMAGES_JS)
    local = [i for i in images if i["src"].startswith(origin) or i["src"].startswith("data:")]
    broken = [i["src"] for i in local if not i["w"]]
    if broken:
        result.problems.append(f"{len(broken)} broken image(s), e.g. {broken[0]}")
    result.images = sum(1 for i in local if i["output"] and i["w"] > 0)
    if result.images < expected_images:
        result.problems.append(f"shows {result.images} rendered figure(s), the executed notebook "
                               f"has {expected_images}")
    result.problems.extend(layout_problems(driver.execute_script(_LAYOUT_JS), notebook=notebook,
                                           machine=machine or [], body=body))
    if notebook:
        colab = driver.execute_script(
            "return document.querySelectorAll('a[href*=\"colab.research.google.com/github/\"]')"
            ".length")
        if not colab:
            result.problems.append("no Colab launch button")
    return result


def check_book(html_dir: Path, *, root: Path | None = None, screenshots: bool = True,
               chromium: str | None = None) -> BrowserReport:
    """Check every TOC page of the built book in headless Chromium (see the module docstring).

    Expected figures per notebook page are counted in the executed notebooks the book was built
    from (the staged source named in ``<html>/_dgtrs_build.json``, written by
    ``dgtrs_lib.publishing.book_build``)."""
    root = Path(root or repo_root())
    html_dir = Path(html_dir)
    chromium = chromium or find_chromium()
    if chromium is None:
        raise RuntimeError(f"headless Chromium not found (need {chromedriver_path()} and one of "
                           f"{', '.join(CHROMIUM)}: apt-get install chromium chromium-driver; or set "
                           "DGTRS_CHROMIUM and DGTRS_CHROMEDRIVER)")
    entries = toc_entries(root)
    machine = machine_strings(root)
    pages: list[PageResult] = []
    shots: list[Path] = []
    profile_dir = tempfile.mkdtemp(prefix="dgtrs-chromium-")
    try:
        with _Server(html_dir) as server:
            driver = _driver(chromium, profile_dir)
            try:
                for entry in entries:
                    html = html_dir / f"{entry}.html"
                    if not html.exists():
                        pages.append(PageResult(page=entry, problems=[f"missing: {html}"]))
                        continue
                    notebook = entry.startswith("notebooks/")
                    expected = 0
                    if notebook:
                        nb = _executed_copy(html_dir, entry)
                        if nb is None:
                            pages.append(PageResult(page=entry, problems=[
                                "executed notebook not found (no _dgtrs_build.json from the "
                                "runner's build): cannot count its figures"]))
                            continue
                        expected = expected_figures(nb)
                    pages.append(check_page(driver, server.url + f"{entry}.html",
                                            server.url.rstrip("/"), entry, expected, notebook,
                                            machine))
                if screenshots:
                    shots = _screenshots(driver, server.url, html_dir, entries)
            finally:
                driver.quit()
    finally:
        shutil.rmtree(profile_dir, ignore_errors=True)
    return BrowserReport(pages=pages, screenshots=shots)


def _executed_copy(html_dir: Path, entry: str) -> Path | None:
    """The executed notebook the page was built from (the build's staged source tree)."""
    import json

    info = html_dir / "_dgtrs_build.json"
    if not info.exists():
        return None
    copy = Path(json.loads(info.read_text())["source"]) / f"{entry}.ipynb"
    return copy if copy.exists() else None


def _screenshots(driver, url: str, html_dir: Path, entries: list[str]) -> list[Path]:
    out = html_dir / "_screenshots"
    out.mkdir(exist_ok=True)
    shots = []
    driver.get(url + "index.html")  # redirects to the root page
    _wait_images(driver)
    shots.append(out / "landing.png")
    driver.save_screenshot(str(shots[-1]))
    evaluation = next((e for e in EVALUATION_PAGES if e in entries), None)
    if evaluation:
        driver.get(url + f"{evaluation}.html")
        _wait_images(driver)
        # Scroll to the first figure so the screenshot shows a result, not only the header.
        driver.execute_script("const f = document.querySelector('.cell_output img');"
                              "if (f) f.scrollIntoView({block: 'center'});")
        shots.append(out / "evaluation.png")
        driver.save_screenshot(str(shots[-1]))
    for entry, name in CHAPTER_SHOTS.items():
        if entry in entries:
            driver.get(url + f"{entry}.html")  # the opening screen, as a reader first sees it
            _wait_images(driver)
            _wait_math(driver)
            shots.append(out / name)
            driver.save_screenshot(str(shots[-1]))
    return shots


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (``dgtrs_lib.errors``: 0 ok, 1 problems found)."""
    from dgtrs_lib.errors import run_cli

    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgtrs_lib.publishing.browser_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, default=repo_root() / "_build" / "html")
    args = parser.parse_args(argv)
    report = check_book(args.html)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
