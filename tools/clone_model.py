"""Ship an installed model's weights under a new name, to change what its files depend on besides the
weights (its index prior, e.g. tools/temper_prior.py) without touching the released model.

Every .gqc file names its model and carries the hash of its weights, codebook and prior, so a new
prior needs a new model name; the old model stays installed and its files keep decoding. This
copies the weights and prior files to ``NEW.safetensors`` / ``NEW.prior.npz`` and the registry entry
(training record, ladder, tuned settings, Kodak numbers until they are measured again), records
``cloned_from``, makes NEW the default when SRC was, and marks SRC ``superseded_by`` NEW. Then:
change the prior, re-evaluate (tools/eval_release.sh NEW) and reduce SRC to its decoder
(tools/decoder_only.py SRC), as tools/release.sh does after training.

    python tools/clone_model.py gq-n128-c320-r11 gq-n128-c320-r12 --description "..."
"""
from __future__ import annotations

import argparse
import copy
import shutil

from bitstream.header import check_model_id
from gqcodec import zoo


def clone(src: str, new: str, description: str | None = None) -> dict:
    """Copy model ``src`` to the new name ``new`` (files and registry entry); returns the new entry."""
    reg = zoo.read_registry()
    if src not in reg["models"]:
        raise SystemExit(f"unknown model {src}")
    if new in reg["models"]:
        raise SystemExit(f"model {new} exists already")
    check_model_id(new, SystemExit)  # the name goes into every file's header
    e = copy.deepcopy(reg["models"][src])
    if e.get("decoder_only"):
        raise SystemExit(f"model {src} is installed for decoding only; clone the default model")
    for key, suffix in (("weights", ".safetensors"), ("prior", ".prior.npz")):
        if e.get(key):
            dst = zoo.WEIGHTS_DIR / f"{new}{suffix}"
            shutil.copyfile(zoo.WEIGHTS_DIR / e[key], dst)
            e[key] = dst.name
    e.pop("superseded_by", None)
    e["cloned_from"] = src
    if description:
        e["description"] = description
    reg["models"][new] = e
    reg["models"][src]["superseded_by"] = new
    if reg.get("default") == src:
        reg["default"] = new
    zoo.save_registry(reg)
    return e


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("new")
    ap.add_argument("--description", default=None)
    a = ap.parse_args(argv)
    e = clone(a.src, a.new, a.description)
    print(f"{a.new}: copy of {a.src} ({e['weights']}, {e.get('prior')}); default: {zoo.registry().get('default')}")


if __name__ == "__main__":
    main()
