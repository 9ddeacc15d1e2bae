"""Rate-distortion results: JSON files, Bjøntegaard deltas and RD plots.

JSON schema (CompressAI's, see ``../shared/anchors/README.md``)::

    {"name": str, "description": str,
     "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...],
                 "encoding_time": [...], "decoding_time": [...], "quality": [...]}}

Every list in ``results`` has one entry per operating point and the same length;
``bpp`` is required plus at least one quality key (``psnr-rgb``, ``ms-ssim-rgb`` or
``ms-ssim-db-rgb``); other keys are kept if they are lists of the same length.
:func:`validate` checks this, :func:`load` / :func:`save` validate on the way in and out.

Bjøntegaard deltas (:func:`bd_rate`, :func:`bd_psnr`), two methods:

* ``"cubic"`` (the default; VCEG-M33, what most papers report): a least-squares cubic
  polynomial through the points, log-rate as a function of PSNR for BD-rate and PSNR as
  a function of log-rate for BD-PSNR, integrated exactly over the interval where both
  curves have data. Needs at least 4 points per curve; fewer raises :class:`BDError`.
* ``"pchip"``: the same integrals over a piecewise cubic Hermite interpolant through the
  points (scipy's ``PchipInterpolator``); it passes through every point and never
  overshoots, so it is robust for irregular curves. Needs at least 2 points.

Both need the abscissa (PSNR for BD-rate, rate for BD-PSNR) free of duplicates, and
curves that overlap; otherwise :class:`BDError` says why. BD-rate is in percent
(negative: the test codec needs fewer bits for the same quality), BD-PSNR in dB
(positive: the test codec is better at the same rate). The "PSNR" can be any quality
in dB, e.g. MS-SSIM in dB (``metric="ms-ssim-db"``).

:func:`plot_rd` draws PSNR vs bpp and MS-SSIM (dB) vs bpp, our curves thick with
markers over thin anchor curves from ``../shared/anchors`` (:data:`DEFAULT_ANCHORS`).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

QUALITY_KEYS = ("psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb")
TIME_KEYS = ("encoding_time", "decoding_time")
METHODS = ("cubic", "pchip")
DEFAULT_METHOD = "cubic"
METRICS = ("psnr", "ms-ssim-db")


class RDError(ValueError):
    """A results file or computation problem, with a one-line message for the user."""


class RDSchemaError(RDError):
    """Data that does not follow the results schema."""


class BDError(RDError):
    """A Bjøntegaard delta that cannot be computed (too few points, no overlap, ...)."""


# -- schema ------------------------------------------------------------------------


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate(data, source: str = "results") -> dict:
    """Check ``data`` against the schema; returns a deep copy, raises :class:`RDSchemaError`."""
    if not isinstance(data, dict):
        raise RDSchemaError(f"{source}: top level must be a JSON object, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise RDSchemaError(f"{source}: 'name' must be a non-empty string")
    if "description" in data and not isinstance(data["description"], str):
        raise RDSchemaError(f"{source}: 'description' must be a string")
    res = data.get("results")
    if not isinstance(res, dict) or not res:
        raise RDSchemaError(f"{source}: 'results' must be a non-empty object of lists")
    n = None
    for key, values in res.items():
        if not isinstance(values, list):
            raise RDSchemaError(f"{source}: results['{key}'] must be a list")
        if not values:
            raise RDSchemaError(f"{source}: results['{key}'] is empty")
        for i, v in enumerate(values):
            if not _is_number(v) or not math.isfinite(v):
                raise RDSchemaError(f"{source}: results['{key}'][{i}] = {v!r} is not a finite number")
        if n is None:
            n = len(values)
        elif len(values) != n:
            raise RDSchemaError(f"{source}: results lists differ in length "
                                f"('{next(iter(res))}' has {n} entries, '{key}' has {len(values)})")
    if "bpp" not in res:
        raise RDSchemaError(f"{source}: results has no 'bpp'")
    if not any(k in res for k in QUALITY_KEYS):
        raise RDSchemaError(f"{source}: results needs one of {', '.join(QUALITY_KEYS)}")
    if any(v <= 0 for v in res["bpp"]):
        raise RDSchemaError(f"{source}: results['bpp'] must be positive")
    if any(not 0.0 <= v <= 1.0 + 1e-9 for v in res.get("ms-ssim-rgb", [])):
        raise RDSchemaError(f"{source}: results['ms-ssim-rgb'] must lie in [0, 1]")
    for k in TIME_KEYS:
        if any(v < 0 for v in res.get(k, [])):
            raise RDSchemaError(f"{source}: results['{k}'] must not be negative")
    return copy.deepcopy(data)


def make_results(name: str, description: str, results: dict) -> dict:
    """A validated results dict (``results``: key -> list)."""
    return validate({"name": name, "description": description, "results": results})


def load(path) -> dict:
    """Read and validate a results JSON file (raises :class:`RDError` with a one-line message)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RDError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RDError(f"{path}: is a directory") from None
    except UnicodeDecodeError:
        raise RDSchemaError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise RDError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RDSchemaError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    return validate(data, source=str(path))


