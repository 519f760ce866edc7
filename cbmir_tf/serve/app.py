"""The web service: one archive, its method loaded once, a page and a JSON API over FastAPI.

Routes:

==========================  ==============================================================
``GET /``                   the page: drop or pick a PNG, JPEG or DICOM file, choose k, draw an ROI
``GET /api/info``           the archive: method, number of images, image size, upload limit
``POST /api/search``        multipart ``file`` (+ form ``k``, optional ``roi`` = ``x,y,w,h`` in pixels
                            of the uploaded image): the query's size and preview, and its hits
``GET /api/images/{id}``    archive image ``id`` as a PNG thumbnail (standardised, grey)
==========================  ==============================================================

Errors are JSON ``{"detail": "<one line>"}``: 400 for a bad parameter, 404 for an unknown image id,
413 for an upload over the limit, 422 for a file that is not a readable image (the line names the
file and the problem, as the command line's do). Only the archive's own indexed files are ever read:
images are addressed by row number, never by path.
"""

from __future__ import annotations

import base64
import functools
import io
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from PIL import Image

from cbmir_tf.archive import Archive
from cbmir_tf.queries import find_similar, read_query, read_upload, roi_on_standard_image

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "create_app"]

DEFAULT_MAX_UPLOAD_MB = 64
MAX_K = 100
PREVIEW_SIDE = 512  # the query preview the page draws the ROI on


def create_app(index: str | Path, *, method: str | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               thumbnail_cache: int = 2048) -> FastAPI:
    """The FastAPI application serving the archive indexed in folder ``index``.

    Args:
        index: A folder written by ``cbmir index`` (verified and loaded once, here).
        method: If given, refuse an index built with another method.
        max_upload_mb: Largest accepted upload, in MiB (HTTP 413 above it).
        thumbnail_cache: Archive thumbnails kept in memory.

    Raises:
        FileNotFoundError, ValueError: as `cbmir_tf.archive.Archive.load`.
    """
    archive = Archive.load(index, method=method)
    import cbmir_tf.search.roi  # noqa: F401 - scikit-image now, not during the first ROI query
    limit = int(max_upload_mb * (1 << 20))
    lock = threading.Lock()  # one search at a time: Keras models and FAISS indexes are shared state
    app = FastAPI(title="cbmir", docs_url="/api/docs", redoc_url=None,
                  description=f"Content-based retrieval over {len(archive):,} images ({archive.method_name}).")
    app.state.archive = archive

    @functools.lru_cache(maxsize=thumbnail_cache)
    def archive_image(i: int) -> np.ndarray:
        try:
            return read_query(archive.absolute_path(i), archive.image_size)[1]
        except (ValueError, FileNotFoundError):  # moved or broken since indexing: a blank tile
            return np.zeros((archive.image_size, archive.image_size), np.uint8)

    def locked_search(query: np.ndarray, k: int, box) -> list:
        with lock:
            return find_similar(archive, query, k, box, read_hit=archive_image)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("cbmir_tf.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/api/info")
    def info() -> dict:
        return {"method": archive.method_name, "count": len(archive), "image_size": archive.image_size,
                "max_k": min(MAX_K, len(archive)), "max_upload_bytes": limit, "skipped": len(archive.skipped)}

    @app.get("/api/images/{image_id}", responses={404: {"description": "no such image id"}})
    def image(image_id: int) -> Response:
        if not 0 <= image_id < len(archive):
            raise HTTPException(404, f"image id {image_id}: the archive has ids 0 to {len(archive) - 1}")
        return Response(_png(archive_image(image_id)), media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/search")
    async def search(file: UploadFile = File(...), k: int = Form(10),
                     roi: str | None = Form(None)) -> dict:
        name = file.filename or "upload"
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"{name}: larger than the upload limit of {limit / (1 << 20):g} MiB")
        if not 1 <= k <= MAX_K:
            raise HTTPException(400, f"k must be between 1 and {MAX_K}. Received: k={k}")
        start = time.perf_counter()
        try:
            original, query = await run_in_threadpool(read_upload, data, name, archive.image_size)
            box = roi_on_standard_image(_parse_roi(roi), original.shape, archive.image_size) if roi else None
        except ValueError as err:
            status = 400 if str(err).startswith("ROI") else 422
            raise HTTPException(status, _one_line(err)) from None
        hits = await run_in_threadpool(locked_search, query, min(k, len(archive)), box)
        return {"query": {"name": name, "width": original.shape[1], "height": original.shape[0],
                          "preview": _data_url(_preview(original)), "roi": box},
                "method": archive.method_name, "count": len(archive), "k": len(hits),
                "hits": [{**hit.to_dict(), "thumbnail": f"/api/images/{hit.id}"} for hit in hits],
                "seconds": round(time.perf_counter() - start, 4)}

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next):
        """Refuse an upload by its declared length before reading it."""
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + (1 << 16):  # room for the form's fields
            return JSONResponse({"detail": f"upload larger than the limit of {limit / (1 << 20):g} MiB"}, 413)
        return await call_next(request)

    return app


def _parse_roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(float(v)) for v in text.split(","))
    except ValueError:
        raise ValueError(f"ROI must be four numbers x,y,w,h. Received: {text[:40]!r}") from None
    return x, y, w, h


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _preview(image: np.ndarray) -> np.ndarray:
    """The query as uploaded, at most `PREVIEW_SIDE` px on its long side."""
    scale = PREVIEW_SIDE / max(image.shape)
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def _data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(_png(image)).decode("ascii")
