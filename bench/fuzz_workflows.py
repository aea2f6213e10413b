"""The long fuzz run (issue 22): N hostile documents through every way in, counted.

    python bench/fuzz_workflows.py --examples 100000 --write-docs

Each document (tests/fuzzing.py: real workflows of our formats v1 and v2 and ComfyUI's API and UI
formats, mutated) goes through `load_workflow` + `validate` (from JSON bytes and as a dict), the CLI
in this process (validate, import, and run for those validation refuses), and a real server on
loopback (/api/validate, /api/queue for refused ones, PUT /api/workflows, /api/import); every
`--batch` documents are also given to the installed CLI in its own process (`python -m latentgraph
validate` with all of them at once). Unlike the test, a failure does not stop the run: failures are
counted by kind and the first few kept under --keep. The figures are printed and, with
--write-docs, written into docs/robustness.md.
"""
from __future__ import annotations

import argparse
import collections
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzzing import check_cli, check_http, documents, dumps, engine_outcome, loopback_server  # noqa: E402

from latentgraph.graph.settings import Settings  # noqa: E402

DOCS = ROOT / "docs" / "robustness.md"
SESSION = 5000
BEGIN, END = "<!-- fuzz_workflows: begin -->", "<!-- fuzz_workflows: end -->"


class Tally:
    def __init__(self, keep: Path):
        self.outcomes = collections.Counter()
        self.failures = collections.Counter()
        self.statuses = collections.Counter()
        self.seconds = collections.defaultdict(list)
        self.keep, self.kept = keep, 0
        self.examples = 0
        self.process_runs = self.process_files = 0

    def fail(self, where: str, doc, exc: BaseException) -> None:
        self.failures[f"{where}: {type(exc).__name__}"] += 1
        if self.kept < 20:
            self.kept += 1
            (self.keep / f"failure-{self.kept}.json").write_text(dumps(doc))
            (self.keep / f"failure-{self.kept}.txt").write_text("".join(traceback.format_exception(exc)))

    def timed(self, where: str, function, doc):
        started = time.perf_counter()
        try:
            return function()
        except Exception as exc:  # counted, not raised: the run goes on
            self.fail(where, doc, exc)
            return None
        finally:
            self.seconds[where].append(time.perf_counter() - started)


def in_process_batch(paths: list[Path], folder: Path, tally: Tally) -> None:
    """The installed command in its own process, all of the batch at once."""
    done = subprocess.run([sys.executable, "-m", "latentgraph", "validate", *map(str, paths),
                           "--models", str(folder / "models"), "--input", str(folder / "input")],
                          capture_output=True, text=True, timeout=3600)
    tally.process_runs += 1
    tally.process_files += len(paths)
    if done.returncode not in (0, 3) or "Traceback" in done.stderr:
        tally.failures[f"process: exit {done.returncode}"] += 1
        (tally.keep / f"process-{tally.process_runs}.txt").write_text(done.stderr[-20000:])
    for path in paths:
        path.unlink(missing_ok=True)


