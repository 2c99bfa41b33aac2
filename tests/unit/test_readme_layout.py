"""README's "Where does it live" table names only files and folders that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = re.compile(r"^### Where does it live\n(.*?)(?=^#)", re.MULTILINE | re.DOTALL)
NAMED = re.compile(r"`([A-Za-z0-9_./*-]+(?:\.py|\.sql|/))`")
# where a name in each column is looked for: the project, the actors, or the tests
PLACES = (ROOT, ROOT / "actors", ROOT / "tests", ROOT / "splitgo")


def _exists(name: str, siblings: list[Path]) -> bool:
    pattern = name.rstrip("/")
    return any(next(place.glob(pattern), None) is not None for place in (*PLACES, *siblings))


def test_every_path_in_the_where_does_it_live_table_exists() -> None:
    """Each module, store and test file the table names is in the tree (the table drifts
    otherwise)."""
    section = SECTION.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert section is not None, "README.md has no 'Where does it live' section"
    missing: list[str] = []
    rows = [line for line in section.group(1).splitlines() if line.startswith("|")][2:]
    assert len(rows) >= 15
    for row in rows:
        cells = row.split("|")[1:-1]
        # a part named in the first cells lives in the package of its row
        packages = [ROOT / p for p in re.findall(r"`((?:actors|splitgo|transport)/[a-z_]*)`", row)]
        siblings = [*packages, *(p / "store" for p in packages)]
        siblings += [p.parent for p in packages]
        for cell in cells:
            for name in NAMED.findall(cell):
                if not _exists(name, siblings):
                    missing.append(name)
    assert not missing, f"README names paths that do not exist: {sorted(set(missing))}"
