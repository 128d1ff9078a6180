"""The persistent compilation cache: configuration, the ``cache`` command, clearing."""

from __future__ import annotations

import jax

from mtl_tracing import cli


def test_cache_command_info_and_clear(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "xla"
    monkeypatch.setenv("MTL_TRACING_CACHE_DIR", str(folder))
    assert cli.main(["cache"]) == 0
    assert "not created yet" in capsys.readouterr().out
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "entry").write_bytes(b"x" * 2048)
    assert cli.main(["cache"]) == 0
    assert "1 files" in capsys.readouterr().out
    assert cli.main(["cache", "--clear"]) == 0
    assert not folder.exists() and "cleared" in capsys.readouterr().out
    # An unusable path is one line, not a traceback.
    bad = tmp_path / "file"
    bad.write_text("")
    monkeypatch.setenv("MTL_TRACING_CACHE_DIR", str(bad))
    assert cli.main(["cache"]) == 2
    assert "error" in capsys.readouterr().err


def test_enable_compilation_cache_caches_every_program_with_a_size_limit(tmp_path, monkeypatch):
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_compilation_cache_max_size",
    )
    before = {n: getattr(jax.config, n) for n in names}
    monkeypatch.setenv("MTL_TRACING_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("MTL_TRACING_CACHE_MAX_MB", "64")
    try:
        assert cli.enable_compilation_cache() == str(tmp_path / "c")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "c")
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
        assert jax.config.jax_compilation_cache_max_size == 64 * 2**20
        monkeypatch.setenv("MTL_TRACING_NO_CACHE", "1")
        assert cli.enable_compilation_cache() is None
    finally:
        for n, v in before.items():
            jax.config.update(n, v)
