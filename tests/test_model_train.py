import json

import numpy as np
import pytest
import torch
from PIL import Image

from gqcodec.model import GQConfig, GQVAE, count_parameters
from gqcodec.train import TrainConfig, train

TINY = dict(N=16, C=32, m=16, K_bits=8, seed=3)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return GQVAE(GQConfig(**TINY)).eval()


@pytest.mark.parametrize("h,w", [(1, 1), (17, 33), (16, 16), (45, 20)])
def test_odd_sizes_round_trip_shapes(tiny_model, h, w):
    x = torch.rand(1, 3, h, w)
    idx = tiny_model.encode_indices(x)
    assert idx.shape == (1, 2, -(-h // 16), -(-w // 16)) and idx.dtype == torch.int64
    assert idx.min() >= 0 and idx.max() < 256
    y = tiny_model.decode_indices(idx, size=(h, w))
    assert y.shape == (1, 3, h, w)
    assert 0 <= y.min() and y.max() <= 1


def test_forward_outputs(tiny_model):
    out = tiny_model(torch.rand(2, 3, 32, 48), keep=torch.tensor([1, 2]))
    assert out["x_hat"].shape == (2, 3, 32, 48)
    assert out["kl"].shape == (2, 2, 2, 3)
    assert torch.all(out["kl"] >= 0)


def test_prefix_decoding_uses_zero_for_missing_blocks(tiny_model):
    x = torch.rand(1, 3, 32, 32)
    idx = tiny_model.encode_indices(x)
    z1 = tiny_model.latent_from_indices(idx[:, :1])
    assert torch.equal(z1[:, 16:], torch.zeros_like(z1[:, 16:]))
    assert torch.equal(z1[:, :16], tiny_model.latent_from_indices(idx)[:, :16])
    # encoding only the first block gives the same first block as a full encode
    assert torch.equal(tiny_model.encode_indices(x, 1), idx[:, :1])


def test_config_round_trip_and_validation():
    c = GQConfig(**TINY)
    assert GQConfig.from_dict(c.to_dict()) == c
    assert c.blocks == 2 and c.K == 256
    with pytest.raises(ValueError):
        GQConfig(C=30, m=16)
    with pytest.raises(ValueError):
        GQConfig.from_dict({"C": 32, "bogus": 1})
    assert count_parameters(GQVAE(c)) > 0


def _write_images(folder, n=6, size=48):
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        base = np.stack([(xx * (i + 1)) % 256, (yy * 3 + i * 20) % 256, (xx + yy) % 256], -1)
        noise = rng.integers(0, 20, base.shape)
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


def test_training_smoke_lowers_loss_and_resumes(tmp_path):
    data = tmp_path / "data"
    _write_images(data)
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(data), run_dir=str(run), steps=20, batch=2, crop=32, lr=1e-3, holdout=1,
                      log_every=5, val_every=20, ckpt_every=10, threads=1, device="cpu", model=TINY)
    last = train(cfg, progress=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [5, 10, 15, 20]
    assert log[-1]["loss"] < log[0]["loss"]
    assert "val_psnr_gq_2" in last and "kl_mean" in last
    ck = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck["step"] == 20 and "optimizer" in ck and "lam_max" in ck["tdc"]
    # resume: continues from step 20, not from scratch
    cfg.steps = 25
    train(cfg, progress=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log][-1] == 25
    assert torch.load(run / "ckpt.pt", weights_only=False)["step"] == 25


def test_decoder_phase_freezes_encoder_and_warm_starts_from_weights(tmp_path):
    from gqcodec import zoo

    data = tmp_path / "data"
    _write_images(data)
    base = TrainConfig(data=str(data), run_dir=str(tmp_path / "a"), steps=6, batch=2, crop=32, lr=1e-3, holdout=1,
                       log_every=3, val_every=6, ckpt_every=6, threads=1, device="cpu", model=TINY)
    train(base, progress=False)
    ck = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    assert ck["phase"] == "vae"
    m = GQVAE(GQConfig(**TINY))
    m.load_state_dict(ck["model"])
    zoo.export_weights(m, tmp_path / "w.safetensors", extra={"tdc": {k: v.tolist() for k, v in ck["tdc"].items()}})
    ft = TrainConfig(data=str(data), run_dir=str(tmp_path / "b"), steps=4, batch=2, crop=32, lr=1e-3, holdout=1,
                     log_every=2, val_every=4, ckpt_every=4, threads=1, device="cpu", phase="decoder",
                     init=str(tmp_path / "w.safetensors"))
    train(ft, progress=False)
    ck2 = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    assert ck2["phase"] == "decoder" and ck2["step"] == 4
    assert torch.allclose(ck2["tdc"]["lam"], ck["tdc"]["lam"])  # carried through the weights' metadata
    enc = [k for k in ck2["model"] if k.startswith("g_a.")]
    dec = [k for k in ck2["model"] if k.startswith("g_s.") and k.endswith("weight")]
    init_state = zoo.load_weights(tmp_path / "w.safetensors").state_dict()
    assert all(torch.equal(ck2["model"][k], init_state[k]) for k in enc)
    assert any(not torch.equal(ck2["model"][k], init_state[k]) for k in dec)
    # a decoder run cannot silently resume a vae checkpoint
    ft.run_dir = str(tmp_path / "a")
    with pytest.raises(ValueError, match="phase"):
        train(ft, progress=False)


def test_grow_latent_keeps_every_old_prefix_and_adds_blocks(tiny_model):
    from gqcodec.model import grow_latent

    state = tiny_model.state_dict()
    cfg, grown = grow_latent(state, tiny_model.config, 64)
    assert cfg.C == 64 and cfg.blocks == 4 and state["g_a.6.weight"].shape[0] == 64  # input untouched
    big = GQVAE(cfg).eval()
    big.load_state_dict(grown)
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    mu0, lv0 = tiny_model.posterior(x)
    mu1, lv1 = big.posterior(x)
    assert torch.equal(mu1[:, :32], mu0) and torch.equal(lv1[:, :32], lv0)
    assert torch.count_nonzero(mu1[:, 32:]) > 0   # the new means are not dead
    assert torch.equal(lv1[:, 32:], torch.zeros_like(lv1[:, 32:]))  # new blocks start at sigma 1
    for n in (1, 2):
        idx = tiny_model.encode_indices(x, n)
        assert torch.equal(big.encode_indices(x, n), idx)
        assert torch.equal(big.decode_indices(idx), tiny_model.decode_indices(idx))
    with pytest.raises(ValueError, match="larger multiple"):
        grow_latent(state, tiny_model.config, 40)
    with pytest.raises(ValueError, match="larger multiple"):
        grow_latent(state, tiny_model.config, 16)


def test_training_grows_a_warm_started_model(tmp_path):
    from gqcodec import zoo

    data = tmp_path / "data"
    _write_images(data)
    torch.manual_seed(0)
    m = GQVAE(GQConfig(**TINY))
    tdc = {"lam": [0.5, 2.0], "lam_max": [3.0, 4.0], "lam_min": [0.1, 0.2]}
    zoo.export_weights(m, tmp_path / "w.safetensors", extra={"tdc": tdc})
    cfg = TrainConfig(data=str(data), run_dir=str(tmp_path / "g"), steps=2, batch=2, crop=32, lr=1e-3, holdout=1,
                      log_every=2, val_every=2, ckpt_every=2, threads=1, device="cpu",
                      init=str(tmp_path / "w.safetensors"), model={**TINY, "C": 64}, tdc_rate=1.0)
    train(cfg, progress=False)
    ck = torch.load(tmp_path / "g" / "ckpt.pt", weights_only=False)
    assert ck["model_config"]["C"] == 64 and ck["model"]["g_s.0.weight"].shape[0] == 64
    assert ck["tdc"]["lam_max"].tolist() == [3.0, 4.0, 4.0, 4.0]  # new groups copy the last old one
    # any other config change is still refused
    bad = TrainConfig(**{**cfg.__dict__, "run_dir": str(tmp_path / "h"), "model": {**TINY, "C": 64, "m": 32}})
    with pytest.raises(ValueError, match="only a larger C"):
        train(bad, progress=False)


def test_lr_schedule_is_constant_or_cosine():
    from gqcodec.train import lr_at

    flat = TrainConfig(lr=1e-3)
    assert lr_at(flat, 0.0) == lr_at(flat, 0.7) == 1e-3
    cos = TrainConfig(lr=1e-3, lr_end=1e-5)
    vals = [lr_at(cos, p / 10) for p in range(11)]
    assert vals[0] == pytest.approx(1e-3) and vals[-1] == pytest.approx(1e-5)
    assert vals[5] == pytest.approx((1e-3 + 1e-5) / 2)
    assert all(a > b for a, b in zip(vals, vals[1:]))
    assert lr_at(cos, 3.0) == pytest.approx(1e-5) and lr_at(cos, -1.0) == pytest.approx(1e-3)


def test_time_limit_stops_with_a_checkpoint_and_the_run_resumes(tmp_path):
    data = tmp_path / "data"
    _write_images(data)
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(data), run_dir=str(run), steps=10_000, batch=2, crop=32, lr=1e-3, lr_end=1e-5,
                      time_limit=1e-9, holdout=1, log_every=1000, val_every=0, ckpt_every=1000, threads=1,
                      device="cpu", model=TINY)
    last = train(cfg, progress=False)
    assert last["stopped"] == "time_limit" and last["step"] == 1
    assert "val_psnr_mean" not in last  # --val-every 0 turns validation off
    assert last["lr"] == pytest.approx(1e-5)  # the time budget was spent before step 1: end of the schedule
    ck = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck["step"] == 1 and ck["schedule"]["first_step"] == 0 and ck["schedule"]["seconds"] > 0
    # the limit is the run's, over all resumes: a spent run does not train again
    assert train(cfg, progress=False) == {"step": 1, "stopped": "time_limit"}
    # without a limit it continues, and the cosine follows the run's steps (from its first step, 0)
    cfg.time_limit, cfg.steps = 0.0, 4
    last = train(cfg, progress=False)
    assert last["step"] == 4 and "stopped" not in last
    assert last["lr"] == pytest.approx(lr_cos_at(3 / 4))  # step 4 of a 4-step run


def lr_cos_at(p, lr=1e-3, end=1e-5):
    import math

    return end + 0.5 * (lr - end) * (1 + math.cos(math.pi * p))


def test_sigterm_checkpoints_the_current_step_and_stops(tmp_path, monkeypatch):
    import os
    import signal

    from gqcodec import train as train_mod

    data = tmp_path / "data"
    _write_images(data)
    calls = []
    real_batch = train_mod.random_batch

    def batch(*a, **k):  # the third step's batch arrives with a SIGTERM, as when a session ends
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_batch(*a, **k)

    monkeypatch.setattr(train_mod, "random_batch", batch)
    before = signal.getsignal(signal.SIGTERM)
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(data), run_dir=str(run), steps=50, batch=2, crop=32, lr=1e-3, holdout=1,
                      log_every=10, val_every=0, ckpt_every=10, threads=1, device="cpu", model=TINY)
    last = train(cfg, progress=False)
    assert last["step"] == 3 and last["stopped"] == "signal 15"
    assert torch.load(run / "ckpt.pt", weights_only=False)["step"] == 3
    assert signal.getsignal(signal.SIGTERM) == before     # the caller's handler is back


