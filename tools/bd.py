#!/usr/bin/env python
"""Bjøntegaard BD-rate / BD-PSNR of TEST.json against REF.json (same as `gqcodec bd`).

Thin wrapper for working from a source checkout: `python tools/bd.py --help`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gqcodec.cli_eval import bd_cmd  # noqa: E402

if __name__ == "__main__":
    bd_cmd.main(prog_name="bd.py")
