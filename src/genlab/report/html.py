"""``write_report``: one self-contained HTML page per run (figures embedded as base64).

The report asks a model only for what the contract guarantees (``sample`` and its
``tags``). Its figure sections are registered in ``genlab.capabilities.REPORT_SECTIONS``
with the tags they require (image samples, reconstructions, interpolations, table
columns, text, music, molecules here; a Bayesian network's graph in ``report.pgm``), and
``write_report`` draws every section that applies: a new family gets the sections its
tags call for, and registers its own in its module. Anything a model or run cannot provide (no trained model yet, data that cannot be
loaded again, a figure that fails) is skipped with a note instead of failing the report.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from pathlib import Path
from typing import Any, Callable

import torch

from .. import __version__
from ..base import atomic_write_bytes
from ..capabilities import REPORT_SECTIONS, Tags, has_data
from ..errors import GenlabError
from ..runs import Run
from .figures import plot_curves, plot_reconstructions, plot_table_samples, save_grid

REPORT_FILE = "report.html"
N_RECON = 10
INTERP_STEPS = 10
INTERP_ROWS = 4
MAX_PER_CLASS = 16
MAX_TABLE_SAMPLES = 2000
GRID_PAD = 3  # px between tiles: 1 px lets dark 8x8 digits run together

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#222}
main{max-width:1080px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid #e3e5e8;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;font-size:14px;margin:6px 0}
td,th{border:1px solid #e3e5e8;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cols{display:flex;gap:32px;flex-wrap:wrap}.cols>div{flex:1;min-width:300px}
figure{margin:12px 0 24px}figcaption{color:#555;font-size:13px;margin-top:6px}
img{max-width:100%;border:1px solid #e3e5e8}img.grid{image-rendering:pixelated}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:13px;color:#fff}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 12px;margin:8px 0;font-size:14px}
code{background:#f3f4f6;padding:1px 4px;border-radius:3px;font-size:13px}
pre.sample{background:#f6f7f9;border:1px solid #e3e5e8;padding:8px 12px;white-space:pre-wrap;font-size:13px}
"""
_STATUS_COLOURS = {"finished": "#2e7d32", "running": "#1565c0", "diverged": "#c62828",
                   "interrupted": "#ef6c00"}