def dumps(data) -> str:
    return json.dumps(validate(data), indent=2, allow_nan=False) + "\n"


from .fileutil import write_atomic  # noqa: E402  (re-exported for evaluate.py)


def save(data, path) -> None:
    """Validate ``data`` and write it as indented JSON."""
    write_atomic(path, dumps(data))


# -- curves ----------------------------------------------------------------------


def ms_ssim_to_db(x):
    """``-10*log10(1 - x)`` elementwise (MS-SSIM of 1 gives ``inf``)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -10.0 * np.log10(np.clip(1.0 - x, 0.0, None))


def curve(data: dict, metric: str = "psnr") -> tuple[np.ndarray, np.ndarray]:
    """``(bpp, quality)`` arrays sorted by bpp; ``metric`` is ``psnr`` or ``ms-ssim-db``.

    Raises :class:`RDError` when the results lack the metric.
    """
    res = data["results"]
    bpp = np.asarray(res["bpp"], dtype=np.float64)
    if metric == "psnr":
        if "psnr-rgb" not in res:
            raise RDError(f"{data['name']}: results have no 'psnr-rgb'")
        q = np.asarray(res["psnr-rgb"], dtype=np.float64)
    elif metric == "ms-ssim-db":
        if "ms-ssim-rgb" in res:
            q = ms_ssim_to_db(res["ms-ssim-rgb"])
        elif "ms-ssim-db-rgb" in res:
            q = np.asarray(res["ms-ssim-db-rgb"], dtype=np.float64)
        else:
            raise RDError(f"{data['name']}: results have no 'ms-ssim-rgb' or 'ms-ssim-db-rgb'")
    else:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    order = np.argsort(bpp, kind="stable")
    return bpp[order], q[order]


# -- Bjøntegaard ------------------------------------------------------------------


def _points(x, y, what: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise BDError(f"{what}: rate and quality lists differ in length ({x.size} vs {y.size})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise BDError(f"{what}: values must be finite")
    need = 4 if method == "cubic" else 2
    if x.size < need:
        hint = " (use method 'pchip' for 2-3 points)" if method == "cubic" else ""
        raise BDError(f"{what}: the {method} method needs at least {need} points, got {x.size}{hint}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise BDError(f"{what}: duplicate values on the integration axis, cannot interpolate")
    return x, y


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    if method == "cubic":
        c = x.mean()  # centring improves the conditioning of the fit; exact integral below
        poly = np.polynomial.Polynomial.fit(x - c, y, 3, domain=[-1, 1], window=[-1, 1])
        anti = poly.integ()
        return float(anti(hi - c) - anti(lo - c))
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(x, y, extrapolate=False).integrate(lo, hi))
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _mean_delta(x1, y1, x2, y2, method: str, axis: str, unit: str) -> float:
    lo = max(x1[0], x2[0])
    hi = min(x1[-1], x2[-1])
    if not hi > lo:
        raise BDError(f"the curves do not overlap in {axis}: reference {x1[0]:.4g}..{x1[-1]:.4g} {unit}, "
                      f"test {x2[0]:.4g}..{x2[-1]:.4g} {unit}")
    i1 = _integral(x1, y1, lo, hi, method)
    i2 = _integral(x2, y2, lo, hi, method)
    return (i2 - i1) / (hi - lo)


def _log_rates(rate_ref, rate_test, method: str):
    """Validated natural logs of both curves' rates."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    r1, r2 = np.asarray(rate_ref, dtype=np.float64), np.asarray(rate_test, dtype=np.float64)
    if np.any(r1 <= 0) or np.any(r2 <= 0):
        raise BDError("rates must be positive")
    return np.log(r1), np.log(r2)


def bd_rate(rate_ref: Sequence[float], q_ref: Sequence[float], rate_test: Sequence[float],
            q_test: Sequence[float], method: str = DEFAULT_METHOD) -> float:
    """Average rate difference (%) of test vs reference at equal quality (negative = test better)."""
    l1, l2 = _log_rates(rate_ref, rate_test, method)
    x1, y1 = _points(q_ref, l1, "reference", method)
    x2, y2 = _points(q_test, l2, "test", method)
    d = _mean_delta(x1, y1, x2, y2, method, "quality", "dB")
    return (math.exp(d) - 1.0) * 100.0


