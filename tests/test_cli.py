import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bitstream
from gqcodec import codec, zoo
from gqcodec.cli import main

@pytest.fixture
def png(tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(p)
    return p


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, standalone_mode=True)


def one_line_error(res, *words):
    assert res.exit_code != 0
    lines = [line for line in res.output.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for w in words:
        assert w in lines[0], lines[0]


def test_compress_decompress_info_models(tiny, png, tmp_path):
    out = tmp_path / "x.gqc"
    res = run("compress", png, out, "-q", "3", "--raw")
    assert res.exit_code == 0, res.output
    h = bitstream.read_header(out.read_bytes())
    assert (h.quality, h.coding, h.width, h.height) == (3, "raw", 53, 37)
    res = run("decompress", out, tmp_path / "y.png")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "y.png").size == (53, 37)
    res = run("decompress", out, tmp_path / "y.webp")
    assert res.exit_code == 0 and Image.open(tmp_path / "y.webp").format == "WEBP"
    res = run("info", out)
    assert res.exit_code == 0 and "tiny" in res.output and "bpp" in res.output
    res = run("info", "--json", out)
    assert '"coding": "raw"' in res.output
    res = run("models")
    assert res.exit_code == 0 and "tiny (default)" in res.output


def test_stdin_stdout(tiny, png):
    res = CliRunner().invoke(main, ["compress", "-", "-"], input=png.read_bytes())
    assert res.exit_code == 0
    data = res.stdout_bytes
    assert data[:4] == bitstream.MAGIC
    res = CliRunner().invoke(main, ["decompress", "-", "-"], input=data)
    assert res.exit_code == 0 and res.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_overwrite_without_force(tiny, png, tmp_path):
    out = tmp_path / "x.gqc"
    out.write_bytes(b"precious")
    res = run("compress", png, out)
    one_line_error(res, "exists", "--force")
    assert out.read_bytes() == b"precious"
    res = run("compress", png, out, "--force")
    assert res.exit_code == 0 and out.read_bytes()[:4] == bitstream.MAGIC
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_failed_write_leaves_old_file_intact(tiny, png, tmp_path, monkeypatch):
    out = tmp_path / "x.gqc"
    out.write_bytes(b"precious")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    res = run("compress", png, out, "--force")
    assert res.exit_code != 0
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "weights", "x.gqc"]


def test_rdoq_option(tiny, png, tmp_path):
    res = run("compress", png, tmp_path / "a.gqc", "--rdoq", "0")
    assert res.exit_code == 0, res.output
    res = run("compress", png, tmp_path / "b.gqc", "--rdoq", "50")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "b.gqc").stat().st_size <= (tmp_path / "a.gqc").stat().st_size
    res = run("compress", png, tmp_path / "c.gqc", "--raw", "--rdoq", "1")
    one_line_error(res, "range coding")
    assert not (tmp_path / "c.gqc").exists()
    res = run("compress", png, tmp_path / "d.gqc", "--rdoq", "-1")
    assert res.exit_code != 0 and not (tmp_path / "d.gqc").exists()


@pytest.mark.parametrize("case", ["missing", "not_image", "dir_out", "no_parent", "bad_ext"])
def test_bad_inputs_one_line(tiny, png, tmp_path, case):
    if case == "missing":
        res = run("compress", tmp_path / "nope.png", tmp_path / "o.gqc")
        one_line_error(res, "no such file")
    elif case == "not_image":
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"hello")
        res = run("compress", bad, tmp_path / "o.gqc")
        one_line_error(res, "not a readable image")
    elif case == "dir_out":
        res = run("compress", png, tmp_path)
        one_line_error(res, "is a directory")
    elif case == "no_parent":
        res = run("compress", png, tmp_path / "nodir" / "o.gqc")
        one_line_error(res, "does not exist")
    else:
        run("compress", png, tmp_path / "o.gqc")
        res = run("decompress", tmp_path / "o.gqc", tmp_path / "o.xyz")
        one_line_error(res, "image format")
    assert not (tmp_path / "o.gqc").exists() or case == "bad_ext"


def test_corrupted_and_foreign_gqc(tiny, png, tmp_path):
    out = tmp_path / "x.gqc"
    run("compress", png, out)
    data = bytearray(out.read_bytes())
    data[-3] ^= 0xFF
    bad = tmp_path / "bad.gqc"
    bad.write_bytes(bytes(data))
    one_line_error(run("decompress", bad, tmp_path / "o.png"), "CRC")
    assert not (tmp_path / "o.png").exists()
    trunc = tmp_path / "t.gqc"
    trunc.write_bytes(bytes(data[:50]))
    one_line_error(run("info", trunc), "truncated")
    h = bitstream.read_header(out.read_bytes())
    _, idx = bitstream.unpack(out.read_bytes(), prior=zoo.load_prior())
    foreign = tmp_path / "f.gqc"
    foreign.write_bytes(bitstream.pack(h.replace(model_id="other-model"), idx, zoo.load_prior()))
    one_line_error(run("decompress", foreign, tmp_path / "o.png"), "other-model", "not installed")
    one_line_error(run("compress", png, tmp_path / "q.gqc", "-q", "42"), "quality 42")


