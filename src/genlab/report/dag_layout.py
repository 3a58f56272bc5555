"""Layouts of directed acyclic graphs (Bayesian networks) whose edges go around nodes.

``layout_dag`` places every node as a box sized to its label and routes every edge as a
piecewise cubic Bézier path from the parent's box to the child's box, never through a
third node's box. Two engines:

* ``"dot"``: Graphviz ``dot`` (Debian package ``graphviz``), read through its JSON
  output (node positions and the edge splines it routes around nodes);
* ``"layered"``: a Sugiyama-style layout of genlab's own for when ``dot`` is not
  installed: longest-path layers, a dummy node in every layer a long edge crosses,
  barycentre ordering sweeps that reduce crossings, x positions that pull each node
  towards its neighbours without overlap, and edges that run through the gaps between
  layers and through their dummies' slots inside a layer, so they cannot meet a box.

``"auto"`` (the default) uses ``dot`` when it is on ``PATH`` and its layout passes
``edges_through_nodes``; otherwise the layered one. Units are inches: a box holds its
label at ``fontsize`` points, so a figure drawn at 1 data unit per inch shows the text
inside the boxes.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from typing import Sequence

import numpy as np

ENGINES = ("auto", "dot", "layered")
NODE_SEP = 0.25   # inches between boxes in a layer
RANK_SEP = 0.5    # inches between layers
PAD_X, PAD_Y = 0.16, 0.12  # inches of box around the label
DUMMY_WIDTH = 0.06  # the slot a long edge takes in each layer it crosses
DOT_TIMEOUT_S = 60


@dataclasses.dataclass
class DagLayout:
    """Where a DAG's nodes and edges are drawn, in inches (y up, roots on top).

    Attributes:
        names: node labels.
        centres: ``(D, 2)`` box centres.
        sizes: ``(D, 2)`` box widths and heights.
        edges: ``(parent, child)`` index pairs, one per edge, in the order of ``paths``.
        paths: per edge, the control points ``(3k + 1, 2)`` of a piecewise cubic Bézier
            curve from the parent's box to the child's box (the arrow tip).
        engine: ``"dot"`` or ``"layered"``.
        size: ``(width, height)`` of the drawing; every box and path lies inside it.
    """

    names: list[str]
    centres: np.ndarray
    sizes: np.ndarray
    edges: list[tuple[int, int]]
    paths: list[np.ndarray]
    engine: str
    size: tuple[float, float]

    @property
    def boxes(self) -> np.ndarray:
        """``(D, 4)`` node boxes as ``x0, y0, x1, y1``."""
        half = self.sizes / 2
        return np.concatenate([self.centres - half, self.centres + half], axis=1)

    def edge_points(self, i: int, per_curve: int = 32) -> np.ndarray:
        """Points ``(m, 2)`` along edge ``i``'s curve, ``per_curve`` per Bézier piece."""
        return bezier_points(self.paths[i], per_curve)


