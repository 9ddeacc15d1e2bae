#!/usr/bin/env python
"""Speed and memory benchmark of gqcodec (GitHub issue 7).

One run prints, as markdown tables with ratios:

1. search  GQ search throughput (blocks/s) and peak extra memory of
           ``GaussianQuantizer.quantize`` ("ours"), of the previous
           implementation ("v0": one (rows x K) float32 score matrix per chunk,
           then argmax) and of the paper-style reference ("ref": the per-element
           log N(c; mu, sigma) - log N(c; 0, 1) on an (n_chunk x K x m)
           broadcast, summed over m, argmax over K), with the agreement of
           ours and v0 with the reference and with the float64 argmax.
2. tiles   throughput of ours for a few tile shapes (rows x codewords), sub-block
           sizes and thread counts (how the defaults in gqcodec/quantizer.py were picked).
3. e2e     compress / decompress milliseconds per image, ours (default and highest
           quality; adaptive rate and dense where the model has both) against CompressAI's bmshj2018-factorized (quality 5, untrained,
           ``update(force=True)``), same thread count, interleaved repeats.
4. stages  time share of each stage of our codec: image load/convert, analysis
           transform, GQ search, entropy coding (pack), .gqc write+read, parsing
           and entropy decoding (unpack), synthesis transform.

Timings are wall-clock; every comparison runs its sides interleaved, repeat by
repeat, under the same thread count, and reports the min and the median.
Peak memory is the growth of the process's resident set during one call: by
default each measurement runs in a fresh subprocess in which glibc serves every
block of 64 KiB or more by mmap (M_MMAP_THRESHOLD, so freed buffers leave the
resident set instead of being recycled unseen), warms up on a 16-word codebook,
resets the kernel's high-water mark (``/proc/self/clear_refs`` = 5) and reads
``VmHWM - VmRSS`` around the measured call (torch's CPU allocations are not
seen by tracemalloc).  ``--mem inprocess`` measures in this process (allocator
caches can hide reused memory; used by the smoke test), CUDA uses
``torch.cuda.max_memory_allocated``.

    python tools/bench.py --threads 1              # full run (~10-15 minutes here)
    python tools/bench.py --quick                  # smoke run, seconds
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

LOG2PI = math.log(2 * math.pi)
DEFAULT_KODAK = ROOT.parent / "shared" / "data" / "kodak"


# --------------------------------------------------------------------------- inputs / implementations
def make_inputs(n: int, m: int, seed: int = 0):
    """Realistic posteriors: mu ~ N(0, 1.5^2), logvar ~ U[-8, 1]."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, m, generator=g) * 1.5
    logvar = torch.rand(n, m, generator=g) * 9.0 - 8.0
    return mu, logvar


def reference_quantize(mu, logvar, codebook, beta=1.0, chunk=32):
    """The paper-style search: per-element Gaussian log densities on an (n_chunk, K, m) broadcast."""
    n = mu.shape[0]
    out = torch.empty(n, dtype=torch.int64, device=mu.device)
    c = codebook[None]  # (1, K, m)
    log_prior = -0.5 * (c * c + LOG2PI)  # (1, K, m)
    with torch.no_grad():
        for i in range(0, n, chunk):
            mu_c = mu[i:i + chunk, None]  # (n, 1, m)
            lv = logvar[i:i + chunk, None]
            log_post = -0.5 * ((c - mu_c) ** 2 / lv.exp() + lv + LOG2PI)  # (n, K, m)
            out[i:i + chunk] = (log_post - beta * log_prior).sum(-1).argmax(1)
    return out


def v0_quantize(quantizer, mu, logvar, beta=None):
    """The previous implementation (before issue 7): (rows x K) float32 scores per chunk, then argmax."""
    q = quantizer.queries(mu, logvar, beta)
    keys_t = quantizer.keys.to(q.device).t().contiguous()
    n = q.shape[0]
    out = torch.empty(n, dtype=torch.int64, device=q.device)
    step = quantizer.chunk_rows()
    buf = None
    with torch.no_grad():
        for i in range(0, n, step):
            rows = q[i:i + step]
            if buf is None or buf.shape[0] != rows.shape[0]:
                buf = torch.empty(rows.shape[0], quantizer.codebook_size, dtype=q.dtype, device=q.device)
            torch.mm(rows, keys_t, out=buf)
            out[i:i + step] = buf.argmax(dim=1)
    return out


