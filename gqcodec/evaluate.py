"""Rate-distortion evaluation harness: real bytes, 8-bit metrics, wall-clock times.

For every image of a folder and every quality of a codec the harness

1. encodes the RGB image to bytes with the codec adapter (timed: ``enc_s``),
2. writes the bytes to a real file (``<image stem>.q<quality><ext>``) in a temporary
   folder (or ``keep_dir``) and reads them back, so every stream is a genuine file;
   ``bpp = file size * 8 / (W * H)`` with all headers included,
3. decodes the bytes read back (timed: ``dec_s``), converts to 8-bit RGB and measures
   PSNR-RGB and MS-SSIM-RGB against the original (:mod:`gqcodec.metrics`).

:func:`evaluate` returns the summary in CompressAI's JSON schema (one point per quality,
values averaged over images, PSNR averaged per image with infinite values capped at
:data:`gqcodec.metrics.PSNR_CAP` dB, points sorted by bpp ascending, extra key
``quality``) and the per-image records (:func:`write_csv` writes them).

Codec adapters share one interface (:class:`Adapter`): ``name``, ``description``,
``qualities``, ``ext``, ``encode(img, quality) -> bytes``, ``decode(data) -> PIL.Image``.
:func:`make_adapter` builds one by name: ``gqcodec`` or one of :data:`CLASSICAL`.

Torch runs with one thread by default (``threads=1``), which keeps MS-SSIM bit-exact
across runs and keeps the measured times single-threaded.
"""
from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, features

from . import metrics

IMAGE_EXTS = (".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp")
CSV_FIELDS = ("image", "quality", "bytes", "bpp", "psnr", "ms-ssim", "enc_s", "dec_s")


class EvalError(ValueError):
    """A user-facing problem (no images, unknown codec, codec unavailable, ...)."""


# -- adapters ------------------------------------------------------------------------


class Adapter:
    """Common interface of the codecs the harness can run."""

    name: str = "codec"
    description: str = ""
    ext: str = ".bin"
    qualities: list = []

    def encode(self, img: Image.Image, quality) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def decode(self, data: bytes) -> Image.Image:  # pragma: no cover - interface
        raise NotImplementedError


def _pillow_versions() -> str:
    import PIL

    libs = []
    for feat, label in (("libjpeg_turbo", "libjpeg-turbo"), ("webp", "libwebp"), ("avif", "libavif"),
                        ("jpg_2000", "OpenJPEG")):
        try:
            v = features.version(feat)
        except (ValueError, KeyError):
            v = None
        if v:
            libs.append(f"{label} {v}")
    return f"Pillow {PIL.__version__} ({', '.join(libs)})"


class PillowAdapter(Adapter):
    """A codec reached through ``Image.save`` / ``Image.open`` in memory."""

    format: str = ""

    def save_kwargs(self, quality) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def encode(self, img: Image.Image, quality) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=self.format, **self.save_kwargs(quality))
        return buf.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im


class JPEGAdapter(PillowAdapter):
    """JPEG (libjpeg via Pillow), baseline Huffman, 4:2:0 (``subsampling=2``) or 4:4:4 (0)."""

    format = "JPEG"
    ext = ".jpg"

    def __init__(self, subsampling: int = 2, qualities: Sequence[int] | None = None):
        if subsampling not in (0, 2):
            raise ValueError("subsampling must be 2 (4:2:0) or 0 (4:4:4)")
        self.subsampling = subsampling
        tag = "420" if subsampling == 2 else "444"
        self.name = f"pillow-jpeg{tag}"
        self.description = (f"JPEG via {_pillow_versions()}, {tag[0]}:{tag[1]}:{tag[2]} chroma subsampling, "
                            "baseline Huffman (optimize=False)")
        self.qualities = list(qualities) if qualities is not None else \
            [1, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95]

    def save_kwargs(self, quality) -> dict:
        return {"quality": int(quality), "subsampling": self.subsampling}


class WebPAdapter(PillowAdapter):
    """WebP lossy (libwebp via Pillow), ``method=4``."""

    format = "WEBP"
    ext = ".webp"
    name = "pillow-webp"

    def __init__(self, qualities: Sequence[int] | None = None, method: int = 4):
        self.method = method
        self.description = f"WebP lossy via {_pillow_versions()}, method={method}"
        self.qualities = list(qualities) if qualities is not None else \
            [0, 5, 10, 15, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95]

    def save_kwargs(self, quality) -> dict:
        return {"quality": int(quality), "method": self.method, "lossless": False}


