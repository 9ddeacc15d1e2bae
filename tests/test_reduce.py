"""Smaller files from a .gqc file without the original image: ``bitstream.truncate`` (torch-free
prefix truncation), ``Codec.reduce`` (counts chosen again) and ``gqcodec reduce``."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bitstream
from bitstream import FormatError, pack, read_header, read_metadata, truncate, unpack
from test_bitstream_helpers import make_header, random_indices, skewed_prior, skip_tail

META = {"exif": b"Exif\0\0MM\0*fake", "xmp": b"<x:xmpmeta>fake</x:xmpmeta>"}


def _file(rng, coding="range", prior=None, n=4, lh=5, lw=6, K_bits=8, skips=True, metadata=None):
    idx = random_indices(rng, K_bits, n, lh, lw)
    if skips and coding == "range":
        idx = skip_tail(rng, idx)
    return idx, pack(make_header(K_bits, n, lh, lw, coding), idx, prior=prior, metadata=metadata)


@pytest.mark.parametrize("kind", ["uniform", "model", "raw"])
def test_truncate_keeps_every_position_prefix_and_the_metadata(kind):
    rng = np.random.default_rng(0)
    prior = skewed_prior(rng, 256, 4) if kind == "model" else None
    idx, data = _file(rng, "raw" if kind == "raw" else "range", prior, metadata=META)
    for n in (1, 2, 4):
        small = truncate(data, n, prior=prior, quality=7)
        h, out = unpack(small, prior=prior)
        assert np.array_equal(out, idx[:n])
        assert (h.n_blocks, h.quality, h.coding, h.K_bits, h.width, h.height) == (n, 7, read_header(data).coding, 8,
                                                                                 read_header(data).width,
                                                                                 read_header(data).height)
        assert read_metadata(small) == META
        if n < 4:
            assert len(small) < len(data)


def test_truncate_with_counts_skips_the_blocks_past_each_count():
    rng = np.random.default_rng(1)
    prior = skewed_prior(rng, 256, 4)
    idx, data = _file(rng, prior=prior, skips=False)
    counts = rng.integers(0, 4, size=idx.shape[1:])
    h, out = unpack(truncate(data, 3, prior=prior, counts=counts), prior=prior)
    want = idx[:3].copy()
    want[np.arange(3)[:, None, None] >= counts[None]] = bitstream.SKIP
    assert np.array_equal(out, want) and h.layout == "prefix" and h.version == 5
    # a count above what the file codes at a position is not an error: that position keeps what it has
    idx2, data2 = _file(rng, prior=prior)
    out2 = unpack(truncate(data2, 4, prior=prior, counts=np.full(idx2.shape[1:], 4)), prior=prior)[1]
    assert np.array_equal(out2, idx2)


def test_truncate_keeps_wide_indices():
    rng = np.random.default_rng(2)
    prior = skewed_prior(rng, 256, 3)
    idx = random_indices(rng, 10, 3, 4, 5)  # 2**10 codewords, the prior has 2**8: escape coding (v3)
    data = pack(make_header(10, 3, 4, 5, "range"), idx, prior=prior)
    assert read_header(data).ext_bits == 2
    small = truncate(data, 2, prior=prior)
    assert np.array_equal(unpack(small, prior=prior)[1], idx[:2]) and read_header(small).K_bits == 10


def test_truncate_refuses_impossible_requests():
    rng = np.random.default_rng(3)
    _, raw = _file(rng, "raw")
    _, rng_file = _file(rng)
    for n in (0, 5):
        with pytest.raises(ValueError, match="1 to 4"):
            truncate(rng_file, n)
    with pytest.raises(ValueError, match="raw file"):
        truncate(raw, 2, counts=np.zeros((5, 6), dtype=np.int64))
    truncate(raw, 2, counts=np.full((5, 6), 2))  # keeping every block of the prefix is fine
    for bad in (np.zeros((5, 5), dtype=np.int64), np.full((5, 6), 3), np.full((5, 6), -1), np.zeros((5, 6))):
        with pytest.raises(ValueError, match="counts"):
            truncate(rng_file, 2, counts=bad)
    with pytest.raises(FormatError):
        truncate(rng_file[:-1], 2)


# -- the codec ---------------------------------------------------------------------------------

@pytest.fixture
def tuned(tmp_path, monkeypatch):
    from fakezoo import installed_codec

    yield from installed_codec(tmp_path / "w", monkeypatch, adaptive_lambda={"1": 50.0, "2": 50.0, "3": 20.0})


def _image(h=64, w=96, seed=3):
    rng = np.random.default_rng(seed)
    a = np.full((h, w, 3), 128, dtype=np.uint8)
    a[:, w // 2:] = rng.integers(0, 256, (h, w - w // 2, 3), dtype=np.uint8)  # flat left, noise right
    return a


def test_fast_reduce_is_the_prefix_and_decodes(tuned):
    data = tuned.compress(_image(), quality=3, adaptive=False)
    small = tuned.reduce(data, 1, fast=True)
    h, out = unpack(small, prior=tuned.prior)
    assert h.quality == 1 and h.n_blocks == 1 and len(small) < len(data)
    assert np.array_equal(out, unpack(data, prior=tuned.prior)[1][:1])
    img = tuned.decompress(small)
    assert img.size == (96, 64)
    # the same as decoding the first block of the original file
    _, idx = unpack(data, prior=tuned.prior)
    assert np.array_equal(np.asarray(img), tuned.decode_array(idx[:1], 64, 96))


def test_reduce_rechooses_counts_within_what_the_file_has(tuned, monkeypatch):
    data = tuned.compress(_image(), quality=3)  # adaptive: some positions keep fewer than 3 blocks
    _, idx = unpack(data, prior=tuned.prior)
    have = (idx >= 0).sum(axis=0)
    for q, n in ((2, 2), (3, 3)):
        _, out = unpack(tuned.reduce(data, q), prior=tuned.prior)
        counts = (out >= 0).sum(axis=0)
        assert (counts <= np.minimum(have, n)).all()
        assert np.array_equal(np.where(out >= 0, out, -1), np.where(out >= 0, idx[:n], -1))  # indices kept
    # the choice is the Lagrangian's: free rate keeps every block the file has, costly rate none
    monkeypatch.setitem(tuned.entry["adaptive_lambda"], "2", 0.0)
    _, out = unpack(tuned.reduce(data, 2), prior=tuned.prior)
    assert np.array_equal(out, idx[:2])
    monkeypatch.setitem(tuned.entry["adaptive_lambda"], "2", 1e12)
    _, out = unpack(tuned.reduce(data, 2), prior=tuned.prior)
    assert (out == bitstream.SKIP).all()


def test_reduce_refuses_to_grow_and_other_models_files(tuned, tmp_path, monkeypatch):
    from gqcodec.codec import CodecError

    data = tuned.compress(_image(), quality=2)
    with pytest.raises(CodecError, match="only has 2|has only 2"):
        tuned.reduce(data, 3)
    with pytest.raises(CodecError, match="as many as the file has"):
        tuned.reduce(data, 2, fast=True)
    raw = tuned.compress(_image(), quality=2, mode="raw")
    assert read_header(tuned.reduce(raw, 1)).coding == "raw"  # raw files: the prefix (all blocks coded)
    foreign = bitstream.pack(read_header(data).replace(model_id="other"), unpack(data, prior=tuned.prior)[1],
                             prior=tuned.prior)
    with pytest.raises(CodecError, match="other"):
        tuned.reduce(foreign, 1)


@pytest.mark.parametrize("fast", [False, True])
def test_reduce_to_a_size_gives_the_best_quality_that_fits(tuned, fast):
    from gqcodec.codec import CodecError

    data = tuned.compress(_image(h=96, w=128), quality=3)
    sizes = {q: len(tuned.reduce(data, q, fast=fast)) for q in (1, 2)}
    sizes[3] = len(data)
    assert sizes[1] < sizes[2] < sizes[3]
    assert tuned.reduce(data, max_bytes=sizes[3]) == data  # it fits already
    for q in (1, 2):
        for limit in (sizes[q], sizes[q + 1] - 1):
            out = tuned.reduce(data, fast=fast, max_bytes=limit)
            # the same bytes as reducing to that quality on its own (the tries share their decodes)
            assert read_header(out).quality == q and out == tuned.reduce(data, q, fast=fast)
    assert read_header(tuned.reduce(data, fast=fast, max_bpp=(8 * sizes[2] + 4) / (96 * 128))).quality == 2
    with pytest.raises(CodecError, match="does not fit"):
        tuned.reduce(data, fast=fast, max_bytes=sizes[1] - 1)
    with pytest.raises(CodecError, match="not both"):
        tuned.reduce(data, 1, max_bytes=10_000)
    with pytest.raises(CodecError, match="exactly one"):
        tuned.reduce(data, max_bytes=10_000, max_bpp=1.0)


def test_cli_reduce(tuned, tmp_path):
    from gqcodec.cli import main

    src = tmp_path / "a.png"
    Image.fromarray(_image()).save(src)
    gqc, small, fast = tmp_path / "a.gqc", tmp_path / "s.gqc", tmp_path / "f.gqc"
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    assert run("compress", src, gqc, "-q", "3").exit_code == 0
    res = run("reduce", gqc, small, "-q", "1")
    assert res.exit_code == 0, res.output
    assert "quality 3 -> 1" in res.output and read_header(small.read_bytes()).quality == 1
    assert run("reduce", gqc, fast, "-q", "1", "--fast").exit_code == 0
    assert read_header(fast.read_bytes()).n_blocks == 1
    res = run("reduce", gqc, tmp_path / "b.gqc", "--max-bytes", len(fast.read_bytes()))
    assert res.exit_code == 0 and len((tmp_path / "b.gqc").read_bytes()) <= len(fast.read_bytes())
    before = small.read_bytes()
    for args, words in ((("reduce", gqc, small, "-q", "1"), "exists"),
                        (("reduce", small, tmp_path / "x.gqc", "-q", "3"), "only"),
                        (("reduce", src, tmp_path / "y.gqc", "-q", "1"), "gqc"),
                        (("reduce", tmp_path / "none.gqc", tmp_path / "z.gqc", "-q", "1"), "no such file"),
                        (("reduce", gqc, tmp_path / "z.gqc"), "give one of"),
                        (("reduce", gqc, tmp_path / "z.gqc", "--max-bytes", 5), "does not fit")):
        res = run(*args)
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert res.exit_code != 0 and len(lines) == 1 and words in lines[0], res.output
    assert small.read_bytes() == before  # nothing the user had is lost
    assert not any((tmp_path / f).exists() for f in ("x.gqc", "y.gqc", "z.gqc"))


NO_TORCH = """
import sys
import gqcodec
from gqcodec import zoo
from gqcodec.cli import main

