// η for each epoch, the same function as worker/engine/schedules.py (lr_at), so the launch
// form can draw the schedule before anything runs. Epochs count from 1; tables and milestones
// count completed epochs: an entry at k takes effect for epoch k + 1 (the slide's "epoch 75").

/** η of training epoch `epoch` (from 1) of `maxEpochs`; `schedule` is spec.optim.schedule. */
export function lrAt(schedule, baseLr, epoch, maxEpochs) {
  const kind = schedule?.kind || "constant";
  const done = epoch - 1;
  const gamma = schedule?.gamma ?? 0.1;
  switch (kind) {
    case "constant":
      return baseLr;
    case "inv_sqrt":
      return baseLr / Math.sqrt(epoch);
    case "step":
      return baseLr * gamma ** (schedule.milestones || []).filter((m) => m <= done).length;
    case "piecewise": {
      const table = [...(schedule.table || [])].sort((a, b) => a[0] - b[0]);
      let lr = baseLr;
      for (const [e, value] of table) if (e <= done) lr = value;
      return lr;
    }
    case "exponential":
      return baseLr * gamma ** done;
    case "cosine":
      return baseLr * 0.5 * (1 + Math.cos((Math.PI * done) / maxEpochs));
    default:
      return NaN;
  }
}

/** The whole curve: {epochs: [1..T], lrs: [...]}. */
export function scheduleCurve(schedule, baseLr, maxEpochs) {
  const epochs = [];
  const lrs = [];
  for (let e = 1; e <= maxEpochs; e++) {
    epochs.push(e);
    lrs.push(lrAt(schedule, baseLr, e, maxEpochs));
  }
  return { epochs, lrs };
}

/** Runs of equal η: [{from, to, lr}], e.g. epochs 1–75 at 0.1 then 76–125 at 0.01. */
export function stagesOf(epochs, lrs) {
  const stages = [];
  for (let i = 0; i < epochs.length; i++) {
    const last = stages[stages.length - 1];
    if (last && Math.abs(last.lr - lrs[i]) <= 1e-12 * Math.max(1, Math.abs(last.lr))) last.to = epochs[i];
    else stages.push({ from: epochs[i], to: epochs[i], lr: lrs[i] });
  }
  return stages;
}