class AVIFAdapter(PillowAdapter):
    """AVIF (libavif via Pillow), default speed and 4:2:0, Pillow's default thread count."""

    format = "AVIF"
    ext = ".avif"
    name = "pillow-avif"

    def __init__(self, qualities: Sequence[int] | None = None):
        if not features.check("avif"):
            raise EvalError("this Pillow has no AVIF support")
        self.description = f"AVIF via {_pillow_versions()}, default speed, 4:2:0"
        self.qualities = list(qualities) if qualities is not None else \
            [0, 5, 10, 15, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95]

    def save_kwargs(self, quality) -> dict:
        return {"quality": int(quality)}


JPEG2000_BPP_TARGETS = (0.0625, 0.09, 0.125, 0.18, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


class JPEG2000Adapter(PillowAdapter):
    """JPEG 2000 (OpenJPEG via Pillow): one layer at compression ratio ``quality``
    (= 24 / target bpp), irreversible 9/7 wavelet, ``mct=1`` colour transform
    (Pillow's default ``mct=0`` codes R, G, B separately and loses about 4 dB)."""

    format = "JPEG2000"
    ext = ".jp2"
    name = "pillow-jpeg2000"

    def __init__(self, qualities: Sequence[float] | None = None):
        if not features.check("jpg_2000"):
            raise EvalError("this Pillow has no JPEG 2000 support")
        self.description = (f"JPEG 2000 via {_pillow_versions()}, quality_mode='rates' (one layer, compression "
                            "ratio = quality), irreversible 9/7, mct=1")
        self.qualities = list(qualities) if qualities is not None else \
            [round(24.0 / b, 4) for b in JPEG2000_BPP_TARGETS]

    def save_kwargs(self, quality) -> dict:
        return {"quality_mode": "rates", "quality_layers": [float(quality)], "irreversible": True, "mct": 1}


class GQCodecAdapter(Adapter):
    """gqcodec through its codec API (``gqcodec.load``), range-coded ``.gqc`` streams.

    The harness writes each stream to a real ``.gqc`` file and decodes the bytes read
    back from it.
    """

    ext = ".gqc"

    def __init__(self, model: str | None = None, device: str = "cpu", mode: str = "range",
                 qualities: Sequence[int] | None = None, codec=None, rdoq: float | None = None,
                 adaptive: bool | None = None, refine: int | None = None):
        if codec is None:
            import gqcodec

            try:
                codec = gqcodec.load(name=model, device=device)
            except Exception as e:  # noqa: BLE001 - report any loading failure in one line
                raise EvalError(f"cannot load gqcodec model {model or '(default)'}: {e}") from e
        self.codec = codec
        self.mode = mode
        self.rdoq = rdoq
        self.adaptive = adaptive
        self.refine = refine
        self.name = f"gqcodec-{codec.name}"
        self.qualities = list(qualities) if qualities is not None else list(codec.qualities)
        if rdoq is not None or mode != "range":
            strength = f"{0.0 if rdoq is None else float(rdoq):g}"
        else:
            per_q = {q: codec.rdoq_for(q) for q in self.qualities}
            values = set(per_q.values())
            strength = f"{values.pop():g}" if len(values) == 1 else ", ".join(f"q{q}: {g:g}" for q, g in per_q.items())
        tuned = [q for q in self.qualities if codec.adaptive_lambda(q) is not None]
        on = (adaptive is None and mode == "range" and tuned) or adaptive
        layout = ("adaptive rate" + ("" if adaptive or len(tuned) == len(self.qualities)
                                     else f" at q{','.join(map(str, tuned))}")) if on else "dense"
        self.description = (f"gqcodec {_gq_version()} model {codec.name}, {mode} coding, rdoq {strength}, "
                            f"{layout}{self._refine_text()}, device {device}")

    def _refine_text(self) -> str:
        """The index refinement the encodes run, as the description says it ("" when none)."""
        plans = {q: self.codec.refine_plan(q, self.mode, self.refine) for q in self.qualities}
        on = {q: plan for q, plan in plans.items() if plan[0]}
        if not on:
            return ""
        kinds = set(on.values())
        iters, top, alpha = kinds.pop() if len(kinds) == 1 else (None, None, None)
        what = (f"{iters} iteration{'s' * (iters != 1)}, top {top}, alpha {alpha:g}" if iters is not None
                else "; ".join(f"q{q}: {i}/{t}/{a:g}" for q, (i, t, a) in on.items()))
        return f", index refinement ({what}) at q{','.join(map(str, on))}"

    def encode(self, img: Image.Image, quality) -> bytes:
        return self.codec.compress(img, quality=int(quality), mode=self.mode, rdoq=self.rdoq, adaptive=self.adaptive,
                                   refine=self.refine)

    def decode(self, data: bytes) -> Image.Image:
        return self.codec.decompress(data)


def _gq_version() -> str:
    import gqcodec

    return getattr(gqcodec, "__version__", "?")


CLASSICAL: dict[str, Callable[..., Adapter]] = {
    "jpeg": lambda q=None: JPEGAdapter(2, q),
    "jpeg420": lambda q=None: JPEGAdapter(2, q),
    "jpeg444": lambda q=None: JPEGAdapter(0, q),
    "webp": lambda q=None: WebPAdapter(q),
    "avif": lambda q=None: AVIFAdapter(q),
    "jpeg2000": lambda q=None: JPEG2000Adapter(q),
}
CODECS = ("gqcodec",) + tuple(CLASSICAL)


def make_adapter(codec: str, qualities: Sequence | None = None, model: str | None = None,
                 device: str = "cpu", rdoq: float | None = None, adaptive: bool | None = None,
                 refine: int | None = None) -> Adapter:
    """An adapter by name: ``gqcodec`` (with ``model``/``device``/``rdoq``/``adaptive``/``refine``) or one of
    :data:`CLASSICAL`."""
    if codec == "gqcodec":
        return GQCodecAdapter(model=model, device=device, qualities=qualities, rdoq=rdoq, adaptive=adaptive,
                              refine=refine)
    if rdoq is not None:
        raise EvalError("--rdoq applies to gqcodec only")
    if refine is not None:
        raise EvalError("--refine applies to gqcodec only")
    if adaptive is not None:
        raise EvalError("--adaptive/--dense apply to gqcodec only")
    if codec in CLASSICAL:
        return CLASSICAL[codec](qualities)
    raise EvalError(f"unknown codec {codec!r} (choose from {', '.join(CODECS)})")


# -- images ------------------------------------------------------------------------


def default_image_dir() -> Path | None:
    """``../shared/data/kodak`` beside the source checkout when it exists, else ``None``."""
    import gqcodec

    p = Path(gqcodec.__file__).resolve().parents[2] / "shared" / "data" / "kodak"
    return p if p.is_dir() else None


def list_images(folder, max_images: int | None = None) -> list[Path]:
    """Image files of ``folder`` (not recursive), sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise EvalError(f"{folder}: not a folder")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if max_images is not None:
        files = files[:max_images]
    if not files:
        raise EvalError(f"{folder}: no images ({', '.join(IMAGE_EXTS)})")
    return files


def load_rgb(path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


# -- the harness -------------------------------------------------------------------


def _fmt_quality(q) -> str:
    return f"{q:g}" if isinstance(q, float) else str(q)


def evaluate(adapter: Adapter, images: Iterable, qualities: Sequence | None = None, *,
             progress: bool = False, threads: int | None = 1, keep_dir=None, name: str | None = None,
             source: str | None = None) -> tuple[dict, list[dict]]:
    """Run ``adapter`` over ``images`` (paths or PIL images) at every quality.

    Returns ``(summary, records)``: ``summary`` in the results schema (see module doc),
    ``records`` one dict per image and quality with the :data:`CSV_FIELDS`.
    ``threads``: torch intra-op threads during the run (``None``: leave as is).
    ``keep_dir``: keep the encoded files there instead of in a temporary folder.
    """
    qualities = list(adapter.qualities if qualities is None else qualities)
    if not qualities:
        raise EvalError("no qualities to evaluate")
    items = []
    for i, im in enumerate(images):
        if isinstance(im, Image.Image):
            items.append((f"image{i:03d}", im.convert("RGB")))
        else:
            items.append((Path(im).name, Path(im)))
    if not items:
        raise EvalError("no images to evaluate")

    old_threads = None
    if threads is not None:
        import torch

        old_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
    tmp = None
    if keep_dir is not None:
        outdir = Path(keep_dir)
        outdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="gqcodec-eval-")
        outdir = Path(tmp)

    from tqdm import tqdm

    records: list[dict] = []
    bar = tqdm(total=len(items) * len(qualities), desc=adapter.name, unit="enc", disable=not progress,
               dynamic_ncols=True, leave=True)
    try:
        for label, src in items:
            img = src if isinstance(src, Image.Image) else load_rgb(src)
            ref = np.asarray(img)
            w, h = img.size
            stem = Path(label).stem
            for q in qualities:
                t0 = time.perf_counter()
                data = adapter.encode(img, q)
                enc_s = time.perf_counter() - t0
                f = outdir / f"{stem}.q{_fmt_quality(q)}{adapter.ext}"
                f.write_bytes(data)
                data = f.read_bytes()
                t0 = time.perf_counter()
                dec = adapter.decode(data)
                dec_s = time.perf_counter() - t0
                dec_rgb = np.asarray(dec.convert("RGB"))
                if dec_rgb.shape != ref.shape:
                    raise EvalError(f"{adapter.name} q={q} decoded {label} as {dec.size}, expected {img.size}")
                nbytes = f.stat().st_size
                records.append({
                    "image": label, "quality": q, "bytes": nbytes, "bpp": nbytes * 8.0 / (w * h),
                    "psnr": metrics.psnr_rgb(ref, dec_rgb), "ms-ssim": metrics.ms_ssim_rgb(ref, dec_rgb),
                    "enc_s": enc_s, "dec_s": dec_s,
                })
                bar.update(1)
    finally:
        bar.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old_threads is not None:
            import torch

            torch.set_num_threads(old_threads)

    summary = summarize(records, name=name or adapter.name,
                        description=_description(adapter, len(items), source))
    return summary, records


def _description(adapter: Adapter, n: int, source: str | None) -> str:
    where = f" from {source}" if source else ""
    return (f"{adapter.description}. {n} images{where}; bpp from real files (headers included); "
            f"PSNR-RGB and MS-SSIM-RGB on the 8-bit decoded RGB image, averaged per image; "
            f"times: mean wall-clock seconds per image (encode to bytes / decode from bytes)")


def summarize(records: Sequence[dict], name: str, description: str = "") -> dict:
    """Average per-image records per quality into the results schema, sorted by bpp."""
    by_q: dict = {}
    for r in records:
        by_q.setdefault(r["quality"], []).append(r)
    points = []
    for q, rs in by_q.items():
        psnr = [min(r["psnr"], metrics.PSNR_CAP) for r in rs]
        ms = [r["ms-ssim"] for r in rs if not math.isnan(r["ms-ssim"])]
        points.append({
            "quality": q,
            "bpp": float(np.mean([r["bpp"] for r in rs])),
            "psnr-rgb": float(np.mean(psnr)),
            "ms-ssim-rgb": float(np.mean(ms)) if ms else math.nan,
            "encoding_time": float(np.mean([r["enc_s"] for r in rs])),
            "decoding_time": float(np.mean([r["dec_s"] for r in rs])),
        })
    points.sort(key=lambda p: (p["bpp"], p["psnr-rgb"]))
    keys = ["psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time", "quality"]
    if any(math.isnan(p["ms-ssim-rgb"]) for p in points):
        keys.remove("ms-ssim-rgb")  # images too small for MS-SSIM: leave the key out
    from .rd import make_results

    return make_results(name, description, {k: [p[k] for p in points] for k in keys})


def write_csv(records: Sequence[dict], path) -> None:
    """Per-image CSV with the :data:`CSV_FIELDS` columns (full float precision)."""
    from .rd import write_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in CSV_FIELDS})
    write_atomic(path, buf.getvalue())


def parse_qualities(text: str | None):
    """``"1,2,3"`` -> ``[1, 2, 3]`` (floats where a value has a decimal point)."""
    if text is None or not text.strip():
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            try:
                v = float(part)
            except ValueError:
                raise EvalError(f"bad quality {part!r} in {text!r} (expected numbers separated by commas)") from None
            if not math.isfinite(v):
                raise EvalError(f"bad quality {part!r}")
            out.append(v)
    if not out:
        raise EvalError(f"no qualities in {text!r}")
    return out