def test_unwritable_output(tiny, png, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    one_line_error(run("compress", png, ro / "o.gqc"), "not writable")


def test_installed_console_script(tiny, png, tmp_path):
    exe = shutil.which("gqcodec", path=os.path.dirname(sys.executable)) or shutil.which("gqcodec")
    if exe is None:
        pytest.skip("console script not installed")
    env = dict(os.environ, GQCODEC_WEIGHTS_DIR=str(tiny))
    out = tmp_path / "s.gqc"
    r = subprocess.run([exe, "compress", str(png), str(out)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([exe, "decompress", str(out), str(tmp_path / "s.png")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "s.png").size == (53, 37)
    r = subprocess.run([exe, "decompress", str(png), str(tmp_path / "z.png")], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "magic" in r.stderr
    r = subprocess.run([exe, "--help"], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "Examples" in r.stdout


def test_models_lists_the_rdoq_strength_per_quality(tmp_path, monkeypatch):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, rdoq=3.0, rdoq_by_quality={"3": 0.5}, adaptive_lambda={"2": 120.5},
            index_bits={"3": 10})
    res = run("models")
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split() for line in res.output.splitlines()[2:]}
    assert [rows[q][2] for q in ("1", "2", "3")] == ["2^8", "2^8", "2^10"]  # codebook size per quality
    assert [rows[q][3] for q in ("1", "2", "3")] == ["3", "3", "0.5"]
    assert [rows[q][4] for q in ("1", "2", "3")] == ["0.0312", "0.0625", "0.1172"]  # raw bpp: n * log2 K / 256
    assert [rows[q][-1] for q in ("1", "2", "3")] == ["dense", "120.5", "dense"]
    zoo._cache.clear()
    codec._codecs.clear()


def test_models_says_which_model_superseded_an_old_one(tmp_path, monkeypatch):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, superseded_by="tiny-r2")
    res = run("models")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1].strip() == "superseded by tiny-r2; kept installed so that its files decode"
    zoo._cache.clear()
    codec._codecs.clear()


def test_models_lists_the_default_first_and_superseded_models_in_one_line(tmp_path, monkeypatch):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch, superseded_by="tiny-r2", description="old")
    reg = zoo.read_registry()
    reg["models"]["tiny-r2"] = {k: v for k, v in reg["models"]["tiny"].items() if k != "superseded_by"}
    reg["models"]["tiny-r2"]["description"] = "new"
    reg["default"] = "tiny-r2"
    zoo.save_registry(reg)
    lines = run("models").output.splitlines()
    assert lines[0] == "tiny-r2 (default): new" and lines[1].split()[0] == "quality"
    assert lines[-2:] == ["tiny: old", "  superseded by tiny-r2; kept installed so that its files decode"]
    assert len(lines) == 2 + 3 + 2  # the default's ladder (3 qualities), the old model in two lines
    full = run("models", "--all").output.splitlines()
    assert full[:len(lines) - 2] == lines[:-2] and len(full) == len(lines) + 4  # + the old model's ladder
    zoo._cache.clear()
    codec._codecs.clear()


def test_closed_stdout_pipe_ends_quietly():
    # `gqcodec models | head -1`: the reader is gone before the listing is written
    p = subprocess.Popen([sys.executable, "-m", "gqcodec.cli", "models"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert "error" not in err and "Traceback" not in err, err


def test_usage_errors_are_one_line_naming_the_help(tmp_path):
    """Wrong arguments get one ``gqcodec: error:`` line pointing at the command's --help and exit
    status 2 (click's usage block would be four lines); no arguments at all still show the help.
    (The test runner names the program ``main``, the console script ``gqcodec``.)"""
    for args, words in ((("compress", "a.png"), ("Missing argument 'DST'", " compress --help'")),
                        (("compress", "a.png", "b.gqc", "-q", "abc"), ("'abc' is not a valid integer",)),
                        (("reduce", "a.gqc", "b.gqc", "--max-bytes", "0"), ("--max-bytes", " reduce --help'")),
                        (("frobnicate",), ("No such command 'frobnicate'", "(see '")),
                        (("--bogus",), ("No such option '--bogus'",))):
        res = run(*args)
        one_line_error(res, "gqcodec: error:", *words)
        assert res.exit_code == 2
    assert not (tmp_path / "b.gqc").exists()
    res = run()
    assert res.output.startswith("Usage: ") and "Commands:" in res.output


def test_animated_input_codes_the_first_frame_and_says_so(tiny, tmp_path):
    frames = [Image.new("RGB", (40, 24), c) for c in ("red", "blue", "green")]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    res = run("compress", gif, tmp_path / "a.gqc")
    assert res.exit_code == 0, res.output
    assert f"note: {gif} has 3 frames; only the first is coded" in res.output
    for i, f in enumerate(frames[:2]):  # the file is the first frame's own encode, not the second's
        f.save(tmp_path / f"f{i}.png")
        res = run("compress", tmp_path / f"f{i}.png", tmp_path / f"f{i}.gqc")
        assert res.exit_code == 0 and "frames" not in res.output
    assert (tmp_path / "a.gqc").read_bytes() == (tmp_path / "f0.gqc").read_bytes() != (tmp_path / "f1.gqc").read_bytes()
