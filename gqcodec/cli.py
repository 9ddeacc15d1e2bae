"""The ``gqcodec`` command line.

Every user error ends with one line on stderr and a non-zero exit status;
outputs are written to a temporary file beside the target and renamed, and an
existing file is only replaced with ``--force``.
"""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import click

import bitstream

EXAMPLES = """
\b
Examples:
  gqcodec compress photo.png photo.gqc            # default quality, range coded
  gqcodec compress -q 2 photo.jpg small.gqc --force
  gqcodec compress photo.jpg small.gqc --max-bytes 20000   # best quality that fits
  gqcodec decompress photo.gqc photo_out.png      # output format from the extension
  gqcodec reduce photo.gqc small.gqc -q 2         # a smaller file without the original image
  gqcodec reduce photo.gqc small.gqc --max-bytes 8000
  gqcodec info photo.gqc                           # header fields, bpp, model
  gqcodec models                                   # the quality ladder
  cat photo.png | gqcodec compress - - > photo.gqc
"""


from .fileutil import UserError, check_output
from .fileutil import write_atomic as _write_file


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path} is a directory")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def write_atomic(path: str, data: bytes, force: bool) -> None:
    """Write ``data`` to ``path`` via a temporary file + rename (``-``: stdout)."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    check_output(path, force)
    _write_file(path, data, force=force)


def image_format_for(path: str, fmt: str | None) -> str:
    from PIL import Image

    if fmt:
        return fmt.upper()
    if path == "-":
        return "PNG"
    ext = Path(path).suffix.lower()
    formats = Image.registered_extensions()
    if ext not in formats or formats[ext] not in Image.SAVE:
        raise UserError(f"cannot tell an image format from '{ext or path}'; use an extension like .png, .jpg, .webp or --format")
    return formats[ext]


def size_limit_options(what: str):
    """The --max-bytes / --max-bpp options (instead of -q) of a command that makes a ``what``."""
    def add(f):
        f = click.option("--max-bpp", type=click.FloatRange(min=0, min_open=True), default=None,
                         help=f"instead of -q: the best quality whose {what} is at most this many bits per pixel")(f)
        return click.option("--max-bytes", type=click.IntRange(min=1), default=None,
                            help=f"instead of -q: the best quality whose {what} is at most this many bytes")(f)
    return add


class UsageLine(click.UsageError):
    """A usage error as one ``gqcodec: error: ...`` line naming the command's help (exit status 2)."""

    def show(self, file=None):
        where = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"gqcodec: error: {self.format_message()}{where}", err=True)

    @classmethod
    def of(cls, e: click.UsageError) -> click.UsageError:
        """``e`` as one line; click's "no arguments: show the help" stays as it is."""
        if isinstance(e, (cls, getattr(click.exceptions, "NoArgsIsHelpError", ()))):
            return e
        return cls(e.format_message(), e.ctx)


