"""Evaluation commands: ``eval``, ``plot`` and ``bd`` (click commands).

They are plain :class:`click.Command` objects, registered on the ``gqcodec`` group by
``gqcodec.cli`` and usable on their own (``tools/eval_kodak.py``, ``tools/plot_rd.py``,
``tools/bd.py``). User errors end with one line on stderr and exit status 1, never a
traceback. Outputs go through a temporary file and a rename; existing files are only
replaced with ``--force`` (checked before any work is done).

Heavy modules (torch, matplotlib, scipy) are imported inside the commands, so loading
this module costs nothing for the rest of the CLI.
"""
from __future__ import annotations

import os
from pathlib import Path

import click

__all__ = ["eval_cmd", "plot_cmd", "bd_cmd"]


from .fileutil import UserError as EvalCLIError
from .fileutil import check_output as _check_output


def _user_errors():
    """Exception types that become one-line messages."""
    from .evaluate import EvalError
    from .rd import RDError

    return (EvalError, RDError, OSError, ValueError)


def _one_line(e: Exception) -> str:
    if isinstance(e, OSError) and not isinstance(e, click.ClickException):
        name = getattr(e, "filename", None)
        return f"{e.strerror or e}{': ' + str(name) if name else ''}"
    return " ".join(str(e).split()) or e.__class__.__name__


EVAL_EXAMPLES = """
\b
Examples:
  gqcodec eval --out results.json                          # default model on ../shared/data/kodak
  gqcodec eval imgs/ --model gq-small --qualities 1,2,3 --out small.json --csv small.csv
  gqcodec eval --codec webp --qualities 10,50,75,90 --out webp.json --max-images 4
  gqcodec eval --codec jpeg2000 --qualities 96,48,24 --out j2k.json  # compression ratios
"""


@click.command("eval", epilog=EVAL_EXAMPLES)
@click.argument("image_dir", metavar="[DIR]", required=False, type=click.Path(file_okay=False))
@click.option("--codec", "codec_name", default="gqcodec", show_default=True,
              type=click.Choice(["gqcodec", "jpeg", "jpeg420", "jpeg444", "webp", "avif", "jpeg2000"]),
              help="Codec to evaluate (jpeg = jpeg420).")
@click.option("--model", default=None, help="gqcodec model name (default: the default model).")
@click.option("--device", default="cpu", show_default=True, help="Torch device for gqcodec.")
@click.option("--rdoq", type=click.FloatRange(min=0), default=None,
              help="gqcodec rate-optimised quantization strength (default: the model's tuned value; 0: off).")
@click.option("--adaptive/--dense", default=None,
              help="gqcodec adaptive rate (default: on where the model is tuned for it) or every block everywhere.")
@click.option("--refine", type=click.IntRange(min=0), default=None,
              help="gqcodec index refinement iterations (default: the model's setting; 0: off).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Results JSON (CompressAI schema).")
@click.option("--csv", "csv_path", default=None, type=click.Path(dir_okay=False), help="Per-image CSV.")
@click.option("--qualities", default=None, metavar="Q1,Q2,...",
              help="Qualities to run (default: the codec's sweep; JPEG 2000: compression ratios).")
