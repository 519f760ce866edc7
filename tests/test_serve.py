"""``cbmir serve``: the JSON API on the real DICOM samples (FastAPI's client), and the page in a real,
headless Chromium driven by Playwright against a server process on a free local port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cbmir_tf.archive import build_archive
from cbmir_tf.serve import create_app


@pytest.fixture(scope="module")
def index_dir(dicom_dir, tmp_path_factory):
    """A HOG index of the 14 real DICOM samples."""
    path = tmp_path_factory.mktemp("serve") / "index"
    build_archive(dicom_dir, "hog").save(path)
    return path


@pytest.fixture(scope="module")
def client(index_dir):
    return TestClient(create_app(index_dir, max_upload_mb=1))


def post(client, name: str, data: bytes, **form):
    return client.post("/api/search", files={"file": (name, data)}, data={k: str(v) for k, v in form.items()})


def test_search_returns_k_hits_with_the_query_first(client, dicom_dir):
    response = post(client, "CT_small.dcm", (dicom_dir / "CT_small.dcm").read_bytes(), k=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["k"] == 5 and body["count"] == 14 and body["method"] == "hog"
    assert [h["rank"] for h in body["hits"]] == [1, 2, 3, 4, 5]
    assert body["hits"][0]["path"] == "CT_small.dcm" and body["hits"][0]["distance"] == 0
    distances = [h["distance"] for h in body["hits"]]
    assert distances == sorted(distances)
    assert (body["query"]["width"], body["query"]["height"]) == (128, 128)
    assert body["query"]["preview"].startswith("data:image/png;base64,")


def test_roi_is_found_where_it_was_drawn(client, dicom_dir):
    data = (dicom_dir / "CT_small.dcm").read_bytes()
    hits = post(client, "CT_small.dcm", data, k=3, roi="20,30,40,40").json()["hits"]
    # CT_small is 128 px; the archive is standardised to 256 px: the box doubles
    assert hits[0]["box"] == [40, 60, 80, 80] and hits[0]["score"] == pytest.approx(1.0)
    assert all(h["box"] is not None and -1 <= h["score"] <= 1 for h in hits)


def test_thumbnails_are_the_indexed_images(client):
    response = client.get("/api/images/0")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(__import__("io").BytesIO(response.content)).size == (256, 256)


@pytest.mark.parametrize("url", ["/api/images/14", "/api/images/-1", "/api/images/..%2F..%2Fetc%2Fpasswd",
                                 "/api/images/%2Fetc%2Fpasswd", "/../manifest.json", "/api/images/0/../../x"])
def test_only_indexed_images_are_served(client, url):
    assert client.get(url).status_code in (404, 422)


def test_truncated_dicom_is_a_one_line_422_naming_the_upload(client, dicom_dir):
    data = (dicom_dir / "MR_small.dcm").read_bytes()
    response = post(client, "MR_small.dcm", data[: len(data) // 2], k=3)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("MR_small.dcm: ") and "\n" not in detail and "cbmir-upload" not in detail


def test_a_text_file_is_refused(client):
    response = post(client, "notes.png", b"these are not pixels", k=3)
    assert response.status_code == 422 and response.json()["detail"].startswith("notes.png: ")


def test_an_upload_over_the_limit_gets_413(client, dicom_dir):
    big = (dicom_dir / "693_UNCI.dcm").read_bytes() * 3  # 1.5 MiB against a 1 MiB limit
    response = post(client, "693_UNCI.dcm", big, k=3)
    assert response.status_code == 413 and "limit" in response.json()["detail"]


@pytest.mark.parametrize("form, message", [({"k": 0}, "k must be"), ({"k": 101}, "k must be"),
                                           ({"k": 3, "roi": "1,2,3"}, "ROI must be four"),
                                           ({"k": 3, "roi": "100,100,50,50"}, "does not lie inside")])
def test_bad_parameters_get_400(client, dicom_dir, form, message):
    response = post(client, "CT_small.dcm", (dicom_dir / "CT_small.dcm").read_bytes(), **form)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_k_beyond_the_archive_returns_the_whole_archive(client, dicom_dir):
    body = post(client, "CT_small.dcm", (dicom_dir / "CT_small.dcm").read_bytes(), k=50).json()
    assert body["k"] == 14 and len({h["id"] for h in body["hits"]}) == 14


def test_a_corrupt_index_is_refused_at_start(index_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    (broken / "images.csv").write_text("id,path\n0,x.dcm\n")
    with pytest.raises(ValueError, match="images.csv"):
        create_app(broken)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(index_dir):
    """`cbmir serve` as a user starts it, on a free port of 127.0.0.1."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cbmir_tf.cli", "serve", "--index", str(index_dir),
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "api/info", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"cbmir serve exited: {process.stdout.read()}")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def _chromium() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page(server):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    if _chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium, or set CHROMIUM); .ci/run installs it")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.goto(server)
        page.errors = errors
        yield page
        browser.close()


def test_the_page_uploads_a_dicom_and_shows_k_hits(page, dicom_dir):
    page.wait_for_function("document.getElementById('about').textContent.includes('14 images')")
    page.fill("#k", "4")
    page.set_input_files("#file", str(dicom_dir / "CT_small.dcm"))
    page.wait_for_function("document.querySelectorAll('#hits .hit[data-loaded]').length === 4")
    assert page.locator("#hits .hit").count() == 4
    assert "CT_small.dcm" in page.locator("#hits .hit").first.inner_text()
    assert "4 nearest of 14 images (hog)" in page.inner_text("#status")
    assert page.errors == []


def test_the_page_draws_an_roi_and_shows_the_matched_boxes(page):
    canvas = page.locator("#query").bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] * 0.2, canvas["y"] + canvas["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(canvas["x"] + canvas["width"] * 0.6, canvas["y"] + canvas["height"] * 0.6, steps=5)
    page.mouse.up()
    page.wait_for_function("document.getElementById('status').textContent.includes('region')")
    page.wait_for_function("document.querySelectorAll('#hits .hit[data-loaded]').length === 4")
    assert "NCC 1.00" in page.locator("#hits .hit").first.inner_text()  # the query finds its own region
    assert page.errors == []


def test_the_page_says_why_a_file_is_refused(page, tmp_path):
    bad = tmp_path / "report.dcm"
    bad.write_bytes(b"DICM" * 10)
    page.set_input_files("#file", str(bad))
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert page.inner_text("#status").startswith("report.dcm: ")


def test_a_hog_query_imports_only_what_hog_needs(index_dir, dicom_dir, tmp_path):
    """The one-shot `cbmir query` stays fast (benchmarks/bench_serve.py times it) because it never imports
    the heavy libraries that HOG does not use."""
    script = ("import sys; from cbmir_tf import cli; "
              f"status = cli.main(['query', {str(dicom_dir / 'CT_small.dcm')!r}, '--index', {str(index_dir)!r}, "
              f"'--sheet', {str(tmp_path / 'sheet.png')!r}]); "
              "heavy = ('tensorflow', 'keras', 'sklearn', 'scipy', 'pandas', 'matplotlib', 'skimage', 'fastapi'); "
              "print(sorted(m for m in heavy if m in sys.modules)); sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
