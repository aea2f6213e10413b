"""The `latentgraph` command: run workflows headless, list nodes, serve the editor, import
ComfyUI workflows."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 3, 4, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as other tools whose reader stopped reading (`... | head`)


def _folder_options(parser: argparse.ArgumentParser, output_flag: str = "--out") -> None:
    parser.add_argument("--models", metavar="DIR", help="models folder: checkpoints in DIR/checkpoints or DIR "
                                                        "(default ./models, or $LATENTGRAPH_MODELS)")
    parser.add_argument("--input", metavar="DIR", help="folder LoadImage reads from (default ./input)")
    parser.add_argument(output_flag, dest="output", metavar="DIR",
                        help="folder SaveImage writes to (default ./output)")
    parser.add_argument("--temp", metavar="DIR", help="folder for preview images (default ./temp)")


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"],
                        help="model precision (default: float16 on CUDA, float32 on CPU)")
    parser.add_argument("--cache-budget", metavar="SIZE",
                        help="memory for cached intermediate results, e.g. 2GB (default: 1/5 of GPU memory on "
                             "CUDA, 1/8 of RAM up to 4GB on CPU)")
    parser.add_argument("--model-budget", metavar="SIZE",
                        help="memory for loaded checkpoints (default: 3/5 of GPU memory, or half the RAM)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's, one per core); on a CPU shared with other "
                             "work, 1 per concurrent job is often faster")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the UNet and VAE decoder (compiled once per model and size, then "
                             "reused; pays off over many runs, mostly on a GPU)")


def _limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-nodes", type=int, metavar="N",
                        help="refuse workflows of more nodes than this (default 10000)")


def _settings(args):
    from latentgraph.graph.limits import Limits
    from latentgraph.graph.settings import Settings

    options = {name: getattr(args, name) for name in ("models", "input", "output", "temp")
               if getattr(args, name, None)}
    if getattr(args, "max_nodes", None) is not None:
        options["limits"] = Limits(max_nodes=args.max_nodes)
    for name in ("device", "dtype", "cache_budget", "model_budget", "threads", "compile"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    return Settings(**options)


def _ray_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Ray (a pool of workers; docs/ray.md; needs pip install latentgraph[ray])")
    group.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: 'auto' starts a local one (or joins "
                                                        "$RAY_ADDRESS), else HOST:PORT or ray://HOST:10001")
    group.add_argument("--workers", type=int, metavar="N", help="workers (default: one per GPU of the cluster; "
                                                                "on CPUs up to 4, sharing them)")
    group.add_argument("--worker-threads", type=int, metavar="N",
                       help="torch threads per worker (default: --threads, else the CPUs divided among the "
                            "workers; 1 on GPUs)")


class _AxisOption(argparse.Action):
    """--sweep and --zip share one list, in command-line order: a --zip joins the axis before it."""

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), (option_string == "--zip", value)])


def _sweep_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sweeps (many pictures from one workflow; see README 'Sweeps and grids')")
    group.add_argument("--sweep", dest="axes", action=_AxisOption, default=[], metavar="NODE.INPUT=VALUES",
                       help="an axis: the input takes each value in turn; axes are crossed. VALUES: 1,2,3 or a "
                            "range 1..5 / 4..8:0.5 or a JSON list for text with commas: '[\"a, b\", \"c\"]'")
    group.add_argument("--zip", dest="axes", action=_AxisOption, metavar="NODE.INPUT=VALUES",
                       help="another input on the axis of the --sweep before it, value for value (a prompt and "
                            "its negative)")
    group.add_argument("--sweep-file", metavar="FILE", help="a sweep as JSON ({\"axes\": [...], \"repeat\": N})")
    group.add_argument("--repeat", type=int, default=1, metavar="N",
                       help="run each combination N times, the seeds increased by 0 .. N-1")
    group.add_argument("--grid", metavar="FILE.png", help="write the labelled grid of the sweep's pictures (it "
                                                          "embeds the workflow and the sweep)")
    group.add_argument("--yes", action="store_true", help="run a sweep of more than --max-jobs jobs")
    group.add_argument("--max-jobs", type=int, default=10_000, metavar="N",
                       help="refuse bigger sweeps unless --yes (default 10000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentgraph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run workflows headless",
                              description="Run one or more workflows (our JSON, a ComfyUI API or UI workflow, or a "
                                          "PNG saved with its workflow) in one process with one shared cache.")
    run.add_argument("workflows", nargs="+", metavar="WORKFLOW")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                     help="change an input before running, e.g. --set sampler.seed=7 (NODE is a node id or title; "
                          "repeatable; applies to every workflow that has that node)")
    _sweep_options(run)
    _folder_options(run)
    _engine_options(run)
    _limit_options(run)
    run.add_argument("--report", metavar="FILE", help="write each node's status (executed/cached) and seconds "
                                                      "for every workflow (or every job of a sweep, with totals) "
                                                      "to this JSON file")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    _ray_options(run)

    validate = commands.add_parser("validate", help="check workflows without running them")
    validate.add_argument("workflows", nargs="+", metavar="WORKFLOW")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE")
    _folder_options(validate)
    _limit_options(validate)

    nodes = commands.add_parser("nodes", help="list the node types")
    nodes.add_argument("--json", action="store_true", help="print the JSON node catalog the editor reads")
    nodes.add_argument("--markdown", action="store_true", help="print the node reference (docs/nodes.md)")
    nodes.add_argument("--packs", action="store_true", help="list the installed node packs and their node types, "
                                                            "and the packs left out with the reason")
    _folder_options(nodes)

    serve = commands.add_parser("serve", help="serve the browser editor and the HTTP API")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; any other address requires a token)")
    serve.add_argument("--port", type=int, default=8188)
    serve.add_argument("--token", help="token every request must carry when binding a non-loopback address "
                                       "(generated and printed if not given)")
    serve.add_argument("--max-upload", metavar="SIZE", default="32MiB",
                       help="largest image or workflow file the editor may upload, e.g. 64MB (default 32MiB)")
    serve.add_argument("--max-upload-pixels", metavar="N", type=float, default=64e6,
                       help="largest image (width x height) an upload may have, checked from its header before "
                            "decoding (default 64e6: 64 megapixels, e.g. 9798 x 6532)")
    serve.add_argument("--resume-interrupted", action="store_true",
                       help="queue again (once) the job that was running when the server last stopped; pending "
                            "jobs always run again")
    serve.add_argument("--allow-callback-hosts", metavar="HOST[,HOST]", default="",
                       help="hosts besides loopback that job webhooks (callback_url) may reach; '*' for any")
    serve.add_argument("--max-sweep-jobs", type=int, default=10_000, metavar="N",
                       help="refuse bigger sweeps unless the request confirms them (default 10000)")
    _folder_options(serve, output_flag="--output")
    _engine_options(serve)
    _limit_options(serve)
    _ray_options(serve)

    convert = commands.add_parser("import", help="convert a ComfyUI workflow (JSON or PNG) into our format")
    convert.add_argument("source", metavar="SRC")
    convert.add_argument("-o", "--output", metavar="OUT", help="write here instead of printing")
    convert.add_argument("--allow-unknown", action="store_true",
                         help="convert even when the workflow uses node types this latentgraph lacks (they are "
                              "listed either way; without this option nothing is written and the exit code is 3)")
    _limit_options(convert)

    tiny = commands.add_parser("make-tiny-model", help="write a tiny random-weight SD1.5 checkpoint (for trying "
                                                       "the engine offline; the images are noise)")
    tiny.add_argument("folder", metavar="DIR", help="e.g. models/checkpoints/tiny-random")
    tiny.add_argument("--seed", type=int, default=0)

    train = commands.add_parser("train-tiny", help="train the shipped tiny-shapes model (see its model card)",
                                add_help=False)
    train.add_argument("train_args", nargs=argparse.REMAINDER)
    return parser


def parse_override(text: str) -> tuple[str, str, str]:
    from latentgraph.graph.targets import TargetError, split_target

    target, sep, value = text.partition("=")
    try:
        node, name = split_target(target)
    except TargetError:
        node = name = ""
    if not sep or not node or not name:
        raise ValueError(f"--set {text!r}: expected NODE.INPUT=VALUE, e.g. sampler.seed=7")
    return node, name, value


def apply_overrides(doc: dict, overrides: list[str]) -> tuple[list[str], set[str]]:
    """Set inputs from --set options. Returns (problems, the overrides whose node this workflow lacks).

    NODE is a node id or title; a Subgraph node's inputs are set like any node's. An inner node of a
    subgraph is named by its path ("5/1") or title: the workflow is then flattened (after the
    overrides of the outer nodes), so that the change applies to that one use of the subgraph."""
    from latentgraph.graph.subgraphs import expand, has_subgraphs

    problems, absent = _overrides(doc, overrides)
    if absent and has_subgraphs(doc):
        expansion = expand(doc)
        if expansion.errors:
            problems += [f"--set {text}: the workflow's subgraphs cannot be expanded: {expansion.errors[0]}"
                         for text in sorted(absent)]
            return problems, set()
        doc.clear()
        doc.update(expansion.doc)
        inner_problems, absent = _overrides(doc, sorted(absent))
        problems += inner_problems
    return problems, absent


def _overrides(doc: dict, overrides: list[str]) -> tuple[list[str], set[str]]:
    problems, absent = [], set()
    for text in overrides:
        problem = _override(doc, text)
        if problem == "absent":
            absent.add(text)
        elif problem:
            problems.append(problem)
    return problems, absent


def _override(doc: dict, text: str) -> str | None:
    """Apply one --set: None, a problem, or "absent" when the workflow has no such node."""
    from latentgraph.graph.subgraphs import input_type
    from latentgraph.graph.targets import find_nodes, typed

    node_ref, name, raw = parse_override(text)
    matches = find_nodes(doc, node_ref)
    if not matches:
        return "absent"
    if len(matches) > 1:
        return f"--set {text}: several nodes are titled {node_ref!r}; use a node id"
    node = doc["nodes"][matches[0]]
    if not isinstance(node, dict) or not isinstance(node.setdefault("inputs", {}), dict):
        return f"--set {text}: node {node_ref!r} is malformed"
    kind = input_type(doc, node, name)
    try:
        value = typed(kind, raw)
    except ValueError:
        return f"--set {text}: {raw!r} is not a valid {kind} for input {name!r}"
    node["inputs"][name] = value  # an unknown input name is reported by validation
    return None


def load_all(paths: list[str], overrides: list[str], limits=None
             ) -> tuple[list[tuple[str, dict | None, list[str]]], list[str]]:
    """Read every workflow and apply the overrides: [(path, doc or None, problems)], and the
    overrides that matched a node in none of them."""
    from latentgraph.graph.errors import WorkflowInvalid
    from latentgraph.graph.workflow import WorkflowFormatError, load_workflow

    loaded, unmatched = [], set(overrides)
    for path in paths:
        try:
            doc = load_workflow(Path(path), limits)
            if not isinstance(doc.get("nodes"), dict):
                raise WorkflowFormatError("'nodes' must be an object of node id -> node")
        except (OSError, WorkflowFormatError, WorkflowInvalid) as exc:
            errors = getattr(exc, "errors", None)
            loaded.append((path, None, [e.message for e in errors] if errors else [f"cannot read workflow: {exc}"]))
            continue
        problems, absent = apply_overrides(doc, overrides)
        unmatched &= absent
        loaded.append((path, doc, problems))
    return loaded, sorted(unmatched)


class ProgressBars:
    """tqdm bars for sampler progress, one per sampling node."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.node = enabled, None, None

    def __call__(self, event: dict) -> None:
        if not self.enabled or event["type"] != "progress":
            return
        from tqdm import tqdm

        if self.node != event["node_id"] or self.bar is None:
            self.close()
            self.node = event["node_id"]
            self.bar = tqdm(total=event["total"], desc=f"{event['node_id']}", unit="step", leave=False)
        self.bar.n = event["step"]
        self.bar.refresh()
        if event["step"] >= event["total"]:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class NodeLines:
    """Where there is no terminal for bars: one line per node, with its time, on stderr."""

    def __init__(self, enabled: bool):
        self.enabled, self.started = enabled, {}

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        if event["type"] == "cached":
            for node_id in event["node_ids"]:
                print(f"  {node_id}: cached", file=sys.stderr, flush=True)
        elif event["type"] == "executing":
            self.started[event["node_id"]] = time.perf_counter()
        elif event["type"] == "executed" and not event.get("cached"):
            seconds = time.perf_counter() - self.started.pop(event["node_id"], time.perf_counter())
            print(f"  {event['node_id']} ({event['node_type']}): {seconds:.2f}s", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def report_unmatched(unmatched: list[str], loaded: list) -> None:
    """--set options that name no node, with the nodes each workflow has (ids and titles)."""
    for text in unmatched:
        print(f"error: --set {text}: no workflow has that node", file=sys.stderr)
    if unmatched:
        for path, doc, _ in loaded:
            if doc is not None:
                names = [f"{node_id} ({node['title']!r})" if node.get("title") else node_id
                         for node_id, node in doc["nodes"].items()]
                print(f"  {path} has the nodes: {', '.join(names)}", file=sys.stderr)


def _quiet_libraries() -> None:
    """diffusers/transformers print loading bars and notices that are noise on our command line."""
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()


def cmd_run(args) -> int:
    from latentgraph.graph.errors import GraphError, Interrupted, NodeError, WorkflowFormatError, WorkflowInvalid
    from latentgraph.graph.executor import Executor

    _quiet_libraries()
    try:
        settings = _settings(args)
        executor = None if args.ray else Executor(settings)  # on Ray the workers hold the executors
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        loaded, unmatched = load_all(args.workflows, args.overrides, settings.limits)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if unmatched:
        report_unmatched(unmatched, loaded)
        return 2
    if args.ray:
        from latentgraph.ray_run import PoolRunner

        try:
            executor = PoolRunner(args, settings, loaded)  # run(doc) waits for one job of the pool
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    report, worst = [], 0
    # Bars on a terminal; in a pipe (a log), one line per node with its time.
    bars = ProgressBars(enabled=not args.quiet) if sys.stderr.isatty() else NodeLines(enabled=not args.quiet)
    if args.axes or args.sweep_file or args.repeat != 1 or args.grid:
        from latentgraph.cli_sweep import run_sweep

        return run_sweep(args, executor, loaded, bars)
    for path, doc, problems in loaded:
        entry: dict = {"workflow": path}
        report.append(entry)
        if problems:
            for problem in problems:
                print(f"{path}: {problem}", file=sys.stderr)
            entry.update(status="invalid", errors=[{"message": p} for p in problems])
            worst = max(worst, EXIT_INVALID)
            continue
        started = time.perf_counter()
        try:
            result = executor.run(doc, on_event=bars)
        except (WorkflowInvalid, WorkflowFormatError) as exc:
            errors = getattr(exc, "errors", None) or [GraphError("bad_format", str(exc))]
            print(f"{path}: {len(errors)} problem(s), nothing was run:", file=sys.stderr)
            for error in errors:
                print(f"  - {error.message}", file=sys.stderr)
            entry.update(status="invalid", errors=[e.to_json() for e in errors])
            worst = max(worst, EXIT_INVALID)
            continue
        except NodeError as exc:
            bars.close()
            print(f"{path}: failed: {exc.error.message}", file=sys.stderr)
            entry.update(status="error", errors=[exc.error.to_json()])
            if exc.result is not None:  # a pool worker's failure may come back without one
                entry.update(exc.result.to_json())
            worst = max(worst, EXIT_FAILED)
            continue
        except (Interrupted, KeyboardInterrupt):
            bars.close()
            print(f"{path}: interrupted", file=sys.stderr)
            entry.update(status="interrupted")
            worst = EXIT_INTERRUPTED
            break
        finally:
            bars.close()
        entry.update(status="success", **result.to_json())
        executed = sum(r.status == "executed" for r in result.report)
        print(f"{path}: {executed} node(s) run, {len(result.report) - executed} cached, "
              f"{time.perf_counter() - started:.2f}s")
        for image in result.images:
            print(f"  {image['node_id']}: {image['path']}")
    if args.report:
        Path(args.report).write_text(json.dumps({"runs": report}, indent=2) + "\n", encoding="utf-8")
    return worst


def cmd_validate(args) -> int:
    from latentgraph.graph.validate import validate

    settings, worst = _settings(args), 0
    try:
        loaded, unmatched = load_all(args.workflows, args.overrides, settings.limits)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report_unmatched(unmatched, loaded)
    for path, doc, problems in loaded:
        errors = problems or [e.message for e in validate(doc, settings)[1]]
        if errors:
            print(f"{path}: {len(errors)} problem(s):", file=sys.stderr)
            for error in errors:
                print(f"  - {error}", file=sys.stderr)
            worst = EXIT_INVALID
        else:
            print(f"{path}: valid")
    return worst if not unmatched else 2


def cmd_nodes(args) -> int:
    from latentgraph.nodes import folders, registry
    from latentgraph.nodes.spec import catalog

    settings = _settings(args)
    registry()
    if args.packs:
        return print_packs()
    document = catalog(lambda inp: folders.resolve_choices(settings, inp.choices_from))
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    if args.markdown:
        sys.stdout.write(markdown_reference(registry()))
        return 0
    by_category: dict[str, list] = {}
    for spec in document["nodes"].values():
        by_category.setdefault(spec["category"], []).append(spec)
    for category in sorted(by_category):
        print(f"{category}:")
        for spec in by_category[category]:
            ins = ", ".join(f"{i['name']}:{i['type']}" for i in spec["inputs"])
            outs = ", ".join(o["type"] for o in spec["outputs"]) or "-"
            print(f"  {spec['name']}({ins}) -> {outs}")
    return 0


def print_packs() -> int:
    from latentgraph.nodes import packs

    if not packs.PACKS:
        print(f"no node packs installed (packages declaring the entry-point group {packs.GROUP!r})")
    for pack in packs.loaded():
        print(f"{pack.name} {pack.version} ({pack.entry_point}): {', '.join(pack.nodes)}")
    for pack in packs.failed():
        print(f"{pack.name} {pack.version} ({pack.entry_point}): left out: {pack.error}")
    return 0


def markdown_reference(specs) -> str:
    """The node reference, from the same declarations as the catalog (folder-dependent choice
    lists are described, not listed)."""
    lines = ["# Node reference", "", "Generated from the node declarations by `latentgraph nodes --markdown`.", ""]
    for category in sorted({spec.category for spec in specs.values()}):
        lines += [f"## {category}", ""]
        for spec in sorted((s for s in specs.values() if s.category == category), key=lambda s: s.name):
            lines += [f"### {spec.name}", "", spec.description, "", "| input | type | default | range / choices |",
                      "| --- | --- | --- | --- |"]
            for inp in spec.inputs:
                if inp.choices_from:
                    extent = f"files: {inp.choices_from.replace('_', ' ')}"
                elif inp.choices:
                    extent = ", ".join(inp.choices)
                elif inp.min is not None or inp.max is not None:
                    extent = f"{inp.min} to {inp.max}" + (f", step {inp.step}" if inp.step else "")
                else:
                    extent = ""
                default = "" if inp.default is None else f"`{inp.default!r}`"
                lines.append(f"| {inp.name} | {inp.type} | {default} | {extent} |")
            outputs = ", ".join(f"{o.name} ({o.type})" for o in spec.outputs) or "none (an output node)"
            lines += ["", f"Outputs: {outputs}.", ""]
    return "\n".join(lines)


def cmd_serve(args) -> int:
    from latentgraph.graph.settings import parse_bytes
    from latentgraph.server.app import MAX_UPLOAD_BYTES, serve

    _quiet_libraries()
    try:
        max_upload = parse_bytes(args.max_upload)
    except ValueError as error:
        print(f"latentgraph serve: --max-upload: {error}", file=sys.stderr)
        return 2
    if not args.max_upload_pixels >= 1:
        print("latentgraph serve: --max-upload-pixels must be a positive number", file=sys.stderr)
        return 2
    try:
        settings = _settings(args)
    except ValueError as error:
        print(f"latentgraph serve: {error}", file=sys.stderr)
        return 2
    runner = None
    if args.ray:  # the jobs run on a Ray worker pool (docs/ray.md)
        try:
            from latentgraph.server.ray_runner import ray_runner
        except ImportError as exc:
            print(f"latentgraph serve: --ray needs Ray ({exc}): pip install 'latentgraph[ray]'", file=sys.stderr)
            return 2
        runner = ray_runner(settings, args.ray, args.workers, args.worker_threads)
    serve(host=args.host, port=args.port, settings=settings, token=args.token,
          max_upload_bytes=max_upload if max_upload is not None else MAX_UPLOAD_BYTES,
          max_upload_pixels=int(args.max_upload_pixels), resume_interrupted=args.resume_interrupted,
          max_sweep_jobs=args.max_sweep_jobs, runner=runner,
          callback_hosts=tuple(h for h in args.allow_callback_hosts.split(",") if h.strip()))
    return 0


def unknown_types(doc: dict) -> dict[str, list[str]]:
    """Node type -> ids of the nodes of a type this installation lacks."""
    from latentgraph.nodes import registry

    specs, found = registry(), {}
    for node_id, node in doc["nodes"].items():
        node_type = node.get("type") if isinstance(node, dict) else None
        if isinstance(node_type, str) and node_type not in specs:
            found.setdefault(node_type, []).append(node_id)
    return found


def cmd_import(args) -> int:
    from latentgraph.graph.errors import WorkflowInvalid
    from latentgraph.graph.workflow import WorkflowFormatError, load_workflow

    try:
        doc = load_workflow(Path(args.source), _settings(args).limits)
        if not isinstance(doc.get("nodes"), dict):
            raise WorkflowFormatError("'nodes' must be an object of node id -> node")
    except (OSError, WorkflowFormatError, WorkflowInvalid) as exc:
        print(f"{args.source}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    unknown = unknown_types(doc)
    if unknown:
        print(f"{args.source}: {len(unknown)} node type(s) this latentgraph lacks:", file=sys.stderr)
        for node_type, ids in sorted(unknown.items()):
            print(f"  - {node_type} (node {', '.join(repr(i) for i in ids)})", file=sys.stderr)
        if not args.allow_unknown:
            print("nothing written: pass --allow-unknown to convert it anyway (it will not run until those nodes "
                  "are replaced or a node pack provides them)", file=sys.stderr)
            return EXIT_INVALID
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_make_tiny_model(args) -> int:
    from latentgraph.tiny_random import save_sd15

    _quiet_libraries()
    print(f"wrote {save_sd15(args.folder, seed=args.seed)}")
    return 0


def cmd_train_tiny(args) -> int:
    from latentgraph.training.train_tiny import main as train_main

    return train_main(args.train_args) or 0


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "nodes": cmd_nodes, "serve": cmd_serve, "import": cmd_import,
            "make-tiny-model": cmd_make_tiny_model, "train-tiny": cmd_train_tiny}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train-tiny"]:  # its options (--help included) belong to the training script
        args = argparse.Namespace(command="train-tiny", train_args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader stopped reading (`latentgraph nodes | head`): end quietly
        try:  # further writes (the interpreter flushes stdout at exit) go nowhere, not to a traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout without a file descriptor (tests capture it)
            pass
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