@click.option("--max-images", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--name", default=None, help="Curve name in the JSON (default: the codec's name).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Torch threads.")
@click.option("--keep-streams", type=click.Path(file_okay=False), default=None,
              help="Keep the encoded files in this folder (default: a temporary folder).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing output files.")
def eval_cmd(image_dir, codec_name, model, device, rdoq, adaptive, refine, out, csv_path, qualities, max_images, name, threads,
             keep_streams, progress, force):
    """Rate-distortion evaluation of a codec over the images in DIR.

    DIR defaults to ../shared/data/kodak beside the source checkout. Writes the
    averaged curve as JSON (bpp, psnr-rgb, ms-ssim-rgb, times, quality; sorted by bpp)
    and optionally one CSV row per image and quality.
    """
    from . import evaluate as ev
    from . import rd

    errors = _user_errors()
    _check_output(out, force)
    if csv_path:
        if Path(csv_path).resolve() == Path(out).resolve():
            raise EvalCLIError("--csv and --out name the same file")
        _check_output(csv_path, force)
    if image_dir is None:
        d = ev.default_image_dir()
        if d is None:
            raise click.UsageError("give DIR (the default ../shared/data/kodak does not exist)")
        image_dir = str(d)
    try:
        qs = ev.parse_qualities(qualities)
        images = ev.list_images(image_dir, max_images)
        adapter = ev.make_adapter(codec_name, qualities=qs, model=model, device=device, rdoq=rdoq,
                                  adaptive=adaptive, refine=refine)
        summary, records = ev.evaluate(adapter, images, progress=progress, threads=threads,
                                       keep_dir=keep_streams, name=name, source=image_dir)
        rd.save(summary, out)
        if csv_path:
            ev.write_csv(records, csv_path)
    except errors as e:
        raise EvalCLIError(_one_line(e)) from None
    res = summary["results"]
    click.echo(f"{summary['name']}: {len(images)} images, {len(res['bpp'])} points -> {out}"
               + (f", {csv_path}" if csv_path else ""), err=True)
    for i in range(len(res["bpp"])):
        ms = f"  MS-SSIM {res['ms-ssim-rgb'][i]:.4f}" if "ms-ssim-rgb" in res else ""
        click.echo(f"  q={res['quality'][i]!s:>8}  {res['bpp'][i]:.4f} bpp  {res['psnr-rgb'][i]:.2f} dB{ms}"
                   f"  enc {res['encoding_time'][i] * 1e3:.1f} ms  dec {res['decoding_time'][i] * 1e3:.1f} ms")


PLOT_EXAMPLES = """
\b
Examples:
  gqcodec plot results.json --out rd.png                  # writes rd.png and rd.svg
  gqcodec plot a.json b.json --out cmp.png --anchors none
  gqcodec plot a.json --out rd.png --anchors pillow-kodak/webp.json,compressai-kodak/vtm.json
"""


@click.command("plot", epilog=PLOT_EXAMPLES)
@click.argument("results", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output PNG; an SVG with the same stem is written beside it.")
@click.option("--anchors", "anchors", default="default", show_default=True, metavar="default|none|A.json,...",
              help="Anchor curves: the default subset, none, or comma-separated JSON files "
                   "(relative to the current folder or to --anchors-dir).")
@click.option("--anchors-dir", type=click.Path(file_okay=False), default=None,
              help="Anchor folder (default: ../shared/anchors beside the source checkout).")
@click.option("--xmax", type=click.FloatRange(min=0, min_open=True), default=1.5, show_default=True,
              help="Right end of the bpp axis.")
@click.option("--title", default="Kodak", show_default=True, help="Panel title prefix.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing output files.")
def plot_cmd(results, out, anchors, anchors_dir, xmax, title, force):
    """RD plot of RESULTS... (PSNR and MS-SSIM in dB vs bpp) against anchor curves."""
    from . import rd

    if not results and anchors == "none":
        raise click.UsageError("nothing to plot: give RESULTS files or anchors")
    png, svg = Path(out).with_suffix(".png"), Path(out).with_suffix(".svg")
    _check_output(str(png), force)
    _check_output(str(svg), force)
    try:
        ours = []
        for path in results:
            data = rd.load(path)
            ours.append((data["name"], data))
        anchor_curves = rd.load_anchor_set(anchors, anchors_dir)
        if anchors == "default" and not anchor_curves:
            click.echo("gqcodec: warning: no default anchors found "
                       f"under {anchors_dir or rd.default_anchors_dir()}", err=True)
        rd.plot_rd(ours, anchor_curves, out, xmax=xmax, title=title or None)
    except _user_errors() as e:
        raise EvalCLIError(_one_line(e)) from None
    click.echo(f"wrote {png} and {svg}", err=True)


BD_EXAMPLES = """
\b
Examples:
  gqcodec bd ../shared/anchors/compressai-kodak/compressai-bmshj2018-factorized_mse_cuda.json results.json
  gqcodec bd ref.json test.json --metric ms-ssim-db
"""


@click.command("bd", epilog=BD_EXAMPLES)
@click.argument("ref", type=click.Path(dir_okay=False))
@click.argument("test", type=click.Path(dir_okay=False))
@click.option("--metric", type=click.Choice(["psnr", "ms-ssim-db"]), default="psnr", show_default=True,
              help="Quality axis: PSNR-RGB, or MS-SSIM in dB.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def bd_cmd(ref, test, metric, as_json):
    """Bjøntegaard BD-rate (%) and BD-PSNR (dB) of TEST against REF.

    Negative BD-rate / positive BD-PSNR: TEST is better. Both the cubic fit (VCEG-M33,
    the default and the number to quote) and the PCHIP variant are printed.
    """
    import json

    from . import rd

    try:
        r, t = rd.load(ref), rd.load(test)
        report = rd.bd_report(r, t, metric)
    except _user_errors() as e:
        raise EvalCLIError(_one_line(e)) from None
    if all(v["error"] for v in report.values()):
        raise EvalCLIError(report[rd.DEFAULT_METHOD]["error"])
    if as_json:
        click.echo(json.dumps({"ref": r["name"], "test": t["name"], "metric": metric, **report}, indent=2))
        return
    qname = "BD-PSNR" if metric == "psnr" else "BD-MS-SSIM"
    click.echo(f"ref:  {r['name']} ({ref})")
    click.echo(f"test: {t['name']} ({test})")
    for m, v in report.items():
        tag = f"{m}{' (default)' if m == rd.DEFAULT_METHOD else ''}"
        if v["error"]:
            click.echo(f"{tag:<17} n/a: {v['error']}")
        else:
            click.echo(f"{tag:<17} BD-rate {v['bd_rate']:+8.2f} %   {qname} {v['bd_psnr']:+7.3f} dB")