def test_bf16_autocast_keeps_the_posterior_and_outputs_float32(tiny_model):
    x = torch.rand(2, 3, 32, 48)
    mu, logvar = tiny_model.posterior(x)
    ref = tiny_model.g_a(x).chunk(2, dim=1)[0]
    assert torch.equal(mu, ref)  # outside autocast: the plain float32 pass, bit for bit
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mu16, logvar16 = tiny_model.posterior(x)
        torch.manual_seed(0)
        out16 = tiny_model(x, keep=torch.tensor([1, 2]))
    with torch.no_grad():
        torch.manual_seed(0)
        out = tiny_model(x, keep=torch.tensor([1, 2]))
    # the layer making mu/logvar runs in float32 even under autocast; its input came through bf16
    assert mu16.dtype == logvar16.dtype == out16["x_hat"].dtype == out16["kl"].dtype == torch.float32
    assert (mu16 - mu).abs().max() < 0.05 * mu.abs().max() + 1e-3
    assert (out16["x_hat"] - out["x_hat"]).abs().max() < 0.05
    assert torch.allclose(out16["kl"], out["kl"], rtol=0.05, atol=0.05)


def test_bf16_training_runs_resumes_in_fp32_and_checkpoints_plain_tensors(tmp_path, monkeypatch):
    from gqcodec import layers

    seen = set()  # dtypes the GDN layers receive while training
    gdn_forward = layers.GDN.forward
    monkeypatch.setattr(layers.GDN, "forward", lambda self, x: (seen.add(x.dtype), gdn_forward(self, x))[1])
    data = tmp_path / "data"
    _write_images(data)
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(data), run_dir=str(run), steps=20, batch=2, crop=32, lr=1e-3, holdout=1,
                      log_every=5, val_every=20, ckpt_every=10, threads=1, device="cpu", model=TINY,
                      precision="bf16")
    last = train(cfg, progress=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in log) and log[-1]["loss"] < log[0]["loss"]
    assert np.isfinite(last["val_psnr_gq_2"])
    assert torch.bfloat16 in seen  # the transforms did run in bf16 (validation runs them in float32)
    ck = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck["train_config"]["precision"] == "bf16"
    # channels-last training, but the checkpoint holds plain contiguous float32 weights
    assert all(v.is_contiguous() and v.dtype != torch.bfloat16 for v in ck["model"].values())
    # the same run resumes in float32
    train(TrainConfig(**{**cfg.__dict__, "steps": 24, "precision": "fp32"}), progress=False)
    assert torch.load(run / "ckpt.pt", weights_only=False)["step"] == 24
    with pytest.raises(ValueError, match="precision"):
        train(TrainConfig(**{**cfg.__dict__, "run_dir": str(tmp_path / "x"), "precision": "fp16"}), progress=False)


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_follows_the_cpu_and_the_checkpoint_records_the_choice(tmp_path, monkeypatch, capsys, native):
    from gqcodec.train import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", cuda) == "fp32"  # bf16 on GPUs is not measured yet
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", cpu)
    data = tmp_path / "data"
    _write_images(data, n=3)
    base = dict(data=str(data), steps=2, batch=2, crop=32, holdout=1, log_every=1, val_every=0, ckpt_every=2,
                threads=1, device="cpu", model=TINY)
    train(TrainConfig(run_dir=str(tmp_path / "auto"), precision="auto", **base), progress=False)
    ck = torch.load(tmp_path / "auto" / "ckpt.pt", weights_only=False)
    assert ck["train_config"]["precision"] == ("bf16" if native else "fp32")
    assert "warning" not in capsys.readouterr().out
    # asking for bf16 where it is emulated trains as asked, with a warning
    train(TrainConfig(run_dir=str(tmp_path / "bf16"), precision="bf16", **base), progress=False)
    out = capsys.readouterr().out
    assert ("no native bf16" in out) == (not native)
    assert torch.load(tmp_path / "bf16" / "ckpt.pt", weights_only=False)["train_config"]["precision"] == "bf16"


