"""Job history, the queue, sweeps and image ids, in SQLite beside the output folder, so all of
them survive a restart (graceful or not).

Jobs keep their queue order (`seq`, given when first written); pending jobs are read back in that
order when the server starts again. Images are only ever reached by the id issued here; the row
says which folder (output or temp) and which file name inside it, never a path a client gave.
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
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL
);
"""
# Columns added after the first release; older databases get them on open.
JOB_COLUMNS = {"seq": "INTEGER", "sweep_id": "TEXT"}
UPSERT = ("INSERT INTO jobs (job_id, created, status, doc, seq, sweep_id) VALUES (?, ?, ?, ?, "
          "(SELECT IFNULL(MAX(seq), 0) + 1 FROM jobs), ?) "
          "ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, doc = excluded.doc")


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
            present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for name, kind in JOB_COLUMNS.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_seq ON jobs (seq)")
            self._db.execute("CREATE INDEX IF NOT EXISTS jobs_sweep ON jobs (sweep_id)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save(self, job: dict) -> None:
        """Write a job; a new one goes to the end of the queue order, a known one keeps its place."""
        self.save_many([job])

    def save_many(self, jobs: list[dict]) -> None:
        """Write jobs in one transaction (a sweep's jobs are all queued, or none)."""
        rows = [(job["job_id"], job["created"], job["status"], json.dumps(job), job.get("sweep_id")) for job in jobs]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(UPSERT, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _docs(self, query: str, *params) -> list[dict]:
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def get(self, job_id: str) -> dict | None:
        return next(iter(self._docs("SELECT doc FROM jobs WHERE job_id = ?", job_id)), None)

    def recent(self, limit: int) -> list[dict]:
        """The newest `limit` jobs, newest first."""
        return self._docs("SELECT doc FROM jobs ORDER BY created DESC, rowid DESC LIMIT ?", limit)

    def unfinished(self) -> list[dict]:
        """In queue order: jobs left pending or running (the server stopped without recording their
        end), and jobs a shutdown interrupted that were not yet considered for resuming."""
        return self._docs("SELECT doc FROM jobs WHERE status IN ('pending', 'running') OR "
                          "(status = 'interrupted' AND json_extract(doc, '$.resumable')) ORDER BY seq, rowid")

    def sweep_jobs(self, sweep_id: str) -> list[dict]:
        """A sweep's jobs, in queue order."""
        return self._docs("SELECT doc FROM jobs WHERE sweep_id = ? ORDER BY seq, rowid", sweep_id)

    def sweep_counts(self, sweep_id: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs WHERE sweep_id = ? GROUP BY status",
                                    (sweep_id,)).fetchall()
        return dict(rows)

    def save_sweep(self, sweep: dict) -> None:
        with self._lock:
            self._db.execute("INSERT INTO sweeps (sweep_id, created, status, doc) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (sweep_id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
                             (sweep["sweep_id"], sweep["created"], sweep["status"], json.dumps(sweep)))

    def get_sweep(self, sweep_id: str) -> dict | None:
        return next(iter(self._docs("SELECT doc FROM sweeps WHERE sweep_id = ?", sweep_id)), None)

    def recent_sweeps(self, limit: int) -> list[dict]:
        return self._docs("SELECT doc FROM sweeps ORDER BY created DESC, rowid DESC LIMIT ?", limit)

    def unfinished_sweeps(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT sweep_id FROM sweeps WHERE status != 'finished'").fetchall()
        return [sweep_id for (sweep_id,) in rows]

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
