"""The scientific control: a scalar-quantized factorized-prior model with GQ's transforms and budget.

CompressAI's ``FactorizedPrior(N, M)`` has the same analysis/synthesis stack as ``GQVAE``
(4 stride-2 5x5 convolutions, GDN/IGDN, N channels); with ``M = C`` the only difference is
that GQ's last analysis conv also emits the log-variances (2C channels). This script trains
it on the same pack, hold-out, crops, batch, optimiser, gradient clipping and learning-rate
schedule as the GQ run, with compressai's loss ``lambda * 255^2 * MSE + bpp`` (uniform noise
during training, an auxiliary loss for the entropy bottleneck's quantiles).

Resumable like ``gqcodec train``: the checkpoint in ``--run-dir`` carries the optimisers and
random states, so re-running the same command continues where it stopped.

    python tools/train_control.py --run-dir /work/runs/fp-l0067 --lmbda 0.0067 --steps 13500
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gqcodec.train import DEFAULT_DATA, atomic_save, list_images, load_pack, random_batch


def lr_at(step: int, schedule: list[tuple[int, float]]) -> float:
    """Piecewise-constant learning rate: the last ``(start, lr)`` with ``start < step``."""
    lr = schedule[0][1]
    for start, value in schedule:
        if step > start:
            lr = value
    return lr


def parse_schedule(text: str) -> list[tuple[int, float]]:
    out = []
    for part in text.split(","):
        start, lr = part.split(":")
        out.append((int(start), float(lr)))
    out.sort()
    if not out or out[0][0] != 0:
        raise ValueError("the schedule must start at step 0, e.g. '0:2e-4,6750:6e-5'")
    return out


def build(N: int, M: int):
    from compressai.models import FactorizedPrior

    return FactorizedPrior(N, M)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--lmbda", type=float, required=True)
    ap.add_argument("--steps", type=int, default=13500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--N", type=int, default=128)
    ap.add_argument("--M", type=int, default=320)
    ap.add_argument("--schedule", default="0:2e-4,6750:6e-5", help="'start:lr,...' (the GQ run's schedule)")
    ap.add_argument("--aux-lr", type=float, default=1e-3)
    ap.add_argument("--holdout", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--ckpt-every", type=int, default=250)
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    schedule = parse_schedule(a.schedule)
    run = Path(a.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "ckpt.pt"
    gen = random.Random(a.seed)
    torch.manual_seed(a.seed)

    model = build(a.N, a.M)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=schedule[0][1])
    aux_opt = torch.optim.Adam(aux_params, lr=a.aux_lr)
    start = 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        for key in ("lmbda", "N", "M", "batch", "crop"):
            if ck["args"][key] != getattr(a, key):
                raise SystemExit(f"{ckpt_path} was trained with {key}={ck['args'][key]}, not {getattr(a, key)}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        aux_opt.load_state_dict(ck["aux_optimizer"])
        start = int(ck["step"])
        gen.setstate(ck["py_rng"])
        torch.set_rng_state(ck["torch_rng"])
        del ck

    files = list_images(a.data)
    hold = min(a.holdout, max(0, len(files) - 1))
    images = load_pack(files[: len(files) - hold], a.crop)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"start": start, "params": n_params, "train_images": len(images)}), flush=True)

    def save(step):
        atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "aux_optimizer": aux_opt.state_dict(), "step": step, "args": vars(a),
                     "py_rng": gen.getstate(), "torch_rng": torch.get_rng_state(), "params": n_params},
                    ckpt_path)

    model.train()
    acc = {"loss": 0.0, "mse": 0.0, "bpp": 0.0, "aux": 0.0, "n": 0}
    t0 = time.time()
    for step in range(start + 1, a.steps + 1):
        lr = lr_at(step, schedule)
        for g in opt.param_groups:
            g["lr"] = lr
        x = random_batch(images, a.batch, a.crop, gen)
        out = model(x)
        mse = F.mse_loss(out["x_hat"], x)
        likelihoods = out["likelihoods"]["y"]
        bpp = torch.log(likelihoods).sum() / (-math.log(2) * x.shape[0] * x.shape[2] * x.shape[3])
        loss = a.lmbda * 255**2 * mse + bpp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main_params, 1.0)
        opt.step()
        aux = model.aux_loss()
        aux_opt.zero_grad(set_to_none=True)
        aux.backward()
        aux_opt.step()
        acc["loss"] += loss.item()
        acc["mse"] += mse.item()
        acc["bpp"] += bpp.item()
        acc["aux"] += aux.item()
        acc["n"] += 1
        if step % a.log_every == 0 or step == a.steps:
            n = acc["n"]
            rec = {"step": step, "loss": acc["loss"] / n, "bpp": acc["bpp"] / n, "aux": acc["aux"] / n,
                   "psnr": 10 * math.log10(1 / max(acc["mse"] / n, 1e-12)), "lr": lr,
                   "s_per_step": (time.time() - t0) / n}
            with open(run / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
            acc = {k: 0.0 for k in acc}
            acc["n"] = 0
            t0 = time.time()
        if step % a.ckpt_every == 0 or step == a.steps:
            save(step)


if __name__ == "__main__":
    main()