# ----------------------------------------------------------------------------- formatting
def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: Any) -> str:
    """A value as short readable text: floats to 5 significant digits, lists joined."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.5g}"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True) if v else "–"
    return str(v)


def _duration(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec} s" if m < 60 else f"{m // 60} h {m % 60} min"


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] | None = None) -> str:
    out = ["<table>"]
    if head:
        out.append(f"<tr><th>{_esc(head[0])}</th><th>{_esc(head[1])}</th></tr>")
    for k, v in rows:
        cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
        out.append(f"<tr><th>{_esc(k)}</th><td{cls}>{_esc(_fmt(v))}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _img(path: Path, alt: str, *, pixelated: bool = False) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cls = ' class="grid"' if pixelated else ""
    kind = "gif" if Path(path).suffix.lower() == ".gif" else "png"
    return f'<img{cls} alt="{_esc(alt)}" src="data:image/{kind};base64,{data}">'


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


# ----------------------------------------------------------------------------- figures
class _Figures:
    """Collects figure HTML; a figure that raises becomes a note, not a crash."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, title: str, make: Callable[[], tuple[Path, str] | None], *, pixelated: bool = True) -> None:
        try:
            made = make()
        except Exception as e:  # noqa: BLE001 - a report shows what it can
            self.parts.append(f"<h2>{_esc(title)}</h2>" + _note(f"could not draw this figure: "
                                                                f"{type(e).__name__}: {e}"))
            return
        if made is None:
            return
        path, caption = made
        self.parts.append(f"<h2>{_esc(title)}</h2><figure>{_img(path, title, pixelated=pixelated)}"
                          f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _labels(ds: Any, n: int) -> list[str]:
    classes = getattr(ds, "classes", None) if ds is not None else None
    return [classes[i] if classes and i < len(classes) else str(i) for i in range(n)]


class ReportContext:
    """What a report section gets: the run, its loaded model and that model's tags, the
    test split (``None`` when the data cannot be loaded again), the sample count and
    seed, and where the section puts its output: ``figs.add(title, make)`` for a figure
    (``make() -> (png_path, caption)``; a figure that raises becomes a note),
    ``figs.parts.append(html)`` for other HTML, ``notes.append(text)`` for a note."""

    def __init__(self, run: Run, model: Any, tags: Tags, test: Any, n_samples: int, seed: int,
                 figs: "_Figures", notes: list[str]):
        self.run, self.model, self.tags, self.test = run, model, tags, test
        self.n_samples, self.seed, self.figs, self.notes = n_samples, seed, figs, notes


def _sample_figure(run: Run, model: Any, test: Any, n: int, seed: int) -> tuple[Path, str]:
    g = torch.Generator().manual_seed(seed)
    k = model.tags.num_classes
    if k > 0:
        per = max(1, min(MAX_PER_CLASS, math.ceil(n / k)))
        y = torch.arange(k).repeat_interleave(per)
        x = model.sample(k * per, generator=g, y=y)
        path = save_grid(x, run.figure("samples.png"), nrow=per, pad=GRID_PAD)
        labels = _labels(test, k)
        names = (f"classes 0 to {k - 1}" if labels == [str(i) for i in range(k)]
                 else ", ".join(f"{i}: {c}" for i, c in enumerate(labels)))
        return path, f"{k * per} samples (seed {seed}), one row per class, top to bottom: {names}."
    x = model.sample(n, generator=g)
    return save_grid(x, run.figure("samples.png"), pad=GRID_PAD), f"{n} samples from the model (seed {seed})."


def _recon_figure(run: Run, model: Any, test: Any) -> tuple[Path, str]:
    x = test.x[:N_RECON]
    if model.tags.conditional and test.y is not None:
        x_hat = model.reconstruct(x, test.y[:N_RECON])
    else:
        x_hat = model.reconstruct(x)
    path = plot_reconstructions(x, x_hat, run.figure("reconstructions.png"), n=N_RECON,
                                pad=GRID_PAD)
    return path, f"Top: the first {len(x)} test images; bottom: their reconstructions."


def _interp_pairs(test: Any, conditional: bool) -> tuple[list[tuple[int, int, int | None]], str]:
    """Pairs of test indices (and the class to condition on) for interpolation rows."""
    if test.y is None:
        pairs = [(2 * r, 2 * r + 1, None) for r in range(INTERP_ROWS) if 2 * r + 1 < len(test)]
        return pairs, "between pairs of test examples"
    y = test.y.tolist()
    by_class: dict[int, list[int]] = {}
    for i, c in enumerate(y):
        by_class.setdefault(c, []).append(i)
    classes = sorted(by_class)
    pairs: list[tuple[int, int, int | None]] = []
    if conditional:  # a conditional model interpolates style within one class
        for c in classes:
            if len(by_class[c]) >= 2 and len(pairs) < INTERP_ROWS:
                pairs.append((by_class[c][0], by_class[c][1], c))
        return pairs, "between two test examples of the same class, conditioned on that class"
    for r in range(INTERP_ROWS):
        if len(classes) < 2:
            break
        a, b = classes[(2 * r) % len(classes)], classes[(2 * r + 1) % len(classes)]
        pairs.append((by_class[a][0], by_class[b][0], None))
    if not pairs:
        pairs = [(0, 1, None)] if len(test) > 1 else []
    return pairs, "between test examples of different classes"


def _interp_figure(run: Run, model: Any, test: Any) -> tuple[Path, str] | None:
    conditional = model.tags.conditional
    pairs, how = _interp_pairs(test, conditional)
    if not pairs:
        return None
    rows = [model.interpolate(test.x[i], test.x[j], INTERP_STEPS, **({"y": c} if c is not None else {}))
            for i, j, c in pairs]
    path = save_grid(torch.cat(rows), run.figure("interpolation.png"), nrow=INTERP_STEPS,
                     pad=GRID_PAD)
    if test.y is not None:
        names = _labels(test, test.num_classes)
        desc = "; ".join(f"{names[int(test.y[i])]} → {names[int(test.y[j])]}" for i, j, _ in pairs)
        how += f" (rows: {desc})"
    return path, (f"Decoded points on the straight line between the latent codes of two test "
                  f"examples, {INTERP_STEPS} steps, {how}.")


def _table_figure(run: Run, model: Any, test: Any, n: int, seed: int) -> tuple[Path, str]:
    m = max(n, min(len(test), MAX_TABLE_SAMPLES))
    g = torch.Generator().manual_seed(seed)
    k = model.tags.num_classes
    fake = model.sample(m, generator=g, y=torch.arange(m) % k) if k > 0 else model.sample(m, generator=g)
    path = plot_table_samples(test.x, fake, test.columns, run.figure("table_samples.png"))
    return path, (f"Histograms of {len(test)} real test rows (blue) and {m} generated rows "
                  f"(orange, seed {seed}) for the first columns.")


# ----------------------------------------------------------------------------- the report
def _load_model(run: Run) -> tuple[Any, str | None]:
    if not (run.path / "model" / "config.json").is_file():
        return None, (f"No trained model yet (status: {run.info.get('status', 'unknown')}): "
                      "only the training curves are shown.")
    try:
        return run.model(), None
    except (GenlabError, OSError, ValueError) as e:
        return None, f"The model in {run.path / 'model'} could not be loaded: {e}"


def _header(run: Run, rows: list[dict], log_prob_kind: str | None, closed_form: bool = False) -> str:
    info = run.info
    status = str(info.get("status", "unknown"))
    colour = _STATUS_COLOURS.get(status, "#616161")
    data = str(info.get("data", "–"))
    if info.get("data_options"):
        data += " " + _fmt(info["data_options"])
    steps = [r["step"] for r in rows if r.get("split") == "train" and isinstance(r.get("step"), int)]
    facts: list[tuple[str, Any]] = [
        ("model type", info.get("model_type", "–")),
        ("data", data),
        ("data shape", info.get("data_shape")),
        ("training examples", info.get("n_train")),
        ("status", status),
        ("wall time", _duration(info.get("wall_time_s"))),
        *([] if closed_form else [("steps trained", steps[-1] if steps else None)]),
        ("likelihood (log_prob_kind)", log_prob_kind),
        ("created", info.get("created")),
        ("finished", info.get("finished")),
        ("trained with genlab", info.get("genlab_version")),
        ("report by genlab", __version__),
    ]
    if info.get("resumed"):
        facts.insert([k for k, _ in facts].index("finished"), ("resumed", info["resumed"]))
    if info.get("command"):
        cmd = info["command"]
        facts.append(("command", " ".join(map(str, cmd)) if isinstance(cmd, list) else cmd))
    for e in rows:
        if e.get("split") == "event":
            facts.append((f"event: {e.get('event')}", f"at step {e.get('step')}"
                          + "".join(f", {k} {_fmt(v)}" for k, v in e.items()
                                    if k not in ("split", "step", "epoch", "event"))))
    return (f"<h1>{_esc(run.name)}</h1><p class=\"sub\">{_esc(info.get('model_type', 'model'))} on "
            f"{_esc(info.get('data', '?'))} &middot; <span class=\"badge\" style=\"background:{colour}\">"
            f"{_esc(status)}</span></p>" + _table(facts))


#: test metrics computed from log p(x): upper bounds when log p(x) is a lower bound (IWAE)
LIKELIHOOD_METRICS = ("nll_nats", "bits_per_dim", "nll_per_token", "bits_per_token", "perplexity")


def _metrics_html(ev: dict[str, Any], log_prob_kind: str | None, vocab_size: int | None = None) -> str:
    """The test metrics of ``eval.json``; with a lower-bound likelihood (VAEs, the
    sequence VAE) the likelihood metrics are labelled and explained as upper bounds."""
    metrics = ev.get("metrics") if isinstance(ev, dict) else None
    if not metrics:
        return "<h2>Test metrics</h2>" + _note("No eval.json yet: the run has not been evaluated.")
    bound = log_prob_kind == "lower_bound"
    nums = [(f"{k} (upper bound)" if bound and k in LIKELIHOOD_METRICS else k, v)
            for k, v in metrics.items() if not isinstance(v, str)]
    notes = [(k, v) for k, v in metrics.items() if isinstance(v, str)]
    out = f"<h2>Metrics on the {_esc(ev.get('split', 'test'))} split</h2>" + _table(nums, ("metric", "value"))
    shown = [k for k in LIKELIHOOD_METRICS if k in metrics]
    if bound and shown:
        out += _note(f"{', '.join(shown)} come from a lower bound on log p(x) (IWAE, importance samples "
                     "from the encoder q(z|x)), so they are upper bounds: the true values are at most these.")
        ppl = metrics.get("perplexity")
        if isinstance(ppl, (int, float)) and vocab_size and ppl > vocab_size:
            out += _note(f"perplexity (upper bound) {_fmt(float(ppl))} is above the {vocab_size}-token "
                         f"vocabulary, which a uniform guess scores: the bound is loose here (the codes "
                         "q(z|x) proposes explain the sequences poorly), not a sign that the model is worse "
                         "than chance. Compare it only with the same bound of other runs.")
    kl = metrics.get("test_kl")
    if isinstance(kl, (int, float)) and kl < 0.1:
        out += _note(f"test_kl is {_fmt(float(kl))} nats: the posterior has (nearly) collapsed, so "
                     "samples barely depend on z. Train longer, or lower beta.")
    for k, v in notes:
        out += _note(f"{k}: {v}")
    return out


# ----------------------------------------------------------------------------- sections
@REPORT_SECTIONS.register("samples", requires={"modality": "image"}, order=10)
def _image_samples_section(ctx: ReportContext) -> None:
    """A grid of samples, one row per class for a conditional model."""
    ctx.figs.add("Samples", lambda: _sample_figure(ctx.run, ctx.model, ctx.test, ctx.n_samples, ctx.seed))


@REPORT_SECTIONS.register("reconstructions", requires={"modality": "image", "reconstruction": True},
                          accepts=has_data, order=20)
def _reconstructions_section(ctx: ReportContext) -> None:
    ctx.figs.add("Reconstructions", lambda: _recon_figure(ctx.run, ctx.model, ctx.test))


@REPORT_SECTIONS.register("interpolation", requires={"modality": "image", "interpolation": True},
                          accepts=has_data, order=30)
def _interpolation_section(ctx: ReportContext) -> None:
    ctx.figs.add("Latent interpolation", lambda: _interp_figure(ctx.run, ctx.model, ctx.test))


@REPORT_SECTIONS.register("table-columns", requires={"modality": "table"}, accepts=has_data, order=10)
def _table_section(ctx: ReportContext) -> None:
    ctx.figs.add("Real vs generated columns",
                 lambda: _table_figure(ctx.run, ctx.model, ctx.test, ctx.n_samples, ctx.seed), pixelated=False)


def _shown(title: str, ctx: ReportContext, make: Callable[[], str]) -> None:
    """HTML from ``make()``, or a note under ``title`` when it fails."""
    try:
        ctx.figs.parts.append(make())
    except Exception as e:  # noqa: BLE001 - a report shows what it can
        ctx.figs.parts.append(f"<h2>{_esc(title)}</h2>" + _note(f"could not draw samples: {type(e).__name__}: {e}"))


@REPORT_SECTIONS.register("text-samples", requires={"modality": "text", "text_output": True}, order=10)
def _text_section(ctx: ReportContext, n: int = 3) -> None:
    """Generated text, one block per sample."""
    def make() -> str:
        g = torch.Generator().manual_seed(ctx.seed)
        texts = ctx.model.samples_to_text(ctx.model.sample(n, generator=g))
        body = "".join(f"<pre class=\"sample\">{_esc(t)}</pre>" for t in texts)
        return f"<h2>Samples</h2>{body}<p class=\"sub\">{n} samples (seed {ctx.seed}, temperature 1).</p>"

    _shown("Samples", ctx, make)


@REPORT_SECTIONS.register("compositions", requires={"modality": "music"}, order=10)
def _music_section(ctx: ReportContext, n: int = 3) -> None:
    """Pieces of music: piano roll, audio player and MIDI link (files under figures/music/)."""
    def make() -> str:
        from ..pipelines.music import Composer

        g = torch.Generator().manual_seed(ctx.seed)
        paths = Composer(ctx.model)(n, out=ctx.run.path / "figures" / "music", generator=g)
        parts = ["<h2>Compositions</h2>"]
        for i in range(n):
            base = ctx.run.path / "figures" / "music" / f"piece_{i}"
            rel = f"figures/music/piece_{i}"
            parts.append(f"<figure>{_img(base.with_suffix('.png'), f'piece {i}', pixelated=False)}"
                         f"<figcaption><audio controls preload=\"none\" src=\"{rel}.wav\"></audio> "
                         f"<a href=\"{rel}.mid\">MIDI</a> (piece {i}, seed {ctx.seed})</figcaption></figure>")
        if not paths:
            parts.append(_note("the model produced no notes"))
        return "".join(parts)

    _shown("Compositions", ctx, make)


@REPORT_SECTIONS.register("molecules", requires={"modality": "molecule"}, order=10)
def _molecule_section(ctx: ReportContext) -> None:
    """Generated molecules drawn with RDKit, and a latent interpolation when the model has one."""
    _shown("Generated molecules", ctx, lambda: _molecule_samples_html(
        ctx.run, ctx.model, torch.Generator().manual_seed(ctx.seed), ctx.seed))


def _molecule_samples_html(run: Run, model: Any, g: Any, seed: int, n: int = 24) -> str:
    """Generated molecules drawn with RDKit (invalid ones as labelled empty cells), and for
    a model with a latent space a decoded interpolation between two test molecules."""
    from ..chem import canonical, save_grid
    from ..pipelines.molecules import sample_smiles

    smi = sample_smiles(model, n, generator=g, progress=False)
    ok = [canonical(s) if s else None for s in smi]
    path = save_grid(smi, run.figure("samples_molecules.png"), per_row=6, size=200,
                     legends=[s if c else "" for s, c in zip(smi, ok)])
    parts = [f"<h2>Generated molecules</h2><figure>{_img(path, 'generated molecules', pixelated=False)}"
             f"<figcaption>{n} samples (seed {seed}, temperature 1): {sum(c is not None for c in ok)} valid."
             "</figcaption></figure>"]
    if model.tags.interpolation:
        try:
            items = run.data_splits(limit=2).get("test").meta["items"][:2]
            from ..pipelines.molecules import to_smiles  # SELFIES decoded, a condition token dropped

            texts = to_smiles(model, model.interpolate(*_rep_of(model, items), 6))
            p = save_grid(texts, run.figure("interpolation_molecules.png"), per_row=6, size=200, legends=texts)
            parts.append(f"<h2>Latent interpolation</h2><figure>{_img(p, 'interpolation', pixelated=False)}"
                         f"<figcaption>Decoded points on the path between two test molecules ({items[0]} and "
                         f"{items[1]}).</figcaption></figure>")
        except Exception as e:  # noqa: BLE001 - a report shows what it can
            parts.append(_note(f"could not interpolate: {type(e).__name__}: {e}"))
    return "".join(parts)


def _rep_of(model: Any, smiles: list[str]) -> list[str]:
    if model.config.tokenizer != "selfies":
        return smiles
    from ..chem import to_selfies

    return [to_selfies(s) for s in smiles]


def _evaluation_html(run: Run) -> str:
    """The sample-based evaluation written by ``genlab evaluate`` (eval.json "evaluation"):
    one row per score with the real-vs-real floor and the feature space, then its figures."""
    ev = run.eval.get("evaluation") if isinstance(run.eval, dict) else None
    if not ev:
        return ""
    real_what = ev.get("real_what", "real test images")  # records from before genlab said
    floor_what = ev.get("floor_what", "real training images")
    floor = f"{ev['n_floor']} {floor_what}" if ev.get("n_floor") else floor_what
    head = (f"<h2>Evaluation</h2><p class='sub'>{_esc(ev.get('n_fake'))} samples against "
            f"{_esc(ev.get('n_real'))} {_esc(real_what)}, seed {_esc(ev.get('seed'))}, "
            f"{_esc(ev.get('date', ''))}. The floor (real vs real) is the same score for {_esc(floor)}: "
            "the best a model can expect.</p>")
    rows = "".join(
        f"<tr><th>{_esc(r.get('metric'))}</th><td>{_fmt(r.get('value'))}</td>"
        f"<td>{_fmt(r.get('floor')) if r.get('floor') is not None else '&ndash;'}</td>"
        f"<td>{'higher' if r.get('higher_is_better') else 'lower' if r.get('higher_is_better') is False else '&ndash;'}</td>"
        f"<td>{_esc(r.get('feature_space', ''))}</td></tr>"
        for r in ev.get("rows", []))
    table = ("<table><thead><tr><th>metric</th><th>model</th><th>real vs real</th><th>better</th>"
             f"<th>feature space</th></tr></thead><tbody>{rows}</tbody></table>")
    figs = ""
    for name, caption in ev.get("figures", {}).items():
        path = run.path / "figures" / name
        if path.is_file():
            figs += (f"<figure>{_img(path, caption, pixelated=name.endswith('pairs.png'))}"
                     f"<figcaption>{_esc(caption)}</figcaption></figure>")
    notes = "".join(_note(n) for n in ev.get("notes", []))
    return head + table + notes + figs


def _closed_form(run: Run, model: Any) -> bool:
    """Whether the run's model is fitted by its own estimator rather than by
    gradient steps (``trained_by == "estimator"``: Bayesian networks, grid MRFs): it logs
    no training curves and ``TrainConfig`` (lr, batch size, epochs) does not apply."""
    if model is not None:
        return model.tags.trained_by == "estimator"
    return _class_tags(run).get("trained_by") == "estimator"


def _class_tags(run: Run) -> dict[str, Any]:
    """What the run's model class declares (for a run whose model cannot be loaded)."""
    try:
        from ..registry import MODELS

        cls = MODELS.get(str(run.info.get("model_type", "")))
    except ValueError:
        return {}
    return {"log_prob_kind": cls.log_prob_kind, **cls.declared_tags}


#: model-config fields that set the optimisers of an adversarial model (None there
#: means TrainConfig's value)
GAN_OPTIMISER_FIELDS = {"lr_g": "lr", "lr_d": "lr", "betas": "betas"}


def _config_html(run: Run, closed_form: bool) -> str:
    """The Model and Training tables. A closed-form fit gets a sentence instead of the
    unused training settings; an adversarial model (one with ``lr_g``/``lr_d``) shows
    the learning rates and betas its two optimisers really use, in the Training table
    only, instead of ``TrainConfig``'s ``lr``/``betas`` that its loop ignores."""
    info = run.info
    model_cfg = dict(info.get("model_config") or {})
    train_cfg = dict(info.get("train_config") or {})
    if closed_form:
        train = _note(f"{info.get('model_type', 'This model')} is fitted by its own estimator (its "
                      "settings are in the Model table), not by gradient steps: there are no training "
                      "curves, and training settings such as lr, batch size and epochs do not apply.")
    else:
        if "lr_g" in model_cfg or "lr_d" in model_cfg:
            used = {field: model_cfg.pop(field) for field in GAN_OPTIMISER_FIELDS if field in model_cfg}
            fallback = {k: train_cfg.pop(k, None) for k in ("lr", "betas")}
            for field, v in used.items():
                train_cfg[field] = v if v is not None else fallback[GAN_OPTIMISER_FIELDS[field]]
        train = _table(sorted(train_cfg.items()))
        if "lr_g" in train_cfg:
            train += ("<p class=\"sub\">lr_g / lr_d: the generator's and the discriminator's learning rates, "
                      "betas: the Adam betas of both (from the model config, TrainConfig's where it says "
                      "None); the adversarial loop uses no other.</p>")
    return ("<h2>Configuration</h2><div class=\"cols\">"
            "<div><h3>Model</h3>" + _table(sorted(model_cfg.items())) + "</div>"
            "<div><h3>Training</h3>" + train + "</div></div>")


def write_report(run: Run | str | Path, *, n_samples: int = 64, seed: int = 0) -> Path:
    """Write ``<run>/report.html``: a self-contained page about one training run.

    It holds the run's facts (model, data, status, wall time, versions), the model and
    training configs, the test metrics from ``eval.json``, and figures that are also
    kept as PNG files under ``<run>/figures/``: samples (one row per class for a
    conditional model), reconstructions and latent interpolations of test examples
    (for models that ``reconstruct`` / ``interpolate``), real-vs-generated histograms
    for table data, the graph of a Bayesian network, and the training curves. A run
    without a trained model yet gets its facts and curves. A model fitted by its own
    estimator rather than by gradient steps (Bayesian networks, grid MRFs) gets neither
    training curves nor the unused training settings; a GAN's Training table shows the
    learning rates and betas its optimisers use.

    Args:
        run: a ``Run`` or the path of a run folder.
        n_samples: how many samples to draw for the sample grid.
        seed: seed of the generator the samples are drawn with.
    Returns:
        the path of ``report.html``.
    Raises:
        FileNotFoundError / GenlabError: ``run`` is not a run folder.
        ValueError: ``n_samples < 1``.
    """
    if not isinstance(run, Run):
        run = Run(run)
    if int(n_samples) < 1:
        raise ValueError(f"write_report: n_samples must be >= 1, got {n_samples}")
    n_samples = int(n_samples)
    rows = run.metrics()
    model, problem = _load_model(run)
    tags = model.tags if model is not None else None
    log_prob_kind = tags.log_prob_kind if tags is not None else _class_tags(run).get("log_prob_kind")

    figs = _Figures()
    notes: list[str] = [problem] if problem else []
    if model is not None and tags is not None:
        test = None
        try:
            test = run.data_splits().get("test")
        except Exception as e:  # noqa: BLE001 - the data may have moved since training
            notes.append(f"The run's data could not be loaded again ({e}); figures that need "
                         "test examples are skipped.")
        ctx = ReportContext(run, model, tags, test, n_samples, seed, figs, notes)
        sections = REPORT_SECTIONS.applicable(tags, test)
        for entry in sections:
            entry.fn(ctx)
        if not sections and test is not None:
            shape = tags.sample_shape or tuple(run.info.get("data_shape") or ())
            notes.append(f"No sample figure for {tags.modality} data of shape {tuple(shape)}.")
    closed_form = _closed_form(run, model)
    gif = run.path / "figures" / "progress.gif"
    figs.add("Training progress", lambda: (gif, "Fixed-noise samples during training.") if gif.is_file() else None)
    if not closed_form or any(r.get("split") in ("train", "val") for r in rows):
        figs.add("Training curves", lambda: (plot_curves(rows, run.figure("curves.png")),
                                             "Training loss (line) and validation metrics (dots) "
                                             "against the optimizer step."), pixelated=False)

    vocab = (run.info.get("model_config") or {}).get("vocab")
    body = [_header(run, rows, log_prob_kind, closed_form), *(_note(n) for n in notes),
            _metrics_html(run.eval, log_prob_kind, len(vocab) if isinstance(vocab, list) else None),
            _evaluation_html(run), *figs.parts, _config_html(run, closed_form)]
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>genlab report: {_esc(run.name)}</title><style>{_CSS}</style></head>"
            f"<body><main>{''.join(body)}<p class=\"sub\" style=\"margin-top:40px\">Report written "
            f"{_esc(now)} by genlab {_esc(__version__)}.</p></main></body></html>\n")
    out = run.path / REPORT_FILE
    atomic_write_bytes(out, page.encode("utf-8"))
    return out
