"""Ship a trained checkpoint as a packaged model: fp16 weights, index prior, registry entry.

    python tools/ship_model.py --ckpt /work/runs/gq-n128-c320/ckpt.pt --name gq-n128-c320 --default
    python tools/ship_model.py --ckpt /work/runs/gq-s28/ckpt.pt --candidate candidates/gq-s28.safetensors

Steps: export the weights (safetensors; conv kernels fp16), measure the
per-block index histograms on the first ``--prior-images`` training images and
store them as the range coder's integer prior tables, record the training
budget and block-KL statistics from the run's log.jsonl, and write the entry
into ``gqcodec/weights/registry.json``.  Kodak numbers are added afterwards by
``tools/update_registry.py`` from an evaluation JSON.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from gqcodec import zoo
from gqcodec.model import STRIDE, GQConfig, GQVAE, count_parameters
from gqcodec.prior import cross_entropy_bits, measure_prior
from gqcodec.train import DEFAULT_DATA

# quality -> blocks kept (m=16, K=2^16: raw bpp = blocks * 16 / 256); steps of ~1.3x in rate
DEFAULT_LADDER = {1: 2, 2: 3, 3: 4, 4: 6, 5: 8, 6: 11, 7: 15, 8: 20, 9: 26, 10: 32}


def ladder_for(blocks: int) -> dict[str, int]:
    """The default ladder cut to a model's blocks; the top quality always uses all of them."""
    ladder = {q: n for q, n in DEFAULT_LADDER.items() if n <= blocks}
    if max(ladder.values()) < blocks:
        ladder[max(ladder) + 1] = blocks
    return {str(q): n for q, n in ladder.items()}


def describe(cfg: GQConfig, parent: str | None, parent_config: dict | None = None) -> str:
    text = f"GQ-VAE, GDN N={cfg.N}, stride {STRIDE}, {cfg.blocks} nested blocks of m={cfg.m}, K=2^{cfg.K_bits}"
    if not parent:
        return text
    grown = parent_config is None or GQConfig.from_dict(parent_config).C != cfg.C
    return text + (f"; grown from {parent}" if grown else f"; warm-started from {parent}")


def check_new_name(reg: dict, name: str, replace: bool) -> None:
    """Refuse to ship over an installed model: its .gqc files name it and carry its hash, so new
    weights under the old name would make every one of them undecodable."""
    if name in reg.get("models", {}) and not replace:
        raise SystemExit(f"model {name} is already shipped; files made by it would no longer decode. "
                         "Ship the new weights under a new name (e.g. with --parent), or pass --replace")


def with_parent(summary: dict, parent: dict, name: str, via: list[dict] = ()) -> dict:
    """Training summary of a warm-started run plus the budget its parent had already spent and that
    of the intermediate runs ``via`` (parent -> via[0] -> ... -> this run, each warm-started from the last)."""
    p = parent.get("training", {})
    summary["warm_start"] = {"from": name, **{k: p[k] for k in ("steps", "crops_seen", "wall_hours", "hardware") if k in p}}
    if via:
        summary["warm_start"]["via"] = list(via)
    # the parent may itself be a warm start: its "total" already includes its own parents
    before = p.get("total", p)
    total = {k: summary.get(k, 0) + before.get(k, 0) + sum(v.get(k, 0) for v in via)
             for k in ("steps", "crops_seen", "wall_hours")}
    total["wall_hours"] = round(total["wall_hours"], 2)
    summary["total"] = total
    return summary


def training_summary(run_dir: Path, ckpt: dict) -> dict:
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()] \
        if (run_dir / "log.jsonl").exists() else []
    cfg = ckpt.get("train_config", {})
    out = {"steps": int(ckpt["step"]), "batch": cfg.get("batch"), "crop": cfg.get("crop"),
           "crops_seen": int(ckpt["step"]) * int(cfg.get("batch", 0)), "precision": cfg.get("precision", "fp32"),
           "hardware": f"{platform.machine()} CPU, {torch.get_num_threads()} threads" if not torch.cuda.is_available()
           else torch.cuda.get_device_name(0)}
    if log:
        # each record covers log_every steps at s_per_step seconds; steps re-run after a resume are counted again
        prev, wall = 0, 0.0
        for r in log:
            wall += max(0, r["step"] - prev) * r["s_per_step"] if r["step"] > prev else 0.0
            prev = r["step"]
        last = log[-1]
        out["wall_hours"] = round(wall / 3600, 2)
        out["final_block_kl_bits"] = {k: round(last[k], 3) for k in ("kl_mean", "kl_min", "kl_max", "kl_p05", "kl_p95", "in_band")
                                      if k in last}
        vals = [r for r in log if "val_psnr_mean" in r]
        if vals:
            out["final_val"] = {k: round(v, 3) for k, v in vals[-1].items() if k.startswith("val_")}
    return out