def run(examples: int, batch: int, keep: Path) -> tuple[Tally, float]:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    for name in ("models", "input", "output", "temp", "batch"):
        (folder / name).mkdir()
    plain = Settings(models=folder / "models", input=folder / "input", output=folder / "output",
                     temp=folder / "temp", device="cpu")
    tally = Tally(keep)
    pending: list[Path] = []
    started = time.time()
    with loopback_server(plain, folder) as port:

        def one(doc):
            tally.examples += 1
            outcome = tally.timed("engine", lambda: engine_outcome(dumps(doc).encode(), plain), doc)
            if outcome is None:
                return
            tally.outcomes[outcome] += 1
            same = tally.timed("engine (dict)", lambda: engine_outcome(doc, plain), doc) if isinstance(
                doc, (dict, list)) else outcome  # a str given to load_workflow is a path
            if same is not None and same != outcome:
                tally.failures["engine: dict and text disagree"] += 1
            tally.timed("cli", lambda: check_cli(doc, outcome, folder), doc)
            statuses = tally.timed("http", lambda: check_http(doc, outcome, port), doc)
            for status in statuses or ():
                tally.statuses[status] += 1
            path = folder / "batch" / f"{tally.examples}.json"
            path.write_text(dumps(doc), encoding="utf-8")
            pending.append(path)
            if len(pending) >= batch:
                in_process_batch(pending, folder, tally)
                pending.clear()
            if tally.examples % 1000 == 0:
                print(f"{tally.examples:,} examples, {time.time() - started:.0f} s, failures: "
                      f"{sum(tally.failures.values())}", flush=True)

        # Sessions of SESSION examples, each with its own random seed: Hypothesis remembers what each
        # session generated, and that memory would otherwise grow with the whole run.
        while tally.examples < examples:
            def session(doc):  # a new function each session: Hypothesis takes one settings object per function
                one(doc)

            given(doc=documents())(settings(max_examples=min(SESSION, examples - tally.examples), deadline=None,
                                            database=None, phases=[Phase.generate],
                                            suppress_health_check=list(HealthCheck))(session))()
        if pending:
            in_process_batch(pending, folder, tally)
    return tally, time.time() - started


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


def report(tally: Tally, seconds: float, examples: int) -> str:
    total = sum(tally.outcomes.values())
    share = {k: f"{v:,} ({v / total:.1%})" for k, v in tally.outcomes.items()} if total else {}
    timing = "\n".join(f"| {where} | {len(times):,} | {statistics.median(times) * 1e3:.1f} | "
                       f"{p99(times) * 1e3:.1f} | {max(times) * 1e3:.0f} |"
                       for where, times in tally.seconds.items() if len(times) > 1)
    failures = ", ".join(f"{k}: {v}" for k, v in tally.failures.most_common()) or "none"
    machine = f"{platform.machine()}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    return "\n".join([
        f"`python bench/fuzz_workflows.py --examples {examples} --write-docs` ({machine}; {seconds / 60:.0f} min "
        "on a machine shared with other jobs).", "",
        f"- Examples: {tally.examples:,}, each through `load_workflow` + `validate` (from JSON bytes and as a dict), "
        "the CLI in process (validate, import, and run when validation refuses) and a real server on loopback.",
        f"- Engine outcomes: refused as not a workflow (WorkflowFormatError) {share.get('format', 0)}; "
        f"validated with errors {share.get('invalid', 0)}; valid {share.get('valid', 0)}.",
        "- HTTP answers: " + ", ".join(f"{status}: {count:,}" for status, count in sorted(tally.statuses.items()))
        + " (no other status was seen: any other fails the check).",
        f"- The installed CLI in its own process: {tally.process_runs} runs of `latentgraph validate` over "
        f"{tally.process_files:,} files, exit 0 or 3, no traceback.",
        f"- Failures (exceptions outside the documented classes, 500s, wrong exit codes, tracebacks): {failures}.",
        "", "| check | examples | median ms | p99 ms | max ms |", "| --- | ---: | ---: | ---: | ---: |", timing])


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    DOCS.write_text(pattern.sub(lambda _: f"{BEGIN}\n{section}\n{END}", text), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000, help="documents per run of the CLI in its own process")
    parser.add_argument("--keep", type=Path, default=Path("fuzz-failures"), help="folder for failing examples")
    parser.add_argument("--write-docs", action="store_true", help="write the figures into docs/robustness.md")
    args = parser.parse_args(argv)
    args.keep.mkdir(parents=True, exist_ok=True)
    tally, seconds = run(args.examples, args.batch, args.keep)
    section = report(tally, seconds, args.examples)
    print("\n" + section)
    if args.write_docs:
        write_docs(section)
        print(f"\nwritten into {DOCS}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
