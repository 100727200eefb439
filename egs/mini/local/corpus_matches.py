"""Exit 0 when DIR holds a complete toy corpus of the given size and seed, else 1.

    python local/corpus_matches.py DIR SIZE SEED
"""
import json
import sys
from pathlib import Path


def main(out_dir: str, size: str, seed: str) -> int:
    summary = Path(out_dir) / "summary.json"   # written last by the generator
    try:
        info = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 1
    return 0 if info.get("size") == size and str(info.get("seed")) == seed else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
