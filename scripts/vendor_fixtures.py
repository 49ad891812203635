"""Copy the Matomo 5 capture set from ../shared into the repo as compact bundles.

Each bundle is gzipped JSON Lines: one line per captured file, holding the capture's
index entry (request params, HTTP status, content type) plus the body exactly as the
server sent it. Tests and the demo server's replay mode read these bundles, so a
user's clone needs nothing outside the repo.

Usage: python scripts/vendor_fixtures.py [SOURCE_DIR]
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEST = REPO / "tests" / "fixtures" / "matomo-5"


def _bundle(source: Path, index_name: str, bundle_name: str) -> int:
    count = 0
    with gzip.open(DEST / bundle_name, "wt", encoding="utf-8", compresslevel=9) as out:
        for line in (source / index_name).read_text().splitlines():
            entry = json.loads(line)
            path = source / entry["file"]
            if path.suffix != ".json" or not path.exists():
                continue
            entry["body"] = path.read_text(encoding="utf-8")
            out.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def main() -> None:
    source = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "fixtures" / "matomo-5"
    )
    DEST.mkdir(parents=True, exist_ok=True)
    for index_name, bundle_name in [
        ("index_live.jsonl", "live.jsonl.gz"),
        ("index_reports.jsonl", "reports.jsonl.gz"),
        ("index_meta_examples.jsonl", "meta_examples.jsonl.gz"),
    ]:
        print(bundle_name, _bundle(source, index_name, bundle_name))
    # Error captures already hold request, status, headers and body in one JSON file.
    with gzip.open(DEST / "errors.jsonl.gz", "wt", encoding="utf-8", compresslevel=9) as out:
        for path in sorted((source / "errors").glob("*.json")):
            entry = json.loads(path.read_text(encoding="utf-8"))
            entry["file"] = f"errors/{path.name}"
            out.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
    shutil.copyfile(source / "summary" / "daily_totals.csv", DEST / "daily_totals.csv")
    shutil.copyfile(source / "MANIFEST.md", DEST / "MANIFEST.md")


if __name__ == "__main__":
    main()