class SafeGroup(click.Group):
    """Turns every failure of a subcommand into one ``gqcodec: error: ...`` line (exit 1; usage
    errors exit 2)."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:  # the group's own options (gqcodec --bogus)
            raise UsageLine.of(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:  # a subcommand's arguments
            raise UsageLine.of(e) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        except BrokenPipeError:
            # the reader went away (`gqcodec models | head`): stop quietly, and keep Python's
            # exit-time flush of stdout from raising again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(1) from None
        except Exception as e:  # noqa: BLE001
            if os.environ.get("GQCODEC_DEBUG"):
                raise
            raise UserError(_describe(e)) from None


@click.group(cls=SafeGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES)
@click.version_option(package_name="gqcodec")
def main():
    """gqcodec: a lossy neural image codec built on Gaussian Quant.

    Images become .gqc files: a small versioned header plus one codebook index
    per latent block, range coded with the model's index prior (or raw
    bit-packed).
    """


@main.command(epilog=EXAMPLES)
@click.argument("src")
@click.argument("dst")
@click.option("-q", "--quality", type=int, default=None, help="quality level (see `gqcodec models`)")
@click.option("--range", "mode", flag_value="range", default=True, help="range-code the indices (default)")
@click.option("--raw", "mode", flag_value="raw", help="bit-pack the indices at log2 K bits each")
@click.option("--rdoq", type=click.FloatRange(min=0), default=None,
              help="rate-optimised quantization strength for range coding (default: the model's tuned value; 0: off)")
@click.option("--adaptive/--dense", default=None,
              help="adaptive: each latent position keeps only the blocks that pay for their bits (format v2; "
                   "default with range coding when the model is tuned for it); dense: every position codes all "
                   "n(q) blocks (format v1)")
@click.option("--refine", type=click.IntRange(min=0), default=None,
              help="iterations of decoder-checked index refinement, encoder only (default: the model's "
                   "setting; 0: off, a faster encode)")
@size_limit_options("file")
@click.option("--strip-metadata", is_flag=True,
              help="do not store the image's EXIF and XMP (camera, date, GPS position...); "
                   "by default they are kept (format v4 or later)")
@click.option("--fast-decode", is_flag=True,
              help="code block 0 without the model's spatial context (format v5/v3/v1 instead of v6/v7): "
                   "files a few % larger that decode several times faster")
@click.option("--model", default=None, help="model name (default: the shipped default)")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda")
@click.option("-f", "--force", is_flag=True, help="overwrite DST if it exists")
def compress(src, dst, quality, mode, rdoq, adaptive, refine, max_bytes, max_bpp, strip_metadata, fast_decode, model,
             device, force):
    """Compress image SRC (png, jpg, webp, ...; - for stdin) to DST (.gqc; - for stdout)."""
    from .codec import load
    from .imageio import open_image

    check_output(dst, force)
    if max_bytes is not None and max_bpp is not None:
        raise UserError("give --max-bytes or --max-bpp, not both")
    if quality is not None and (max_bytes is not None or max_bpp is not None):
        raise UserError("give -q/--quality or a size limit (--max-bytes / --max-bpp), not both")
    image = open_image(read_input(src)) if src == "-" else open_image(src)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        click.echo(f"gqcodec: note: {src} has {frames} frames; only the first is coded", err=True)
    codec = load(model, device=device)
    data = codec.compress(image, quality=quality, mode=mode, rdoq=rdoq, adaptive=adaptive,
                          max_bytes=max_bytes, max_bpp=max_bpp, keep_metadata=not strip_metadata, refine=refine,
                          context=not fast_decode)
    write_atomic(dst, data, force)
    if dst != "-":
        h = bitstream.read_header(data)
        layout = ", adaptive" if h.layout == "prefix" else ""
        layout += f", {h.metadata_length} bytes of metadata" if h.metadata_length else ""
        click.echo(f"{src} -> {dst}: {h.width}x{h.height}, {len(data)} bytes, "
                   f"{len(data) * 8 / (h.width * h.height):.4f} bpp (model {h.model_id}, quality {h.quality}, "
                   f"{h.coding}{layout})", err=True)


@main.command(epilog=EXAMPLES)
@click.argument("src")
@click.argument("dst")
@click.option("--format", "fmt", default=None, help="output image format (default: from DST's extension; PNG for stdout)")
@click.option("--device", default="cpu", show_default=True)
@click.option("-f", "--force", is_flag=True, help="overwrite DST if it exists")
def decompress(src, dst, fmt, device, force):
    """Decompress SRC (.gqc; - for stdin) to image DST (format from its extension; - for stdout)."""
    from .codec import load_for
    from .imageio import save_metadata_kwargs

    check_output(dst, force)
    fmt = image_format_for(dst, fmt)
    data = read_input(src)
    img = load_for(bitstream.read_header(data), device, what=src).decompress(data)
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt, **save_metadata_kwargs(img, fmt))
    except (KeyError, OSError, ValueError) as e:
        raise UserError(f"cannot write {img.mode} image as {fmt}: {e}") from None
    write_atomic(dst, buf.getvalue(), force)


@main.command(epilog=EXAMPLES)
@click.argument("src")
@click.argument("dst")
@click.option("-q", "--quality", type=int, default=None, help="the lower quality level to keep (see `gqcodec models`)")
@size_limit_options("reduced file")
@click.option("--fast", is_flag=True,
              help="only drop each position's blocks beyond the quality's n(q): no decoding (milliseconds after start-up), "
                   "~10%% more bits than the default, which re-chooses each position's block count")
@click.option("--device", default="cpu", show_default=True)
@click.option("-f", "--force", is_flag=True, help="overwrite DST if it exists")
def reduce(src, dst, quality, max_bytes, max_bpp, fast, device, force):
    """Make a smaller .gqc file DST of the image in SRC at a lower quality, without the original.

    The file's codebook indices are kept (no new search): every position keeps a prefix of its
    blocks, the way the encoder of that quality chooses them, or with --fast exactly the first
    n(q). Metadata is kept.
    """
    from .card import reducer_for

    check_output(dst, force)
    if [quality, max_bytes, max_bpp].count(None) != 2:
        raise UserError("give one of -q/--quality, --max-bytes and --max-bpp")
    data = read_input(src)
    header = bitstream.read_header(data)
    maker = reducer_for(header, fast, device, what=src)  # fast: the model's ladder and prior, no torch
    out = maker.reduce(data, quality, fast=fast, max_bytes=max_bytes, max_bpp=max_bpp)
    write_atomic(dst, out, force)
    if dst != "-":
        h = bitstream.read_header(out)
        click.echo(f"{src} -> {dst}: quality {header.quality} -> {h.quality}, {len(data)} -> {len(out)} bytes, "
                   f"{len(out) * 8 / (h.width * h.height):.4f} bpp", err=True)


@main.command()
@click.argument("src")
@click.option("--json", "as_json", is_flag=True, help="print the header as JSON")
def info(src, as_json):
    """Print the header of a .gqc file (no model needed)."""
    data = read_input(src)
    header = bitstream.read_header(data)
    d = header.to_dict()
    d["file_bytes"] = len(data)
    d["bpp"] = len(data) * 8 / (header.width * header.height)
    if header.metadata_length:
        try:
            d["metadata"] = {k: f"{len(v)} bytes" for k, v in bitstream.read_metadata(data).items()}
        except bitstream.FormatError as e:
            d["metadata"] = f"unreadable ({e})"
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    width = max(len(k) for k in d)
    for k, v in d.items():
        click.echo(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print the registry as JSON")
@click.option("--all", "show_all", is_flag=True, help="also print the quality ladders of superseded models")
def models(as_json, show_all):
    """List the shipped models and their quality ladders (Kodak bpp / PSNR).

    The default model comes first; superseded models (kept so that their files decode) get one
    line each unless --all."""
    from . import zoo

    reg = zoo.registry()
    if as_json:
        click.echo(json.dumps(reg, indent=2))
        return
    if not reg["models"]:
        raise UserError("no model is installed")
    default = reg.get("default")
    for name in sorted(zoo.model_names(), key=lambda n: (n != default, bool(reg["models"][n].get("superseded_by")))):
        e = zoo.entry(name)
        star = " (default)" if name == default else ""
        click.echo(f"{name}{star}: {e.get('description', '')}")
        if e.get("superseded_by"):
            kept = "its decoder is" if e.get("decoder_only") else "kept"
            click.echo(f"  superseded by {e['superseded_by']}; {kept} installed so that its files decode")
            if not show_all:
                continue
        _print_ladder(e)


def _print_ladder(e: dict) -> None:
    from . import zoo

    kodak = {int(r["quality"]): r for r in e.get("kodak", [])}
    click.echo(f"  {'quality':>7} {'blocks':>6} {'K':>4} {'RDOQ':>5} {'raw bpp':>8} {'Kodak bpp':>9} {'PSNR dB':>8}"
               f" {'MS-SSIM':>8} {'adaptive λ':>10}")
    for q, n in sorted((int(q), n) for q, n in e["ladder"].items()):
        r = kodak.get(q, {})
        fmt = lambda k, f: (f % r[k]) if k in r else "-"
        gamma = zoo.rdoq_strength(e, q)
        lam = e.get("adaptive_lambda", {}).get(str(q))
        kb = int(e.get("index_bits", {}).get(str(q), e.get("K_bits", 16)))
        click.echo(f"  {q:>7} {n:>6} {'2^' + str(kb):>4} {gamma:>5g} {n * kb / e.get('stride', 16) ** 2:>8.4f} "
                   f"{fmt('bpp', '%.4f'):>9} {fmt('psnr-rgb', '%.2f'):>8} {fmt('ms-ssim-rgb', '%.4f'):>8}"
                   f" {'dense' if lam is None else f'{lam:g}':>10}")


@main.command()
@click.option("--run-dir", default="runs/default", show_default=True, help="checkpoint/log folder (resumes if a checkpoint is there)")
@click.option("--data", default=None, help="folder of training images [../shared/data/train]")
@click.option("--steps", default=1000, show_default=True, type=int, help="total steps to reach")
@click.option("--batch", default=8, show_default=True, type=int)
@click.option("--crop", default=128, show_default=True, type=int)
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--lr-end", default=0.0, show_default=True, type=float,
              help="> 0: cosine decay of the learning rate to this value over this run (its steps or --time-limit)")
@click.option("--time-limit", default=0.0, show_default=True, type=float,
              help="> 0: the run's training seconds over all its resumes; it stops with a checkpoint when they are spent")
@click.option("--lmbda", default=0.01, show_default=True, type=float, help="distortion weight (on 255^2 MSE)")
@click.option("--tdc-max", default=1e5, show_default=True, type=float, help="cap of the TDC above-band multiplier")
@click.option("--tdc-quantile", default=0.99, show_default=True, type=float, help="KL quantile the TDC multipliers adapt on (1.0: max/min as in the reference)")
@click.option("--nested", default=0.5, show_default=True, type=float, help="probability of nested block dropout")
@click.option("--nested-depths", default="", help="comma-separated block counts a dropped-out sample keeps, drawn "
              "uniformly from the list, so a repeated count weighs more (docs/training.md); default: any of 1..blocks")
@click.option("--threads", default=0, type=int, help="torch CPU threads (0: default)")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="bf16: mixed precision (bf16 autocast, channels-last), ~2x the steps per second on CPUs with AMX "
                   "(weights, optimizer, KL and loss stay float32), but ~10x slower where bf16 is emulated; "
                   "auto: bf16 on CPUs with AMX/AVX512-BF16, fp32 elsewhere (GPUs included)")
@click.option("--device", default="auto", show_default=True)
@click.option("--init", default="", help="weights (.safetensors) or checkpoint (.pt) to start from when --run-dir has no checkpoint")
@click.option("--phase", type=click.Choice(["vae", "decoder"]), default="vae", show_default=True,
              help="vae: TDC training; decoder: freeze the encoder and fine-tune the decoder on GQ codewords")
@click.option("--model-config", default="{}", help='JSON GQConfig fields, e.g. \'{"C": 320, "m": 16, "K_bits": 16}\'; with --init, a larger C grows the model (new blocks appended)')
@click.option("--log-every", default=50, type=int, show_default=True)
@click.option("--val-every", default=500, type=int, show_default=True, help="0: no validation")
@click.option("--ckpt-every", default=200, type=int, show_default=True)
@click.option("--max-images", default=0, type=int, help="use only the first N images (0: all)")
@click.option("--no-progress", is_flag=True, help="print JSON log lines instead of a progress bar")
def train(run_dir, data, steps, batch, crop, lr, lr_end, time_limit, lmbda, tdc_max, tdc_quantile, nested, nested_depths, threads, precision, device, init, phase, model_config,
          log_every, val_every, ckpt_every, max_images, no_progress):
    """Train (or resume) a GQ-VAE with TDC.

    \b
    Example:
      gqcodec train --run-dir ~/gq-runs/base --steps 20000 --crop 128
    """
    from .train import DEFAULT_DATA, TrainConfig, train as run_train

    try:
        mcfg = json.loads(model_config)
    except json.JSONDecodeError as e:
        raise UserError(f"--model-config is not JSON: {e}") from None
    try:
        depths = tuple(int(d) for d in nested_depths.split(",") if d.strip())
    except ValueError:
        raise UserError(f"--nested-depths must be comma-separated integers, got '{nested_depths}'") from None
    cfg = TrainConfig(data=data or str(DEFAULT_DATA), run_dir=run_dir, steps=steps, batch=batch, crop=crop,
                      lr=lr, lr_end=lr_end, time_limit=time_limit, lmbda=lmbda, tdc_max=tdc_max, tdc_quantile=tdc_quantile, nested=nested, nested_depths=depths, threads=threads, precision=precision, device=device, init=init, phase=phase,
                      model=mcfg, log_every=log_every, val_every=val_every,
                      ckpt_every=ckpt_every, max_images=max_images)
    last = run_train(cfg, progress=not no_progress)
    click.echo(json.dumps(last))


def _register_optional():
    try:
        from . import cli_eval
    except ImportError:  # pragma: no cover - evaluation extras missing
        return
    for name in dir(cli_eval):
        obj = getattr(cli_eval, name)
        if isinstance(obj, click.Command) and obj.name not in main.commands:
            main.add_command(obj)


_register_optional()


def run():
    """Console entry point."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module="torch")
    main()


def _describe(e: Exception) -> str:
    msg = str(e) or e.__class__.__name__
    known = ("FormatError", "CodecError", "ImageInputError", "UnknownModelError")
    if e.__class__.__name__ in known:
        return msg
    if isinstance(e, OSError):
        return f"{e.strerror or msg}{': ' + e.filename if getattr(e, 'filename', None) else ''}"
    return f"{e.__class__.__name__}: {msg} (set GQCODEC_DEBUG=1 for a traceback)"


if __name__ == "__main__":
    run()
