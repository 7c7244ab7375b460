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

async function request(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("Cannot reach the Époque server. Is `epoque serve` still running?");
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
export const listRuns = () => request("GET", "/api/runs");
export const getRun = (id) => request("GET", runPath(id));
export const createRun = (spec) => request("POST", "/api/runs", spec);
export const deleteRun = (id) => request("DELETE", runPath(id));
export const cancelRun = (id) => request("POST", `${runPath(id)}/cancel`);
export const setRunLr = (id, lr) => request("POST", `${runPath(id)}/lr`, { lr });
export const metricsCsvUrl = (id) => `${runPath(id)}/metrics.csv`;

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
 * progress changes, onEnd(run) once the run is over, onError(error) if the server refuses the
 * stream; onState("live" | "reconnecting") as the connection comes and goes. The cursor of the last message is kept, and a dropped socket is
 * reopened from it (backoff 0.5 s doubling to 5 s), so no point is missed or received twice.
 * Returns {close()}.
 */
export function streamRun(id, { after = 0, onPoints, onRun, onEnd, onState, onError } = {}) {
  let cursor = after;
  let socket = null;
  let closed = false;
  let delay = 500;
  let timer = null;

  const open = () => {
    if (closed) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}${runPath(id)}/stream?after=${cursor}`;
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
    socket.addEventListener("close", () => {
      if (closed) return;
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
