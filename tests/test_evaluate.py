import csv
import io
import json
import math
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gqcodec import evaluate as ev
from gqcodec import rd
from gqcodec.cli_eval import eval_cmd

W, H = 64, 48


def _make_images(folder, n=2):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:H, 0:W]
    paths = []
    for i in range(n):
        img = np.stack([x * 4.0 + 10 * i, y * 5.0, (x + y) * 2.0 + 40], -1) + rng.normal(0, 6, (H, W, 3))
        p = folder / f"img{i}.png"
        Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8)).save(p)
        paths.append(p)
    (folder / "notes.txt").write_text("not an image")
    return paths


class FakeAdapter(ev.Adapter):
    """Uniform quantization with step 2**q (q=0: lossless), zlib-packed, with a 4-byte header."""

    name = "fake"
    description = "fake codec"
    ext = ".fake"
    qualities = [3, 0, 5]

    def encode(self, img, quality):
        a = np.asarray(img)
        step = 2 ** int(quality)
        qa = (a // step) * step + step // 2 if step > 1 else a
        h, w = a.shape[:2]
        return (bytes([h >> 8, h & 255, w >> 8, w & 255]) +
                zlib.compress(qa.astype(np.uint8).tobytes(), 9))

    def decode(self, data):
        h, w = data[0] << 8 | data[1], data[2] << 8 | data[3]
        a = np.frombuffer(zlib.decompress(data[4:]), np.uint8).reshape(h, w, 3)
        return Image.fromarray(a)


def _check_summary(summary, n_points):
    res = summary["results"]
    assert set(res) == {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time", "quality"}
    assert all(len(v) == n_points for v in res.values())
    assert res["bpp"] == sorted(res["bpp"])
    assert all(t >= 0 for t in res["encoding_time"] + res["decoding_time"])
    rd.validate(summary)


def test_harness_pillow_jpeg(tmp_path):
    paths = _make_images(tmp_path / "imgs")
    summary, records = ev.evaluate(ev.JPEGAdapter(2, [90, 10, 50]), paths)
    _check_summary(summary, 3)
    res = summary["results"]
    assert res["quality"] == [10, 50, 90]  # sorted by bpp, which grows with JPEG quality
    assert res["psnr-rgb"] == sorted(res["psnr-rgb"])
    assert summary["name"] == "pillow-jpeg420" and "4:2:0" in summary["description"]
    assert len(records) == 6
    for r in records:
        assert r["bpp"] == r["bytes"] * 8 / (W * H)
        assert 15 < r["psnr"] < 60 and 0 < r["ms-ssim"] < 1
    q10 = [r for r in records if r["quality"] == 10]
    assert res["bpp"][0] == pytest.approx(np.mean([r["bpp"] for r in q10]))
    assert res["psnr-rgb"][0] == pytest.approx(np.mean([r["psnr"] for r in q10]))
    # 4:4:4 costs more bits than 4:2:0 at the same quality
    s444, _ = ev.evaluate(ev.JPEGAdapter(0, [50]), paths)
    assert s444["results"]["bpp"][0] > res["bpp"][1]


def test_harness_fake_adapter_files_csv_and_cap(tmp_path):
    paths = _make_images(tmp_path / "imgs")
    keep = tmp_path / "streams"
    summary, records = ev.evaluate(FakeAdapter(), paths, keep_dir=keep)
    _check_summary(summary, 3)
    res = summary["results"]
    assert res["quality"] == [5, 3, 0]  # coarser steps compress better
    assert res["psnr-rgb"][-1] == 100.0  # lossless: infinite PSNR capped for the average
    assert res["ms-ssim-rgb"][-1] == pytest.approx(1.0, abs=1e-6)
    files = sorted(p.name for p in keep.iterdir())
    assert files == sorted(f"img{i}.q{q}.fake" for i in range(2) for q in (0, 3, 5))
    for r in records:
        assert (keep / f"{r['image'][:-4]}.q{r['quality']}.fake").stat().st_size == r["bytes"]

    out = tmp_path / "per_image.csv"
    ev.write_csv(records, out)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == list(ev.CSV_FIELDS)
    assert len(rows) == 6 and {r["image"] for r in rows} == {"img0.png", "img1.png"}
    lossless = [r for r in rows if r["quality"] == "0"]
    assert all(float(r["psnr"]) == math.inf for r in lossless)
    assert float(rows[1]["bpp"]) == records[1]["bpp"]


def test_harness_restores_threads_and_accepts_pil_images():
    import torch

    before = torch.get_num_threads()
    img = Image.new("RGB", (W, H), (120, 30, 200))
    summary, records = ev.evaluate(FakeAdapter(), [img], qualities=[4])
    assert torch.get_num_threads() == before
    assert records[0]["image"] == "image000" and summary["results"]["quality"] == [4]


def test_harness_rejects_wrong_decoded_size(tmp_path):
    class Broken(FakeAdapter):
        def decode(self, data):
            return super().decode(data).crop((0, 0, 10, 10))

    with pytest.raises(ev.EvalError, match="decoded"):
        ev.evaluate(Broken(), _make_images(tmp_path / "i", 1), qualities=[2])


def test_gqcodec_adapter_with_a_fake_codec(tmp_path):
    class FakeCodec:
        name = "fake-model"
        qualities = [1, 2]
        rdoq = 2.5

        def rdoq_for(self, quality):
            return self.rdoq

        def adaptive_lambda(self, quality):
            return 100.0 if quality == 1 else None

        def refine_plan(self, quality, mode="range", refine=None):
            return 0, 8, 1000.0

        def compress(self, img, quality=None, mode="range", rdoq=None, adaptive=None, refine=None):
            assert mode == "range" and rdoq is None and adaptive is None and refine is None
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=30 * quality)
            return b"GQC!" + buf.getvalue()

        def decompress(self, data):
            assert data[:4] == b"GQC!"
            return Image.open(io.BytesIO(data[4:]))

    ad = ev.GQCodecAdapter(codec=FakeCodec())
    assert ad.name == "gqcodec-fake-model" and ad.ext == ".gqc" and ad.qualities == [1, 2]
    assert "rdoq 2.5" in ad.description and "adaptive rate at q1," in ad.description
    assert ", dense," in ev.GQCodecAdapter(codec=FakeCodec(), qualities=[2]).description
    keep = tmp_path / "gqc"
    summary, records = ev.evaluate(ad, _make_images(tmp_path / "i", 1), keep_dir=keep)
    assert sorted(p.suffix for p in keep.iterdir()) == [".gqc", ".gqc"]
    assert summary["results"]["quality"] == [1, 2]

    class TopPlain(FakeCodec):
        def rdoq_for(self, quality):
            return 0.0 if quality == 2 else self.rdoq

    assert "rdoq q1: 2.5, q2: 0" in ev.GQCodecAdapter(codec=TopPlain()).description
    assert "rdoq 0," in ev.GQCodecAdapter(codec=TopPlain(), rdoq=0).description
    assert "rdoq 0," in ev.GQCodecAdapter(codec=TopPlain(), qualities=[2]).description  # the top alone


def test_gqcodec_adapter_names_the_index_refinement(tmp_path, monkeypatch):
    from fakezoo import install

    from gqcodec import codec, zoo

    install(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 3, "4": 3}, index_bits={"4": 10},
            adaptive_lambda={"1": 40.0, "2": 40.0, "3": 40.0, "4": 40.0}, refine={"iters": 1, "top": 8, "alpha": 900.0})
    assert "index refinement (1 iteration, top 8, alpha 900) at q1,2,3," in ev.GQCodecAdapter().description
    assert "index refinement (3 iterations" in ev.GQCodecAdapter(refine=3).description
    assert "refinement" not in ev.GQCodecAdapter(refine=0).description
    assert "dense, index refinement (1 iteration" in ev.GQCodecAdapter(adaptive=False).description
    assert "refinement" not in ev.GQCodecAdapter(mode="raw").description
    assert "refinement" not in ev.GQCodecAdapter(qualities=[4]).description      # the wide top: never refined
    zoo._cache.clear()
    codec._codecs.clear()


