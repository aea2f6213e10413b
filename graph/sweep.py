"""Sweeps: many jobs from one workflow, as axes of input values.

A sweep is a list of axes. Each axis names one or more inputs (`NODE.INPUT`, by node id or title)
and the values they take; the inputs of one axis are zipped (a prompt list and its matching
negative list), the axes are crossed (every combination), as in InvokeAI's batches. `repeat` N
runs every combination N times with the seed inputs increased by 0 .. N-1.

    {"axes": [{"inputs": {"pos.text": ["a red circle", "a blue square"],
                          "neg.text": ["", "blurry"]}, "label": "prompt"},
              {"input": "sampler.cfg", "values": [4, 6, 8]}],
     "repeat": 2}

The whole sweep is checked before anything runs; each error names the axis and the value. Jobs
run so that the axes whose inputs feed the most nodes (a prompt, a checkpoint) vary slowest: the
executor's cache then computes their shared upstream work once.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from latentgraph.graph import targets
from latentgraph.graph.errors import GraphError, Interrupted, NodeError, WorkflowInvalid, describe
from latentgraph.graph.settings import Settings
from latentgraph.graph.workflow import WorkflowFormatError, is_link, load_workflow

MAX_JOBS = 10_000  # a bigger sweep must be confirmed (`--yes`, `confirm`)
HARD_LIMIT = 100_000  # and none may be bigger than this: every job is planned (and queued) up front
REPEAT_AXIS = "repeat"


@dataclass(frozen=True)
class SweepError(GraphError):
    """A problem of a sweep: `axis` and `value` are 0-based indexes (None where they do not apply)."""

    axis: int | None = None
    value: int | None = None


class SweepInvalid(WorkflowInvalid):
    """The sweep (or its workflow) has problems; nothing was run."""


@dataclass
class Axis:
    inputs: dict[str, list]  # "NODE.INPUT" -> its values; zipped, so all of one length
    label: str | None = None  # the axis name on the grid (default: its inputs)
    labels: list[str] | None = None  # what the grid shows for each value (default: the values)

    @property
    def size(self) -> int:
        return max((len(v) for v in self.inputs.values()), default=0)

    @property
    def name(self) -> str:
        return self.label or " / ".join(self.inputs)

    def value_label(self, k: int) -> str:
        if self.labels:
            return str(self.labels[k])
        return " / ".join(shown(values[k]) for values in self.inputs.values())

    def to_json(self) -> dict:
        out: dict[str, Any] = {"inputs": {target: list(values) for target, values in self.inputs.items()}}
        if self.label:
            out["label"] = self.label
        if self.labels:
            out["labels"] = list(self.labels)
        return out


@dataclass
class Sweep:
    axes: list[Axis] = field(default_factory=list)
    repeat: int = 1  # every combination this many times, the seeds increased by 0 .. repeat-1
    seed_inputs: list[str] | None = None  # what `repeat` increases; default: every seed input that runs

    def to_json(self) -> dict:
        out: dict[str, Any] = {"axes": [axis.to_json() for axis in self.axes]}
        if self.repeat != 1:
            out["repeat"] = self.repeat
        if self.seed_inputs is not None:
            out["seed_inputs"] = list(self.seed_inputs)
        return out

    @property
    def jobs(self) -> int:
        return math.prod(axis.size for axis in self.axes) * max(self.repeat, 1)

    @classmethod
    def from_json(cls, doc: Any) -> Sweep:
        """Read a sweep document (see the module's docstring); SweepInvalid lists what is wrong."""
        if isinstance(doc, Sweep):
            return doc
        errors: list[GraphError] = []
        if not isinstance(doc, dict) or not isinstance(doc.get("axes", []), list):
            raise SweepInvalid([SweepError("bad_format", 'sweep: expected {"axes": [...], "repeat": N}')])
        unknown = set(doc) - {"axes", "repeat", "seed_inputs"}
        if unknown:
            errors.append(SweepError("bad_format", f"sweep: unknown field(s) {', '.join(sorted(unknown))}"))
        axes = []
        for a, raw in enumerate(doc.get("axes", [])):
            axis = _read_axis(a, raw, errors)
            if axis is not None:
                axes.append(axis)
        repeat = doc.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            errors.append(SweepError("bad_format", f"sweep: 'repeat' must be a whole number from 1, got {repeat!r}"))
            repeat = 1
        seeds = doc.get("seed_inputs")
        if seeds is not None and (not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds)):
            errors.append(SweepError("bad_format", "sweep: 'seed_inputs' must be a list of NODE.INPUT names"))
            seeds = None
        if errors:
            raise SweepInvalid(errors)
        return cls(axes, repeat, seeds)


