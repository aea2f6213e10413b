"""Job history and image ids, in SQLite beside the output folder, so both survive a restart.

Images are only ever reached by the id issued here; the row says which folder (output or temp)
and which file name inside it, never a path a client gave.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    filename TEXT NOT NULL
);
-- Databases written before image ids were unique per file may hold duplicates: keep the first.
DELETE FROM images WHERE rowid NOT IN (SELECT MIN(rowid) FROM images GROUP BY kind, filename);
CREATE UNIQUE INDEX IF NOT EXISTS images_file ON images (kind, filename);
"""


class History:
    """Thread-safe: the worker thread writes, the event loop reads (each call is a few rows)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save(self, job: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO jobs (job_id, created, status, doc) VALUES (?, ?, ?, ?)",
                             (job["job_id"], job["created"], job["status"], json.dumps(job)))

    def get(self, job_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def recent(self, limit: int) -> list[dict]:
        """The newest `limit` jobs, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT doc FROM jobs ORDER BY created DESC, rowid DESC LIMIT ?",
                                    (limit,)).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def unfinished(self) -> list[dict]:
        """Jobs left pending or running (the server stopped without recording their end)."""
        with self._lock:
            rows = self._db.execute("SELECT doc FROM jobs WHERE status IN ('pending', 'running')").fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def image_id(self, job_id: str, node_id: str, kind: str, filename: str) -> str:
        """The id of an image file, issued the first time it is seen (a cached re-run shows the
        same file, under the same id)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO images (image_id, job_id, node_id, kind, filename) "
                             "VALUES (?, ?, ?, ?, ?)", (uuid.uuid4().hex, job_id, node_id, kind, filename))
            return self._db.execute("SELECT image_id FROM images WHERE kind = ? AND filename = ?",
                                    (kind, filename)).fetchone()[0]

    def image(self, image_id: str) -> tuple[str, str] | None:
        """(kind, filename) of an issued image id."""
        with self._lock:
            row = self._db.execute("SELECT kind, filename FROM images WHERE image_id = ?", (image_id,)).fetchone()
        return (row[0], row[1]) if row else None
