"""Copy measured Kodak numbers from an evaluation JSON into the model registry.

    gqcodec eval --model gq-n128-c320 --out docs/results/kodak/gqcodec-gq-n128-c320.json \
        --csv docs/results/kodak/gqcodec-gq-n128-c320.csv
    python tools/update_registry.py gq-n128-c320 docs/results/kodak/gqcodec-gq-n128-c320.json

``gqcodec models`` then lists bpp / PSNR / MS-SSIM per quality.
"""
from __future__ import annotations

import argparse

from gqcodec import rd, zoo


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("results")
    args = ap.parse_args()
    res = rd.load(args.results)["results"]
    if "quality" not in res:
        raise SystemExit("results JSON has no 'quality' list (was it written by gqcodec eval?)")
    rows = []
    for i, q in enumerate(res["quality"]):
        rows.append({"quality": int(q), **{k: round(float(res[k][i]), 5) for k in
                                            ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time") if k in res}})
    reg = zoo.read_registry()
    if args.name not in reg["models"]:
        raise SystemExit(f"unknown model {args.name}")
    reg["models"][args.name]["kodak"] = sorted(rows, key=lambda r: r["quality"])
    zoo.save_registry(reg)
    print(f"{args.name}: {len(rows)} Kodak points written to {zoo.REGISTRY_FILE}")


if __name__ == "__main__":
    main()