def _read_axis(a: int, raw: Any, errors: list) -> Axis | None:
    where = f"sweep axis {a + 1}"
    if isinstance(raw, dict) and "input" in raw:  # the one-input shorthand
        if "inputs" in raw or not isinstance(raw["input"], str):
            errors.append(SweepError("bad_format", f"{where}: give either 'input' and 'values' or 'inputs'", axis=a))
            return None
        raw = {**{k: v for k, v in raw.items() if k not in ("input", "values")},
               "inputs": {raw["input"]: raw.get("values")}}
    if not isinstance(raw, dict) or not isinstance(raw.get("inputs"), dict) or not raw["inputs"]:
        errors.append(SweepError("bad_format", f'{where}: expected {{"inputs": {{"NODE.INPUT": [values]}}}} or '
                                               f'{{"input": "NODE.INPUT", "values": [values]}}', axis=a))
        return None
    inputs = {}
    for target, values in raw["inputs"].items():
        if not isinstance(values, list) or not values:
            errors.append(SweepError("empty_axis", f"{where} ({target}): expected a non-empty list of values",
                                     axis=a))
            return None
        inputs[target] = values
    label, labels = raw.get("label"), raw.get("labels")
    if label is not None and not isinstance(label, str):
        errors.append(SweepError("bad_format", f"{where}: 'label' must be text", axis=a))
    axis = Axis(inputs, label if isinstance(label, str) else None)
    if labels is not None:
        if not isinstance(labels, list) or len(labels) != axis.size:
            errors.append(SweepError("bad_format", f"{where}: 'labels' must be a list of {axis.size} texts, one per "
                                                   "value", axis=a))
        else:
            axis.labels = [str(label) for label in labels]
    return axis


# --- the command line's form ---------------------------------------------------------------------


