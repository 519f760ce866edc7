"""Saving and showing the figures and tables of the notebooks, with their provenance.

Each figure is written as PNG and each table as CSV into the notebook's
``out_dir`` (atomically), then handed to myst-nb's ``glue`` so that the book can
caption and number it. Outside Jupyter Book (e.g. on Colab) it is displayed inline.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from cbmir_tf.data.io import atomic_write


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        write(tmp)
    return path


def _glue(name: str, obj) -> None:
    try:
        from myst_nb import glue
    except ImportError:  # plain Jupyter / Colab: just show it
        from IPython.display import display

        display(obj)
        return
    glue(name, obj, display=False)


def show_figure(fig, name: str, out_dir: str | os.PathLike, dpi: int = 110) -> None:
    """Save ``fig`` as ``out_dir/name.png`` and glue that PNG under ``name``."""
    import matplotlib.pyplot as plt
    from IPython.display import Image

    path = _atomic_write(Path(out_dir) / f"{name}.png",
                         lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png"))
    plt.close(fig)
    _glue(name, Image(data=path.read_bytes(), format="png"))


def show_table(table: pd.DataFrame, name: str, out_dir: str | os.PathLike, float_format: str = "{:.4f}",
               column_formats: dict[str, str] | None = None) -> None:
    """Save ``table`` as ``out_dir/name.csv`` and glue a formatted copy under ``name``.

    Float columns are shown with ``float_format``, except those named in ``column_formats``.
    """
    _atomic_write(Path(out_dir) / f"{name}.csv", lambda tmp: table.to_csv(tmp, float_format="%.6g"))
    formats = {column: float_format for column in table.select_dtypes("floating").columns}
    styled = table.style.format({**formats, **(column_formats or {})}, na_rep="–")
    _glue(name, styled)


def glue_value(name: str, value) -> None:
    """Glue a scalar for ``{glue:text}`` references in the narrative."""
    try:
        from myst_nb import glue
    except ImportError:
        print(f"{name} = {value}")
        return
    glue(name, value, display=False)


def write_provenance(out_dir: str | os.PathLike, parameters: dict, dataset=None) -> Path:
    """Record the parameters, data and software that produced a notebook's results."""
    import keras
    import sklearn
    import skimage

    import cbmir_tf

    record = {
        "parameters": parameters,
        "versions": {"cbmir_tf": cbmir_tf.__version__, "python": platform.python_version(),
                     "numpy": np.__version__, "keras": keras.__version__,
                     "scikit-learn": sklearn.__version__, "scikit-image": skimage.__version__},
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
    }
    if dataset is not None:
        record["data"] = {"name": dataset.name, "n_images": len(dataset), **{
            k: v for k, v in dataset.meta.items() if isinstance(v, (str, int, float, list, bool, type(None)))}}
    text = json.dumps(record, indent=2, default=str)
    return _atomic_write(Path(out_dir) / "provenance.json", lambda tmp: Path(tmp).write_text(text))


def environment_summary() -> str:
    """One line naming the software versions and the processor, for the notebooks' last cell."""
    import keras
    import tensorflow as tf

    devices = [d.device_type for d in tf.config.list_physical_devices()]
    return (f"Python {platform.python_version()}, numpy {np.__version__}, keras {keras.__version__}, "
            f"tensorflow {tf.__version__}; {os.cpu_count()} CPU cores ({platform.machine()}); "
            f"devices: {', '.join(devices)}")
