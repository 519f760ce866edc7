"""Block diagrams of the papers' pipelines and networks, drawn with matplotlib.

The papers explain their methods with diagrams (a retrieval flow, a network's blocks). The book
redraws them here, so that they render with the rest of a chapter, offline, with no Graphviz:

* :func:`block_diagram` places labelled boxes at given positions and joins them with arrows;
* :func:`flow_diagram` lays a pipeline out left to right (a step may be several parallel boxes);
* :func:`network_diagram` draws a Keras model's chosen layers with their real output shapes, so the
  diagram is read off the network that the chapter trains, not typed in by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

Box = tuple[float, float, str]  # centre x, centre y, text (first line bold)

COLOURS = {"data": "#e8f1fb", "model": "#fdf0e0", "search": "#e9f6ea", "output": "#f3e8f8", "plain": "#f2f2f2"}


def block_diagram(boxes: Mapping[str, Box], edges: Sequence[tuple[str, str] | tuple[str, str, str]] = (),
                  kinds: Mapping[str, str] | None = None, box_size: tuple[float, float] = (2.2, 0.9),
                  title: str = "", scale: float = 1.0):
    """Draw boxes and arrows; returns the figure.

    Args:
        boxes: ``{key: (x, y, text)}`` in diagram units; the first line of ``text`` is set in bold.
        edges: ``(from_key, to_key)`` or ``(from_key, to_key, label)`` arrows.
        kinds: ``{key: kind}`` colours a box by what it is (a key of ``COLOURS``); default ``plain``.
        box_size: Width and height of every box, in diagram units.
        title: Figure title.
        scale: Inches per diagram unit.
    """
    kinds = kinds or {}
    width, height = box_size
    xs = [x for x, _, _ in boxes.values()]
    ys = [y for _, y, _ in boxes.values()]
    x0, x1 = min(xs) - width / 2 - 0.2, max(xs) + width / 2 + 0.2
    y0, y1 = min(ys) - height / 2 - 0.2, max(ys) + height / 2 + 0.2
    fig, ax = plt.subplots(figsize=((x1 - x0) * scale, (y1 - y0) * scale + (0.4 if title else 0)))
    for key, (x, y, text) in boxes.items():
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02,rounding_size=0.08", linewidth=1,
                                    edgecolor="#555555", facecolor=COLOURS[kinds.get(key, "plain")]))
        first, *rest = text.split("\n")
        ax.text(x, y + (0.12 * len(rest) if rest else 0), first, ha="center", va="center",
                fontsize=9, fontweight="bold")
        if rest:
            ax.text(x, y - 0.14, "\n".join(rest), ha="center", va="center", fontsize=7.5, linespacing=1.15)
    for edge in edges:
        start, end, label = (*edge, "")[:3]
        (xa, ya, _), (xb, yb, _) = boxes[start], boxes[end]
        pa, pb = _border_point(xa, ya, xb, yb, width, height), _border_point(xb, yb, xa, ya, width, height)
        ax.annotate("", xy=pb, xytext=pa, arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1})
        if label:
            ax.text((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2 + 0.08, label, ha="center", va="bottom",
                    fontsize=6.5, color="#333333")
    ax.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _border_point(x: float, y: float, to_x: float, to_y: float, width: float, height: float):
    """Where the line from box centre ``(x, y)`` towards ``(to_x, to_y)`` leaves the box."""
    dx, dy = to_x - x, to_y - y
    if dx == 0 and dy == 0:
        return x, y
    t = min(width / 2 / abs(dx) if dx else float("inf"), height / 2 / abs(dy) if dy else float("inf"))
    return x + dx * t, y + dy * t


def flow_diagram(steps: Sequence[str | Sequence[str]], kinds: Sequence[str] | None = None,
                 title: str = "", box_size: tuple[float, float] = (2.2, 0.9), gap: float = 0.7):
    """A pipeline left to right: each step is a box, or a list of parallel boxes stacked vertically.

    Every box of a step is joined to every box of the next one. ``kinds`` gives each step's colour
    (see :data:`COLOURS`).
    """
    boxes, edges, kind_of, previous = {}, [], {}, []
    for i, step in enumerate(steps):
        texts = [step] if isinstance(step, str) else list(step)
        keys = []
        for j, text in enumerate(texts):
            key = f"{i}.{j}"
            boxes[key] = (i * (box_size[0] + gap), (len(texts) - 1) / 2 * (box_size[1] + 0.3) - j * (box_size[1] + 0.3),
                          text)
            kind_of[key] = kinds[i] if kinds else "plain"
            keys.append(key)
        edges += [(a, b) for a in previous for b in keys]
        previous = keys
    return block_diagram(boxes, edges, kind_of, box_size=box_size, title=title)


def layer_summary(model, layers: Sequence[str | tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """``(label, "h x w x c")`` for the chosen layers of a Keras model, read off the model itself.

    Args:
        model: A built Keras model.
        layers: Layer names, or ``(label, layer name)`` pairs; default every layer that is not an
            input, activation, normalisation or dropout layer.
    """
    skip = ("InputLayer", "Activation", "BatchNormalization", "Dropout", "ReLU", "Rescaling")
    chosen = layers or [layer.name for layer in model.layers if type(layer).__name__ not in skip]
    rows = []
    for item in chosen:
        label, name = item if isinstance(item, tuple) else (None, item)
        layer = model.get_layer(name)
        shape = " x ".join(str(d) for d in tuple(layer.output.shape)[1:])
        rows.append((label or f"{type(layer).__name__}\n{name}", shape))
    return rows


def network_diagram(model, layers: Sequence[str | tuple[str, str]] | None = None, title: str = "",
                    per_row: int = 4, box_size: tuple[float, float] = (2.0, 0.9)):
    """The chosen layers of a Keras model as a chain of boxes with their output shapes, in rows
    of ``per_row`` that snake left to right and back (see :func:`layer_summary`)."""
    rows = layer_summary(model, layers)
    boxes, edges = {}, []
    for i, (label, shape) in enumerate(rows):
        row, col = divmod(i, per_row)
        col = col if row % 2 == 0 else per_row - 1 - col
        boxes[str(i)] = (col * (box_size[0] + 0.5), -row * (box_size[1] + 0.6), f"{label}\n{shape}")
        if i:
            edges.append((str(i - 1), str(i)))
    kinds = {key: "model" for key in boxes}
    return block_diagram(boxes, edges, kinds, box_size=box_size, title=title)


def _layer_text(layer) -> str:
    """A short label of what a Keras layer does, read from its configuration ("Conv 3x3 /2", "Concat")."""
    kind, config = type(layer).__name__, layer.get_config()
    if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        size = config["kernel_size"] if kind == "Conv2D" else config["pool_size"]
        stride = config["strides"][0]
        text = f"{ {'Conv2D': 'Conv', 'MaxPooling2D': 'MaxPool'}.get(kind, 'AvgPool')} {size[0]}x{size[1]}"
        return text + (f" /{stride}" if stride > 1 else "")
    if kind == "Activation":
        return {"relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax"}.get(config["activation"],
                                                                               config["activation"])
    return {"Concatenate": "Concat", "Add": "Add", "Dense": "Dense"}.get(kind, kind)


def branch_diagram(model, source: str | tuple[str, str], paths: Sequence[Sequence[str | tuple[str, str]]],
                   merge: Sequence[str | tuple[str, str]], residual_to: str | None = None, title: str = "",
                   box_size: tuple[float, float] = (1.9, 0.8)):
    """A module with parallel paths (Inception style) drawn from a Keras model, with real output shapes.

    The module's input sits at the top, each path is a column below it (top-aligned, in the order
    given; list shorter paths first so that no arrow crosses a box), and the merge layers follow
    under the columns, the first of them receiving every path. Each box names what the layer does,
    read from its configuration (``Conv 3x3 /2`` is a 3 x 3 convolution of stride 2), and its
    output shape (height x width x channels).

    Args:
        model: A built Keras model.
        source: Name of the layer whose output enters the module, or a ``(label, name)`` pair.
        paths: The parallel paths, each a list of layer names or ``(label, name)`` pairs, top down.
        merge: The layers after the paths join (e.g. the concatenation, a projection, an addition).
        residual_to: Name of a layer of ``merge`` that also receives the module's input (a residual
            connection); drawn as a line round the left of the paths, labelled "identity".
        title: Figure title.
        box_size: Width and height of every box, in diagram units (inches).

    Returns:
        A matplotlib figure.
    """
    merge_names = [item[1] if isinstance(item, tuple) else item for item in merge]
    if residual_to is not None and residual_to not in merge_names:
        raise ValueError(f"residual_to must name a layer of merge {merge_names}. Received: residual_to={residual_to!r}")
    if not paths or not merge:
        raise ValueError(f"need at least one path and one merge layer. Received: {len(paths)} paths, "
                         f"{len(merge)} merge layers")
    width, height = box_size
    dx, dy = width + 0.35, height + 0.4

    def text(item):
        label, name = item if isinstance(item, tuple) else (None, item)
        layer = model.get_layer(name)
        shape = " x ".join(str(d) for d in tuple(layer.output.shape)[1:])
        return name, f"{label or _layer_text(layer)}\n{shape}"

    centre = (len(paths) - 1) * dx / 2
    name, label = text(source)
    boxes, edges, kinds, keys, target = {"in": (centre, 0.0, label)}, [], {"in": "data"}, {}, None
    for p, path in enumerate(paths):
        previous = "in"
        for r, item in enumerate(path):
            key = f"p{p}.{r}"
            boxes[key], kinds[key] = (p * dx, -(r + 1) * dy, text(item)[1]), "model"
            edges.append((previous, key))
            previous = key
        keys[p] = previous
    depth = max(len(path) for path in paths) + 1
    for m, item in enumerate(merge):
        name, label = text(item)
        key = f"m{m}"
        boxes[key], kinds[key] = (centre, -(depth + m) * dy, label), "model"
        edges += [(keys[p], key) for p in keys] if m == 0 else [(f"m{m - 1}", key)]
        if name == residual_to:
            target = key
    fig = block_diagram(boxes, edges, kinds, box_size=box_size, title=title)
    if residual_to is not None:
        ax = fig.axes[0]
        x_side = -width / 2 - 0.35
        (_, y_in, _), (x_to, y_to, _) = boxes["in"], boxes[target]
        ax.plot([centre - width / 2, x_side, x_side], [y_in, y_in, y_to], color="#333333", lw=1)
        ax.annotate("", xy=(x_to - width / 2, y_to), xytext=(x_side, y_to),
                    arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1})
        ax.text(x_side - 0.05, (y_in + y_to) / 2, "identity", rotation=90, ha="right", va="center", fontsize=7)
        x0, x1 = ax.get_xlim()
        ax.set_xlim(x_side - 0.3, x1)
        w, h = fig.get_size_inches()
        fig.set_size_inches(w + (x0 - (x_side - 0.3)), h)
    return fig


def chain_rows(rows: Mapping[str, Sequence[str]], title: str = "", box_size: tuple[float, float] = (1.55, 0.95),
               gap: float = 0.35, row_gap: float = 0.3, scale: float = 0.62):
    """Several chains of boxes, one per row, each read left to right (e.g. the variants of a network).

    The first box of a row is coloured as data (the input), its last as output and the rest as
    model; each box is joined to the next one of its row. Rows are drawn top down in the order of
    ``rows`` and may differ in length (their boxes stay left-aligned, so that the columns line up).

    Args:
        rows: ``{row name: [box text, ...]}``; the first line of a box's text is set in bold (see
            :func:`block_diagram`). The row names only key the boxes; put what a reader should see
            into the texts.
        title: Figure title.
        box_size: Width and height of every box, in diagram units.
        gap: Horizontal space between the boxes of a row, in diagram units.
        row_gap: Vertical space between rows, in diagram units.
        scale: Inches per diagram unit (below 1 to fit many boxes to a page's width).

    Returns:
        A matplotlib figure.
    """
    if not rows or not all(rows.values()):
        raise ValueError(f"need at least one row, each with at least one box. Received: {dict(rows)!r}")
    boxes, edges, kinds = {}, [], {}
    for r, (name, texts) in enumerate(rows.items()):
        for c, text in enumerate(texts):
            key = f"{name}.{c}"
            boxes[key] = (c * (box_size[0] + gap), -r * (box_size[1] + row_gap), text)
            kinds[key] = "data" if c == 0 else "output" if c == len(texts) - 1 else "model"
            if c:
                edges.append((f"{name}.{c - 1}", key))
    return block_diagram(boxes, edges, kinds, box_size=box_size, title=title, scale=scale)
