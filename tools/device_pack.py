"""Copy as much of the training pack as fits the device tool's 64 MiB working tree into an ignored folder.

The device tool (a lent GPU, docs/training.md) sends the repository's tracked files plus the folders a
call ``carry``-names, 64 MiB in all. The training pack alone is ~45 MiB and the tracked files ~47 MiB
(after the ninth release), so this copies the pack's first images in sorted order while they fit in the budget that is left,
and always its last ``--holdout`` images, which training keeps back for validation (so validation
numbers stay comparable with CPU runs on the whole pack).

    python tools/device_pack.py                 # -> .trainpack/, budget = 64 MiB - tracked - .whl - margin
    python tools/device_pack.py --budget-mib 30 --out .trainpack
    python tools/device_pack.py --hide-superseded   # first untrack the decoder-only models' files (see below)
    python tools/device_pack.py --restore           # after the GPU session: track them again, nothing else changes

Every release keeps its parent's decoder and prior (3.9 + 0.6 MB) so that old files decode, so the
tracked tree grows by ~5 MB a release and the pack shrinks by ~160 images. Training on the device
needs none of those files, so ``--hide-superseded`` takes the registry's decoder-only models' files
out of the index (``git rm --cached``: they stay on disk) and lists them in ``.git/info/exclude``,
which is what keeps a file from travelling. While they are hidden a pre-commit hook refuses every
commit (a commit would delete them); ``--restore`` puts them back in the index from HEAD, removes
the exclude lines and the hook.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gqcodec.train import DEFAULT_DATA, list_images  # noqa: E402

LIMIT = 64 << 20
MARK_BEGIN = "# >>> tools/device_pack.py --hide-superseded (undo: python tools/device_pack.py --restore)"
MARK_END = "# <<< tools/device_pack.py"
HOOK = f"""#!/bin/sh
{MARK_BEGIN}
echo "error: superseded weights are hidden for the device tool; run python tools/device_pack.py --restore before committing" >&2
exit 1
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def git_path(root: Path, name: str) -> Path:
    """A file inside the repository's git directory (``info/exclude``, ``hooks/pre-commit``)."""
    return root / git(root, "rev-parse", "--git-path", name).strip()


def tracked_bytes(root: Path) -> int:
    return sum((root / p).stat().st_size for p in git(root, "ls-files", "-z").split("\0") if p and (root / p).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def superseded_files(root: Path) -> list[str]:
    """Repository paths of the decoder-only (superseded) models' weights and priors, from the registry."""
    weights = root / "gqcodec" / "weights"
    reg = json.loads((weights / "registry.json").read_text())
    out = []
    for entry in reg["models"].values():
        if entry.get("decoder_only"):
            out += [f"gqcodec/weights/{entry[k]}" for k in ("weights", "prior") if entry.get(k)]
    return sorted(out)


def hidden_files(root: Path) -> list[str]:
    """The paths a --hide-superseded left in .git/info/exclude (empty when nothing is hidden)."""
    exclude = git_path(root, "info/exclude")
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    if MARK_BEGIN not in lines:
        return []
    block = lines[lines.index(MARK_BEGIN) + 1:]
    return [ln.lstrip("/") for ln in block[:block.index(MARK_END)]]


def hide_superseded(root: Path) -> list[str]:
    """Untrack and ignore the superseded models' files, guard commits with a hook; returns the paths."""
    if hidden_files(root):
        raise SystemExit("error: superseded weights are hidden already (python tools/device_pack.py --restore undoes it)")
    hook = git_path(root, "hooks/pre-commit")
    if hook.exists():
        raise SystemExit(f"error: {hook} exists; this tool guards commits with its own hook and will not replace it")
    wanted = superseded_files(root)
    paths = sorted(set(git(root, "ls-files", "-z", "--", *wanted).split("\0")) - {""}) if wanted else []
    if not paths:
        return []
    exclude = git_path(root, "info/exclude")
    exclude.parent.mkdir(parents=True, exist_ok=True)
    old = exclude.read_text() if exclude.is_file() else ""
    block = "\n".join([MARK_BEGIN, *("/" + p for p in paths), MARK_END]) + "\n"
    exclude.write_text(old + ("" if not old or old.endswith("\n") else "\n") + block)
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(HOOK)
    hook.chmod(0o755)
    git(root, "rm", "-q", "--cached", "--", *paths)
    return paths


def restore(root: Path) -> list[str]:
    """Undo hide_superseded: the paths go back into the index from HEAD, the exclude block and hook go."""
    paths = hidden_files(root)
    if not paths:
        raise SystemExit("error: nothing is hidden (no --hide-superseded block in .git/info/exclude)")
    git(root, "reset", "-q", "HEAD", "--", *paths)
    exclude = git_path(root, "info/exclude")
    lines = exclude.read_text().splitlines()
    i = lines.index(MARK_BEGIN)
    j = lines.index(MARK_END, i)
    exclude.write_text("".join(ln + "\n" for ln in lines[:i] + lines[j + 1:]))
    hook = git_path(root, "hooks/pre-commit")
    if hook.is_file() and MARK_BEGIN in hook.read_text():
        hook.unlink()
    return paths


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
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--hide-superseded", action="store_true",
                      help="first untrack the decoder-only models' files so they stay behind (commits refused until --restore)")
    mode.add_argument("--restore", action="store_true", help="track the hidden files again and stop (no pack)")
    ap.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    root = Path(a.root)
    if a.restore:
        paths = restore(root)
        print(f"restored {len(paths)} files to the index; commits allowed again")
        return 0
    if a.hide_superseded:
        paths = hide_superseded(root)
        mib = sum((root / p).stat().st_size for p in paths) / (1 << 20)
        print(f"hid {len(paths)} superseded files ({mib:.1f} MiB) from the device tool; "
              "commits are refused until python tools/device_pack.py --restore")
    files = list_images(a.data)
    if a.budget_mib > 0:
        budget = int(a.budget_mib * (1 << 20))
    else:
        budget = LIMIT - tracked_bytes(root) - folder_bytes(root / ".whl") - (2 << 20)
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