def parse_values(text: str) -> list:
    """The values of `--sweep NODE.INPUT=VALUES`: a JSON list (`["a, b", "c"]`, for text with commas),
    a range of numbers `FROM..TO` or `FROM..TO:STEP` (both ends included), or values separated by commas."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            values = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{text!r} starts with '[' but is not a JSON list: {exc}") from None
        if not isinstance(values, list):
            raise ValueError(f"{text!r} is not a JSON list")
        return values
    if ".." in stripped:
        ends, _, step = stripped.partition(":")
        start, _, stop = ends.partition("..")
        if all(_is_number(part) for part in (start, stop, step or "1")):
            return number_range(start, stop, step or "1")
    return [value.strip() for value in text.split(",")]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def number_range(start: str, stop: str, step: str) -> list:
    """FROM..TO:STEP, both ends included; whole numbers stay whole."""
    whole = all(part.strip().lstrip("+-").isdigit() for part in (start, stop, step))
    first, last, by = (int(x) for x in (start, stop, step)) if whole else (float(x) for x in (start, stop, step))
    if by == 0 or (last - first) / by < 0:
        raise ValueError(f"the range {start}..{stop}:{step} is empty")
    count = int(math.floor((last - first) / by + 1e-9)) + 1
    if count > HARD_LIMIT:
        raise ValueError(f"the range {start}..{stop}:{step} has more than {HARD_LIMIT:,} values")
    return [first + k * by if whole else round(first + k * by, 10) for k in range(count)]


def from_options(options: list[tuple[bool, str]], repeat: int = 1) -> Sweep:
    """A sweep from `--sweep NODE.INPUT=VALUES` options, each `--zip NODE.INPUT=VALUES` zipped into the
    axis before it: [(is_zip, text)] in command-line order."""
    axes: list[Axis] = []
    for is_zip, text in options:
        target, sep, raw = text.partition("=")
        option = "--zip" if is_zip else "--sweep"
        if not sep:
            raise ValueError(f"{option} {text!r}: expected NODE.INPUT=VALUES, e.g. sampler.seed=1,2,3")
        try:
            targets.split_target(target)
            values = parse_values(raw)
        except ValueError as exc:
            raise ValueError(f"{option} {text!r}: {exc}") from None
        if is_zip:
            if not axes:
                raise ValueError(f"--zip {text!r}: --zip adds an input to the --sweep before it; there is none")
            axes[-1].inputs[target] = values
        else:
            axes.append(Axis({target: values}))
    return Sweep(axes, repeat)


# --- checking and planning -------------------------------------------------------------------------


@dataclass
class SweepJob:
    index: int  # position in run order
    coords: tuple[int, ...]  # the value index on each grid axis
    values: dict[str, Any]  # NODE.INPUT -> the value this job sets
    workflow: dict

    def to_json(self) -> dict:
        return {"index": self.index, "coords": list(self.coords), "values": self.values}


@dataclass
class GridAxis:
    name: str
    labels: list[str]


@dataclass
class SweepPlan:
    sweep: Sweep
    workflow: dict  # the workflow the sweep changes (our format, as given: subgraphs not expanded)
    jobs: list[SweepJob]  # in run order (their workflows flat)
    axes: list[GridAxis]  # the grid's axes: the sweep's, then the repeat (x, y, then z...)
    slowest_first: list[int]  # grid axes in the order they vary, slowest first

    def describe(self) -> dict:
        """What a client needs to place jobs on the grid."""
        return {"axes": [{"name": a.name, "labels": a.labels} for a in self.axes],
                "order": self.slowest_first, "jobs": [job.to_json() for job in self.jobs]}


@dataclass
class _Target:
    axis: int
    text: str
    node_id: str
    spec: Any  # the node's NodeSpec; None for a Subgraph node's own input
    inp: Any  # the Input (a Subgraph node's: made from its definition's declaration)
    values: list
    outer: bool = True  # set on the workflow as written (before subgraphs expand), else on the flat one

    @property
    def node_type(self) -> str:
        return self.spec.name if self.spec is not None else "Subgraph"

    def plan_nodes(self, plan) -> set[str]:
        """The nodes of the (flat) plan this input reaches."""
        if self.spec is None:
            return {n for n in plan.nodes if n.startswith(self.node_id + "/")}
        return {self.node_id} if self.node_id in plan.nodes else set()


def plan_sweep(workflow: Any, sweep: Any, settings: Settings, *, confirm: bool = False,
               max_jobs: int = MAX_JOBS) -> SweepPlan:
    """Check a sweep against its workflow and list its jobs in run order. Raises SweepInvalid with
    every problem (the sweep's, each naming axis and value, and the workflow's).

    In a workflow with subgraphs, NODE is a node as written (a Subgraph node's inputs included) or
    an inner node by its path ("5/1") or title; each job's workflow is the flat one."""
    from latentgraph.graph.subgraphs import expand
    from latentgraph.graph.validate import check_value, validate

    try:
        original = load_workflow(workflow)
    except WorkflowFormatError as exc:
        raise SweepInvalid([GraphError("bad_format", f"workflow: {exc}")]) from None
    expansion = expand(original)
    if expansion.errors:
        raise SweepInvalid(expansion.report([]))
    flat = expansion.doc
    sweep = Sweep.from_json(sweep)
    errors: list[GraphError] = []
    if not sweep.axes and sweep.repeat == 1:
        errors.append(SweepError("empty_axis", "sweep: no axes and no repeat: nothing to sweep"))
    if sweep.jobs > HARD_LIMIT:
        errors.append(SweepError("too_many_jobs", f"sweep: {sweep.jobs:,} jobs, more than the {HARD_LIMIT:,} a sweep "
                                                  "may have; split it"))
    elif sweep.jobs > max_jobs and not confirm:
        errors.append(SweepError("too_many_jobs", f"sweep: {sweep.jobs:,} jobs, more than {max_jobs:,}: confirm it "
                                                  "(--yes on the command line, \"confirm\": true over HTTP)"))

    found: list[_Target] = []
    seen: dict[tuple[str, str], int] = {}
    for a, axis in enumerate(sweep.axes):
        sizes = {target: len(values) for target, values in axis.inputs.items()}
        if len(set(sizes.values())) > 1:
            counts = ", ".join(f"{target} has {n}" for target, n in sizes.items())
            errors.append(SweepError("unequal_lengths", f"sweep axis {a + 1}: its inputs are zipped, so they need "
                                                        f"as many values each, but {counts}", axis=a))
        for text, values in axis.inputs.items():
            where = f"sweep axis {a + 1} ({text})"
            try:
                target = _resolve(original, flat, a, text)
            except targets.TargetError as exc:
                errors.append(SweepError(exc.kind, f"sweep axis {a + 1}: {exc}", axis=a))
                continue
            node_id, inp = target.node_id, target.inp
            if (node_id, inp.name) in seen:
                errors.append(SweepError("duplicate_input", f"{where}: {target.node_type} '{node_id}', input "
                                                            f"'{inp.name}' is already swept by axis "
                                                            f"{seen[node_id, inp.name] + 1}",
                                         node_id, target.node_type, inp.name, axis=a))
                continue
            seen[node_id, inp.name] = a
            for v, raw in enumerate(values):
                value, problem = _typed(inp, raw)
                if problem is None and target.spec is not None:
                    problem = next(iter(check_value(target.spec, node_id, inp, value, settings)), None)
                elif problem is None:  # a Subgraph node's input: checked where its value goes
                    doc = copy.deepcopy(original)
                    doc["nodes"][node_id].setdefault("inputs", {})[inp.name] = value
                    problem = next((e for e in validate(doc, settings)[1]
                                    if (e.node_id, e.input) == (node_id, inp.name)), None)
                if problem is not None:
                    errors.append(SweepError(problem.kind, f"{where}, value {v + 1} ({shown(raw)}): {problem}",
                                             node_id, target.node_type, inp.name, axis=a, value=v))
                target.values.append(value)
            found.append(target)
    if errors:
        raise SweepInvalid(errors)

    # The workflow as the first job runs it (the sweep may set what the saved workflow lacks).
    plan, problems = validate(_job_workflow(original, found, [0] * len(sweep.axes)), settings)
    if problems:
        raise SweepInvalid(problems)
    for target in found:
        if not target.plan_nodes(plan):
            errors.append(SweepError("not_run", f"sweep axis {target.axis + 1} ({target.text}): node "
                                                f"'{target.node_id}' does not run (muted, bypassed or not needed by "
                                                "an output), so every value would give the same picture",
                                     target.node_id, target.node_type, target.inp.name, axis=target.axis))
    seeds = _seed_targets(sweep, flat, plan, found, settings, errors)
    if errors:
        raise SweepInvalid(errors)

    axes = [GridAxis(axis.name, [axis.value_label(k) for k in range(axis.size)]) for axis in sweep.axes]
    touched: list[set[str]] = [set().union(*(t.plan_nodes(plan) for t in found if t.axis == a))
                               for a in range(len(sweep.axes))]
    if sweep.repeat > 1:
        axes.append(GridAxis(REPEAT_AXIS, [f"seed +{r}" for r in range(sweep.repeat)]))
        touched.append({t.node_id for t in seeds})
    slowest_first = _run_order(plan.graph, touched)
    jobs = _expand(original, found, seeds, plan, axes, slowest_first)
    problems = _cross_checks(jobs, found, plan)
    if problems:
        raise SweepInvalid(problems)
    return SweepPlan(sweep, original, jobs, axes, slowest_first)


def _resolve(original: dict, flat: dict, axis: int, text: str) -> _Target:
    """What `text` names: a node of the workflow as written (a Subgraph node's own input too), else
    an inner node of its flat form."""
    from latentgraph.graph.subgraphs import declared, is_subgraph_node
    from latentgraph.nodes.spec import Input

    node_ref, name = targets.split_target(text)
    matches = targets.find_nodes(original, node_ref)
    if len(matches) == 1 and is_subgraph_node(original["nodes"][matches[0]]):
        node_id = matches[0]
        definition = (original.get("subgraphs") or {}).get(original["nodes"][node_id].get("subgraph")) or {}
        inputs = declared(definition.get("inputs"))
        if name not in inputs:
            raise targets.TargetError("unknown_input", f"{text!r}: Subgraph '{node_id}' has no input {name!r} "
                                                       f"(inputs: {', '.join(inputs) or 'none'})")
        return _Target(axis, text, node_id, None, Input(name, inputs[name].get("type", "")), [])
    if matches:
        return _Target(axis, text, *targets.resolve(original, text), [])
    return _Target(axis, text, *targets.resolve(flat, text), [], outer=False)


def _job_workflow(original: dict, found: list[_Target], coords: list[int]) -> dict:
    """A job's flat workflow: the workflow as written with the outer inputs set, expanded, then the
    inner inputs set."""
    from latentgraph.graph.subgraphs import expand, has_subgraphs

    doc = copy.deepcopy(original)
    for outer in (True, False):
        if not outer and has_subgraphs(doc):
            doc = expand(doc).doc
        for target in (t for t in found if t.outer == outer):
            doc["nodes"][target.node_id].setdefault("inputs", {})[target.inp.name] = target.values[coords[target.axis]]
    return doc


def _typed(inp, raw: Any) -> tuple[Any, GraphError | None]:
    """The value converted to the input's type, or the reason it cannot be."""
    if is_link(raw) or isinstance(raw, (list, dict)):
        return raw, GraphError("bad_value", "a sweep sets constant values, not links or lists")
    try:
        return targets.typed(inp.type, raw), None
    except ValueError:
        return raw, GraphError("bad_value", f"{raw!r} is not a valid {inp.type} for input {inp.name!r}")


def _seed_targets(sweep: Sweep, doc: dict, plan, found: list[_Target], settings: Settings,
                  errors: list) -> list[_Target]:
    """The inputs `repeat` increases, each checked at its largest value."""
    from latentgraph.graph.validate import check_value

    if sweep.repeat == 1:
        return []
    seeds: list[_Target] = []
    if sweep.seed_inputs is not None:
        for text in sweep.seed_inputs:
            try:
                node_id, spec, inp = targets.resolve(doc, text)
            except targets.TargetError as exc:
                errors.append(SweepError(exc.kind, f"sweep repeat: {exc}"))
                continue
            seeds.append(_Target(-1, text, node_id, spec, inp, []))
    else:
        for node_id, node in plan.nodes.items():
            for inp in node.spec.inputs:
                if inp.control_after_generate and inp.name not in node.links:
                    seeds.append(_Target(-1, f"{node_id}.{inp.name}", node_id, node.spec, inp, []))
        if not seeds:
            errors.append(SweepError("bad_value", "sweep: 'repeat' increases the seed inputs, but no node that runs "
                                                  "has one; name them in 'seed_inputs'"))
    for seed in seeds:
        swept = [t.values for t in found if (t.node_id, t.inp.name) == (seed.node_id, seed.inp.name)]
        base = plan.nodes[seed.node_id].values.get(seed.inp.name) if seed.node_id in plan.nodes else None
        candidates = [v for v in (swept[0] if swept else [base]) if isinstance(v, (int, float))]
        if not candidates:
            errors.append(SweepError("bad_value", f"sweep repeat: {seed.text} is not a number to increase",
                                     seed.node_id, seed.spec.name, seed.inp.name))
            continue
        for problem in check_value(seed.spec, seed.node_id, seed.inp, max(candidates) + sweep.repeat - 1, settings):
            errors.append(SweepError(problem.kind, f"sweep repeat {sweep.repeat}: {problem.message}",
                                     seed.node_id, seed.spec.name, seed.inp.name))
    return seeds


def _run_order(graph: nx.DiGraph, touched: list[set[str]]) -> list[int]:
    """Grid axes, slowest-varying first: an axis whose nodes feed more of the graph (a prompt, a
    checkpoint) changes less often, so the work it invalidates is redone least. Ties: the later axis
    varies slower (rows before columns, as a grid is read)."""
    def reach(nodes: set[str]) -> int:
        return len(set(nodes).union(*(nx.descendants(graph, n) for n in nodes if n in graph)))
    return sorted(range(len(touched)), key=lambda a: (-reach(touched[a]), -a))


def _expand(original: dict, found: list[_Target], seeds: list[_Target], plan, axes: list[GridAxis],
            slowest_first: list[int]) -> list[SweepJob]:
    jobs = []
    for index, picked in enumerate(itertools.product(*(range(len(axes[a].labels)) for a in slowest_first))):
        coords = [0] * len(axes)
        for a, k in zip(slowest_first, picked):
            coords[a] = k
        workflow = _job_workflow(original, found, coords)
        values: dict[str, Any] = {t.text: t.values[coords[t.axis]] for t in found}
        if seeds:
            step = coords[-1]
            for seed in seeds:
                inputs = workflow["nodes"][seed.node_id].setdefault("inputs", {})
                base = inputs.get(seed.inp.name, plan.nodes[seed.node_id].values.get(seed.inp.name))
                inputs[seed.inp.name] = base + step
                values[seed.text] = base + step
        jobs.append(SweepJob(index, tuple(coords), values, workflow))
    return jobs


def _cross_checks(jobs: list[SweepJob], found: list[_Target], plan) -> list[GraphError]:
    """Checks across a node's inputs (a sampler and its scheduler) for each combination the sweep makes."""
    checked = {t.node_id for t in found if t.node_id in plan.nodes and plan.nodes[t.node_id].spec.check}
    problems: dict[str, GraphError] = {}
    for job in jobs:
        for node_id in checked:
            node = plan.nodes[node_id]
            values = dict(node.values)
            for name, value in job.workflow["nodes"][node_id].get("inputs", {}).items():
                if name in values and not is_link(value):
                    values[name] = value
            for input_name, text in node.spec.check(values):
                axis = next((t.axis for t in found if (t.node_id, t.inp.name) == (node_id, input_name)), None)
                values = ", ".join(f"{k}={shown(v)}" for k, v in job.values.items())
                where = describe(node_id, node.spec.name, input_name)
                message = f"sweep job {job.index + 1} ({values}): {where}: {text}"
                problems.setdefault(f"{node_id}.{input_name}:{text}", SweepError(
                    "unsupported", message, node_id, node.spec.name, input_name, axis=axis))
    return list(problems.values())


def shown(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- running ---------------------------------------------------------------------------------------


@dataclass
class JobResult:
    job: SweepJob
    status: str  # success | error | interrupted | cancelled
    result: Any = None  # the executor's RunResult (None if the job did not run)
    errors: list[dict] = field(default_factory=list)

    def images(self) -> list[dict]:
        return self.result.images if self.result is not None else []


@dataclass
class SweepResult:
    plan: SweepPlan
    jobs: list[JobResult]  # in run order
    seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        return any(job.status == "interrupted" for job in self.jobs)

    def totals(self) -> dict[str, dict[str, int]]:
        """For each node: how many jobs executed it and how many took it from the cache."""
        counts: dict[str, dict[str, int]] = {}
        for job in self.jobs:
            for node in job.result.report if job.result is not None else []:
                entry = counts.setdefault(node.node_id, {"executed": 0, "cached": 0, "error": 0})
                entry[node.status] = entry.get(node.status, 0) + 1
        return counts

    def report(self) -> dict:
        """Per job: its values, status, each node executed or cached, images; and the totals."""
        jobs = []
        for job in self.jobs:
            entry = {**job.job.to_json(), "status": job.status, "errors": job.errors}
            if job.result is not None:
                entry.update(job.result.to_json())
            jobs.append(entry)
        totals = self.totals()
        return {"sweep": self.plan.sweep.to_json(), **{k: v for k, v in self.plan.describe().items() if k != "jobs"},
                "jobs": jobs, "totals": {"nodes": totals, "seconds": round(self.seconds, 4),
                                         "executed": sum(t["executed"] for t in totals.values()),
                                         "cached": sum(t["cached"] for t in totals.values())}}

    def grid(self):
        """The contact sheet (a PIL image) of the jobs' pictures, labelled with the axes."""
        from latentgraph.graph import grid

        cells = {job.job.coords: grid.cell_files(job.images()) if job.status == "success" else
                 ": ".join([job.status, *(e["message"] for e in job.errors[:1])]) for job in self.jobs}
        return grid.contact_sheet(self.plan.axes, cells)

    def save_grid(self, path: str | Path) -> Path:
        """Write the grid as a PNG that embeds the workflow and the sweep (`grid.sweep_from_png`)."""
        from latentgraph.graph import grid

        return grid.save(self.grid(), path, self.plan.workflow, self.plan.sweep.to_json())


def run_sweep(executor, workflow: Any, sweep: Any, *, on_event: Callable[[dict], None] | None = None,
              on_job: Callable[[JobResult], None] | None = None, confirm: bool = False,
              max_jobs: int = MAX_JOBS) -> SweepResult:
    """Check a sweep (SweepInvalid lists every problem), then run its jobs (`run_plan`)."""
    plan = plan_sweep(workflow, sweep, executor.settings, confirm=confirm, max_jobs=max_jobs)
    return run_plan(executor, plan, on_event=on_event, on_job=on_job)


def run_plan(executor, plan: SweepPlan, *, on_event: Callable[[dict], None] | None = None,
             on_job: Callable[[JobResult], None] | None = None) -> SweepResult:
    """Run a sweep's jobs in order with one executor (so one cache). A failing job does not stop the
    others; an interrupt stops the sweep (the jobs not run are `cancelled`). `on_event` gets the
    executor's events, each with `sweep_job` (the job's index); `on_job` each job's result."""
    started = time.perf_counter()
    done: list[JobResult] = []
    stopped = False
    if hasattr(executor, "start_all"):  # a worker pool (--ray) runs the jobs side by side
        executor.start_all([job.workflow for job in plan.jobs])
    for job in plan.jobs:
        if stopped:
            outcome = JobResult(job, "cancelled", errors=[GraphError("interrupted", "not run: the sweep was "
                                                                                    "interrupted").to_json()])
        else:
            emit = (lambda event, job=job: on_event(dict(event, sweep_job=job.index))) if on_event else None
            try:
                outcome = JobResult(job, "success", executor.run(job.workflow, on_event=emit))
            except WorkflowInvalid as exc:
                outcome = JobResult(job, "error", errors=[e.to_json() for e in exc.errors])
            except NodeError as exc:
                outcome = JobResult(job, "error", getattr(exc, "result", None), [exc.error.to_json()])
            except Interrupted as exc:
                outcome = JobResult(job, "interrupted", getattr(exc, "result", None),
                                    [GraphError("interrupted", "interrupted before it finished").to_json()])
                stopped = True
        done.append(outcome)
        if on_job is not None:
            on_job(outcome)
    return SweepResult(plan, done, time.perf_counter() - started)
