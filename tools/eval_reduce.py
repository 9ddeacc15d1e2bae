"""Rate-distortion of files made by ``gqcodec reduce`` (a lower quality from a .gqc file alone).

Each image is encoded once at ``--from`` quality (a real file); every lower quality of the ladder
is then made from that file with ``Codec.reduce`` (default: counts chosen again; ``--fast``: the
first n(q) blocks only) and decoded from the real file. The ladder of reduced files is written
in the results schema (so it plots and BD-compares like any curve) and compared with ``--ref``,
the model's own results from encoding the originals (``gqcodec eval``)::

    python tools/eval_reduce.py --from 7 --ref docs/results/kodak/gqcodec-gq-n128-c320-r11.json \\
        --out docs/results/kodak/gqcodec-gq-n128-c320-r11-reduced-q7.json [--fast] [--max-images 6]

``encoding_time`` of a reduced point is the time of ``reduce`` (the source files are encoded
first, untimed; the ``--from`` point is the source file, its encoding time ~0).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from PIL import Image

from gqcodec import rd
from gqcodec.evaluate import GQCodecAdapter, default_image_dir, evaluate, list_images, load_rgb, write_csv


class ReduceAdapter(GQCodecAdapter):
    """Lower qualities made from one source file per image by ``Codec.reduce``."""

    def __init__(self, source_quality: int, fast: bool = False, model: str | None = None, codec=None):
        super().__init__(model=model, codec=codec)
        c = self.codec
        self.source_quality, self.fast = int(source_quality), fast
        self.qualities = c.reduce_targets(c.n_blocks(source_quality), self.source_quality, fast) + [self.source_quality]
        self.name = f"gqcodec-{c.name}-reduced-q{self.source_quality}" + ("-fast" if fast else "")
        how = "the first n(q) blocks of each position" if fast else "block counts chosen again (Codec.reduce)"
        self.description = (f"{self.description}; qualities {', '.join(map(str, self.qualities[:-1]))} made by "
                            f"gqcodec reduce from the quality-{self.source_quality} file ({how})")
        self._sources: dict = {}  # sha256 of the image's pixels -> its source file

    def _source(self, img: Image.Image) -> bytes:
        """The image's source file, encoded on first use."""
        key = hashlib.sha256(img.tobytes()).hexdigest()
        if key not in self._sources:
            self._sources[key] = super().encode(img, self.source_quality)
        return self._sources[key]

    def prepare(self, images) -> None:
        """Encode every image's source file before the evaluation times ``encode`` (the reductions)."""
        for path in images:
            self._source(load_rgb(path))

    def encode(self, img: Image.Image, quality) -> bytes:
        src = self._source(img)
        if int(quality) == self.source_quality:
            return src
        return self.codec.reduce(src, int(quality), fast=self.fast)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="source", type=int, required=True, help="quality of the source files")
    ap.add_argument("--fast", action="store_true", help="reduce by prefix truncation only")
    ap.add_argument("--model", default=None)
    ap.add_argument("--images", default=None, help="image folder (default: ../shared/data/kodak)")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--ref", default=None, help="results JSON of the same model encoding the originals")
    ap.add_argument("--out", default=None, help="results JSON to write (a CSV of per-image rows beside it)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    folder = a.images or default_image_dir()
    if folder is None:
        print("no image folder (give --images)", file=sys.stderr)
        return 2
    images = list_images(folder, a.max_images)
    adapter = ReduceAdapter(a.source, a.fast, a.model)
    adapter.prepare(images)
    summary, records = evaluate(adapter, images, adapter.qualities, threads=a.threads,
                                name=adapter.name, source=str(folder))
    if a.out:
        rd.save(summary, a.out)
        write_csv(records, Path(a.out).with_suffix(".csv"))
    res = summary["results"]
    for q, b, p in zip(res["quality"], res["bpp"], res["psnr-rgb"]):
        print(f"q{q}: {b:.4f} bpp, {p:.2f} dB")
    if a.ref:
        ref = rd.load(a.ref)
        if a.max_images:
            print("note: --ref averages its own images; compare on the same images for a fair BD-rate")
        report = rd.bd_report(ref, summary)
        print(json.dumps({"against": a.ref, **report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
