"""``cbmir serve``: a web page and a JSON API over one indexed archive (FastAPI, run by uvicorn).

`create_app` builds the application (the archive and its method are loaded once); `serve` runs it.
See `cbmir_tf.serve.app` for the routes and their errors.
"""

from __future__ import annotations

from pathlib import Path

from cbmir_tf.serve.app import DEFAULT_MAX_UPLOAD_MB, create_app

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "create_app", "serve"]


def serve(index: str | Path, *, host: str = "127.0.0.1", port: int = 8000, method: str | None = None,
          max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, log_level: str = "warning") -> None:
    """Serve the archive in folder ``index`` on ``http://host:port/`` until interrupted."""
    import uvicorn

    app = create_app(index, method=method, max_upload_mb=max_upload_mb)
    print(f"cbmir: serving {len(app.state.archive):,} images ({app.state.archive.method_name}) "
          f"of {index} on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