def run_record(run_dir: Path) -> dict:
    """An intermediate run's entry in ``warm_start.via``: its name, steps, crops, wall time, precision.

    ``run_dir`` is a run folder (its ``ckpt.pt`` and ``log.jsonl``) or a candidate weights file
    written by ``--candidate``, which carries the record of the run it was exported from."""
    if run_dir.suffix == ".safetensors":
        rec = json.loads(zoo.read_metadata(run_dir).get("extra", "{}")).get("run")
        if not rec:
            raise SystemExit(f"--via {run_dir}: this weights file carries no run record (not written by --candidate)")
        return rec
    return _record(run_dir.name, training_summary(run_dir, torch.load(run_dir / "ckpt.pt", map_location="cpu",
                                                                   weights_only=False)))


def _record(run: str, summary: dict) -> dict:
    return {"run": run, **{k: summary[k] for k in ("steps", "crops_seen", "wall_hours", "precision") if k in summary}}


def load_checkpoint(path) -> tuple[dict, GQVAE]:
    """A training checkpoint and the model it holds."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = GQVAE(GQConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return ckpt, model


def warm_start_extra(ckpt: dict) -> dict:
    """Weights-file metadata that lets `gqcodec train --init` warm-start well: TDC multipliers and step."""
    return {"tdc": {k: v.tolist() for k, v in ckpt.get("tdc", {}).items()}, "step": int(ckpt["step"])}


def export_candidate(ckpt_path: Path, run_dir: Path, out: Path) -> dict:
    """Weights of an unreleased checkpoint, kept where the next session can find them: fp16 like a
    release, with the TDC multipliers, the step and the run's record (for ``--via``) in the metadata.
    Neither the registry nor the package changes."""
    if out.exists():
        raise SystemExit(f"{out} exists; candidates are never overwritten")
    ckpt, model = load_checkpoint(ckpt_path)
    summary = training_summary(run_dir, ckpt)
    rec = _record(run_dir.name, summary)
    extra = {**warm_start_extra(ckpt), "run": rec,
             "final_block_kl_bits": summary.get("final_block_kl_bits"), "final_val": summary.get("final_val")}
    out.parent.mkdir(parents=True, exist_ok=True)
    zoo.export_weights(model, out, extra=extra)
    return rec


def choose_beta(model: GQVAE, data: str, n_images: int = 8, betas=(1.0, 2.0)) -> tuple[float, dict]:
    """GQ-quantized PSNR (mean over the ladder) and codebook usage per beta on the last
    ``n_images`` of the pack (training holds back the last 8)."""
    from gqcodec.model import psnr
    from gqcodec.train import list_images, load_pack

    imgs = load_pack(list_images(data)[-n_images:], 16)
    report = {}
    for beta in betas:
        ps, used = [], set()
        with torch.inference_mode():
            for im in imgs:
                x = im[None].float().div(255)
                idx = model.encode_indices(x, beta=beta)
                used.update(idx.flatten().tolist())
                for n in sorted(set(DEFAULT_LADDER.values())):
                    if n <= model.config.blocks:
                        ps.append(psnr(model.decode_indices(idx[:, :n], size=x.shape[-2:]), x))
        report[str(beta)] = {"psnr_mean_over_ladder": round(sum(ps) / len(ps), 3),
                             "codebook_usage": round(len(used) / model.config.K, 4)}
        print(f"beta {beta}: {report[str(beta)]}")
    best = max(betas, key=lambda b: report[str(b)]["psnr_mean_over_ladder"])
    return best, report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--run-dir", default=None, help="training run folder with log.jsonl (default: the checkpoint's folder)")
    ap.add_argument("--name", default=None, help="the new model's name (required unless --candidate)")
    ap.add_argument("--candidate", default=None, metavar="FILE.safetensors",
                    help="only export the checkpoint's fp16 weights and run record to FILE for a later session "
                    "(warm start with --init FILE; count it in a release with --via FILE); no registry change")
    ap.add_argument("--description", default=None, help="registry description (default: from the config)")
    ap.add_argument("--parent", default=None, help="shipped model this run was warm-started (or grown) from; "
                    "its training budget is added to the record")
    ap.add_argument("--via", action="append", default=[], metavar="RUN_DIR",
                    help="an intermediate run (its folder, or a --candidate file) between --parent and this "
                    "checkpoint (repeat, in training order): "
                    "its steps, crops and wall time are added to the record")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--prior-images", type=int, default=600)
    ap.add_argument("--alpha", type=float, default=0.1, help="add-alpha smoothing of the index histograms")
    ap.add_argument("--beta", type=float, default=None, help="GQ prior weight to ship (default: the better of 1 and 2 "
                    "by GQ PSNR on the 8 crops training held back)")
    ap.add_argument("--default", action="store_true", help="make this the default model")
    ap.add_argument("--replace", action="store_true", help="overwrite an installed model of the same name "
                    "(its files stop decoding)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.candidate:
        rec = export_candidate(Path(args.ckpt), Path(args.run_dir or Path(args.ckpt).parent), Path(args.candidate))
        print(f"candidate written: {args.candidate} ({rec})")
        return
    if not args.name:
        ap.error("--name is required")
    reg = zoo.read_registry()
    check_new_name(reg, args.name, args.replace)
    # checked (and the intermediate runs read) before minutes of export and prior measurement
    if args.parent and args.parent not in reg["models"]:
        raise SystemExit(f"--parent {args.parent} is not in the registry")
    if args.via and not args.parent:
        raise SystemExit("--via needs --parent (the shipped model the first intermediate run started from)")
    via = [run_record(Path(run_dir)) for run_dir in args.via]
    if args.threads:
        torch.set_num_threads(args.threads)

    ckpt, model = load_checkpoint(args.ckpt)
    model.eval()
    beta_report = None
    if args.beta is None:
        args.beta, beta_report = choose_beta(model, args.data)
    model.quantizer.beta = args.beta
    model.config.beta = args.beta
    zoo.WEIGHTS_DIR.mkdir(exist_ok=True)
    wfile = f"{args.name}.safetensors"
    zoo.export_weights(model, zoo.WEIGHTS_DIR / wfile, extra=warm_start_extra(ckpt))
    shipped = zoo.load_weights(zoo.WEIGHTS_DIR / wfile)  # measure the prior with the weights users get
    shipped.quantizer.beta = model.quantizer.beta

    t0 = time.time()
    prior, counts = measure_prior(shipped, args.data, max_images=args.prior_images, alpha=args.alpha, progress=True)
    pfile = f"{args.name}.prior.npz"
    prior.save(zoo.WEIGHTS_DIR / pfile)
    ce = cross_entropy_bits(counts, prior)
    usage = float((counts.sum(0) > 0).mean())
    print(f"prior: {counts.sum()} indices from {args.prior_images} images in {time.time() - t0:.0f}s, "
          f"{ce:.3f} bits/index on them (raw {model.config.K_bits}), codebook usage {usage:.3f}")

    reg = zoo.read_registry()
    cfg = model.config
    summary = training_summary(Path(args.run_dir or Path(args.ckpt).parent), ckpt)
    if args.parent:
        summary = with_parent(summary, reg["models"][args.parent], args.parent, via)
    reg["models"][args.name] = {
        "description": args.description or describe(cfg, args.parent,
                                                    reg["models"].get(args.parent, {}).get("config") if args.parent else None),
        "weights": wfile,
        "prior": pfile,
        "config": cfg.to_dict(),
        "K_bits": cfg.K_bits,
        "beta": model.quantizer.beta,
        "stride": STRIDE,
        "parameters": count_parameters(model),
        "ladder": ladder_for(cfg.blocks),
        "default_quality": 4,
        "beta_selection": beta_report,
        "prior_stats": {"images": args.prior_images, "alpha": args.alpha, "train_bits_per_index": round(ce, 4),
                        "train_codebook_usage": round(usage, 4)},
        "training": summary,
        "kodak": reg["models"].get(args.name, {}).get("kodak", []),
    }
    if args.default or not reg.get("default"):
        reg["default"] = args.name
        if args.parent:  # kept installed so that its files decode; `gqcodec models` says what replaced it
            reg["models"][args.parent]["superseded_by"] = args.name
    zoo.save_registry(reg)
    zoo._cache.clear()
    print(f"model hash {zoo.model_hash(args.name).hex()}; registry updated: {zoo.REGISTRY_FILE}")


if __name__ == "__main__":
    main()
