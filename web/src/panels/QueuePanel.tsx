// The queue: the running job with its progress, pending jobs (cancel, clear) and recent history.
import { useEffect } from "react";
import { mediaUrl } from "../api";
import { cancelJob, clearQueue, interrupt } from "../editor/run";
import { refreshHistory, refreshQueue, runStore } from "../editor/runState";
import { openViewer, setPanel } from "../editor/uiState";
import { openReplacing } from "../editor/workflowIO";
import { useStore } from "../store";
import type { Job } from "../types";

/** Folds the right-hand panel away (the toolbar's buttons open it again). */
export function PanelClose() {
  return (
    <button type="button" className="small panel-close" title="Hide this panel" data-testid="panel-close" onClick={() => setPanel(null)}>
      »
    </button>
  );
}

function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

function time(value: Job["created"]): string {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
}

/** The worker column: where a job runs or ran, shown only when some job has one (`serve --ray`). */
function Worker({ job, shown }: { job: Job; shown: boolean }) {
  if (!shown) return null;
  return (
    <span className="job-worker" data-testid="job-worker" title="the worker that runs it">
      {job.worker ?? "—"}
    </span>
  );
}

function RunningJob({ job, showWorker }: { job: Job; showWorker: boolean }) {
  const progress = useStore(runStore, (s) => s.progress);
  const executing = useStore(runStore, (s) => s.executing);
  const runningJob = useStore(runStore, (s) => s.runningJob);
  // Progress is followed for our own jobs: show it on the one it belongs to.
  const current = executing && runningJob === job.job_id ? progress[executing] : undefined;
  return (
    <div className="job running" data-testid="queue-running" data-job-id={job.job_id}>
      <div className="job-line">
        <span className="job-status running">running</span>
        <span className="job-id">{shortId(job.job_id)}</span>
        <Worker job={job} shown={showWorker} />
        {executing && runningJob === job.job_id && <span className="job-node">node #{executing}</span>}
        <button type="button" className="small danger" onClick={() => void interrupt(job.job_id)}>
          interrupt
        </button>
      </div>
      {current && (
        <div className="node-progress wide">
          <div style={{ width: `${Math.round((100 * current.step) / Math.max(current.total, 1))}%` }} />
        </div>
      )}
    </div>
  );
}

function HistoryJob({ job, showWorker }: { job: Job; showWorker: boolean }) {
  const images = job.images ?? [];
  return (
    <div className="job" data-testid="history-job" data-job-id={job.job_id}>
      <div className="job-line">
        <span className={`job-status ${job.status}`}>{job.status}</span>
        <span className="job-id">{shortId(job.job_id)}</span>
        <Worker job={job} shown={showWorker} />
        <span className="job-time">{time(job.finished ?? job.created)}</span>
        {job.workflow && (
          <button
            type="button"
            className="small"
            title="Open the workflow of this job"
            onClick={() => job.workflow && void openReplacing(job.workflow, `job-${shortId(job.job_id)}`)}
          >
            load
          </button>
        )}
      </div>
      {job.errors?.length ? <div className="job-error">{job.errors[0].message}</div> : null}
      {images.length > 0 && (
        <div className="job-images">
          {images.slice(0, 8).map((image, i) => (
            <img key={image.id} src={mediaUrl(image.url)} alt="" onClick={() => openViewer(images.map((im) => mediaUrl(im.url)), i)} />
          ))}
        </div>
      )}
    </div>
  );
}

export function QueuePanel() {
  const queue = useStore(runStore, (s) => s.queue);
  const history = useStore(runStore, (s) => s.history);
  const running = queue.running_jobs ?? (queue.running ? [queue.running] : []);
  const showWorker = [...running, ...queue.pending, ...history].some((job) => job.worker);
  useEffect(() => {
    void refreshQueue();
    void refreshHistory();
  }, []);
  return (
    <aside className="side-panel" data-testid="queue-panel">
      <div className="panel-title">
        Queue
        <span className="count" data-testid="queue-count">
          {running.length + queue.pending.length}
        </span>
        <button
          type="button"
          className="small"
          data-testid="queue-clear"
          disabled={!queue.pending.length}
          onClick={() => void clearQueue()}
          title="Remove all pending jobs"
        >
          clear
        </button>
        <PanelClose />
      </div>
      {running.map((job) => (
        <RunningJob key={job.job_id} job={job} showWorker={showWorker} />
      ))}
      {queue.pending.map((job, i) => (
        <div className="job" key={job.job_id} data-testid="queue-pending" data-job-id={job.job_id}>
          <div className="job-line">
            <span className="job-status pending">#{i + 1}</span>
            <span className="job-id">{shortId(job.job_id)}</span>
            <Worker job={job} shown={showWorker} />
            <span className="job-time">{time(job.created)}</span>
            <button type="button" className="small" data-testid={`queue-cancel-${job.job_id}`} onClick={() => void cancelJob(job.job_id)}>
              cancel
            </button>
          </div>
        </div>
      ))}
      {!running.length && !queue.pending.length && <div className="panel-empty">Nothing queued</div>}
      <div className="panel-title">History</div>
      {history.map((job) => (
        <HistoryJob key={job.job_id} job={job} showWorker={showWorker} />
      ))}
      {!history.length && <div className="panel-empty">No finished jobs</div>}
    </aside>
  );
}