def test_nested_depths_draw_only_the_given_prefixes(tmp_path):
    from gqcodec.train import draw_keep

    torch.manual_seed(0)
    keep = torch.cat([draw_keep(TrainConfig(batch=1000, nested=0.5, nested_depths=(2, 6, 15)), 20, "cpu")
                      for _ in range(4)])
    counts = {int(v): int((keep == v).sum()) for v in keep.unique()}
    assert set(counts) == {2, 6, 15, 20}
    assert 1800 < counts[20] < 2200 and all(550 < counts[d] < 780 for d in (2, 6, 15))
    keep = draw_keep(TrainConfig(batch=4000, nested=1.0), 20, "cpu")   # default: any of 1..20
    assert set(keep.unique().tolist()) == set(range(1, 21))
    data = tmp_path / "data"
    _write_images(data)
    cfg = TrainConfig(data=str(data), run_dir=str(tmp_path / "run"), steps=2, batch=2, crop=32, holdout=1,
                      threads=1, device="cpu", model=TINY, nested_depths=(1, 3))   # TINY has 2 blocks
    with pytest.raises(ValueError, match=r"nested depths must lie in 1\.\.2"):
        train(cfg, progress=False)
    cfg.nested_depths = (1,)
    assert "kl_mean" in train(cfg, progress=False)
