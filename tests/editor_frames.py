"""Frame times of the editor while the user pans and zooms a large graph (issue 25).

Shared by the CI test (tests/test_browser_frames.py, at a tolerance) and the benchmark
(bench/bench_editor_frames.py, which writes the figures into docs/benchmarks.md).

The workload is chains of six image nodes (EmptyImage -> ImageBlur -> ImageSharpen -> ImageFlip ->
ImageInvert -> PreviewImage), each with its widgets. Input is dispatched from inside the page, one
pointer move or wheel step per animation frame, so every frame has work to do and the figures do
not depend on how fast Playwright can send events; the frame time is the interval between
consecutive requestAnimationFrame callbacks.
"""
from __future__ import annotations

import statistics

# Issue 25's targets, in milliseconds per frame; CI asserts TOLERANCE times them (shared machines).
TARGETS = {"300_median": 17.0, "300_p95": 25.0, "1000_p95": 50.0, "run_max": 50.0}
TOLERANCE = 2.0
FRAME = 1000 / 60


def allowed(target: float, baseline: float) -> float:
    """The bound a test asserts: TOLERANCE times the target, plus what this machine loses right now
    on a 7-node graph (the same statistic of the baseline, beyond one display frame), so that a busy
    shared machine does not fail the test while a slow editor still does."""
    return TOLERANCE * target + max(0.0, baseline - FRAME)

# Counts the websocket messages the editor receives (installed before the page's own scripts).
COUNT_EVENTS_JS = """(() => {
  const Native = window.WebSocket;
  window.__events = { all: 0, progress: 0 };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (m) => {
        window.__events.all++;
        if (typeof m.data === 'string' && m.data.includes('"progress"')) window.__events.progress++;
      });
    }
  };
})();"""

CHAIN = [
    ("EmptyImage", {"width": 64, "height": 64, "batch_size": 1, "color": 0x3366CC}),
    ("ImageBlur", {"blur_radius": 1, "sigma": 1.0}),
    ("ImageSharpen", {"sharpen_radius": 1, "sigma": 1.0, "alpha": 1.0}),
    ("ImageFlip", {"flip_method": "x-axis: vertically"}),
    ("ImageInvert", {}),
    ("PreviewImage", {}),
]
IMAGE_INPUT = {"ImageBlur": "image", "ImageSharpen": "image", "ImageFlip": "image", "ImageInvert": "image",
               "PreviewImage": "images"}
NODE_GAP_X, CHAIN_GAP_Y, CHAINS_PER_ROW = 320, 300, 5


