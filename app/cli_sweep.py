"""`latentgraph run WORKFLOW --sweep ...`: the command line's sweeps (the engine: graph/sweep.py).

    latentgraph run wf.json --sweep sampler.seed=1,2,3 --sweep sampler.cfg=4,6,8 --grid grid.png
    latentgraph run wf.json --sweep 'pos.text=["a red circle, large", "a blue square"]' \\
        --zip 'neg.text=["blurry", ""]' --repeat 2 --report report.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from latentgraph.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID


def read_sweep(args):
    """The sweep of the options: --sweep-file's axes, then --sweep/--zip's; --repeat over the file's."""
    from latentgraph.graph.sweep import Sweep, from_options

    sweep = Sweep()
    if args.sweep_file:
        sweep = Sweep.from_json(json.loads(Path(args.sweep_file).read_text(encoding="utf-8")))
    options = from_options(args.axes, args.repeat)
    sweep.axes += options.axes
    if args.repeat != 1:
        sweep.repeat = args.repeat
    return sweep


def run_sweep(args, executor, loaded, bars) -> int:
    from latentgraph.graph.sweep import SweepInvalid, plan_sweep, run_plan, shown

    if len(loaded) != 1:
        print("error: a sweep runs one workflow; give only one", file=sys.stderr)
        return 2
    path, doc, problems = loaded[0]
    if problems:
        for problem in problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    try:
        sweep = read_sweep(args)
    except SweepInvalid as exc:
        return _refused(path, exc.errors)
    except (OSError, ValueError) as exc:  # an unreadable --sweep-file, a malformed --sweep
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def progress(job) -> None:
        bars.close()
        values = " ".join(f"{k}={shown(v, 40)}" for k, v in job.job.values.items())
        head = f"job {job.job.index + 1}/{total} {values}"
        if job.result is not None and job.status == "success":
            executed = sum(r.status == "executed" for r in job.result.report)
            print(f"{head}: {executed} node(s) run, {len(job.result.report) - executed} cached, "
                  f"{job.result.seconds:.2f}s")
            for image in job.result.images:
                print(f"  {image['node_id']}: {image['path']}")
        else:
            print(f"{head}: {job.status}" + "".join(f"\n  - {e['message']}" for e in job.errors[:1]),
                  file=sys.stderr)

    try:
        plan = plan_sweep(doc, sweep, executor.settings, confirm=args.yes, max_jobs=args.max_jobs)
    except SweepInvalid as exc:
        return _refused(path, exc.errors)
    total = len(plan.jobs)
    try:
        result = run_plan(executor, plan, on_event=bars, on_job=progress)
    finally:
        bars.close()
    totals = result.totals()
    executed = sum(t["executed"] for t in totals.values())
    print(f"{path}: {total} job(s), {sum(j.status == 'success' for j in result.jobs)} succeeded; "
          f"{executed} node run(s), {sum(t['cached'] for t in totals.values())} cached, {result.seconds:.2f}s")
    if args.grid:
        print(f"grid: {result.save_grid(args.grid)}")
    if args.report:
        report = result.report()
        runs = [{"workflow": path, **job} for job in report.pop("jobs")]
        Path(args.report).write_text(json.dumps({"runs": runs, **report}, indent=2) + "\n", encoding="utf-8")
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(job.status != "success" for job in result.jobs) else 0


def _refused(path: str, errors) -> int:
    print(f"{path}: the sweep has {len(errors)} problem(s), nothing was run:", file=sys.stderr)
    for error in errors:
        print(f"  - {error.message}", file=sys.stderr)
    return EXIT_INVALID

