"""A regular (non-editable) install maps the four folders to one namespace and ships the assets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_regular_install_into_a_target(tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    for top in ("pipelines", "distill", "render"):
        assert not (target / top).exists(), f"a top-level package {top!r} was installed"
    assert (target / "genkit" / "pipelines" / "text2img" / "__init__.py").is_file()
    assert list((target / "genkit" / "assets" / "text2img-shapes" / "unet").glob("*.safetensors"))
    code = (
        "import genkit.pipelines.text2img as t, genkit.distill, genkit.render, genkit.assets as a;"
        "print(t.__file__); print(a.bundled_models()['text2img-shapes']['path'])"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert all(line.startswith(str(target)) for line in r.stdout.split())


def test_editable_install_resolves_to_the_checkout():
    import genkit
    import genkit.pipelines.text2img as t

    if Path(genkit.__file__).resolve().parents[1] != ROOT:
        pytest.skip("genkit is not installed in editable mode from this checkout")
    assert Path(t.__file__).resolve() == ROOT / "pipelines" / "text2img" / "__init__.py"