def exact_scores(mu, logvar, codebook, beta=1.0):
    """float64 GQ scores (expanded form) of all codewords, (n, K)."""
    mu, lv, cb = mu.double(), logvar.double(), codebook.double()
    w = torch.exp(-lv)
    return (mu * w) @ cb.T - (0.5 * (w - beta)) @ (cb * cb).T


def pointwise_score64(mu, logvar, codebook, idx, beta=1.0):
    """float64 per-element score log N(c; mu, sigma) - beta log N(c; 0, 1) of codewords idx (n,)."""
    mu, lv = mu.double(), logvar.double()
    c = codebook[idx.cpu()].double().to(mu.device)
    log_post = -0.5 * ((c - mu) ** 2 / lv.exp() + lv + LOG2PI)
    return (log_post + beta * 0.5 * (c * c + LOG2PI)).sum(-1)


# --------------------------------------------------------------------------- measurement helpers
def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device="cpu"):
    sync(device)
    t0 = time.perf_counter()
    res = fn()
    sync(device)
    return time.perf_counter() - t0, res


def interleaved(fns: dict, repeats: int, device="cpu") -> dict:
    """{name: [seconds per repeat]}, running the functions round-robin so contention hits all alike."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            times[k].append(timed(f, device)[0])
    return times


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_extra_bytes(fn, device="cpu") -> tuple[int, str]:
    """(bytes the call added to the peak, method)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base, "cuda.max_memory_allocated"
    if _reset_hwm() and _status_kb("VmRSS") is not None:
        base = _status_kb("VmRSS")
        fn()
        return max(0, _status_kb("VmHWM") - base) * 1024, "VmHWM-VmRSS"
    import psutil  # fallback: sample the RSS in a thread every 0.5 ms

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak, stop = [base], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.0005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    fn()
    stop.set()
    th.join()
    return max(0, peak[0] - base), "psutil RSS sampling"


def _mmap_large_blocks(threshold: int = 64 << 10) -> bool:
    """Have glibc serve blocks >= threshold by mmap and unmap them on free (M_MMAP_THRESHOLD),
    so that a call's buffers show in the resident set instead of being recycled from the heap."""
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, threshold))
    except (OSError, AttributeError):
        return False


def mem_child(spec: dict) -> dict:
    """Runs in a fresh process: peak extra memory of one search call."""
    from gqcodec.quantizer import GaussianQuantizer

    torch.set_num_threads(spec["threads"])
    dev = spec["device"]
    _mmap_large_blocks()
    mu, lv = make_inputs(spec["rows"], spec["m"])
    mu, lv = mu.to(dev), lv.to(dev)

    def call(qz, a, b):
        if spec["impl"] == "ours":
            return qz.quantize(a, b)
        if spec["impl"] == "v0":
            return v0_quantize(qz, a, b)
        return reference_quantize(a, b, qz.codebook, qz.beta, spec["ref_chunk"])

    # warm-up on a 16-word codebook: loads the BLAS and thread pools without leaving
    # full-size buffers in the allocator's cache (that would hide them from the measurement)
    call(GaussianQuantizer(spec["m"], 16, seed=0).to(dev), mu[:2], lv[:2])
    qz = GaussianQuantizer(spec["m"], spec["K"], seed=0).to(dev)
    extra, how = peak_extra_bytes(lambda: call(qz, mu, lv), dev)
    return {"bytes": extra, "method": how}


