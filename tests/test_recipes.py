"""The recipes of README's library section (included in book/api.md) run as they stand, in order."""

import functools
import re
import socket
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MARKERS = ("<!-- recipes-start -->", "<!-- recipes-end -->")


def recipe_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start, end = (text.index(marker) for marker in MARKERS)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_book_includes_the_readme_recipes():
    api = (ROOT / "book" / "api.md").read_text()
    assert "```{include} ../README.md" in api and all(f":{side}: {marker}" in api for side, marker in
                                                        zip(("start-after", "end-before"), MARKERS))
    assert "```python" not in api  # one copy of each recipe: README's


def test_the_recipes_run(monkeypatch):
    with socket.socket() as s:  # DDP: one gloo rank on localhost, as torchrun would set it up
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(name, value)
    # inductor compiles C++ for minutes on a CPU: the eager backend runs dynamo's tracing of the same code
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    blocks = recipe_blocks()
    assert len(blocks) == 5
    namespace: dict = {}
    torch.manual_seed(0)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert torch.isfinite(namespace["loss"]) and namespace["weight"].shape == (64,)
