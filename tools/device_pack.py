"""Copy as much of the training pack as fits the device tool's 64 MiB working tree into an ignored folder.

The device tool (a lent GPU, docs/training.md) sends the repository's tracked files plus the folders a
call ``carry``-names, 64 MiB in all. The training pack alone is ~45 MiB and the tracked files ~22 MiB,
so this copies the pack's first images in sorted order while they fit in the budget that is left,
and always its last ``--holdout`` images, which training keeps back for validation (so validation
numbers stay comparable with CPU runs on the whole pack).

    python tools/device_pack.py                 # -> .trainpack/, budget = 64 MiB - tracked - .whl - margin
    python tools/device_pack.py --budget-mib 30 --out .trainpack
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gqcodec.train import DEFAULT_DATA, list_images  # noqa: E402

LIMIT = 64 << 20


def tracked_bytes(root: Path) -> int:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return sum((root / p).stat().st_size for p in out.decode().split("\0") if p and (root / p).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def choose(sizes: list[int], budget: int, holdout: int) -> list[int]:
    """Indices of the files to copy: the last ``holdout`` always, then the first ones in order while the total fits."""
    n = len(sizes)
    hold = list(range(max(0, n - holdout), n))
    total = sum(sizes[i] for i in hold)
    head = []
    for i in range(0, n - len(hold)):
        if total + sizes[i] > budget:
            break
        head.append(i)
        total += sizes[i]
    return head + hold


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(ROOT / ".trainpack"))
    ap.add_argument("--budget-mib", type=float, default=0.0,
                    help="bytes for the pack (0: 64 MiB minus the tracked files, .whl and a 2 MiB margin)")
    ap.add_argument("--holdout", type=int, default=8)
    a = ap.parse_args(argv)
    files = list_images(a.data)
    if a.budget_mib > 0:
        budget = int(a.budget_mib * (1 << 20))
    else:
        budget = LIMIT - tracked_bytes(ROOT) - folder_bytes(ROOT / ".whl") - (2 << 20)
    if budget <= 0:
        raise SystemExit("error: no room left for a training pack in the device tool's 64 MiB")
    keep = choose([p.stat().st_size for p in files], budget, a.holdout)
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for i in keep:
        shutil.copy2(files[i], out / files[i].name)
    size = folder_bytes(out)
    print(f"{out}: {len(keep)} of {len(files)} images ({len(keep) - min(a.holdout, len(files))} for training, "
          f"the last {min(a.holdout, len(files))} held back), {size / (1 << 20):.1f} MiB of a {budget / (1 << 20):.1f} MiB budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
