// The only module that knows the server's URLs: REST calls through fetch, the live stream
// through a WebSocket. Everything else asks this module and gets plain data or an ApiError.

/** An error the user can read: `message` is a sentence, `details` the server's 422 list. */
export class ApiError extends Error {
  constructor(message, { status = 0, details = [] } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.details = details;
  }
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => (d && d.msg ? `${d.field || (d.loc || []).join(".")}: ${d.msg}` : String(d)))
      .join("; ");
  }
  return "";
}

// A lab served beyond this machine has an API token: writes and the stream need it. It is asked
// once, when the server first answers 401, and kept in this browser's storage.
const TOKEN_KEY = "epoque-api-token";
// A student who joined a class holds its student token (join-view.js): it goes with every
// request instead of the lab's, and the server confines it to the class.
export const CLASS_TOKEN_KEY = "epoque-class-token";
const storedToken = () => localStorage.getItem(CLASS_TOKEN_KEY) || localStorage.getItem(TOKEN_KEY) || "";

function askForToken() {
  const given = window.prompt(
    "This lab needs its API token for changes (ask whoever started it; `epoque serve` printed it):",
  );
  if (given && given.trim()) {
    localStorage.setItem(TOKEN_KEY, given.trim());
    return true;
  }
  return false;
}

/** `as`: a token to send instead of the stored one (a teacher's token for its class). */
export async function request(method, path, body, retried = false, as = null) {
  const init = { method, headers: { Accept: "application/json" } };
  const token = as || storedToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body instanceof FormData) {
    init.body = body; // the browser writes the multipart boundary itself
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("Cannot reach the Époque server. Is `epoque serve` still running?");
  }
  if (response.status === 401 && !retried && !as) {
    if (token && token === localStorage.getItem(CLASS_TOKEN_KEY)) {
      localStorage.removeItem(CLASS_TOKEN_KEY); // the class is gone: back to the lab's token
      return request(method, path, body, true);
    }
    if (token) localStorage.removeItem(TOKEN_KEY); // a wrong or outdated token
    if (askForToken()) return request(method, path, body, true);
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const detail = data && data.detail;
    const details = Array.isArray(detail) ? detail : [];
    const said = describeDetail(detail);
    const message = said
      ? said
      : `The server answered ${response.status} ${response.statusText || ""}`.trim() + ".";
    throw new ApiError(message, { status: response.status, details });
  }
  return data;
}

const runPath = (id) => `/api/runs/${encodeURIComponent(id)}`;

export const getHealth = () => request("GET", "/api/health");
export const getSpecSchema = () => request("GET", "/api/spec/schema");
/** Runs, newest first; `studyId` and `status` filter them. */
export function listRuns({ studyId = null, status = null, offset = 0, limit = null } = {}) {
  const query = new URLSearchParams();
  if (studyId !== null && studyId !== undefined) query.set("study_id", String(studyId));
  if (status) query.set("status", status);
  if (offset) query.set("offset", String(offset));
  if (limit) query.set("limit", String(limit));
  const qs = query.toString();
  return request("GET", `/api/runs${qs ? `?${qs}` : ""}`);
}
export const getRun = (id) => request("GET", runPath(id));
/** `preset`: with a class token, the class's lesson the spec is merged over. */
export const createRun = (spec, preset = null) =>
  request("POST", preset ? `/api/runs?preset=${encodeURIComponent(preset)}` : "/api/runs", spec);
/** An LR range test of `spec`: {spec, start, end, steps} → the run (kind "lr_range"). */
export const createLrRangeTest = (body) => request("POST", "/api/lr-range-tests", body);
export const deleteRun = (id) => request("DELETE", runPath(id));
export const cancelRun = (id) => request("POST", `${runPath(id)}/cancel`);
export const setRunLr = (id, lr) => request("POST", `${runPath(id)}/lr`, { lr });
/** A new run with this run's points up to `epoch`, then trained with the changed knobs
 * (`spec`: a partial spec of optimisation knobs only). */
export const forkRun = (id, epoch, spec) => request("POST", `${runPath(id)}/fork`, { epoch, spec });
/** {same_start_and_order, differences, not_knobs}: whether two runs share z₀ and the minibatch
 * order (their specs differ only in optimisation knobs). */