def bezier_points(ctrl: np.ndarray, per_curve: int = 32) -> np.ndarray:
    """Sample a piecewise cubic Bézier given by ``3k + 1`` control points."""
    ctrl = np.asarray(ctrl, float)
    t = np.linspace(0.0, 1.0, per_curve + 1)[:, None]
    out = [ctrl[:1]]
    for s in range(0, len(ctrl) - 3, 3):
        p0, p1, p2, p3 = ctrl[s:s + 4]
        pts = ((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3)
        out.append(pts[1:])
    return np.concatenate(out)


def polyline_hits_box(pts: np.ndarray, box: Sequence[float], eps: float = 1e-9) -> bool:
    """Whether the polyline through ``pts`` ``(m, 2)`` enters the interior of ``box =
    (x0, y0, x1, y1)`` (Liang-Barsky clipping of every segment against the box shrunk by
    ``eps``, so touching its border does not count)."""
    a, d = pts[:-1], pts[1:] - pts[:-1]
    x0, y0, x1, y1 = box[0] + eps, box[1] + eps, box[2] - eps, box[3] - eps
    lo, hi = np.zeros(len(a)), np.ones(len(a))
    ok = np.ones(len(a), bool)
    for p, q in ((-d[:, 0], a[:, 0] - x0), (d[:, 0], x1 - a[:, 0]), (-d[:, 1], a[:, 1] - y0),
                 (d[:, 1], y1 - a[:, 1])):
        flat = p == 0
        ok &= ~(flat & (q < 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(flat, 0.0, q / np.where(flat, 1.0, p))
        lo = np.where(~flat & (p < 0), np.maximum(lo, r), lo)
        hi = np.where(~flat & (p > 0), np.minimum(hi, r), hi)
    return bool(np.any(ok & (hi - lo > 1e-12)))


def edges_through_nodes(layout: DagLayout, per_curve: int = 32) -> list[tuple[int, int, int]]:
    """``(parent, child, node)`` for every edge whose drawn curve passes through the box
    of a node other than its own two ends (an empty list for a readable drawing)."""
    boxes = layout.boxes
    bad = []
    for i, (p, c) in enumerate(layout.edges):
        pts = layout.edge_points(i, per_curve)
        lo, hi = pts.min(0), pts.max(0)
        for j, box in enumerate(boxes):
            if j in (p, c) or box[0] > hi[0] or box[2] < lo[0] or box[1] > hi[1] or box[3] < lo[1]:
                continue
            if polyline_hits_box(pts, box):
                bad.append((p, c, j))
    return bad


# ----------------------------------------------------------------------------- boxes
def label_sizes(names: Sequence[str], fontsize: float | None) -> np.ndarray:
    """``(D, 2)`` box sizes in inches: the label's extent in matplotlib's default font
    plus padding, one height for all; ``fontsize=None`` gives small unlabelled boxes."""
    if fontsize is None:
        return np.full((len(names), 2), 0.14)
    from matplotlib.textpath import TextPath

    widths = [TextPath((0, 0), str(v) or " ", size=fontsize).get_extents().width / 72 for v in names]
    height = fontsize * 1.25 / 72 + PAD_Y
    return np.array([[w + PAD_X, height] for w in widths]).reshape(-1, 2)


def depths(parents: Sequence[Sequence[int]]) -> list[int]:
    """Longest-path depth of each node from a root (roots 0); ``ValueError`` on a cycle."""
    d = len(parents)
    depth = [-1] * d
    todo = list(range(d))
    while todo:  # parents are placed before their children (the graph is acyclic)
        left = []
        for i in todo:
            if all(depth[p] >= 0 for p in parents[i]):
                depth[i] = 1 + max((depth[p] for p in parents[i]), default=-1)
            else:
                left.append(i)
        if len(left) == len(todo):
            raise ValueError("the graph has a cycle")
        todo = left
    return depth


def _lowered(depth: list[int], parents: Sequence[Sequence[int]]) -> list[int]:
    """Longest-path layers with a node moved down next to its children when it has at
    least as many children as parents (a root feeding a deep node no longer hangs from
    the top layer by a long edge)."""
    depth = list(depth)
    children: list[list[int]] = [[] for _ in depth]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    for v in sorted(range(len(depth)), key=lambda v: -depth[v]):  # children settle first
        if children[v] and len(children[v]) >= len(parents[v]):
            depth[v] = max(depth[v], min(depth[c] for c in children[v]) - 1)
    shift = min(depth, default=0)
    return [k - shift for k in depth]


def _edge_list(parents: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    return [(int(p), i) for i, ps in enumerate(parents) for p in dict.fromkeys(ps)]


# ----------------------------------------------------------------------------- Graphviz dot
def dot_available() -> bool:
    """Whether the Graphviz ``dot`` program is on ``PATH``."""
    return shutil.which("dot") is not None


def dot_layout(names: Sequence[str], parents: Sequence[Sequence[int]], sizes: np.ndarray) -> DagLayout:
    """Lay the graph out with Graphviz ``dot -Tjson`` (boxes of exactly ``sizes``).

    Raises:
        RuntimeError: ``dot`` is missing, fails, or answers something unreadable.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError("Graphviz dot is not installed (Debian: apt-get install graphviz)")
    edges = _edge_list(parents)
    lines = ["digraph G {",
             f'graph [rankdir=TB, nodesep={NODE_SEP}, ranksep={RANK_SEP}, splines=true, margin=0];',
             'node [shape=box, fixedsize=true, label="", margin=0];',
             "edge [arrowsize=0.7];"]
    lines += [f'n{i} [width={w:.4f}, height={h:.4f}];' for i, (w, h) in enumerate(sizes)]
    lines += [f"n{p} -> n{c};" for p, c in edges]
    lines.append("}")
    try:
        res = subprocess.run([exe, "-Tjson"], input="\n".join(lines), capture_output=True, text=True,
                             timeout=DOT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"Graphviz dot failed: {e}") from None
    if res.returncode != 0:
        raise RuntimeError(f"Graphviz dot failed: {res.stderr.strip()[:300]}")
    try:
        g = json.loads(res.stdout)
        x0, y0, x1, y1 = (float(v) / 72 for v in g["bb"].split(","))
        by_id = {}
        centres = np.zeros((len(names), 2))
        for o in g.get("objects", []):
            i = int(o["name"][1:])
            by_id[o["_gvid"]] = i
            centres[i] = [float(v) / 72 for v in o["pos"].split(",")]
        paths: dict[tuple[int, int], np.ndarray] = {}
        for e in g.get("edges", []):
            paths[(by_id[e["tail"]], by_id[e["head"]])] = _dot_spline(e["pos"])
        ordered = [paths[pc] for pc in edges]
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise RuntimeError(f"could not read Graphviz dot's layout ({type(e).__name__}: {e})") from None
    shift = np.array([x0, y0])
    return DagLayout(list(names), centres - shift, np.asarray(sizes, float), edges,
                     [p - shift for p in ordered], "dot", (x1 - x0, y1 - y0))


def _dot_spline(pos: str) -> np.ndarray:
    """Control points of a dot edge ``pos`` ("e,x,y x1,y1 ...", points) in inches, with
    the arrowhead's straight piece to the end point ``e`` appended as one more curve."""
    end = start = None
    pts = []
    for tok in pos.split():
        parts = tok.split(",")
        if parts[0] == "e":
            end = np.array([float(parts[1]), float(parts[2])])
        elif parts[0] == "s":
            start = np.array([float(parts[1]), float(parts[2])])
        else:
            pts.append([float(parts[0]), float(parts[1])])
    ctrl = np.array(pts) / 72
    if start is not None:
        ctrl = np.concatenate([_line(start / 72, ctrl[0])[:-1], ctrl])
    if end is not None:
        ctrl = np.concatenate([ctrl, _line(ctrl[-1], end / 72)[1:]])
    return ctrl


def _line(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A straight segment as the 4 control points of a cubic Bézier."""
    return np.array([a, a + (b - a) / 3, a + 2 * (b - a) / 3, b])


# ----------------------------------------------------------------------------- layered layout
def _crossings(upper: list[int], lower: list[int], down: dict[int, list[int]]) -> int:
    """Edge crossings between two adjacent layers (``down``: node -> nodes below)."""
    pos = {v: k for k, v in enumerate(lower)}
    ends = [pos[w] for v in upper for w in sorted(down.get(v, ()), key=pos.__getitem__)]
    return sum(1 for a in range(len(ends)) for b in range(a + 1, len(ends)) if ends[b] < ends[a])


def _isotonic(target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Non-decreasing ``y`` minimising ``sum(weight * (y - target)^2)`` (pool adjacent
    violators)."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for t, w in zip(target, weight):
        blocks.append([float(t), float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(n, v) for v, _, n in blocks]) if blocks else np.zeros(0)


def layered_layout(names: Sequence[str], parents: Sequence[Sequence[int]], sizes: np.ndarray,
                   *, sweeps: int = 12) -> DagLayout:
    """A Sugiyama-style layered layout (no external program); see the module docstring.

    Args:
        names: node labels.
        parents: per node, the indices of its parents.
        sizes: ``(D, 2)`` box sizes in inches (one height for the whole graph is assumed;
            the tallest is used).
        sweeps: barycentre ordering sweeps (alternately down and up).
    Returns:
        a ``DagLayout`` whose paths never pass through a box other than their ends'.
    Raises:
        ValueError: the graph has a cycle.
    """
    d = len(names)
    sizes = np.asarray(sizes, float).reshape(d, 2).copy()
    if d:
        sizes[:, 1] = sizes[:, 1].max()  # one height: the gaps between layers hold no box
    edges = _edge_list(parents)
    depth = _lowered(depths(parents), parents)
    n_layers = max(depth, default=-1) + 1
    width = list(sizes[:, 0]) if d else []
    layer_of = list(depth)
    chains: list[list[int]] = []  # per edge: parent, dummies..., child
    for p, c in edges:
        chain = [p]
        for k in range(depth[p] + 1, depth[c]):
            layer_of.append(k)
            width.append(DUMMY_WIDTH)
            chain.append(len(layer_of) - 1)
        chains.append(chain + [c])
    n = len(layer_of)
    down: dict[int, list[int]] = {}
    up: dict[int, list[int]] = {}
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    layers: list[list[int]] = [[] for _ in range(n_layers)]
    for v in range(n):
        layers[layer_of[v]].append(v)

    def total(ls: list[list[int]]) -> int:
        return sum(_crossings(ls[k], ls[k + 1], down) for k in range(len(ls) - 1))

    best, best_x = [list(l) for l in layers], total(layers)
    for s in range(sweeps):
        going_down = s % 2 == 0
        rng = range(1, n_layers) if going_down else range(n_layers - 2, -1, -1)
        for k in rng:
            ref = layers[k - 1] if going_down else layers[k + 1]
            where = {v: i for i, v in enumerate(ref)}
            nbrs = up if going_down else down
            key = {}
            for i, v in enumerate(layers[k]):
                ws = [where[w] for w in nbrs.get(v, ()) if w in where]
                key[v] = float(np.mean(ws)) if ws else float(i)
            layers[k] = sorted(layers[k], key=lambda v: (key[v], layers[k].index(v)))
        c = total(layers)
        if c < best_x:
            best, best_x = [list(l) for l in layers], c
        if best_x == 0:
            break
    layers = best

    # x: packed left to right, then pulled towards neighbours, order and gaps kept
    x = np.zeros(n)
    w = np.asarray(width, float)
    for layer in layers:
        at = 0.0
        for v in layer:
            x[v] = at + w[v] / 2
            at += w[v] + NODE_SEP
    for s in range(8):
        going_down = s % 2 == 0
        nbrs = up if going_down else down
        order = layers if going_down else layers[::-1]
        for layer in order:
            if not layer:
                continue
            target = np.array([np.mean([x[u] for u in nbrs[v]]) if nbrs.get(v) else x[v] for v in layer])
            gaps = np.array([0.0] + [(w[a] + w[b]) / 2 + NODE_SEP for a, b in zip(layer, layer[1:])])
            offset = np.cumsum(gaps)
            weight = np.array([4.0 if v >= d else 1.0 for v in layer])  # keeps long edges straight
            xs = _isotonic(target - offset, weight) + offset
            x[layer] = xs
    if n:
        x -= min(x[v] - w[v] / 2 for v in range(n))
    h = float(sizes[:, 1].max()) if d else 0.0
    y = np.array([(n_layers - 1 - layer_of[v]) * (h + RANK_SEP) + h / 2 for v in range(n)])

    # ports: out-edges leave along the bottom of a box, in-edges enter along its top,
    # spread over the box's middle, ordered by where the other end is
    def ports(v: int, others: list[int]) -> dict[int, float]:
        if v >= d or len(others) < 2:
            return {o: x[v] for o in others}
        span = 0.6 * w[v]
        ranked = sorted(others, key=lambda o: x[o])
        return {o: x[v] - span / 2 + span * k / (len(ranked) - 1) for k, o in enumerate(ranked)}

    out_port = {v: ports(v, down.get(v, [])) for v in range(n)}
    in_port = {v: ports(v, up.get(v, [])) for v in range(n)}
    paths = []
    for chain in chains:
        a, b = chain[0], chain[1]
        pts = [np.array([out_port[a][b], y[a] - h / 2])]
        for prev, v, nxt in zip(chain, chain[1:-1], chain[2:]):  # the dummies: straight through
            top, bottom = np.array([x[v], y[v] + h / 2]), np.array([x[v], y[v] - h / 2])
            pts = _join(pts, top)
            pts = np.concatenate([pts, _line(top, bottom)[1:]])
        end = np.array([in_port[chain[-1]][chain[-2]], y[chain[-1]] + h / 2])
        paths.append(_join(pts, end))
    centres = np.stack([x[:d], y[:d]], axis=1) if d else np.zeros((0, 2))
    size = (float(max((x[v] + w[v] / 2 for v in range(n)), default=0.0)),
            float(n_layers * h + max(n_layers - 1, 0) * RANK_SEP))
    return DagLayout(list(names), centres, sizes, edges, paths, "layered", size)


def _join(pts: list[np.ndarray] | np.ndarray, to: np.ndarray) -> np.ndarray:
    """Append an S-curve with vertical tangents from the last point down to ``to``; its
    control points stay between the two heights, so the curve stays in the gap between
    two layers (where there are no boxes)."""
    pts = np.asarray(pts, float).reshape(-1, 2)
    a = pts[-1]
    mid = (a[1] + to[1]) / 2
    return np.concatenate([pts, np.array([[a[0], mid], [to[0], mid], to])])


# ----------------------------------------------------------------------------- entry point
def layout_dag(names: Sequence[str], parents: Sequence[Sequence[int]], *, engine: str = "auto",
               fontsize: float | None = 9) -> DagLayout:
    """Lay out a DAG so that no edge passes through a node it does not connect.

    Args:
        names: node labels.
        parents: per node, the indices of its parents (a ``BayesianNetwork.parents_``).
        engine: ``"dot"`` (Graphviz; ``RuntimeError`` if it is missing or fails),
            ``"layered"`` (built in) or ``"auto"`` (dot when installed and its drawing
            has no edge through a node, else layered).
        fontsize: label size in points the boxes are sized for; ``None`` for small
            unlabelled boxes (very large graphs).
    Returns:
        a ``DagLayout`` (positions in inches; ``engine`` says which engine made it).
    Raises:
        ValueError: unknown ``engine``, a parent index out of range, or a cycle.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    d = len(names)
    if len(parents) != d or any(not 0 <= int(p) < d or int(p) == i for i, ps in enumerate(parents)
                                for p in ps):
        raise ValueError("parents must list, for each of the names, indices of other names")
    depths(parents)  # a cycle is a ValueError whichever engine runs
    sizes = label_sizes(names, fontsize)
    if engine in ("dot", "auto") and d:
        if engine == "dot":
            return dot_layout(names, parents, sizes)
        if dot_available():
            try:
                lay = dot_layout(names, parents, sizes)
                if not edges_through_nodes(lay):
                    return lay
            except RuntimeError:
                pass
    return layered_layout(names, parents, sizes)
