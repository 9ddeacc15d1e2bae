"""tools/decoder_only.py: a superseded model reduced to its decoder still decodes its files, bit for
bit, under the same model hash; encoding or warm-starting from it fails with a clear error."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

spec = importlib.util.spec_from_file_location("decoder_only", Path(__file__).parent.parent / "tools" / "decoder_only.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def image(h=40, w=56):
    yy, xx = np.mgrid[:h, :w]
    return np.clip(np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1), 0, 255).astype(np.uint8)


def test_stripped_model_decodes_its_files_and_refuses_to_encode(tmp_path, monkeypatch):
    from fakezoo import install

    from gqcodec import codec, zoo
    from gqcodec.cli import main
    from gqcodec.train import read_init

    folder = tmp_path / "w"
    install(folder, monkeypatch)
    reg = zoo.read_registry()
    (folder / "tiny-2.safetensors").write_bytes((folder / "tiny.safetensors").read_bytes())
    reg["models"]["tiny-2"] = {**reg["models"]["tiny"], "weights": "tiny-2.safetensors"}
    reg["models"]["tiny"]["superseded_by"] = "tiny-2"
    reg["default"] = "tiny-2"
    zoo.save_registry(reg)

    files = {q: codec.Codec("tiny").compress(image(), quality=q) for q in (1, 3)}
    decoded = {q: np.asarray(codec.Codec("tiny").decompress(b)) for q, b in files.items()}
    hash_before = zoo.model_hash("tiny")
    size_before = (folder / "tiny.safetensors").stat().st_size

    with pytest.raises(SystemExit, match="not superseded"):
        tool.main(["tiny-2"])
    with pytest.raises(SystemExit, match="unknown model"):
        tool.main(["tiny-3"])
    tool.main(["tiny"])
    codec._codecs.clear()
    state = load_file(str(folder / "tiny.safetensors"))
    assert state and not any(k.startswith("g_a.") for k in state)
    assert (folder / "tiny.safetensors").stat().st_size < 0.8 * size_before
    assert not list(folder.glob("*.decoder"))
    e = zoo.read_registry()["models"]["tiny"]
    assert e["decoder_only"] and e["weights_digest"] != e["decoder_digest"]
    assert zoo.model_hash("tiny") == hash_before
    for q, b in files.items():
        assert np.array_equal(np.asarray(codec.Codec("tiny").decompress(b)), decoded[q])
        assert np.array_equal(np.asarray(codec.decompress(b)), decoded[q])  # found by the file's model name

    with pytest.raises(codec.CodecError, match="decoding only.*compress with tiny-2"):
        codec.Codec("tiny").compress(image())
    for call in (lambda c: c.compress_many(image()), lambda c: c.compress_to_size(image(), max_bytes=10**6)):
        with pytest.raises(codec.CodecError, match="decoding only"):
            call(codec.Codec("tiny"))
    src = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray(image()).save(src)
    res = CliRunner().invoke(main, ["compress", str(src), str(tmp_path / "a.gqc"), "--model", "tiny"])
    assert res.exit_code != 0 and "decoding only" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "a.gqc").exists()
    res = CliRunner().invoke(main, ["models"])
    assert "its decoder is installed" in res.output
    with pytest.raises(ValueError, match="only a decoder"):
        read_init(str(folder / "tiny.safetensors"))
    assert "already" in tool.strip("tiny")

    # a decoder file changed after stripping no longer passes for the model its files were written with
    bad = {k: v.clone() for k, v in state.items()}
    k = sorted(bad)[0]
    bad[k].view(-1)[0] += 1
    from safetensors.torch import save_file
    save_file(bad, str(folder / "tiny.safetensors"), metadata=zoo.read_metadata(folder / "tiny.safetensors"))
    zoo._cache.clear()
    codec._codecs.clear()
    assert zoo.model_hash("tiny") != hash_before
    with pytest.raises(Exception, match="hash"):
        codec.decompress(files[1])
    zoo._cache.clear()
    codec._codecs.clear()
