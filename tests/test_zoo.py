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
