"""Report section for text-conditional image runs: captions beside the images the model
draws for them at each guidance value, and the guidance curve of the last
``genlab evaluate`` (``evaluation.text_to_image``) as a table — caption accuracy up,
diversity down — with the real images' ceiling and floor, the held-out pairs and the
paraphrases."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..capabilities import REPORT_SECTIONS
from ..evaluation.text_to_image import GUIDANCES, has_captions, sample_for_captions, text_conditional
from ..imaging import agg_figure, image_grid, save_figure

N_CAPTIONS = 8
PER_CAPTION = 4


def distinct_captions(captions: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct captions, in order."""
    out: list[str] = []
    for c in captions:
        if c not in out:
            out.append(c)
        if len(out) == k:
            break
    return out


def plot_caption_grid(images: Any, captions: Sequence[str], path: str | Path, *,
                      columns: Sequence[str] | None = None, title: str | None = None) -> Path:
    """A figure of one row per caption: the caption, then its images.

    Args:
        images: ``(K, G, m, C, H, W)`` — ``K`` captions, ``G`` column groups (guidance
            values), ``m`` images each; or ``(K, m, C, H, W)`` for one group.
        captions: the ``K`` captions.
        columns: the ``G`` group titles (``"w = 3"``).
        title: above the figure.
    """
    x = torch.as_tensor(images)
    if x.dim() == 5:
        x = x[:, None]
    if x.dim() != 6 or len(x) != len(captions):
        raise ValueError(f"images must be (K, G, m, C, H, W) for {len(captions)} captions, got {tuple(x.shape)}")
    k, g = x.shape[:2]
    columns = list(columns or [""] * g)
    text_w, group_w = 2.6, 0.42 * x.shape[2] + 0.1  # inches: the caption column and each group of images
    top = 0.55 + (0.3 if title else 0.0)
    fig = agg_figure(text_w + g * group_w + 0.2, top + 0.5 * k + 0.1)
    grid = fig.add_gridspec(k, g + 1, width_ratios=[text_w] + [group_w] * g, wspace=0.06, hspace=0.15)
    for i in range(k):
        ax = fig.add_subplot(grid[i, 0])
        ax.axis("off")
        ax.text(1.0, 0.5, captions[i], ha="right", va="center", fontsize=8, transform=ax.transAxes)
        for j in range(g):
            ax = fig.add_subplot(grid[i, j + 1])
            ax.imshow(np.asarray(image_grid(x[i, j], nrow=x.shape[2], pad=1)), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 and columns[j]:
                ax.set_title(columns[j], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.1 / height, top=1 - top / height)
    return save_figure(fig, path)


def caption_grid(model: Any, captions: Sequence[str], path: str | Path, *, guidances: Sequence[float] = GUIDANCES,
                 per_caption: int = PER_CAPTION, seed: int = 0, **options: Any) -> Path:
    """Sample ``per_caption`` images for each caption at each guidance value (the same noise
    for every ``w``) and draw them with ``plot_caption_grid``."""
    rows = [c for c in captions for _ in range(per_caption)]
    x = torch.stack([sample_for_captions(model, rows, guidance=w, seed=seed, **options) for w in guidances], 1)
    x = x.reshape(len(captions), per_caption, len(guidances), *x.shape[2:]).transpose(1, 2)
    return plot_caption_grid(x, captions, path, columns=[f"w = {w:g}" for w in guidances])


def curve_html(record: dict[str, Any]) -> str:
    """The guidance curve of a text-to-image evaluation record as an HTML table."""
    from .html import _esc, _fmt

    curve = record.get("guidance_curve") or []
    if not curve:
        return ""
    attrs = list(curve[0].get("per_attribute", {}))
    cols = ["w", "all attributes", *attrs, "R-precision", "FID", "KID", "diversity"]
    ceil = record.get("ceiling", {})

    def cells(vals: list[Any]) -> str:
        return "".join(f"<td>{_esc(_fmt(v))}</td>" for v in vals)

    body = []
    for p in curve:
        body.append(f"<tr><th>{_esc(_fmt(p['w']))}</th>" + cells(
            [p.get("all"), *[p["per_attribute"].get(a) for a in attrs], p.get("r_precision"), p.get("fid"),
             p.get("kid"), p.get("diversity")]) + "</tr>")
    body.append("<tr><th>real images</th>" + cells(
        [ceil.get("all"), *[ceil.get("per_attribute", {}).get(a) for a in attrs], ceil.get("r_precision"),
         ceil.get("fid_floor"), ceil.get("kid_floor"), ceil.get("diversity")]) + "</tr>")
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    chance = record.get("chance", {})
    lines = [f"Caption accuracy read by {record.get('judge')}, R-precision by {record.get('image_text_judge')} "
             f"(chance {_fmt(chance.get('r_precision'))}: {chance.get('candidates')} distinct captions), "
             f"{record.get('n_fake')} test captions per guidance value. The real-images row is the ceiling of "
             "the accuracies and R-precision and the real-vs-real floor of FID and KID."]
    for key, what in (("heldout", "held-out shape/colour pairs"), ("paraphrased", "paraphrased captions")):
        r = record.get(key)
        if r:
            per = ", ".join(f"{a} {_fmt(v)}" for a, v in r.get("per_attribute", {}).items())
            lines.append(f"{what} at w = {_fmt(r['w'])}: all attributes {_fmt(r['all'])} (real images "
                         f"{_fmt(r.get('ceiling'))}); {per}.")
    return ("<h2>Text to image: the guidance curve</h2>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + "".join(f"<p class='sub'>{_esc(t)}</p>" for t in lines))


@REPORT_SECTIONS.register("text-to-image", requires=text_conditional, accepts=has_captions, order=15)
def _text_to_image_section(ctx: Any) -> None:
    from ..data.captions import decode_captions

    def grid() -> tuple[Path, str]:
        captions = distinct_captions(decode_captions(ctx.test), N_CAPTIONS)
        path = caption_grid(ctx.model, captions, ctx.run.figure("captions.png"), seed=ctx.seed)
        return path, (f"{PER_CAPTION} samples for each of {len(captions)} test captions at guidance "
                      f"w = {', '.join(f'{w:g}' for w in GUIDANCES)} (the same noise in each column group; "
                      f"w = 0 ignores the caption), seed {ctx.seed}.")

    ctx.figs.add("Captions and their images", grid, pixelated=False)
    ev = ctx.run.eval.get("evaluation") if isinstance(ctx.run.eval, dict) else None
    if ev and ev.get("kind") == "text-to-image":
        ctx.figs.parts.append(curve_html(ev))
    else:
        ctx.notes.append("No text-to-image evaluation yet: `genlab evaluate RUN` scores caption accuracy, "
                         "R-precision, FID/KID and diversity along the guidance curve.")
