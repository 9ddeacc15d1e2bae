"""Keep only the decoder of superseded models, so that the package does not grow by a whole model
per release.

A superseded release stays installed because files written with it must keep decoding; decoding
needs its synthesis transform, prior and hash, not its analysis transform (``g_a``, ~60 % of the
weights). This rewrites each named model's weights file without ``g_a`` (the decoder's tensors
are copied unchanged) and records in its registry entry ``decoder_only``, the full model's
``weights_digest`` (what its files' model hash was computed from, so they still verify) and the
stripped file's ``decoder_digest`` (a changed file then no longer verifies). Compressing with
such a model, or warm-starting training from it, fails with a one-line error.

    python tools/decoder_only.py gq-n128-c320-r4 [MORE ...]

Only models marked ``superseded_by`` qualify, never the default; a model already stripped is
left as it is. ``tools/release.sh`` runs it on the parent after a release.
"""
from __future__ import annotations

import argparse

from gqcodec import zoo


def strip(name: str) -> str:
    """Make ``name`` decoder-only; returns what was done (one line)."""
    reg = zoo.read_registry()
    if name not in reg["models"]:
        raise SystemExit(f"unknown model {name}")
    e = reg["models"][name]
    if e.get("decoder_only"):
        return f"{name}: already decoder-only"
    if name == reg.get("default") or not e.get("superseded_by"):
        raise SystemExit(f"model {name} is not superseded: its encoder stays installed")
    path = zoo.WEIGHTS_DIR / e["weights"]
    before_hash = zoo.model_hash(name)
    full = zoo.weights_digest(path)
    size = path.stat().st_size
    # registry first, then the file: a run stopped in between leaves either the full file under an entry
    # whose decoder_digest it does not match (its own digest is then used, which is the full one) or nothing
    stripped = path.with_name(path.name + ".decoder")
    zoo.strip_encoder(path, stripped)
    e.update(decoder_only=True, weights_digest=full, decoder_digest=zoo.weights_digest(stripped))
    zoo.save_registry(reg)
    stripped.replace(path)
    zoo._cache.clear()
    if zoo.model_hash(name) != before_hash:  # cannot happen unless the digests above are wrong
        raise SystemExit(f"{name}: model hash changed after stripping; restore {path} from git")
    return f"{name}: {size / 1e6:.2f} MB -> {path.stat().st_size / 1e6:.2f} MB, model hash {before_hash.hex()} kept"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="superseded models to strip to their decoders")
    for name in ap.parse_args(argv).models:
        print(strip(name), flush=True)


if __name__ == "__main__":
    main()
