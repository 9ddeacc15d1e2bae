"""gqcodec.zoo: registry writes."""
import json

from gqcodec import codec, zoo


def test_save_registry_is_atomic_and_refreshes_the_cache(tmp_path, monkeypatch):
    from fakezoo import install

    install(tmp_path / "w", monkeypatch)
    reg = zoo.registry()
    reg["models"]["tiny"]["rdoq"] = 1.5
    zoo.save_registry(reg)
    assert json.loads((tmp_path / "w" / "registry.json").read_text())["models"]["tiny"]["rdoq"] == 1.5
    assert "registry" not in zoo._cache and zoo.entry("tiny")["rdoq"] == 1.5
    assert [p.name for p in (tmp_path / "w").iterdir() if p.suffix == ".part"] == []
    zoo._cache.clear()
    codec._codecs.clear()


def test_weights_digest_reads_the_tensors_without_torch_as_torch_did(tmp_path, monkeypatch):
    """The digest (inside every file's model hash) is computed with numpy; it must equal the
    torch-based definition the registry's digests and the shipped files' hashes were made with."""
    import hashlib

    import torch
    from safetensors.torch import load_file

    from fakezoo import install

    install(tmp_path / "w", monkeypatch)
    path = zoo.weights_path("tiny")
    state = load_file(str(path))
    assert {v.dtype for v in state.values()} == {torch.float16, torch.float32}  # both kinds are covered
    h = hashlib.sha256(json.dumps(json.loads(zoo.read_metadata(path)["config"]), sort_keys=True).encode())
    for k, v in sorted(state.items()):
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.contiguous().view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    assert zoo.weights_digest(path) == h.hexdigest()
    assert zoo.model_config("tiny") == codec.Codec("tiny").model.config
    zoo._cache.clear()
    codec._codecs.clear()
