"""The Bayesian-network graph figure: no edge may pass through a node it does not connect.

The geometry is checked here from first principles (Bézier curves sampled from their
control points, segments clipped against node boxes), not with the layout module's own
checker, on the newcomer's 5-variable table (smoker -> cancer used to be drawn straight
through cough, so the 5-edge graph showed 4 edges), on asia and alarm, and on random DAGs,
for Graphviz dot and for the built-in layered layout that stands in when dot is missing.
"""
from __future__ import annotations

import numpy as np
import pytest

from genlab.models.pgm import read_bif
from genlab.report import dag_layout as DL
from genlab.report.dag_layout import DagLayout, layout_dag
from genlab.report.pgm import draw_dag, plot_dag

ENGINES = ["layered", pytest.param("dot", marks=pytest.mark.skipif(
    not DL.dot_available(), reason="Graphviz dot is not installed (apt-get install graphviz)"))]


# ----------------------------------------------------------------------------- geometry
def _curve_points(ctrl: np.ndarray, per_curve: int = 48) -> np.ndarray:
    ctrl = np.asarray(ctrl, float)
    assert (len(ctrl) - 1) % 3 == 0, "a piecewise cubic Bézier has 3k + 1 control points"
    t = np.linspace(0, 1, per_curve + 1)[:, None]
    pts = [ctrl[:1]]
    for s in range(0, len(ctrl) - 1, 3):
        b = [ctrl[s + i] for i in range(4)]
        pts.append(((1 - t) ** 3 * b[0] + 3 * (1 - t) ** 2 * t * b[1] + 3 * (1 - t) * t ** 2 * b[2]
                    + t ** 3 * b[3])[1:])
    return np.concatenate(pts)


def _segment_enters(a, b, box, eps=1e-6) -> bool:
    """Does segment a-b meet the open box (x0, y0, x1, y1) shrunk by eps? (clipping)"""
    x0, y0, x1, y1 = box[0] + eps, box[1] + eps, box[2] - eps, box[3] - eps
    t0, t1 = 0.0, 1.0
    for p, q in ((a[0] - b[0], a[0] - x0), (b[0] - a[0], x1 - a[0]),
                 (a[1] - b[1], a[1] - y0), (b[1] - a[1], y1 - a[1])):
        if abs(p) < 1e-15:
            if q < 0:
                return False
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    return t0 < t1


def _box_distance(pt, box) -> float:
    dx = max(box[0] - pt[0], 0.0, pt[0] - box[2])
    dy = max(box[1] - pt[1], 0.0, pt[1] - box[3])
    return float(np.hypot(dx, dy))


def through_nodes(layout: DagLayout) -> list[tuple[str, str, str]]:
    """(parent, child, node) for each edge drawn through a third node's box."""
    names = layout.names
    half = layout.sizes / 2
    boxes = np.concatenate([layout.centres - half, layout.centres + half], axis=1)
    bad = []
    for (p, c), ctrl in zip(layout.edges, layout.paths):
        pts = _curve_points(ctrl)
        for j, box in enumerate(boxes):
            if j not in (p, c) and any(_segment_enters(pts[k], pts[k + 1], box) for k in range(len(pts) - 1)):
                bad.append((names[p], names[c], names[j]))
    return bad


def check_drawing(layout: DagLayout, parents) -> None:
    """Every edge drawn once, from its parent's box to its child's box, through no other
    box; no two boxes overlap; everything inside the drawing."""
    want = sorted((p, i) for i, ps in enumerate(parents) for p in ps)
    assert sorted(layout.edges) == want
    assert len(layout.paths) == len(layout.edges)
    half = layout.sizes / 2
    boxes = np.concatenate([layout.centres - half, layout.centres + half], axis=1)
    for (p, c), ctrl in zip(layout.edges, layout.paths):
        assert _box_distance(ctrl[0], boxes[p]) < 0.02, "an edge starts at its parent"
        assert _box_distance(ctrl[-1], boxes[c]) < 0.02, "an edge ends at its child"
        assert layout.centres[p, 1] > layout.centres[c, 1], "parents are drawn above children"
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            overlap = (min(boxes[a, 2], boxes[b, 2]) - max(boxes[a, 0], boxes[b, 0]) > 1e-6
                       and min(boxes[a, 3], boxes[b, 3]) - max(boxes[a, 1], boxes[b, 1]) > 1e-6)
            assert not overlap, (layout.names[a], layout.names[b])
    lo = min(boxes[:, :2].min(), min(pt.min() for pt in layout.paths))
    assert lo > -0.02 and boxes[:, 2].max() <= layout.size[0] + 0.02 and boxes[:, 3].max() <= layout.size[1] + 0.02
    assert through_nodes(layout) == []
    assert DL.edges_through_nodes(layout) == []  # the module's own check agrees