def chain_workflow(nodes: int = 300, catalog: dict | None = None) -> dict:
    """About `nodes` image nodes as chains of six, laid out in a grid of chains, in our format."""
    chains = max(1, round(nodes / len(CHAIN)))
    out: dict[str, dict] = {}
    for c in range(chains):
        left = (c % CHAINS_PER_ROW) * (len(CHAIN) * NODE_GAP_X + 200)
        top = (c // CHAINS_PER_ROW) * CHAIN_GAP_Y
        previous = None
        for i, (node_type, values) in enumerate(CHAIN):
            node_id = str(c * len(CHAIN) + i + 1)
            inputs: dict = dict(values)
            if node_type == "ImageFlip" and catalog:  # a valid choice of this catalog
                inputs["flip_method"] = next(x for x in catalog["ImageFlip"]["inputs"]
                                             if x["name"] == "flip_method")["choices"][0]
            if previous:
                inputs[IMAGE_INPUT[node_type]] = {"node": previous, "output": "IMAGE"}
            out[node_id] = {"type": node_type, "inputs": inputs, "ui": {"position": [left + i * NODE_GAP_X, top]}}
            previous = node_id
    return {"format": "latentgraph", "version": 2, "nodes": out}


# Runs in the page: `mode` "pan" drags the canvas in a slow circle, "zoom" turns the wheel in and
# out around the centre; both for `seconds`. Returns the frame intervals in milliseconds.
MEASURE_JS = """async ([mode, seconds]) => {
  const pane = document.querySelector('.react-flow__pane');
  const rect = pane.getBoundingClientRect();
  const cx = rect.left + rect.width / 2, cy = rect.top + rect.height / 2;
  const mouse = (type, x, y, buttons) => new MouseEvent(type, {bubbles: true, cancelable: true, view: window,
                                                              clientX: x, clientY: y, button: 0, buttons});
  let x = cx, y = cy;
  if (mode === 'pan') pane.dispatchEvent(mouse('mousedown', x, y, 1));
  const times = [];
  await new Promise((resolve) => {
    let last = null, start = null, i = 0;
    const frame = (t) => {
      if (last !== null) times.push(t - last);
      if (start === null) start = t;
      last = t;
      if (t - start >= seconds * 1000) { resolve(); return; }
      i++;
      if (mode === 'pan') {
        x += 9 * Math.cos(i / 25); y += 9 * Math.sin(i / 25);
        window.dispatchEvent(mouse('mousemove', x, y, 1));
      } else {
        const direction = Math.floor(i / 30) % 2 === 0 ? -1 : 1;
        pane.dispatchEvent(new WheelEvent('wheel', {bubbles: true, cancelable: true, view: window,
                                                    clientX: cx, clientY: cy, deltaY: 40 * direction, deltaMode: 0}));
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  if (mode === 'pan') window.dispatchEvent(mouse('mouseup', x, y, 0));
  return times;
}"""


def measure(page, mode: str, seconds: float) -> list[float]:
    return page.evaluate(MEASURE_JS, [mode, seconds])


def settle(page, frames: int = 20) -> None:
    """Let pending renders and image decodes finish before measuring."""
    page.evaluate("""(n) => new Promise((resolve) => {
      let i = 0; const f = () => (++i >= n ? resolve() : requestAnimationFrame(f)); requestAnimationFrame(f); })""",
                  frames)


def stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"frames": len(ordered), "median": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


def open_large_graph(page, nodes: int, zoom: float | None) -> int:
    """Open the chain workflow; `zoom` None fits the whole graph, else that zoom at its centre.
    Returns the number of nodes drawn in the DOM."""
    catalog = page.evaluate("window.latentgraph.catalog().nodes")
    wf = chain_workflow(nodes, catalog)
    page.evaluate("(wf) => window.latentgraph.openWorkflow(wf, {name: 'frames'})", wf)
    page.wait_for_function("(n) => Object.keys(window.latentgraph.getWorkflow().nodes).length === n",
                           arg=len(wf["nodes"]))
    if zoom is None:
        page.evaluate("window.latentgraph.flow().fitView({padding: 0.05, minZoom: 0.02})")
    else:
        page.evaluate("(z) => window.latentgraph.flow().setViewport({x: 0, y: 0, zoom: z})", zoom)
    settle(page, 30)
    return page.locator(".react-flow__node").count()


def measure_view(page, nodes: int, view: str, seconds: float) -> dict:
    """Pan, then zoom, for `seconds` each, with the chain graph open in a view: "fit" (all of it)
    or "close" (zoom 1, a dozen nodes on screen)."""
    drawn = open_large_graph(page, nodes, None if view == "fit" else 1.0)
    result = {"view": view, "drawn": drawn, "pan": measure(page, "pan", seconds)}
    settle(page)
    result["zoom"] = measure(page, "zoom", seconds)
    return result


def merged_stats(runs: list[dict]) -> dict:
    """Frame statistics over every run's pan and zoom frames, plus each run's own."""
    frames = [t for run in runs for t in run["pan"] + run["zoom"]]
    out: dict = stats(frames)
    for run in runs:
        out[f"drawn_{run['view']}"] = run["drawn"]
        for mode in ("pan", "zoom"):
            s = stats(run[mode])
            out[f"{run['view']}_{mode}_median"] = s["median"]
            out[f"{run['view']}_{mode}_p95"] = s["p95"]
    return out


def with_txt2img(chains: dict, txt2img: dict, steps: int) -> dict:
    """The chain graph plus a txt2img graph (ids from 1001) whose sampler sends progress events."""
    base = 1000
    renumber = {k: str(base + int(k)) for k in txt2img["nodes"]}
    nodes = dict(chains["nodes"])
    bottom = max(n["ui"]["position"][1] for n in nodes.values()) + 400
    for k, node in txt2img["nodes"].items():
        inputs = {name: ({"node": renumber[v["node"]], "output": v["output"]} if isinstance(v, dict) else v)
                  for name, v in node["inputs"].items()}
        x, y = node["ui"]["position"]
        nodes[renumber[k]] = {**node, "inputs": inputs, "ui": {**node["ui"], "position": [x, y + bottom]}}
    nodes[renumber["5"]]["inputs"]["steps"] = steps
    return {"format": "latentgraph", "version": 2, "nodes": nodes}


def baseline(page, txt2img: dict, seconds: float) -> dict:
    """The same pan and zoom over the 7-node default workflow: what the machine manages right now."""
    page.evaluate("(wf) => window.latentgraph.openWorkflow(wf, {name: 'baseline'})", txt2img)
    page.wait_for_function("() => Object.keys(window.latentgraph.getWorkflow().nodes).length === 7")
    settle(page, 30)
    return stats(measure(page, "pan", seconds) + measure(page, "zoom", seconds))


def run_with_progress(page, txt2img: dict, seconds: float, steps: int = 200, min_events: int = 10) -> dict:
    """Queue the 300-node chain graph with a txt2img sampler and pan from its first progress event
    (the model is loaded: on a busy machine that takes a while), in windows of `seconds` (at most
    eight), until the editor has received `min_events` more server events (the sampler sends a
    progress event and a preview per step, each image node two); then stop the run. The page must
    count websocket messages (COUNT_EVENTS_JS)."""
    catalog = page.evaluate("window.latentgraph.catalog().nodes")
    wf = with_txt2img(chain_workflow(300, catalog), txt2img, steps)
    page.evaluate("(wf) => window.latentgraph.openWorkflow(wf, {name: 'frames-run'})", wf)
    page.wait_for_function("(n) => Object.keys(window.latentgraph.getWorkflow().nodes).length === n",
                           arg=len(wf["nodes"]))
    page.evaluate("window.latentgraph.flow().fitView({padding: 0.05, minZoom: 0.02})")
    settle(page, 30)
    started = page.evaluate("window.__events.progress")
    page.click("[data-testid=run-button]")
    page.wait_for_function("(n) => window.__events.progress > n", arg=started, timeout=300_000)
    settle(page, 5)  # the frame that opens the queue panel is Run's, not the events'
    before = page.evaluate("window.__events.all")
    times: list[float] = []
    for _ in range(8):
        times += measure(page, "pan", seconds)
        if page.evaluate("window.__events.all") - before >= min_events:
            break
    events = page.evaluate("window.__events.all") - before
    progress = page.evaluate("window.__events.progress") - started
    # Stop the run through the API (the page may be busy drawing the last events).
    page.evaluate("fetch('api/interrupt', {method: 'POST'})")
    page.wait_for_function("() => !document.querySelector('.lg-node.executing')", timeout=120_000)
    return {**stats(times), "events": events, "progress_events": progress}