def measure_memory(impl, K, m, rows, args, device) -> dict:
    spec = {"impl": impl, "K": K, "m": m, "rows": rows, "threads": args.threads, "device": device,
            "ref_chunk": args.ref_chunk}
    if args.mem == "none":
        return {"bytes": float("nan"), "method": "not measured"}
    if args.mem == "inprocess" or device != "cpu":
        return mem_child(spec)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MALLOC_MMAP_THRESHOLD_=str(64 << 10))
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--mem-child", json.dumps(spec)],
                       capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode:
        raise RuntimeError(f"memory child failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def analytic_bytes(impl, K, m, rows, ref_chunk, qz) -> int:
    """Size of the largest temporaries by construction (cross-check of the measurement)."""
    if impl == "ref":
        return 3 * min(rows, ref_chunk) * K * m * 4  # (c-mu)^2/var, log_post, log_post - log_prior
    if impl == "v0":
        return min(rows, qz.chunk_rows()) * K * 4
    r, _, _ = qz._tile_shape(torch.device("cpu"), qz.search_rows())
    # score tile + sub-block maxima + candidate mask + float64 re-score of ~one sub-block per row
    return min(r, rows) * qz.search_bytes_per_row()


def fmt_bytes(b) -> str:
    if b != b:  # nan
        return "n/a"
    for unit, s in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= s:
            return f"{b / s:.1f} {unit}"
    return f"{int(b)} B"


def md_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- 1. search
def bench_search(args, device, log) -> dict:
    from gqcodec.quantizer import GaussianQuantizer

    results = []
    for m in args.m:
        for Kb in args.K_bits:
            K = 1 << Kb
            qz = GaussianQuantizer(m, K, seed=0).to(device)
            n_ours = max(64, min(args.max_rows, args.work // K))
            n_ref = max(args.ref_chunk, min(n_ours, args.ref_work // (K * m)))
            mu, lv = make_inputs(n_ours, m)
            mu, lv = mu.to(device), lv.to(device)
            mr, lr = mu[:n_ref], lv[:n_ref]
            fns = {"ours": lambda: qz.quantize(mu, lv),
                   "v0": lambda: v0_quantize(qz, mu, lv),
                   "ref": lambda: reference_quantize(mr, lr, qz.codebook, qz.beta, args.ref_chunk)}
            qz.quantize(mu[:4], lv[:4]), v0_quantize(qz, mu[:4], lv[:4])  # warm-up
            reference_quantize(mu[:4], lv[:4], qz.codebook, qz.beta, args.ref_chunk)
            times = interleaved(fns, args.repeats, device)
            rows = {"ours": n_ours, "v0": n_ours, "ref": n_ref}
            ours_idx = qz.quantize(mu, lv)[:n_ref]
            v0_idx = v0_quantize(qz, mr, lr)
            ref_idx = reference_quantize(mr, lr, qz.codebook, qz.beta, args.ref_chunk)
            # float64 judge, in row chunks
            ex_idx, scale = [], []
            step = max(1, (1 << 26) // K)
            for i in range(0, n_ref, step):
                s = exact_scores(mr[i:i + step], lr[i:i + step], qz.codebook.to(device), qz.beta)
                ex_idx.append(s.argmax(1))
                scale.append(s.abs().amax(1).clamp_min(1.0))
            ex_idx, scale = torch.cat(ex_idx), torch.cat(scale)
            dis = (ours_idx != ref_idx).nonzero().flatten()
            s_ours = pointwise_score64(mr[dis], lr[dis], qz.codebook, ours_idx[dis], qz.beta)
            s_ref = pointwise_score64(mr[dis], lr[dis], qz.codebook, ref_idx[dis], qz.beta)
            gap = (s_ours - s_ref)
            near = (gap.abs() <= 1e-5 * scale[dis]).sum().item()
            # memory: all three on the same rows (the reference's)
            mem = {impl: measure_memory(impl, K, m, n_ref, args, device) for impl in ("ours", "v0", "ref")}
            rec = {"K": K, "m": m, "rows": rows,
                   "seconds": times,
                   "blocks_per_s": {k: {"min_time": rows[k] / min(v), "median_time": rows[k] / statistics.median(v)}
                                    for k, v in times.items()},
                   "mem_bytes": {k: v["bytes"] for k, v in mem.items()},
                   "mem_method": mem["ours"]["method"],
                   "analytic_bytes": {k: analytic_bytes(k, K, m, n_ref, args.ref_chunk, qz)
                                      for k in ("ours", "v0", "ref")},
                   "agree_ref": (ours_idx == ref_idx).double().mean().item(),
                   "agree_v0_ref": (v0_idx == ref_idx).double().mean().item(),
                   "agree_ours_v0": (ours_idx == v0_idx).double().mean().item(),
                   "agree_exact64": {"ours": (ours_idx == ex_idx).double().mean().item(),
                                     "v0": (v0_idx == ex_idx).double().mean().item(),
                                     "ref": (ref_idx == ex_idx).double().mean().item()},
                   "disagreements": {"count": int(dis.numel()), "float_near_ties": int(near),
                                     "ours_higher64": int((gap > 0).sum().item()),
                                     "max_abs_gap64": float(gap.abs().max().item()) if dis.numel() else 0.0}}
            results.append(rec)
            b = rec["blocks_per_s"]
            log(f"  K=2^{Kb} m={m}: ours {b['ours']['min_time']:.0f}/s, v0 {b['v0']['min_time']:.0f}/s, "
                f"ref {b['ref']['min_time']:.1f}/s; mem ours {fmt_bytes(rec['mem_bytes']['ours'])}, "
                f"ref {fmt_bytes(rec['mem_bytes']['ref'])}; agree {rec['agree_ref']:.6f}")
    return {"device": device, "results": results}


def search_tables(res) -> str:
    rows, rows2 = [], []
    for r in res["results"]:
        b, mb = r["blocks_per_s"], r["mem_bytes"]
        sp = b["ours"]["min_time"] / b["ref"]["min_time"]
        sp_med = b["ours"]["median_time"] / b["ref"]["median_time"]
        memr = mb["ours"] / mb["ref"] if mb["ref"] else float("nan")
        rows.append([f"2^{int(math.log2(r['K']))}", r["m"],
                     f"{b['ours']['min_time']:,.0f} / {b['ours']['median_time']:,.0f}",
                     f"{b['v0']['min_time']:,.0f} / {b['v0']['median_time']:,.0f}",
                     f"{b['ref']['min_time']:,.1f} / {b['ref']['median_time']:,.1f}",
                     f"**{sp:,.0f}x** / {sp_med:,.0f}x", f"{b['ours']['min_time'] / b['v0']['min_time']:.2f}x",
                     fmt_bytes(mb["ours"]), fmt_bytes(mb["v0"]), fmt_bytes(mb["ref"]),
                     f"**{memr:.4f}**" if memr == memr else "n/a"])
        d = r["disagreements"]
        rows2.append([f"2^{int(math.log2(r['K']))}", r["m"], r["rows"]["ref"],
                      f"{100 * r['agree_ref']:.3f}%", f"{100 * r['agree_v0_ref']:.3f}%",
                      d["count"], d["float_near_ties"], d["ours_higher64"], f"{d['max_abs_gap64']:.2e}",
                      f"{100 * r['agree_exact64']['ours']:.3f}%", f"{100 * r['agree_exact64']['v0']:.3f}%",
                      f"{100 * r['agree_exact64']['ref']:.3f}%",
                      f"{fmt_bytes(r['analytic_bytes']['ours'])} / {fmt_bytes(r['analytic_bytes']['ref'])}"])
    t1 = md_table(["K", "m", "ours blocks/s (best / median)", "v0 blocks/s", "ref blocks/s",
                   "ours / ref", "ours / v0", "ours peak mem", "v0 peak mem", "ref peak mem", "mem ours / ref"], rows)
    t2 = md_table(["K", "m", "rows compared", "ours = ref", "v0 = ref", "ours != ref", "of which float near-ties",
                   "ours higher (float64)", "max float64 gap", "ours = float64 argmax", "v0 = float64 argmax",
                   "ref = float64 argmax", "largest temporaries ours / ref"], rows2)
    method = res["results"][0]["mem_method"] if res["results"] else ""
    return (f"Search on {res['device']} (peak memory: {method}; blocks/s: rows / wall time, best and median of "
            f"the interleaved repeats)\n\n{t1}\n\nAgreement\n\n{t2}")


# --------------------------------------------------------------------------- 2. tiles
def bench_tiles(args, log) -> dict:
    from gqcodec import quantizer as Q

    K, m = 1 << args.tile_K_bits, 16
    qz = Q.GaussianQuantizer(m, K, seed=0)
    n = max(64, min(args.max_rows, args.work // K))
    mu, lv = make_inputs(n, m)
    default = (Q.TILE_ROWS, Q.TILE_CODES, Q.SUBBLOCK)
    configs = [(r, c, default[2]) for r, c in args.tiles] + [(default[0], default[1], s) for s in (16, 64)]
    configs = list(dict.fromkeys([default] + configs))
    threads = sorted({args.threads, *args.tile_threads})
    ref_idx = qz.quantize(mu, lv)

    def runner(cfg, th):
        def f():
            old = (Q.TILE_ROWS, Q.TILE_CODES, Q.SUBBLOCK)
            old_th = torch.get_num_threads()
            Q.TILE_ROWS, Q.TILE_CODES, Q.SUBBLOCK = cfg
            torch.set_num_threads(th)
            try:
                return qz.quantize(mu, lv)
            finally:
                Q.TILE_ROWS, Q.TILE_CODES, Q.SUBBLOCK = old
                torch.set_num_threads(old_th)
        return f

    fns = {(cfg, th): runner(cfg, th) for cfg in configs for th in ([args.threads] if cfg != default else threads)}
    for f in fns.values():
        assert torch.equal(f(), ref_idx)  # every tiling gives the same indices
    times = interleaved(fns, args.repeats)
    out = []
    for (cfg, th), ts in times.items():
        out.append({"rows": cfg[0], "codes": cfg[1], "sub": cfg[2], "threads": th,
                    "blocks_per_s_best": n / min(ts), "blocks_per_s_median": n / statistics.median(ts),
                    "default": cfg == default})
    log(f"  tiles: {len(out)} configurations at K=2^{args.tile_K_bits}")
    return {"K": K, "m": m, "rows": n, "results": out}


def tiles_table(res) -> str:
    rows = [[r["rows"], r["codes"], r["sub"], r["threads"], fmt_bytes(4 * r["rows"] * r["codes"]),
             f"{r['blocks_per_s_best']:,.0f}", f"{r['blocks_per_s_median']:,.0f}", "yes" if r["default"] else ""]
            for r in res["results"]]
    return (f"Tile shapes of ours (K=2^{int(math.log2(res['K']))}, m={res['m']}, {res['rows']} rows; all give "
            f"identical indices)\n\n" + md_table(["tile rows", "tile codewords", "sub-block", "threads",
                                                  "tile size", "blocks/s best", "blocks/s median", "default"], rows))


# --------------------------------------------------------------------------- images
def load_images(args):
    from PIL import Image

    if args.synthetic:
        h, w = (int(v) for v in args.synthetic.lower().split("x"))
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / max(1, w - 1), yy * 255 / max(1, h - 1), (xx + yy) % 256], -1)
        arr = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        path = Path(tempfile.mkdtemp(prefix="gqbench-")) / "synthetic.png"
        Image.fromarray(arr, "RGB").save(path)
        return [path]
    folder = Path(args.kodak)
    files = sorted(p for p in folder.glob("*.png"))[: args.images]
    if not files:
        raise SystemExit(f"no PNG images in {folder} (use --kodak DIR or --synthetic HxW)")
    if args.crop:
        out = Path(tempfile.mkdtemp(prefix="gqbench-"))
        cropped = []
        for p in files:
            im = Image.open(p).convert("RGB")
            c = args.crop
            left, top = (im.width - c) // 2, (im.height - c) // 2
            im.crop((left, top, left + c, top + c)).save(out / p.name)
            cropped.append(out / p.name)
        return cropped
    return files


# --------------------------------------------------------------------------- 3. end to end
def bench_e2e(args, images, device, log) -> dict:
    import gqcodec
    from PIL import Image

    codec = gqcodec.load(args.model, device=device)
    q_default, q_max = codec.default_quality, max(codec.qualities)
    qualities = list(dict.fromkeys([q_default, q_max]))
    pil = [Image.open(p).convert("RGB") for p in images]
    for im in pil:
        im.load()
    methods = {}
    for q in qualities:
        variants = {"": None}  # the default encoder; with adaptive rate also the dense one it replaces
        if codec.adaptive_lambda(q) is not None:
            variants = {" adaptive": None, " dense": False}
        for label, adaptive in variants.items():
            def ours(im, q=q, adaptive=adaptive):
                t_c, data = timed(lambda: codec.compress(im, quality=q, adaptive=adaptive), device)
                t_d, _ = timed(lambda: codec.decompress(data), device)
                return t_c, t_d, len(data)
            methods[f"ours q{q}{label}"] = ours
    try:
        from compressai.zoo import bmshj2018_factorized
        net = bmshj2018_factorized(quality=5, pretrained=False).eval().to(device)
        net.update(force=True)

        def bmshj(im):
            def comp():
                with torch.inference_mode():
                    x = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255)
                    h, w = x.shape[-2:]
                    ph, pw = (-h) % 64, (-w) % 64
                    if ph or pw:
                        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
                    return net.compress(x.to(device)), (h, w)

            def decomp(enc):
                (o, (h, w)) = enc
                with torch.inference_mode():
                    y = net.decompress(o["strings"], o["shape"])["x_hat"][0, :, :h, :w]
                    a = y.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
                return Image.fromarray(a, "RGB")

            t_c, enc = timed(comp, device)
            t_d, _ = timed(lambda: decomp(enc), device)
            return t_c, t_d, sum(len(s[0]) for s in enc[0]["strings"])
        methods["bmshj2018-factorized q5"] = bmshj
    except ImportError:
        log("  compressai not installed: no bmshj2018-factorized baseline")
    for f in methods.values():  # warm-up
        f(pil[0])
    rec = {k: {"compress": [[] for _ in pil], "decompress": [[] for _ in pil], "bytes": [0] * len(pil)}
           for k in methods}
    for _ in range(args.repeats):
        for i, im in enumerate(pil):
            for k, f in methods.items():
                c, d, nbytes = f(im)
                rec[k]["compress"][i].append(c)
                rec[k]["decompress"][i].append(d)
                rec[k]["bytes"][i] = nbytes
    pixels = [im.width * im.height for im in pil]
    summary = {}
    for k, r in rec.items():
        s = {}
        for stage in ("compress", "decompress"):
            s[stage + "_best_ms"] = 1e3 * statistics.mean(min(t) for t in r[stage])
            s[stage + "_median_ms"] = 1e3 * statistics.mean(statistics.median(t) for t in r[stage])
        s["total_best_ms"] = s["compress_best_ms"] + s["decompress_best_ms"]
        s["total_median_ms"] = s["compress_median_ms"] + s["decompress_median_ms"]
        s["bpp"] = statistics.mean(8 * b / p for b, p in zip(r["bytes"], pixels))
        summary[k] = s
    log(f"  e2e: " + ", ".join(f"{k} {v['total_best_ms']:.0f} ms" for k, v in summary.items()))
    return {"device": device, "images": [Path(p).name for p in images],
            "sizes": [f"{im.width}x{im.height}" for im in pil], "raw": rec, "summary": summary}


def e2e_table(res) -> str:
    s = res["summary"]
    base = s.get("bmshj2018-factorized q5")
    rows = []
    for k, v in s.items():
        ratio = f"{v['total_best_ms'] / base['total_best_ms']:.2f}x" if base else "n/a"
        rows.append([k, f"{v['compress_best_ms']:.0f} / {v['compress_median_ms']:.0f}",
                     f"{v['decompress_best_ms']:.0f} / {v['decompress_median_ms']:.0f}",
                     f"{v['total_best_ms']:.0f} / {v['total_median_ms']:.0f}", ratio,
                     f"{v['bpp']:.3f}" if not k.startswith("bmshj") else "(untrained)"])
    return (f"End to end on {res['device']}, ms per image, mean over {len(res['images'])} images "
            f"({', '.join(res['images'])}; {', '.join(sorted(set(res['sizes'])))}) of the per-image best / median\n\n"
            + md_table(["codec", "compress ms", "decompress ms", "total ms", "total / bmshj", "bpp"], rows))


# --------------------------------------------------------------------------- 4. stages
STAGES = ["load+convert", "analysis g_a", "GQ search", "entropy coding (pack)", "file write+read",
          "parse+entropy decoding (unpack)", "synthesis g_s", ]


def run_stages(codec, path, q, tmpdir, device):
    """One compress+decompress of ``path`` done piece by piece; returns ({stage: seconds}, bytes)."""
    import bitstream
    from bitstream import Header
    from PIL import Image
    from gqcodec.imageio import open_image, prepare
    from gqcodec.model import STRIDE, pad_to_stride

    m = codec.model
    n = codec.n_blocks(q)
    t = {}
    with torch.inference_mode():
        dt, (arr, color, _) = timed(lambda: prepare(open_image(path)))  # what Codec.compress runs
        rgb = np.repeat(arr[:, :, None], 3, axis=2) if color == "L" else arr
        h, w = arr.shape[:2]
        t["load+convert"] = dt

        def analysis():
            x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255)
            return m.posterior(pad_to_stride(x).to(device))
        t["analysis g_a"], (mu, logvar) = timed(analysis, device)
        lh, lw = mu.shape[-2:]

        def search():
            idx = m.quantizer.quantize(m.to_rows(mu, n), m.to_rows(logvar, n))
            return idx.view(n, lh, lw).cpu().numpy()
        t["GQ search"], indices = timed(search, device)
        cfg = m.config
        header = Header(model_id=codec.name, model_hash=codec.hash, codebook_seed=cfg.seed, K_bits=cfg.K_bits,
                        m=cfg.m, stride=STRIDE, n_blocks=n, latent_h=lh, latent_w=lw, width=w, height=h,
                        color=color, coding="range", prior="uniform", quality=q)
        t["entropy coding (pack)"], data = timed(lambda: bitstream.pack(header, indices, prior=codec.prior))
        fpath = Path(tmpdir) / "bench.gqc"

        def fileio():
            fpath.write_bytes(data)
            return fpath.read_bytes()
        t["file write+read"], data2 = timed(fileio)

        def unpack():
            hd = bitstream.read_header(data2)
            codec.check_header(hd)
            return bitstream.unpack(data2, prior=codec.prior)
        t["parse+entropy decoding (unpack)"], (hd, ind) = timed(unpack)

        def synthesis():
            z = m.latent_from_indices(torch.from_numpy(ind.astype(np.int64))[None].to(device))
            y = m.g_s(z)[0, :, :hd.height, :hd.width]
            a = y.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            if hd.color == "L":
                return Image.fromarray(np.round(a.astype(np.float32).mean(axis=2)).astype(np.uint8), "L")
            return Image.fromarray(a, "RGB")
        t["synthesis g_s"], img = timed(synthesis, device)
    return t, data, img


def bench_stages(args, images, device, log) -> dict:
    import gqcodec

    codec = gqcodec.load(args.model, device=device)
    qualities = list(dict.fromkeys([codec.default_quality, max(codec.qualities)]))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for q in qualities:
            for p in images[:1]:  # warm-up, and check that the pieces make the codec's own bytes
                _, data, img = run_stages(codec, p, q, tmp, device)
                same = data == codec.compress(str(p), quality=q)
                same_img = np.array_equal(np.asarray(img), np.asarray(codec.decompress(data)))
            per = {s: [[] for _ in images] for s in STAGES}
            for _ in range(args.repeats):
                for i, p in enumerate(images):
                    t, _, _ = run_stages(codec, p, q, tmp, device)
                    for s in STAGES:
                        per[s][i].append(t[s])
            med = {s: 1e3 * statistics.mean(statistics.median(v) for v in per[s]) for s in STAGES}
            out[q] = {"ms": med, "total_ms": sum(med.values()), "same_bytes_as_codec": same,
                      "same_image_as_codec": same_img}
            log(f"  stages q{q}: total {out[q]['total_ms']:.0f} ms, search {med['GQ search']:.0f} ms; "
                f"bytes identical to codec.compress: {same}")
    return {"device": device, "qualities": out}


def stages_table(res) -> str:
    qs = list(res["qualities"])
    header = ["stage"] + [f"q{q} ms" for q in qs] + [f"q{q} share" for q in qs]
    rows = []
    for s in STAGES:
        rows.append([s] + [f"{res['qualities'][q]['ms'][s]:.1f}" for q in qs]
                    + [f"{100 * res['qualities'][q]['ms'][s] / res['qualities'][q]['total_ms']:.1f}%" for q in qs])
    rows.append(["**total**"] + [f"**{res['qualities'][q]['total_ms']:.0f}**" for q in qs] + ["100%"] * len(qs))
    same = all(v["same_bytes_as_codec"] and v["same_image_as_codec"] for v in res["qualities"].values())
    return (f"Stages of our codec on {res['device']} (median per image, mean over images; the pieces produce "
            f"the same bytes and image as codec.compress/decompress: {same})\n\n" + md_table(header, rows))


# --------------------------------------------------------------------------- main
def machine_info(threads) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "logical_cpus": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "numpy": np.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        import compressai
        info["compressai"] = compressai.__version__
    except ImportError:
        pass
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    return info


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Sections: search, tiles, e2e, stages.")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny K, few rows, one small image, 1 repeat")
    p.add_argument("--sections", default="search,tiles,e2e,stages", help="comma-separated sections to run")
    p.add_argument("--threads", type=int, default=None, help="torch threads for every measurement (default: torch's)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats per measurement (default 5; quick 1)")
    p.add_argument("--K-bits", type=int, nargs="+", default=None, help="log2 K for the search table (default 12 16 18)")
    p.add_argument("--m", type=int, nargs="+", default=None, help="block sizes for the search table (default 8 16)")
    p.add_argument("--ref-chunk", type=int, default=32, help="rows per chunk of the reference search (default 32)")
    p.add_argument("--work", type=float, default=2 ** 28, help="rows x K per call of ours/v0 (sets the row count)")
    p.add_argument("--ref-work", type=float, default=2 ** 28, help="rows x K x m per call of the reference")
    p.add_argument("--max-rows", type=int, default=65536, help="cap on rows per search call")
    p.add_argument("--mem", choices=["subprocess", "inprocess", "none"], default=None,
                   help="peak-memory measurement (default subprocess; quick: inprocess)")
    p.add_argument("--tile-K-bits", type=int, default=16, help="log2 K for the tile sweep")
    p.add_argument("--tiles", default="64x1024,128x1024,256x512,256x2048,512x1024,1024x1024",
                   help="ROWSxCODEWORDS tile shapes to sweep")
    p.add_argument("--tile-threads", type=int, nargs="*", default=None, help="thread counts for the default tile")
    p.add_argument("--kodak", default=str(DEFAULT_KODAK), help="folder of test images (PNG)")
    p.add_argument("--images", type=int, default=4, help="number of images (sorted by name)")
    p.add_argument("--crop", type=int, default=0, help="center-crop images to CxC pixels (0: full images)")
    p.add_argument("--synthetic", default=None, metavar="HxW", help="use one synthetic HxW image instead")
    p.add_argument("--model", default=None, help="gqcodec model name (default: the registry's default)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, or auto (cpu, and cuda when available)")
    p.add_argument("--json", default=None, help="also write all raw results to this JSON file")
    p.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    q = a.quick
    a.repeats = a.repeats or (1 if q else 5)
    a.K_bits = a.K_bits or ([8, 10] if q else [12, 16, 18])
    a.m = a.m or [8, 16]
    a.mem = a.mem or ("inprocess" if q else "subprocess")
    if q:
        a.work, a.ref_work, a.max_rows = min(a.work, 2 ** 16), min(a.ref_work, 2 ** 18), min(a.max_rows, 256)
        a.ref_chunk = min(a.ref_chunk, 16)
        a.tiles = "64x256"
        a.tile_K_bits = min(a.tile_K_bits, 10)
        a.images = 1
        if not a.synthetic and not a.crop:
            a.crop = 64
        if not Path(a.kodak).is_dir() and not a.synthetic:
            a.synthetic = "64x64"
    a.work, a.ref_work = int(a.work), int(a.ref_work)
    a.tiles = [tuple(int(v) for v in t.split("x")) for t in a.tiles.split(",") if t]
    a.tile_threads = a.tile_threads if a.tile_threads is not None else ([] if q else [1, 2])
    a.sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    bad = set(a.sections) - {"search", "tiles", "e2e", "stages"}
    if bad:
        p.error(f"unknown sections: {sorted(bad)}")
    return a


def main(argv=None, out=sys.stdout) -> dict:
    args = parse_args(argv)
    if args.mem_child:
        print(json.dumps(mem_child(json.loads(args.mem_child))))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    devices = ["cpu"]
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
    info = machine_info(args.threads)
    cmd = "python tools/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    res = {"machine": info, "command": cmd.strip(), "sections": {}}
    text = [f"# gqcodec benchmark\n\n`{cmd.strip()}`\n\nMachine: {info['cpu']}, {info['logical_cpus']} logical CPUs, "
            f"{info['threads']} torch threads, torch {info['torch']}, Python {info['python']}, "
            f"compressai {info.get('compressai', 'n/a')}, CUDA: {info['cuda'] or 'none'}; "
            f"load average at start {tuple(round(x, 2) for x in info.get('loadavg', ()))}\n"]
    images = load_images(args) if {"e2e", "stages"} & set(args.sections) else []
    t0 = time.perf_counter()
    with torch.inference_mode(False):
        for dev in devices:
            if "search" in args.sections:
                log(f"search on {dev} ...")
                r = bench_search(args, dev, log)
                res["sections"][f"search-{dev}"] = r
                text.append(search_tables(r))
            if "tiles" in args.sections and dev == "cpu":
                log("tiles ...")
                r = bench_tiles(args, log)
                res["sections"]["tiles"] = r
                text.append(tiles_table(r))
            if "e2e" in args.sections:
                log(f"end to end on {dev} ...")
                r = bench_e2e(args, images, dev, log)
                res["sections"][f"e2e-{dev}"] = r
                text.append(e2e_table(r))
            if "stages" in args.sections:
                log(f"stages on {dev} ...")
                r = bench_stages(args, images, dev, log)
                res["sections"][f"stages-{dev}"] = r
                text.append(stages_table(r))
    res["seconds"] = time.perf_counter() - t0
    text.append(f"(benchmark wall time {res['seconds']:.0f} s)")
    print("\n\n".join(text), file=out, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return res


if __name__ == "__main__":
    main()
