"""`python -m services.publication.export --out DIR`: writes every published regulation with
its timeline as open data, read from the publication schema at DATABASE_URL in one
consistent snapshot: DIR/regulations/<regulation_id>.json, one document each (OPEN_DATA.md),
and DIR/index.json listing them."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path

from policykit import db
from policykit.config import env_str

from services.publication.open_data import encode, published_document

SCHEMA = "publication"
INDEX_FORMAT = "policy.open-data.index.v1"


def _write(path: Path, body: bytes) -> None:
    """Replaces the file at once, so a reader never sees half a document."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(body)
    os.replace(partial, path)


async def export(database_url: str, out: Path) -> list[dict]:
    """Writes the documents and the index; returns the index's entries."""
    (out / "regulations").mkdir(parents=True, exist_ok=True)
    pool = await db.create_pool(database_url, SCHEMA, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                            readonly=True):
            ids = [row["regulation_id"] for row in await conn.fetch(
                "SELECT regulation_id FROM promulgations ORDER BY regulation_id")]
            entries = []
            for regulation_id in ids:
                document = await published_document(conn, regulation_id)
                path = f"regulations/{regulation_id}.json"
                _write(out / path, encode(document, indent=2) + b"\n")
                promulgation = document["promulgation"]
                entries.append({
                    "regulation_id": regulation_id, "path": path, "title": document["title"],
                    "document_number": promulgation["document_number"],
                    "status": document["status"], "effective_at": promulgation["effective_at"],
                    "entries": len(document["timeline"])})
    finally:
        await pool.close()
    index = {"format": INDEX_FORMAT,
             "generated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
             "regulations": entries}
    _write(out / "index.json", encode(index, indent=2) + b"\n")
    return entries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.publication.export",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="the directory to write into")
    args = parser.parse_args(argv)
    entries = asyncio.run(export(env_str("DATABASE_URL"), args.out))
    print(f"exported {len(entries)} published regulation(s) to {args.out}")


if __name__ == "__main__":
    main()