def bd_psnr(rate_ref: Sequence[float], q_ref: Sequence[float], rate_test: Sequence[float],
            q_test: Sequence[float], method: str = DEFAULT_METHOD) -> float:
    """Average quality difference (dB) of test vs reference at equal rate (positive = test better)."""
    l1, l2 = _log_rates(rate_ref, rate_test, method)
    x1, y1 = _points(l1, q_ref, "reference", method)
    x2, y2 = _points(l2, q_test, "test", method)
    # overlap reported in bpp for readability
    lo, hi = max(x1[0], x2[0]), min(x1[-1], x2[-1])
    if not hi > lo:
        raise BDError(f"the curves do not overlap in rate: reference {math.exp(x1[0]):.4g}..{math.exp(x1[-1]):.4g} "
                      f"bpp, test {math.exp(x2[0]):.4g}..{math.exp(x2[-1]):.4g} bpp")
    return _mean_delta(x1, y1, x2, y2, method, "rate", "log-bpp")


def bd_report(ref: dict, test: dict, metric: str = "psnr") -> dict:
    """BD-rate and BD-quality of ``test`` vs ``ref`` for both methods.

    Returns ``{method: {"bd_rate": float | None, "bd_psnr": float | None, "error": str | None}}``;
    a method that cannot be applied carries its reason in ``error``.
    """
    r1, q1 = curve(ref, metric)
    r2, q2 = curve(test, metric)
    out = {}
    for m in METHODS:
        entry = {"bd_rate": None, "bd_psnr": None, "error": None}
        try:
            entry["bd_rate"] = bd_rate(r1, q1, r2, q2, method=m)
            entry["bd_psnr"] = bd_psnr(r1, q1, r2, q2, method=m)
        except BDError as e:
            entry["error"] = str(e)
        out[m] = entry
    return out


# -- plot ------------------------------------------------------------------------

DEFAULT_ANCHORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (legend label, candidate paths relative to the anchors folder; the first that exists is used)
    ("bmshj2018-factorized (MSE)", ("compressai-kodak/8bit-decoded/compressai-bmshj2018-factorized_mse_ans_cuda.json",
                                    "compressai-kodak/compressai-bmshj2018-factorized_mse_cuda.json")),
    ("bmshj2018-hyperprior (MSE)", ("compressai-kodak/8bit-decoded/compressai-bmshj2018-hyperprior_mse_ans_cuda.json",
                                    "compressai-kodak/compressai-bmshj2018-hyperprior_mse_cuda.json")),
    ("mbt2018 (MSE)", ("compressai-kodak/8bit-decoded/compressai-mbt2018_mse_ans_cuda.json",
                       "compressai-kodak/compressai-mbt2018_mse_cuda.json")),
    ("cheng2020-anchor (MSE)", ("compressai-kodak/8bit-decoded/compressai-cheng2020-anchor_mse_ans_cuda.json",
                                "compressai-kodak/compressai-cheng2020-anchor_mse_cuda.json")),
    ("BPG 4:4:4", ("compressai-kodak/bpg_444_x265_ycbcr.json",)),
    ("VTM", ("compressai-kodak/vtm.json",)),
    ("JPEG 4:2:0", ("pillow-kodak/jpeg420.json",)),
    ("WebP", ("pillow-kodak/webp.json",)),
    ("AVIF", ("pillow-kodak/avif.json",)),
    ("JPEG 2000", ("pillow-kodak/jpeg2000.json",)),
)
"""Anchor curves drawn by default. CompressAI's learned models are taken from
``8bit-decoded/`` (metrics on the 8-bit reconstruction, as ours) when present."""

_LEARNED_STYLE = {"linestyle": "--"}
_CLASSICAL_STYLE = {"linestyle": ":"}


def default_anchors_dir() -> Path:
    """``../shared/anchors`` beside the source checkout (may not exist)."""
    import gqcodec

    return Path(gqcodec.__file__).resolve().parents[2] / "shared" / "anchors"


def default_anchors(anchors_dir=None) -> list[tuple[str, Path]]:
    """``(label, path)`` of the default anchor subset that exists under ``anchors_dir``."""
    base = Path(anchors_dir) if anchors_dir is not None else default_anchors_dir()
    found = []
    for label, candidates in DEFAULT_ANCHORS:
        for rel in candidates:
            p = base / rel
            if p.is_file():
                found.append((label, p))
                break
    return found


def _finite_within(bpp: np.ndarray, q: np.ndarray, xmax: float) -> np.ndarray:
    keep = np.isfinite(q) & (bpp <= xmax)
    return q[keep]