src, api, cli = sys.argv[1:4]
data = open(src, "rb").read()
open(api, "wb").write(gqcodec.reduce(data, 1, fast=True))
for args in (["reduce", src, cli, "-q", "1", "--fast"], ["models"]):
    try:
        main(args, standalone_mode=False)
    except SystemExit as e:
        assert not e.code, e.code
try:
    gqcodec.ModelCard("tiny").reduce(data, 2)  # choosing the counts again needs the decoder
except gqcodec.CodecError as e:
    print("refused:", e)
print("hash", zoo.model_hash("tiny").hex())
print("torch imported:", "torch" in sys.modules)
"""


def test_fast_reduce_and_the_model_list_need_no_torch(tuned, tmp_path):
    """Listing the models, checking a file against its model (hash included) and a fast reduction
    (API and CLI) run without importing torch, and make the same bytes as the loaded codec."""
    import os
    import subprocess
    import sys

    from gqcodec import zoo

    src = tmp_path / "a.gqc"
    src.write_bytes(data := tuned.compress(_image(), quality=3))
    api, cli = tmp_path / "api.gqc", tmp_path / "cli.gqc"
    env = dict(os.environ, GQCODEC_WEIGHTS_DIR=str(zoo.WEIGHTS_DIR))
    r = subprocess.run([sys.executable, "-c", NO_TORCH, str(src), str(api), str(cli)], env=env,
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "torch imported: False" in r.stdout, r.stdout
    assert f"hash {tuned.hash.hex()}" in r.stdout and "tiny (default)" in r.stdout
    assert "refused: choosing the block counts again needs the model's decoder" in r.stdout
    want = tuned.reduce(data, 1, fast=True)
    assert api.read_bytes() == want and cli.read_bytes() == want


def test_eval_reduce_tool_writes_a_ladder_of_reduced_files(tuned, tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("eval_reduce", Path(__file__).parent.parent / "tools" / "eval_reduce.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(_image(seed=i)).save(imgs / f"{i}.png")
    ref = tmp_path / "ref.json"
    from gqcodec.evaluate import GQCodecAdapter, evaluate, list_images
    from gqcodec import rd

    rd.save(evaluate(GQCodecAdapter(codec=tuned), list_images(imgs), [1, 2, 3])[0], ref)
    for fast in (False, True):
        out = tmp_path / f"r{fast}.json"
        assert tool.main(["--from", "3", "--images", str(imgs), "--out", str(out), "--ref", str(ref), "--threads", "1"]
                         + ["--fast"] * fast) == 0
        res = json.loads(out.read_text())["results"]
        assert sorted(res["quality"]) == [1, 2, 3] and out.with_suffix(".csv").exists()
        own = rd.load(ref)["results"]
        top = res["quality"].index(3)  # the source file is the model's own quality-3 file
        assert res["bpp"][top] == own["bpp"][own["quality"].index(3)]
        assert res["bpp"][res["quality"].index(1)] < res["bpp"][top]
    assert '"bd_rate"' in capsys.readouterr().out


@pytest.fixture
def two_tops(tmp_path, monkeypatch):
    from fakezoo import installed_codec

    yield from installed_codec(tmp_path / "w", monkeypatch, ladder={"1": 1, "2": 2, "3": 2},
                               adaptive_lambda={"1": 50.0, "2": 50.0, "3": 20.0})


def test_reduce_targets_are_the_qualities_a_file_can_become(two_tops):
    c = two_tops
    assert c.reduce_targets(2, 3) == [1, 2]          # quality 2 has as many blocks: counts chosen again
    assert c.reduce_targets(2, 3, fast=True) == [1]  # the prefix alone cannot make it smaller
    assert c.reduce_targets(2, 3, coding="raw") == [1]
    assert c.reduce_targets(2, 0) == [1]             # quality unknown (0): no same-size quality is lower
    assert c.reduce_targets(1, 1) == []
