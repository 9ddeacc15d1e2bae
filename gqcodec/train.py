"""Training of a GQ-VAE with the target divergence constraint.

    loss = lambda * 255^2 * MSE(x, x_hat) + rate_TDC

``rate_TDC`` is the TDC-weighted block KL expressed in bits per pixel.  The
reconstruction is decoded from a reparameterised posterior sample; with nested
dropout a random prefix of blocks is kept per sample (the rest are zero), so
one model learns a whole quality ladder.  Checkpoints hold everything needed to
resume (model, optimiser, TDC multipliers, step, RNG) and are written
atomically; ``--init`` warm-starts from shipped weights when no checkpoint is
found.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .model import STRIDE, GQConfig, GQVAE, grow_latent, psnr
from .quantizer import TDC

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "train"
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm"}


@dataclass
class TrainConfig:
    data: str = str(DEFAULT_DATA)
    run_dir: str = "runs/default"
    steps: int = 1000                 # total steps (resuming continues up to this)
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    lr_end: float = 0.0               # > 0: cosine decay from lr to lr_end over the run (its steps or time_limit)
    time_limit: float = 0.0           # > 0: the run's training seconds, over all resumes (stops with a checkpoint)
    lmbda: float = 0.01
    tol: float = 0.5                  # TDC band half-width in bits
    tdc_rate: float = 1.01
    tdc_max: float = 1e5              # cap of the above-band multiplier (reference 1e3)
    tdc_quantile: float = 0.99        # adapt lam_max/lam_min on this KL quantile (reference: 1.0 = max/min)
    tdc_groups: bool = True           # one set of TDC multipliers per block group
    nested: float = 0.5               # probability of a random block prefix per sample
    nested_depths: tuple = ()         # prefix lengths to draw from (uniformly); empty: 1..blocks
    holdout: int = 8                  # images held back for validation
    log_every: int = 50
    val_every: int = 500
    ckpt_every: int = 200
    threads: int = 0                  # 0: torch default
    precision: str = "fp32"           # "bf16": bf16 autocast + channels_last (weights, optimizer, KL and loss stay float32);
                                      # "auto" (gqcodec train's default): bf16 on CPUs with native bf16, else fp32
    device: str = "auto"
    seed: int = 0
    init: str = ""                    # weights (.safetensors) or checkpoint (.pt) to start from when no checkpoint exists
    phase: str = "vae"                # "vae": TDC training; "decoder": encoder frozen, decoder fine-tuned on GQ codewords
    max_images: int = 0               # 0: all
    model: dict = field(default_factory=dict)  # GQConfig fields


def draw_keep(cfg: TrainConfig, B: int, device) -> torch.Tensor:
    """Blocks kept per sample of a batch under nested dropout: with probability ``cfg.nested`` a
    random prefix length (uniform over 1..B, or over ``cfg.nested_depths``), else all B."""
    if cfg.nested_depths:
        depths = torch.tensor(cfg.nested_depths, device=device)
        rand = depths[torch.randint(0, len(depths), (cfg.batch,), device=device)]
    else:
        rand = torch.randint(1, B + 1, (cfg.batch,), device=device)
    use = torch.rand(cfg.batch, device=device) < cfg.nested
    return torch.where(use, rand, torch.full_like(rand, B))


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    return files


def load_pack(files: list[Path], min_side: int) -> list[torch.Tensor]:
    """Decode images to uint8 (3, H, W) tensors; images smaller than ``min_side`` are upscaled."""
    out = []
    for p in files:
        im = Image.open(p).convert("RGB")
        if min(im.size) < min_side:
            s = min_side / min(im.size)
            im = im.resize((max(min_side, round(im.width * s)), max(min_side, round(im.height * s))), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous())
    return out


def random_batch(images: list[torch.Tensor], batch: int, crop: int, gen: random.Random) -> torch.Tensor:
    crops = []
    for _ in range(batch):
        im = images[gen.randrange(len(images))]
        _, h, w = im.shape
        y, x = gen.randint(0, h - crop), gen.randint(0, w - crop)
        c = im[:, y:y + crop, x:x + crop]
        if gen.random() < 0.5:
            c = c.flip(2)
        if gen.random() < 0.5:
            c = c.flip(1)
        crops.append(c)
    return torch.stack(crops).float().div_(255.0)


def atomic_save(obj, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """The learning rate at ``progress`` in [0, 1] of the run: ``lr``, or with ``lr_end`` > 0 a
    cosine decay from ``lr`` to ``lr_end``."""
    if cfg.lr_end <= 0:
        return cfg.lr
    p = min(1.0, max(0.0, progress))
    return cfg.lr_end + 0.5 * (cfg.lr - cfg.lr_end) * (1.0 + math.cos(math.pi * p))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def validate(model: GQVAE, images: list[torch.Tensor], device, ladder=None) -> dict:
    """GQ-quantized PSNR (dB) on held-back images for a few block counts, plus posterior-mean PSNR.
    The model is left in the mode (train or eval) it came in."""
    was_training = model.training
    model.eval()
    B = model.config.blocks
    ladder = ladder or sorted({max(1, B // 8), max(1, B // 2), B})
    res = {f"psnr_gq_{n}": [] for n in ladder}
    res["psnr_mean"] = []
    usage = torch.zeros(model.config.K, dtype=torch.bool)
    for im in images:
        x = im[None].float().div(255).to(device)
        h, w = x.shape[-2:]
        x = x[..., : h - h % STRIDE, : w - w % STRIDE]
        mu, _ = model.posterior(x)
        res["psnr_mean"].append(psnr(model.g_s(mu).clamp(0, 1), x))
        idx = model.encode_indices(x, B)
        usage[idx.flatten().cpu()] = True
        for n in ladder:
            res[f"psnr_gq_{n}"].append(psnr(model.decode_indices(idx[:, :n]), x))
    model.train(was_training)
    out = {k: float(np.mean(v)) for k, v in res.items()}
    out["codebook_usage"] = usage.float().mean().item()
    return out


def read_init(path: str) -> dict:
    """Model config, state, TDC multipliers and training step (None if unknown) from a checkpoint
    (.pt) or weights file."""
    if path.endswith(".pt"):
        ck = torch.load(path, map_location="cpu", weights_only=False)
        return {"config": GQConfig.from_dict(ck["model_config"]), "model": ck["model"], "tdc": ck.get("tdc", {}),
                "step": ck.get("step")}
    from .zoo import load_weights, read_metadata  # local import: zoo depends on safetensors

    m = load_weights(path)
    if m.decoder_only:
        raise ValueError(f"{path} holds only a decoder (a superseded release kept so that its files decode); "
                         "warm-start from the default model's weights or a checkpoint")
    extra = json.loads(read_metadata(path).get("extra", "{}"))
    return {"config": m.config, "model": m.state_dict(),
            "tdc": {k: torch.tensor(v) for k, v in extra.get("tdc", {}).items()}, "step": extra.get("step")}


def grow_init(init: dict, C: int) -> dict:
    """An ``read_init`` result widened to ``C`` latent channels (``model.grow_latent``).

    Per-group TDC multipliers of the new blocks start as those of the last old
    block, their nearest neighbour in the nested order.
    """
    cfg, state = grow_latent(init["model"], init["config"], C)
    tdc = {}
    for k, v in (init.get("tdc") or {}).items():
        v = torch.as_tensor(v).float()
        tdc[k] = torch.cat([v, v[-1:].expand(cfg.blocks - v.numel())]) if v.numel() == init["config"].blocks else v
    return {"config": cfg, "model": state, "tdc": tdc}


def load_tdc(tdc: TDC, state: dict) -> None:
    """Restore TDC multipliers; a shape change (shared <-> per group) broadcasts the mean."""
    if not state:
        return
    if all(k in tdc.state_dict() and v.shape == tdc.state_dict()[k].shape for k, v in state.items()):
        tdc.load_state_dict(state)
        return
    print("saved TDC multipliers have another shape: broadcasting them", flush=True)
    with torch.no_grad():
        for k, v in state.items():
            getattr(tdc, k).copy_(torch.as_tensor(v).float().mean().expand_as(getattr(tdc, k)))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX512-BF16), where oneDNN's bf16
    convolutions are the fast path; elsewhere bf16 is emulated (10x slower than float32 on an
    AVX2-only AMD EPYC, docs/training.md)."""
    probes = [getattr(torch.cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(f()) for f in probes if f is not None)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run trains in: ``auto`` picks bf16 on a CPU with native bf16 and fp32
    elsewhere (CUDA included: bf16 there is not measured yet); fp32/bf16 are kept as asked."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r} (auto, fp32 or bf16)")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def use_precision(model: GQVAE, precision: str) -> bool:
    """Check ``precision`` ("fp32" or "bf16") and prepare ``model`` for it; True for bf16, whose
    oneDNN convolutions (AMX/AVX512-BF16 CPUs, GPUs) want channels-last tensors."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r} (fp32 or bf16)")
    if precision == "bf16":
        model.to(memory_format=torch.channels_last)
    return precision == "bf16"


def vae_loss(model: GQVAE, tdc: TDC, x: torch.Tensor, keep: torch.Tensor | None, lmbda: float, bf16: bool):
    """The VAE phase's loss of one batch, ``lmbda * 255^2 * MSE + TDC rate`` (the rate at bits per
    pixel scale), with the transforms under a bf16 autocast when ``bf16``; returns ``(loss, mse, kl)``."""
    if bf16:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(x, keep)
    mse = F.mse_loss(out["x_hat"], x)
    kl = out["kl"]
    rate = tdc(kl) * model.config.blocks / STRIDE**2
    return lmbda * 255**2 * mse + rate, mse, kl


def decode_codewords(model: GQVAE, x: torch.Tensor, keep: torch.Tensor | None):
    """Decoder fine-tuning pass: reconstruction from the GQ codewords of a frozen encoder.

    Returns ``(x_hat, kl)``; gradients flow into the synthesis transform only.
    """
    B = model.config.blocks
    with torch.no_grad():
        mu, logvar = model.posterior(x)
        b, _, h, w = mu.shape
        idx = model.quantizer.quantize(model.to_rows(mu, B), model.to_rows(logvar, B)).view(b, B, h, w)
        z = model.latent_from_indices(idx)
        if keep is not None:
            z = z * model.block_mask(keep, h, w)
        kl = model.block_kl(mu, logvar)
    return model.g_s(z), kl


def kl_quantiles(kl: torch.Tensor) -> dict:
    flat = kl.flatten()
    if flat.numel() > 1 << 20:
        flat = flat[:: flat.numel() // (1 << 20) + 1]
    return {"kl_p05": flat.quantile(0.05).item(), "kl_p95": flat.quantile(0.95).item()}


def save_checkpoint(path, model, opt, tdc, step, cfg: TrainConfig, gen: random.Random, extra=None, phase="vae",
                    schedule=None):
    atomic_save({
        "phase": phase,
        "model": {k: v.contiguous() for k, v in model.state_dict().items()}, "optimizer": opt.state_dict(), "tdc": tdc.state_dict(),
        "step": step, "model_config": model.config.to_dict(), "train_config": dataclasses.asdict(cfg),
        "py_rng": gen.getstate(), "torch_rng": torch.get_rng_state(), "extra": extra or {},
        "schedule": schedule or {},
    }, path)


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Train (or resume) according to ``cfg``; returns the last log record."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest convolutions
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "ckpt.pt"
    gen = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False) if ckpt_path.exists() else None
    init = read_init(cfg.init) if cfg.init and not ckpt else None
    if ckpt:
        mcfg = GQConfig.from_dict(ckpt["model_config"])
        if ckpt.get("phase", "vae") != cfg.phase:
            raise ValueError(f"{ckpt_path} is a '{ckpt.get('phase', 'vae')}' run; use another --run-dir for phase '{cfg.phase}'")
    elif init:
        mcfg = init["config"]
        if cfg.model and GQConfig.from_dict(cfg.model) != mcfg:
            want = GQConfig.from_dict(cfg.model)
            if dataclasses.replace(want, C=mcfg.C) != mcfg or want.C < mcfg.C:
                raise ValueError(f"--init has config {mcfg}, training asks for {want} "
                                 "(only a larger C can differ: the model is then grown)")
            print(f"growing the latent of {cfg.init} from C={mcfg.C} to C={want.C} "
                  f"({mcfg.blocks} -> {want.blocks} blocks)", flush=True)
            init = grow_init(init, want.C)
            mcfg = init["config"]
    else:
        mcfg = GQConfig.from_dict(cfg.model)
    model = GQVAE(mcfg)
    tdc = TDC(mcfg.K_bits, tol=cfg.tol, rate=cfg.tdc_rate, lam_max_cap=cfg.tdc_max,
              quantile=cfg.tdc_quantile, groups=mcfg.blocks if cfg.tdc_groups else 1)
    start = 0
    source = ckpt or init
    if source:
        model.load_state_dict(source["model"])
        load_tdc(tdc, source.get("tdc") or {})
    del init
    if cfg.phase not in ("vae", "decoder"):
        raise ValueError(f"unknown phase {cfg.phase!r}")
    model.to(device).train()
    precision = resolve_precision(cfg.precision, device)
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        print("warning: this CPU has no native bf16 (AMX/AVX512-BF16), so bf16 training is emulated and "
              "much slower than fp32 (tools/bench_train.py measures it); --precision auto picks fp32 here", flush=True)
    cfg = dataclasses.replace(cfg, precision=precision)  # the checkpoint records what the run trained in
    bf16 = use_precision(model, cfg.precision)
    tdc.to(device)
    if cfg.phase == "decoder":
        model.g_a.requires_grad_(False)
        model.g_a.eval()
        params = list(model.g_s.parameters())
    else:
        params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    if ckpt:
        opt.load_state_dict(ckpt["optimizer"])  # the loop sets the learning rate of every step
        start = int(ckpt["step"])
        # where the run's learning-rate schedule began and its training seconds so far (checkpoints
        # written before the schedule existed: from step 0, no time spent)
        sched = {"first_step": 0, "seconds": 0.0, **ckpt.get("schedule", {})}
        gen.setstate(ckpt["py_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
    else:
        sched = {"first_step": 0, "seconds": 0.0}
    del ckpt

    files = list_images(cfg.data)
    if cfg.max_images:
        files = files[: cfg.max_images]
    hold = min(cfg.holdout, max(0, len(files) - 1))
    train_imgs = load_pack(files[: len(files) - hold], cfg.crop)
    val_imgs = load_pack(files[len(files) - hold:], STRIDE) if hold else []

    B = mcfg.blocks
    if any(not 1 <= int(d) <= B for d in cfg.nested_depths):
        raise ValueError(f"nested depths must lie in 1..{B} (the model's blocks), got {list(cfg.nested_depths)}")
    log_path = run / "log.jsonl"
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, mininterval=5.0, dynamic_ncols=True)
    last = {}
    acc = {"loss": 0.0, "mse": 0.0, "n": 0}
    kls = []
    t0 = t_start = time.time()
    spent = float(sched["seconds"])  # training seconds of earlier invocations of this run
    first = int(sched["first_step"])

    def run_seconds() -> float:
        return spent + time.time() - t_start

    stop_reason = None
    if cfg.time_limit > 0 and spent >= cfg.time_limit:
        print(f"the run's time limit ({cfg.time_limit:g} s) is spent ({spent:.0f} s): nothing to do", flush=True)
        return {"step": start, "stopped": "time_limit"}
    # SIGTERM (a session ending, `kill`) finishes the current step and checkpoints it before exiting
    stop_signal: list[int] = []
    try:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop_signal.append(signum))
    except ValueError:  # not the main thread: no handler
        previous = None
    try:
        for step in range(start + 1, cfg.steps + 1):
            frac = (step - 1 - first) / max(1, cfg.steps - first)
            if cfg.time_limit > 0:
                frac = max(frac, run_seconds() / cfg.time_limit)
            lr = lr_at(cfg, frac)
            for g in opt.param_groups:
                g["lr"] = lr
            x = random_batch(train_imgs, cfg.batch, cfg.crop, gen).to(device)
            keep = draw_keep(cfg, B, device) if cfg.nested > 0 else None
            if cfg.phase == "decoder":
                x_hat, kl = decode_codewords(model, x, keep)
                mse = F.mse_loss(x_hat, x)
                loss = cfg.lmbda * 255**2 * mse
            else:
                loss, mse, kl = vae_loss(model, tdc, x, keep, cfg.lmbda, bf16)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if cfg.phase == "vae":
                tdc.update(kl.detach())
            acc["loss"] += loss.item()
            acc["mse"] += mse.item()
            acc["n"] += 1
            kls.append(kl.detach().cpu())
            if bar:
                bar.update(1)
            if cfg.time_limit > 0 and run_seconds() >= cfg.time_limit:
                stop_reason = "time_limit"
            if stop_signal:
                stop_reason = f"signal {stop_signal[0]}"
            if step % cfg.log_every == 0 or step == cfg.steps or stop_reason:
                klall = torch.cat([k.transpose(0, 1).reshape(k.shape[1], -1) for k in kls], 1)  # (groups, n)
                rec = {"step": step, "loss": acc["loss"] / acc["n"],
                       "psnr_sample": 10 * math.log10(1 / max(acc["mse"] / acc["n"], 1e-12)),
                       **tdc.stats(klall.t()), **kl_quantiles(klall),
                       "s_per_step": (time.time() - t0) / acc["n"], "crop": cfg.crop, "lr": lr}
                if stop_reason:
                    rec["stopped"] = stop_reason
                # a signal stop skips validation: the checkpoint must be written before the process is killed
                if val_imgs and cfg.val_every > 0 and (step % cfg.val_every == 0 or step == cfg.steps
                                                       or (stop_reason and not stop_signal)):
                    rec.update({f"val_{k}": v for k, v in validate(model, val_imgs, device).items()})
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                if bar:
                    bar.set_postfix_str(f"psnr {rec['psnr_sample']:.2f} kl {rec['kl_mean']:.1f} [{rec['kl_min']:.1f},{rec['kl_max']:.1f}]")
                else:
                    print(json.dumps(rec), flush=True)
                last = rec
                acc = {"loss": 0.0, "mse": 0.0, "n": 0}
                kls = []
                t0 = time.time()
            if step % cfg.ckpt_every == 0 or step == cfg.steps or stop_reason:
                save_checkpoint(ckpt_path, model, opt, tdc, step, cfg, gen, phase=cfg.phase,
                                schedule={"first_step": first, "seconds": run_seconds()})
            if stop_reason:
                break
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if bar:
        bar.close()
    return last
