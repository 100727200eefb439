"""Helpers shared by the corpus preparation tests (importable as `corpora_test_utils`: pytest puts
test/corpora/ on sys.path for the tests there)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path


def fixture_langs(tree: Path, corpus: str) -> list[str]:
    """The languages the download fixture holds for a corpus, as its MANIFEST.json lists them."""
    return json.loads((tree / "MANIFEST.json").read_text(encoding="utf-8"))["corpora"][corpus]["languages"]


def copy_download(tree: Path, corpus: str, tmp_path: Path) -> Path:
    """A fresh copy of the fixture download of a corpus, as the corpus root (preparing writes into it)."""
    root = tmp_path / "root"
    shutil.copytree(tree / corpus, root)
    return root


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under a folder with its modification time and bytes: equal snapshots, nothing rewritten."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in sorted(folder.rglob("*"))}
