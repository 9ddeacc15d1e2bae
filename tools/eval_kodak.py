#!/usr/bin/env python
"""Rate-distortion evaluation of a codec on Kodak or DIR (same as `gqcodec eval`).

Thin wrapper for working from a source checkout: `python tools/eval_kodak.py --help`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gqcodec.cli_eval import eval_cmd  # noqa: E402

if __name__ == "__main__":
    eval_cmd.main(prog_name="eval_kodak.py")