export const getSameStart = (id, other) => request("GET", `${runPath(id)}/same-start?other=${encodeURIComponent(other)}`);
export const metricsCsvUrl = (id) => `${runPath(id)}/metrics.csv`;
export const modelUrl = (id) => `${runPath(id)}/model`;

/** A run's per-epoch figure `what` (boundary, confusion): of `epoch`, else the newest. */
function getAtEpoch(id, what, epoch) {
  const qs = epoch === null || epoch === undefined ? "" : `?epoch=${encodeURIComponent(epoch)}`;
  return request("GET", `${runPath(id)}/${what}${qs}`);
}

/** The decision-boundary grid of a 2-D run: the newest, or the one of `epoch`. */
export const getBoundary = (id, epoch = null) => getAtEpoch(id, "boundary", epoch);

/** What early stopping with each patience p would have returned, from an ended run's curves:
 * [{patience, best_epoch, stopped_epoch, val_accuracy, test_accuracy, complete}]. */
export function getEarlyStopping(id, patiences) {
  const qs = new URLSearchParams({ patience: patiences.join(",") });
  return request("GET", `${runPath(id)}/early-stopping?${qs}`);
}

/** The training-health diagnosis: {rules, diagnoses: [{layer, key, rule, since, value, message}]}. */
export const getRunHealth = (id) => request("GET", `${runPath(id)}/health`);

/** The confusion matrix on S_v: {epoch, epochs, classes, matrix}; of `epoch`, else the
 * returned model's (the newest while running). */
export const getConfusion = (id, epoch = null) => getAtEpoch(id, "confusion", epoch);

/** The loss landscape around the returned model: {status: "done", alphas, betas, loss, path,
 * path_epochs, centre_loss, examples}, or (being computed, HTTP 202) {status, progress}. */
export function getLandscape(id, resolution = 21) {
  return request("GET", `${runPath(id)}/landscape?${new URLSearchParams({ resolution: String(resolution) })}`);
}

/** The validation examples of one confusion cell of the returned model:
 * [{index, label, pred, probabilities, spread, png, input}]. */
export function getCellExamples(id, { trueClass, predClass, epoch = null, limit = 20 }) {
  const query = new URLSearchParams({ split: "val", true: String(trueClass), pred: String(predClass),
    limit: String(limit) });
  if (epoch !== null && epoch !== undefined) query.set("epoch", String(epoch));
  return request("GET", `${runPath(id)}/examples?${query}`);
}

const studyPath = (id) => `/api/studies/${encodeURIComponent(id)}`;
export const listStudies = () => request("GET", "/api/studies");
export const getStudy = (id) => request("GET", studyPath(id));
/** {name, base, grid, seeds}: one run per grid point (and seed). */
export const createStudy = (body) => request("POST", "/api/studies", body);
export const deleteStudy = (id) => request("DELETE", studyPath(id));
/** Per grid point the metric's mean and 95 % interval over seeds; pairs compared with verdicts. */
export function getStudyStats(id, metric = "test_accuracy") {
  return request("GET", `${studyPath(id)}/stats?${new URLSearchParams({ metric })}`);
}

export const listPresets = () => request("GET", "/api/presets");
export const getGuide = (lesson) => request("GET", `/api/guides/${encodeURIComponent(lesson)}`);
export const launchPreset = (id) => request("POST", `/api/presets/${encodeURIComponent(id)}/launch`);

export const listDatasets = () => request("GET", "/api/datasets");
const datasetPath = (id) => `/api/datasets/${encodeURIComponent(id)}`;
/** An upload: {id, name: "folder:<id>", status: processing | ready | failed, progress: {done, total}, …}. */
export const getDataset = (id) => request("GET", datasetPath(id));
export const deleteDataset = (id) => request("DELETE", datasetPath(id));
/** {id, input_shape, classes: [{name, count, samples: [png base64]}]}: images as the network sees them. */
export const getDatasetSamples = (id, perClass = 8) => request("GET", `${datasetPath(id)}/samples?per_class=${perClass}`);

/**
 * Send a zip of class folders; the server answers 202 at once and processes the images after
 * (follow it with getDataset). XMLHttpRequest rather than fetch: only it reports upload
 * progress, as onProgress(sentBytes, totalBytes).
 */
