"""Open every page of the built book in headless Chromium and check it as a reader would see it.

``make check-book`` (after ``make book``) serves ``_build/html`` on 127.0.0.1, opens each page at
1280 x 900 in Chromium (Debian's ``chromium``, driven by Playwright for Python) and fails when a
page has

* a console error or an uncaught script error from the book itself,
* an image that did not load,
* a table wider than the content column with no box that scrolls it sideways,
* text a reader should not see: a Python traceback, a log prefix (``WARNING:``, ``I0000``) or an
  absolute path of the build machine.

It saves a full-page screenshot of each page under ``_build/check-book/`` and a report there
(``report.md``). The book is checked offline: requests that leave 127.0.0.1 (e.g. MathJax from a
CDN) are blocked and listed, not counted as failures.

    python book/check_book.py [_build/html] [--out _build/check-book] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 900
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIP_FOLDERS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static"}

# Page text a reader should never see.
LOG_PATTERNS = {
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "log prefix": re.compile(r"(?m)(?:^|\s)(?:WARNING:|ERROR:|INFO:|[IWE]0000 \d|\[IPKernelApp\])"),
}

# Where a table may be wider than its box: the box scrolls it sideways (overflow-x auto or scroll).
PAGE_CHECKS = """
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main')
                  || document.body || document.documentElement;
  const right = article.getBoundingClientRect().right + 1;
  const wide = [];
  for (const table of article.querySelectorAll('table')) {
    const box = table.getBoundingClientRect();
    if (box.width === 0 || box.right <= right) continue;
    let el = table.parentElement, scrolls = false;
    while (el && el !== article) {
      const overflow = getComputedStyle(el).overflowX;
      if ((overflow === 'auto' || overflow === 'scroll') && el.getBoundingClientRect().right <= right) {
        scrolls = true; break;
      }
      el = el.parentElement;
    }
    if (!scrolls) {
      const caption = table.closest('figure')?.querySelector('figcaption')?.innerText || '';
      wide.push(`${Math.round(box.width)} px table${caption ? ' "' + caption.slice(0, 50) + '"' : ''}`
                + ` in a ${Math.round(article.clientWidth)} px column`);
    }
  }
  const broken = [...document.images]
    .filter(img => img.src.startsWith(location.origin) && (!img.complete || img.naturalWidth === 0))
    .map(img => img.getAttribute('src'));
  return {wide, broken, text: article.innerText};
}
"""


def machine_paths() -> list[str]:
    """Absolute paths of this machine that must not appear in a page."""
    paths = {str(ROOT), str(Path.home()), tempfile.gettempdir() + "/", sys.prefix}
    return sorted(p for p in paths if len(p) > 1)


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:home|Users|root|tmp|private|var/folders|work)/[\w.-]+")


def text_problems(text: str) -> list[str]:
    """What in a page's text a reader should not see (:data:`LOG_PATTERNS`, absolute paths)."""
    found = []
    for name, pattern in LOG_PATTERNS.items():
        match = pattern.search(text)
        if match:
            found.append(f"{name}: {_around(text, match.start())}")
    for path in machine_paths():
        if path in text:
            found.append(f"absolute path: {_around(text, text.index(path))}")
    match = ABSOLUTE_PATH.search(text)
    if match and not any(path in text for path in machine_paths()):
        found.append(f"absolute path: {_around(text, match.start())}")
    return found


def _around(text: str, index: int, width: int = 60) -> str:
    return " ".join(text[max(0, index - 10): index + width].split())


def pages(html_dir: Path) -> list[Path]:
    """Every HTML page of the built book, outside Sphinx's asset folders."""
    return sorted(p for p in html_dir.rglob("*.html")
                  if not SKIP_FOLDERS.intersection(p.relative_to(html_dir).parts))


def serve(html_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``html_dir`` on a free port of 127.0.0.1; returns the server and its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def find_chromium(given: str | None) -> str | None:
    """The Chromium executable: ``--chromium``, ``$CHROMIUM``, or ``chromium`` on the PATH; ``None``
    lets Playwright use its own browser (``python -m playwright install chromium``)."""
    return given or os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def check_page(page, url: str, screenshot: Path) -> tuple[list[str], list[str]]:
    """Load one page; returns ``(problems, blocked external requests)``."""
    errors, blocked = [], []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
    origin = url.split("/", 3)[:3]

    def route(request_route):
        if request_route.request.url.split("/", 3)[:3] == origin:
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("load")  # after a redirect page (the book's index.html), the target's
    page.wait_for_timeout(300)
    result = page.evaluate(PAGE_CHECKS)
    page.screenshot(path=str(screenshot), full_page=True, type="jpeg", quality=60)
    page.unroute("**/*")
    own_errors = [e for e in errors if not any(b.split("?")[0] in e for b in blocked)
                  and "net::ERR_FAILED" not in e and "ERR_BLOCKED" not in e]
    problems = [f"console: {e[:200]}" for e in own_errors]
    problems += [f"image not loaded: {src}" for src in result["broken"]]
    problems += [f"table wider than its column without a scroll box: {w}" for w in result["wide"]]
    problems += text_problems(result["text"])
    return problems, blocked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "check-book")
    parser.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM or chromium on the PATH)")
    args = parser.parse_args(argv)
    if not (args.html_dir / "index.html").is_file():
        print(f"check-book: {args.html_dir}: no built book here (run make book first)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.html_dir)
    report, failed, external = [], 0, set()
    try:
        with sync_playwright() as playwright:
            try:
                browser = playwright.chromium.launch(executable_path=find_chromium(args.chromium),
                                                     args=CHROMIUM_FLAGS)
            except Exception as error:  # noqa: BLE001 - no browser: one line that says what to install
                print(f"check-book: cannot start Chromium ({str(error).splitlines()[0]}): install Debian's "
                      "chromium (apt-get install chromium) or set CHROMIUM to its executable", file=sys.stderr)
                return 2
            context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
            for path in pages(args.html_dir):
                name = path.relative_to(args.html_dir).as_posix()
                page = context.new_page()
                problems, blocked = check_page(page, f"{base}/{name}",
                                               args.out / (name.replace("/", "__") + ".jpg"))
                page.close()
                external.update(url.split("/", 3)[2] for url in blocked)
                failed += bool(problems)
                report.append(f"- `{name}`: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
                report += [f"  - {p}" for p in problems]
                print(f"{name}: {'ok' if not problems else ''}", flush=True)
                for problem in problems:
                    print(f"  {problem}", flush=True)
            browser.close()
    finally:
        server.shutdown()
    summary = (f"{len(report) and len(pages(args.html_dir))} pages checked at {WIDTH} px, {failed} with problems"
               + (f"; blocked (offline) requests to: {', '.join(sorted(external))}" if external else ""))
    (args.out / "report.md").write_text("# check-book\n\n" + summary + "\n\n" + "\n".join(report) + "\n")
    print(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