def legend_columns(labels: list[str], fig_width_in: float, max_cols: int = 6) -> int:
    """Legend columns such that a row of the longest labels fits the figure's width.

    About 14 characters per inch at the legend's 9.5 pt, plus ~6 for the line sample.
    """
    if not labels:
        return 1
    per_entry = max(len(label) for label in labels) + 6
    return max(1, min(max_cols, len(labels), int(fig_width_in * 14 // per_entry)))


def plot_rd(ours: Iterable[tuple[str, dict]], anchors: Iterable[tuple[str, dict]], out,
            xmax: float = 1.5, title: str | None = "Kodak") -> tuple[Path, Path]:
    """Write the two-panel RD plot to ``<out stem>.png`` and ``<out stem>.svg``.

    ``ours`` and ``anchors`` are ``(label, results dict)`` pairs. A curve without the
    metric of a panel is left out of that panel. Returns the two paths written.
    """
    import matplotlib
    from matplotlib.figure import Figure

    ours = list(ours)
    anchors = list(anchors)
    if not ours and not anchors:
        raise RDError("nothing to plot")
    out = Path(out)
    png, svg = out.with_suffix(".png"), out.with_suffix(".svg")

    fig = Figure(figsize=(13.0, 6.2), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (("psnr", "PSNR-RGB [dB]", "PSNR"),
              ("ms-ssim-db", "MS-SSIM-RGB [dB]  (−10·log₁₀(1 − MS-SSIM))", "MS-SSIM"))
    ours_colors = ["#d62728", "#111111", "#c51b7d", "#006d2c", "#e6550d", "#3f007d"]
    anchor_colors = ["#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b", "#7f7f7f", "#17becf", "#9467bd",
                     "#bcbd22", "#e377c2", "#393b79", "#637939", "#8c6d31"]
    handles: dict[str, object] = {}
    for ax, (metric, ylabel, short) in zip(axes, panels):
        visible: list[np.ndarray] = []
        for i, (label, data) in enumerate(anchors):
            try:
                bpp, q = curve(data, metric)
            except RDError:
                continue
            learned = not any(s in label.lower() for s in ("jpeg", "webp", "avif", "bpg", "vtm", "hm", "av1"))
            style = _LEARNED_STYLE if learned else _CLASSICAL_STYLE
            (h,) = ax.plot(bpp, q, color=anchor_colors[i % len(anchor_colors)], linewidth=1.2, marker=".",
                           markersize=4, alpha=0.85, label=label, zorder=2, **style)
            handles.setdefault(label, h)
            visible.append(_finite_within(bpp, q, xmax))
        for i, (label, data) in enumerate(ours):
            try:
                bpp, q = curve(data, metric)
            except RDError:
                continue
            (h,) = ax.plot(bpp, q, color=ours_colors[i % len(ours_colors)], linewidth=2.8, marker="o",
                           markersize=6.5, markeredgecolor="white", markeredgewidth=0.8, label=label, zorder=4)
            handles.setdefault(label, h)
            visible.append(_finite_within(bpp, q, xmax))
        ax.set_xlim(0.0, xmax)
        vals = np.concatenate(visible) if visible else np.array([])
        if vals.size:
            lo, hi = float(vals.min()), float(vals.max())
            pad = max(0.5, 0.04 * (hi - lo))
            ax.set_ylim(math.floor(lo - pad), math.ceil(hi + pad))
        ax.set_xlabel("Bit-rate [bpp]", fontsize=11)
        ax.set_ylabel(ylabel, fontsize=11)
        ax.set_title(f"{title}: {short}" if title else short, fontsize=12)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        ax.minorticks_on()
    # one shared legend under the panels: ours first, then the anchors
    order = [lab for lab, _ in ours if lab in handles] + [lab for lab, _ in anchors if lab in handles]
    order = list(dict.fromkeys(order))
    fig.legend([handles[k] for k in order], order, loc="outside lower center",
               ncol=legend_columns(order, fig.get_figwidth()), fontsize=9.5, frameon=False)
    for path, fmt in ((png, "png"), (svg, "svg")):
        def writer(tmp, fmt=fmt):
            with matplotlib.rc_context({"svg.hashsalt": "gqcodec", "svg.fonttype": "path"}):
                fig.savefig(tmp, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)

        write_atomic(path, writer)
    return png, svg


def load_anchor_set(spec: str, anchors_dir=None) -> list[tuple[str, dict]]:
    """Anchors for ``spec``: ``default``, ``none``, or comma-separated JSON paths
    (absolute, or relative to the current folder or to ``anchors_dir``)."""
    if spec == "none":
        return []
    if spec == "default":
        return [(label, load(p)) for label, p in default_anchors(anchors_dir)]
    base = Path(anchors_dir) if anchors_dir is not None else default_anchors_dir()
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        p = Path(item)
        if not p.exists() and (base / item).exists():
            p = base / item
        data = load(p)
        out.append((data["name"], data))
    return out