# ----------------------------------------------------------------------------- the tests
def test_the_check_sees_the_old_straight_line_drawing(newcomer_bn):
    """The old figure: nodes centred per layer, one straight arrow per edge. The check
    finds smoker -> cancer through cough there (so the tests below can fail)."""
    bn = newcomer_bn
    d = len(bn.variables_)
    depth = DL.depths(bn.parents_)
    centres = np.zeros((d, 2))
    for layer in set(depth):
        nodes = [i for i in range(d) if depth[i] == layer]
        for k, i in enumerate(nodes):
            centres[i] = ((k + 0.5) / len(nodes) * 4, -layer)
    edges = [(p, i) for i, ps in enumerate(bn.parents_) for p in ps]
    straight = [np.array([centres[p], centres[p] + (centres[c] - centres[p]) / 3,
                          centres[p] + 2 * (centres[c] - centres[p]) / 3, centres[c]]) for p, c in edges]
    old = DagLayout(list(bn.variables_), centres, np.full((d, 2), [0.6, 0.25]), edges, straight, "old", (4, 4))
    assert through_nodes(old) == [("smoker", "cancer", "cough")]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("net", ["newcomer", "asia", "alarm"])
def test_no_edge_through_a_node(engine, net, newcomer_bn):
    bn = newcomer_bn if net == "newcomer" else read_bif(net)
    layout = layout_dag(bn.variables_, bn.parents_, engine=engine)
    assert layout.engine == engine
    check_drawing(layout, bn.parents_)
    if net == "newcomer":
        assert len(layout.edges) == 5


def test_the_newcomers_table_learns_five_edges_and_draws_them(tmp_path, newcomer_csv):
    """From the CSV a newcomer would write: structure learning finds the 5 edges, and the
    report's figure draws all 5, none through a node, by either engine."""
    from genlab.workflow import train_run

    run = train_run("bayesnet", str(newcomer_csv), out=tmp_path / "bn", report=False)
    model = run.model()
    assert sorted(model.edges()) == sorted([("smoker", "cough"), ("smoker", "cancer"), ("cough", "cancer"),
                                            ("cancer", "xray"), ("cancer", "dyspnoea")])
    for engine in ["layered"] + (["dot"] if DL.dot_available() else []):
        path, layout = plot_dag(model.variables_, model.parents_, tmp_path / f"dag_{engine}.png", engine=engine)
        assert path.stat().st_size > 1000
        check_drawing(layout, model.parents_)


@pytest.mark.parametrize("seed", range(8))
def test_layered_layout_on_random_dags(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 40))
    order = rng.permutation(d)  # a random topological order, nodes listed in another
    rank = np.argsort(order)
    parents = []
    for i in range(d):
        earlier = [int(v) for v in order[:rank[i]]]
        k = min(len(earlier), int(rng.integers(0, 4)))
        parents.append(sorted(rng.choice(earlier, size=k, replace=False).tolist()) if k else [])
    names = [f"v{i}" * int(rng.integers(1, 4)) for i in range(d)]
    check_drawing(layout_dag(names, parents, engine="layered"), parents)


def test_without_dot_the_layered_layout_is_used(monkeypatch, tmp_path):
    monkeypatch.setattr(DL.shutil, "which", lambda name: None)
    bn = read_bif("alarm")
    assert layout_dag(bn.variables_, bn.parents_).engine == "layered"
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        layout_dag(bn.variables_, bn.parents_, engine="dot")
    from genlab.report.pgm import bayesnet_figures

    class Run:
        def figure(self, name):
            return tmp_path / name

    title, path, caption = bayesnet_figures(Run(), bn, bn.sample(200, generator=0), n=200)[0]
    assert title == "Learned graph" and "46 edges" in caption and "Graphviz dot not installed" in caption


@pytest.mark.skipif(not DL.dot_available(), reason="Graphviz dot is not installed")
def test_auto_uses_dot_when_installed():
    bn = read_bif("asia")
    assert layout_dag(bn.variables_, bn.parents_).engine == "dot"


def test_the_figure_draws_every_node_and_edge():
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    bn = read_bif("asia")
    layout = layout_dag(bn.variables_, bn.parents_, engine="layered")
    ax = draw_dag(layout).axes[0]
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == len(bn.edges()) == 8
    assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == 8
    assert sorted(t.get_text() for t in ax.texts) == sorted(bn.variables_)


def test_layout_refuses_bad_graphs():
    with pytest.raises(ValueError, match="cycle"):
        layout_dag(["a", "b"], [[1], [0]])
    with pytest.raises(ValueError, match="engine"):
        layout_dag(["a"], [[]], engine="neato")
    with pytest.raises(ValueError, match="indices"):
        layout_dag(["a"], [[3]])
    empty = layout_dag([], [])
    assert empty.edges == [] and empty.centres.shape == (0, 2)
