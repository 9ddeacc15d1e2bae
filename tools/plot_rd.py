#!/usr/bin/env python
"""RD plot (PSNR and MS-SSIM dB vs bpp) of results JSONs against anchors (same as `gqcodec plot`).

Thin wrapper for working from a source checkout: `python tools/plot_rd.py --help`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gqcodec.cli_eval import plot_cmd  # noqa: E402

if __name__ == "__main__":
    plot_cmd.main(prog_name="plot_rd.py")
