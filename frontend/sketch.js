// A chart's first paint without Plotly: lines, a frame and the axis ranges as plain SVG,
// drawn in a few milliseconds from the same series. The real chart replaces it when Plotly
// has loaded (plotly-loader.js), so a long run's curves show before the library is ready.
const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { l: 56, r: 16, t: 28, b: 44 };

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

const label = (v) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
  ? v.toExponential(1) : String(Number(v.toPrecision(3))));

/**
 * An SVG of `lines` ([{x: [...], y: [...], color}]) in a width × height box, with vertical
 * `marks` ([{x, color}]) and the y axis on a log scale when `yLog`.
 */
export function sketch({ lines, marks = [], width, height, yLog = false, xTitle = "", yTitle = "" }) {
  const ty = (v) => (yLog ? (v > 0 ? Math.log10(v) : null) : v);
  let x0 = Infinity; let x1 = -Infinity; let y0 = Infinity; let y1 = -Infinity;
  for (const line of lines) {
    line.x.forEach((x, i) => {
      const y = line.y[i] === null ? null : ty(line.y[i]);
      if (y === null || !Number.isFinite(y) || !Number.isFinite(x)) return;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    });
  }
  const root = svg("svg", { class: "sketch", width, height, viewBox: `0 0 ${width} ${height}`,
    "aria-hidden": "true" });
  if (!Number.isFinite(x0)) return root;
  if (!yLog) y0 = Math.min(y0, 0); // as the real chart: linear axes start at zero
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const w = width - MARGIN.l - MARGIN.r;
  const h = height - MARGIN.t - MARGIN.b;
  const px = (x) => MARGIN.l + ((x - x0) / (x1 - x0)) * w;
  const py = (y) => MARGIN.t + (1 - (y - y0) / (y1 - y0)) * h;
  root.append(svg("rect", { x: MARGIN.l, y: MARGIN.t, width: w, height: h, fill: "#fff", stroke: "#eef0f5" }));
  for (const mark of marks) {
    if (!Number.isFinite(mark.x)) continue;
    root.append(svg("line", { x1: px(mark.x), x2: px(mark.x), y1: MARGIN.t, y2: MARGIN.t + h,
      stroke: mark.color, "stroke-width": 2, "stroke-dasharray": "4 3" }));
  }
  for (const line of lines) {
    // At most one vertex per pixel column keeps 10,000 points cheap; gaps break the line.
    let d = "";
    let pen = false;
    let lastCol = -1;
    line.x.forEach((x, i) => {
      const y = line.y[i] === null ? null : ty(line.y[i]);
      if (y === null || !Number.isFinite(y)) { pen = false; return; }
      const cx = px(x);
      if (pen && Math.round(cx) === lastCol && i < line.x.length - 1) return;
      lastCol = Math.round(cx);
      d += `${pen ? "L" : "M"}${cx.toFixed(1)},${py(y).toFixed(1)}`;
      pen = true;
    });
    if (d) root.append(svg("path", { d, fill: "none", stroke: line.color, "stroke-width": 2 }));
  }
  const text = (x, y, anchor, value) => root.append(svg("text", { x, y, "text-anchor": anchor,
    "font-size": 11, fill: "#5b6478" }, value));
  const yv = (v) => (yLog ? 10 ** v : v);
  text(MARGIN.l - 6, MARGIN.t + 4, "end", label(yv(y1)));
  text(MARGIN.l - 6, MARGIN.t + h, "end", label(yv(y0)));
  text(MARGIN.l, MARGIN.t + h + 16, "middle", label(x0));
  text(MARGIN.l + w, MARGIN.t + h + 16, "end", label(x1));
  if (xTitle) text(MARGIN.l + w / 2, height - 8, "middle", xTitle);
  if (yTitle) {
    const t = svg("text", { x: 14, y: MARGIN.t + h / 2, "text-anchor": "middle", "font-size": 12,
      fill: "#1d2433", transform: `rotate(-90 14 ${MARGIN.t + h / 2})` }, yTitle);
    root.append(t);
  }
  return root;
}
