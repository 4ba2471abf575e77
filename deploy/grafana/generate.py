#!/usr/bin/env python3
"""Write deploy/grafana/clusterjobs.json from the dashboard-as-code in actors/observe/
(grafana-foundation-sdk). `--check` exits 1 when the file is not what the code generates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actors.observe.dashboard import render  # noqa: E402

TARGET = ROOT / "deploy" / "grafana" / "clusterjobs.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run deploy/grafana/generate.py",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(TARGET.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