export function uploadDataset(file, { name = null, onProgress } = {}) {
  const form = new FormData();
  form.append("file", file, file.name || "dataset.zip");
  if (name) form.append("name", name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/datasets?wait=false");
    xhr.setRequestHeader("Accept", "application/json");
    const token = storedToken();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded, event.total);
    });
    xhr.addEventListener("error", () => reject(new ApiError("Cannot reach the Époque server. Is `epoque serve` still running?")));
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      if (xhr.status === 401 && askForToken()) {
        uploadDataset(file, { name, onProgress }).then(resolve, reject);
        return;
      }
      const detail = data && data.detail;
      const said = describeDetail(detail);
      reject(new ApiError(said || `The server answered ${xhr.status}.`,
        { status: xhr.status, details: Array.isArray(detail) ? detail : [] }));
    });
    xhr.send(form);
  });
}
/** {dataset, index, augment, n, seed} → {original, samples: [{seed, png}]} (base64 PNGs). */
export const previewAugment = (body) => request("POST", "/api/previews/augment", body);
/** {dataset, index, brightness, contrast, saturation, hue, trials, seed} → {original, components}. */
export const previewJitter = (body) => request("POST", "/api/previews/jitter", body);
/** An image of the user's own, with a pipeline: same answer as previewAugment. */
export function previewImage(file, { augment = [], n = 8, seed = 0 } = {}) {
  const form = new FormData();
  form.append("file", file);
  form.append("augment", JSON.stringify(augment));
  form.append("n", String(n));
  form.append("seed", String(seed));
  return request("POST", "/api/previews/image", form);
}

/** Metric series; `points` asks the server to downsample each series to about that many. */
export function getMetrics(id, { keys = [], after = 0, points = 0 } = {}) {
  const query = new URLSearchParams();
  if (keys.length) query.set("keys", keys.join(","));
  if (after) query.set("after", String(after));
  if (points) query.set("points", String(points));
  const qs = query.toString();
  return request("GET", `${runPath(id)}/metrics${qs ? `?${qs}` : ""}`);
}

/**
 * Follow a run live from cursor `after`. Calls onPoints(series) for metric points, onRun(run) when status or
 * progress changes, onBoundary(epoch) when a newer decision-boundary grid exists, onEnd(run) once the run is over, onError(error) if the server refuses the
 * stream; onState("live" | "reconnecting") as the connection comes and goes. The cursor of the last message is kept, and a dropped socket is
 * reopened from it (backoff 0.5 s doubling to 5 s), so no point is missed or received twice.
 * Returns {close()}.
 */
export function streamRun(id, { after = 0, onPoints, onRun, onEnd, onState, onError, onBoundary } = {}) {
  let cursor = after;
  let socket = null;
  let closed = false;
  let delay = 500;
  let timer = null;

  const open = () => {
    if (closed) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const token = storedToken();
    const auth = token ? `&token=${encodeURIComponent(token)}` : "";
    const url = `${scheme}//${location.host}${runPath(id)}/stream?after=${cursor}${auth}`;
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = 500;
      onState?.("live");
    });
    socket.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (typeof msg.cursor === "number") cursor = msg.cursor;
      if (msg.type === "points") onPoints?.(msg.series || {});
      else if (msg.type === "run") onRun?.(msg.run);
      else if (msg.type === "boundary") onBoundary?.(msg.epoch);
      else if (msg.type === "end") {
        closed = true;
        onEnd?.(msg.run);
        socket.close();
      } else if (msg.type === "error") {
        // The server gave up on this run (e.g. it was deleted): reconnecting would not help.
        closed = true;
        onError?.(new ApiError(msg.message || "The live stream stopped."));
        socket.close();
      }
    });
    socket.addEventListener("close", (event) => {
      if (closed) return;
      if (event.code === 4401) {
        localStorage.removeItem(TOKEN_KEY);
        if (!askForToken()) {
          onError?.(new ApiError("This lab's live stream needs its API token.", { status: 401 }));
          return;
        }
      }
      onState?.("reconnecting");
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    });
  };

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket && socket.readyState <= WebSocket.OPEN) socket.close();
    },
  };
}