def test_make_adapter_and_qualities():
    with pytest.raises(ev.EvalError, match="rdoq"):
        ev.make_adapter("webp", rdoq=1.0)
    with pytest.raises(ev.EvalError, match="gqcodec only"):
        ev.make_adapter("webp", adaptive=False)
    with pytest.raises(ev.EvalError, match="refine applies to gqcodec only"):
        ev.make_adapter("webp", refine=1)
    assert ev.make_adapter("jpeg444").name == "pillow-jpeg444"
    assert ev.make_adapter("webp", qualities=[10]).qualities == [10]
    j2k = ev.make_adapter("jpeg2000")
    assert j2k.qualities[0] == 384.0 and j2k.save_kwargs(24.0)["mct"] == 1
    with pytest.raises(ev.EvalError, match="unknown codec"):
        ev.make_adapter("bpg")
    assert ev.parse_qualities("1, 2,3") == [1, 2, 3]
    assert ev.parse_qualities("96,12.5") == [96, 12.5]
    assert ev.parse_qualities(None) is None
    with pytest.raises(ev.EvalError, match="bad quality"):
        ev.parse_qualities("1,x")


@pytest.mark.parametrize("codec", ["webp", "avif", "jpeg2000"])
def test_other_pillow_adapters_round_trip(codec):
    from PIL import features

    if codec == "avif" and not features.check("avif") or codec == "jpeg2000" and not features.check("jpg_2000"):
        pytest.skip(f"Pillow without {codec}")
    ad = ev.make_adapter(codec)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8))
    q = ad.qualities[len(ad.qualities) // 2]
    dec = ad.decode(ad.encode(img, q))
    assert dec.size == img.size


def test_list_images(tmp_path):
    _make_images(tmp_path / "imgs", 3)
    assert [p.name for p in ev.list_images(tmp_path / "imgs")] == ["img0.png", "img1.png", "img2.png"]
    assert len(ev.list_images(tmp_path / "imgs", max_images=2)) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(ev.EvalError, match="no images"):
        ev.list_images(tmp_path / "empty")
    d = ev.default_image_dir()
    assert d is None or d.is_dir()


def test_eval_cli(tmp_path):
    _make_images(tmp_path / "imgs")
    out, per = tmp_path / "r.json", tmp_path / "r.csv"
    args = [str(tmp_path / "imgs"), "--codec", "jpeg", "--qualities", "20,80", "--max-images", "1",
            "--out", str(out), "--csv", str(per), "--no-progress"]
    r = CliRunner().invoke(eval_cmd, args)
    assert r.exit_code == 0, r.output
    data = rd.load(out)
    assert data["results"]["quality"] == [20, 80] and "1 images" in data["description"]
    assert len(list(csv.DictReader(per.open()))) == 2
    assert "q=" in r.stdout
    # existing output without --force: refused before any work
    r = CliRunner().invoke(eval_cmd, args)
    assert r.exit_code == 1 and "--force" in r.stderr and "Traceback" not in r.stderr
    r = CliRunner().invoke(eval_cmd, args + ["--force", "--name", "renamed"])
    assert r.exit_code == 0 and json.loads(out.read_text())["name"] == "renamed"


@pytest.mark.parametrize("extra,msg", [
    (["--qualities", "1,zz"], "bad quality"),
    (["--codec", "nope"], "Invalid value"),
    ([], "no images"),
])
def test_eval_cli_errors(tmp_path, extra, msg):
    (tmp_path / "empty").mkdir()
    folder = tmp_path / "empty"
    if msg != "no images":
        _make_images(folder)
    r = CliRunner().invoke(eval_cmd, [str(folder), "--out", str(tmp_path / "o.json"), "--no-progress",
                                      "--codec", "jpeg"] + extra)
    assert r.exit_code != 0 and msg in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.json").exists()
