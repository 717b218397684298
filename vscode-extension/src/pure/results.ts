// Run results as HTML: the SVG loss curve, the posterior summary table and the
// sample statistics. Pure string building; the results webview shows the output.

import { escapeHtml } from "./html";
import type { CorpusFigures, PosteriorRow, RunResult, SampleStats } from "./protocol";

/** Non-finite numbers as the server spells them (JSON has no NaN or Infinity). */
const NON_FINITE: Readonly<Record<string, string>> = { NaN: "NaN", Infinity: "∞", "-Infinity": "−∞" };

/** Formats a number for a table cell: 4 significant digits, em dash for missing,
 * NaN and ∞ for the server's "NaN"/"Infinity"/"-Infinity". */
export function formatNumber(value: unknown): string {
  if (typeof value === "string" && value in NON_FINITE) {
    return NON_FINITE[value];
  }
  if (typeof value === "number" && Number.isNaN(value)) {
    return "NaN";
  }
  if (typeof value !== "number") {
    return "—";
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? "∞" : "−∞";
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e7) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e7)) {
    return value.toExponential(2);
  }
  return String(Number(value.toPrecision(4)));
}

export interface CurvePoint {
  step: number;
  value: number;
}

/** Keeps at most `max` points, always including the first and the last. Drops non-finite values. */
export function downsample(values: readonly number[], max = 600, steps?: readonly number[]): CurvePoint[] {
  const points: CurvePoint[] = [];
  values.forEach((value, i) => {
    if (typeof value === "number" && Number.isFinite(value)) {
      points.push({ step: steps?.[i] ?? i + 1, value });
    }
  });
  if (points.length <= max) {
    return points;
  }
  const out: CurvePoint[] = [];
  const stride = (points.length - 1) / (max - 1);
  for (let k = 0; k < max; k++) {
    out.push(points[Math.round(k * stride)]);
  }
  return out;
}

export interface LossCurveOptions {
  width?: number;
  height?: number;
  title?: string;
  /** "auto" (the default) uses a log axis when every loss is positive and they span more than two decades. */
  scale?: "auto" | "linear" | "log";
  /** The step of each value (default: 1, 2, 3, ...). */
  steps?: readonly number[];
  /** What the values are, for the empty note (default: "loss values"). */
  what?: string;
}

/** Whether "auto" picks a log axis for these values. */
export function wantsLogScale(values: readonly number[]): boolean {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length < 2) {
    return false;
  }
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  return lo > 0 && hi / lo > 100;
}

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 4): number[] {
  if (!(hi > lo)) {
    return [lo];
  }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

/**
 * The loss per step as an SVG line chart: a polyline with one vertex per kept step,
 * axes, and labelled ticks. Returns an "empty" note when there is nothing to draw.
 */
export function lossCurveSvg(losses: readonly number[], options: LossCurveOptions = {}): string {
  const width = options.width ?? 640;
  const height = options.height ?? 260;
  const title = options.title ?? "Loss (negative ELBO) per step";
  const points = downsample(losses, 600, options.steps);
  if (points.length === 0) {
    return `<p class="empty">No ${escapeHtml(options.what ?? "loss values")} were recorded.</p>`;
  }
  const log =
    options.scale === "log" ? points.every((p) => p.value > 0) : options.scale === "linear" ? false : wantsLogScale(points.map((p) => p.value));
  const tv = (v: number) => (log ? Math.log10(v) : v);
  const left = 64;
  const right = 16;
  const top = 16;
  const bottom = 36;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  let lo = Math.min(...points.map((p) => tv(p.value)));
  let hi = Math.max(...points.map((p) => tv(p.value)));
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.05 || 1;
    lo -= pad;
    hi += pad;
  }
  const firstStep = points[0].step;
  const lastStep = points[points.length - 1].step;
  const stepSpan = Math.max(lastStep - firstStep, 1);
  const x = (step: number) => left + ((step - firstStep) / stepSpan) * plotW;
  // `y` takes a transformed value (log10 on a log axis).
  const y = (value: number) => top + (1 - (value - lo) / (hi - lo)) * plotH;
  const r = (n: number) => n.toFixed(1);

  const vertices = points.map((p) => `${r(x(p.step))},${r(y(tv(p.value)))}`).join(" ");
  // Tick positions in transformed units; on a log axis, whole decades (or nice steps of them).
  const yTicks = (log ? ticks(lo, hi).filter((t) => Number.isInteger(t)) : ticks(lo, hi)).filter((t) => t >= lo && t <= hi);
  const tickLabel = (t: number) => formatNumber(log ? Math.pow(10, t) : t);
  const xTicks = ticks(firstStep, lastStep).filter((t) => Number.isInteger(t) && t >= firstStep && t <= lastStep);
  const parts: string[] = [];
  parts.push(
    `<svg class="loss" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">`,
  );
  parts.push(`<title>${escapeHtml(title)}</title>`);
  for (const t of yTicks) {
    parts.push(`<line class="grid" x1="${left}" x2="${left + plotW}" y1="${r(y(t))}" y2="${r(y(t))}"/>`);
    parts.push(`<text x="${left - 6}" y="${r(y(t) + 4)}" text-anchor="end">${escapeHtml(tickLabel(t))}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<text x="${r(x(t))}" y="${top + plotH + 16}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}"/>`);
  parts.push(`<line class="axis" x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${height - 4}" text-anchor="middle">step</text>`);
  if (log) {
    parts.push(`<text class="scale" x="${left + 4}" y="${top + 10}">log scale</text>`);
  }
  if (points.length === 1) {
    parts.push(`<circle class="curve" cx="${r(x(points[0].step))}" cy="${r(y(tv(points[0].value)))}" r="3"/>`);
  }
  parts.push(`<polyline class="curve" data-points="${points.length}" data-scale="${log ? "log" : "linear"}" points="${vertices}"/>`);
  parts.push(`</svg>`);
  return parts.join("\n");
}

const KIND_TITLES: Record<string, string> = {
  sample: "Samples",
  svi: "SVI fit",
  nuts: "NUTS posterior",
};

export function kindTitle(kind: string | undefined | null): string {
  return (kind && KIND_TITLES[kind]) || (kind ? String(kind) : "Run");
}

function warnRhat(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value > 1.05;
}

export function shapeText(shape: unknown): string {
  return Array.isArray(shape) ? `(${shape.join(", ")}${shape.length === 1 ? "," : ""})` : "—";
}

export function posteriorTable(rows: readonly PosteriorRow[]): string {
  if (rows.length === 0) {
    return `<p class="empty">No posterior summary.</p>`;
  }
  const withShape = rows.some((r) => Array.isArray(r.shape));
  const body = rows
    .map(
      (row) =>
        `<tr><td>${escapeHtml(String(row.name))}</td>` +
        (withShape ? `<td>${escapeHtml(shapeText(row.shape))}</td>` : "") +
        `<td>${formatNumber(row.mean)}</td><td>${formatNumber(row.sd)}</td>` +
        `<td${warnRhat(row.r_hat) ? ' class="warn" title="r_hat above 1.05: the chains disagree"' : ""}>${formatNumber(row.r_hat)}</td>` +
        `<td>${formatNumber(row.ess)}</td></tr>`,
    )
    .join("\n");
  const shapeHead = withShape ? "<th>shape</th>" : "";
  return `<table class="posterior"><thead><tr><th>name</th>${shapeHead}<th>mean</th><th>sd</th><th>r_hat</th><th>ess</th></tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

export function samplesTable(samples: Readonly<Record<string, SampleStats>>): string {
  const names = Object.keys(samples);
  if (names.length === 0) {
    return `<p class="empty">No samples.</p>`;
  }
  const body = names
    .map((name) => {
      const s = samples[name] ?? {};
      const shape = shapeText(s.shape);
      return (
        `<tr><td>${escapeHtml(name)}</td><td>${escapeHtml(shape)}</td><td>${escapeHtml(String(s.dtype ?? "—"))}</td>` +
        `<td>${formatNumber(s.mean)}</td><td>${formatNumber(s.sd)}</td><td>${formatNumber(s.min)}</td><td>${formatNumber(s.max)}</td></tr>`
      );
    })
    .join("\n");
  return `<table class="samples"><thead><tr><th>site</th><th>shape</th><th>dtype</th><th>mean</th><th>sd</th><th>min</th><th>max</th></tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

export function diagnosticsTable(diagnostics: Readonly<Record<string, unknown>>): string {
  const keys = Object.keys(diagnostics);
  if (keys.length === 0) {
    return "";
  }
  const rows = keys.map((key) => {
    const value = diagnostics[key];
    const cells = Array.isArray(value) ? value.map((v) => formatNumber(v)).join(", ") : formatNumber(value);
    return `<tr><td>${escapeHtml(key)}</td><td>${escapeHtml(cells)}</td></tr>`;
  });
  return `<table class="diagnostics"><thead><tr><th>diagnostic</th><th>per chain</th></tr></thead>\n<tbody>\n${rows.join("\n")}\n</tbody></table>`;
}

/** Bits per token as text: three decimals, a dash when missing. */
function bitsText(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(3) : formatNumber(value);
}

/** Tokens per second as text: a whole number with thousands separators. */
export function speedText(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value)
    ? Math.round(value).toLocaleString("en-US")
    : formatNumber(value);
}

/** The figures of a corpus fit: speed, held-out against unigram bits, progress, data. */
export function corpusTable(c: CorpusFigures, checkpoint?: string | null): string {
  const rows: [string, string][] = [
    ["tokens per second", speedText(c.tokens_per_s)],
    ["held-out bits per token", bitsText(c.held_out_bits_per_token)],
    ["unigram baseline, bits per token", bitsText(c.unigram_bits_per_token)],
    ["steps", `${formatNumber(c.steps)} of ${formatNumber(c.total_steps)} (epochs done: ${formatNumber(c.epochs_done)} of ${formatNumber(c.epochs)})`],
    [
      "rows",
      `${formatNumber(c.train_rows)} training, ${formatNumber(c.held_out_rows)} held out, ${formatNumber(c.seq_len)} bytes each; batches of ${formatNumber(c.batch_size)}`,
    ],
    ["data", `${c.path ?? "—"} (${formatNumber(c.bytes)} bytes)`],
    ["guide, device", `${c.guide ?? "—"}, ${c.device ?? "—"}`],
  ];
  if (c.resumed_from) {
    rows.push(["resumed from", c.resumed_from]);
  }
  if (checkpoint) {
    rows.push(["checkpoint", checkpoint]);
  }
  const body = rows.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join("\n");
  return `<table class="corpus"><tbody>\n${body}\n</tbody></table>`;
}

export function statusOf(result: RunResult): "ok" | "cancelled" | "failed" {
  if (!result.ok) {
    return "failed";
  }
  return result.cancelled ? "cancelled" : "ok";
}

/** The results page body for one run. `file` is the source's display name. */
export function renderResultsBody(result: RunResult, file?: string): string {
  const status = statusOf(result);
  const parts: string[] = [];
  const target = result.target ? ` · ${escapeHtml(result.target)}` : "";
  parts.push(`<h1>${escapeHtml(kindTitle(result.kind))}${target}</h1>`);
  const meta: string[] = [`<span class="status ${status}">${status}</span>`];
  if (file) {
    meta.push(escapeHtml(file));
  }
  if (typeof result.elapsed === "number") {
    meta.push(`${formatNumber(result.elapsed)} s`);
  }
  parts.push(`<p class="meta">${meta.join(" · ")}</p>`);
  const fallback = compileFallbackText(result);
  if (result.compiled) {
    parts.push(`<p class="meta">The potential and its gradient ran through torch.compile.</p>`);
  } else if (fallback) {
    parts.push(`<div class="error">Not compiled: the run fell back to eager evaluation: ${escapeHtml(fallback)}</div>`);
  }
  if (result.error) {
    parts.push(`<div class="error">${escapeHtml(result.error)}</div>`);
  }
  const corpus = result.corpus && typeof result.corpus === "object" ? result.corpus : undefined;
  if (corpus) {
    parts.push(`<h2>Corpus fit</h2>`);
    if (result.cancelled && result.checkpoint) {
      parts.push(`<p class="meta">Stopped; the checkpoint is kept: set <code>resume</code> to its path to continue.</p>`);
    }
    parts.push(corpusTable(corpus, result.checkpoint));
    const held = Array.isArray(corpus.held_out_bits) ? corpus.held_out_bits : [];
    if (held.length > 0) {
      parts.push(`<h2>Held-out bits per token</h2>`);
      parts.push(
        lossCurveSvg(
          held.map(([, bits]) => (typeof bits === "number" ? bits : Number(bits))),
          { steps: held.map(([step]) => step), title: "Held-out bits per token", scale: "linear", what: "held-out scores" },
        ),
      );
    }
  }
  if (Array.isArray(result.losses)) {
    parts.push(`<h2>Loss</h2>`);
    const losses = result.losses;
    const finite = losses.filter((v) => Number.isFinite(v));
    if (finite.length > 0) {
      parts.push(
        `<p class="meta">${losses.length} steps · first ${formatNumber(finite[0])} · last ${formatNumber(finite[finite.length - 1])} · min ${formatNumber(Math.min(...finite))}</p>`,
      );
    }
    parts.push(lossCurveSvg(losses));
  }
  if (Array.isArray(result.posterior)) {
    parts.push(`<h2>Posterior</h2>`);
    parts.push(posteriorTable(result.posterior));
  }
  if (result.diagnostics && typeof result.diagnostics === "object") {
    const table = diagnosticsTable(result.diagnostics);
    if (table) {
      parts.push(`<h2>Diagnostics</h2>`);
      parts.push(table);
    }
  }
  if (result.samples && typeof result.samples === "object") {
    parts.push(`<h2>Samples</h2>`);
    parts.push(samplesTable(result.samples));
  }
  if (result.returned && typeof result.returned === "object") {
    parts.push(`<h2>Returned value</h2>`);
    parts.push(samplesTable({ return: result.returned }));
  }
  return parts.join("\n");
}

/** A NUTS run's divergences, the kept draws' and warmup's apart (a funnel's come while
 * the step size adapts, so "0" for the kept draws alone can hide biased draws). */
function divergenceText(diagnostics: RunResult["diagnostics"]): string | undefined {
  const total = (key: string): number | undefined => {
    const value = diagnostics?.[key];
    return Array.isArray(value) ? value.reduce((a: number, v) => a + (typeof v === "number" ? v : 0), 0) : undefined;
  };
  const kept = total("divergences");
  const warmup = total("warmup_divergences");
  if (kept === undefined) {
    return undefined;
  }
  return warmup === undefined ? `divergences ${kept}` : `divergences ${kept} (warmup ${warmup})`;
}

/** Why a `compile` run fell back to eager evaluation, or undefined (compiled, or not asked). */
function compileFallbackText(result: RunResult): string | undefined {
  const reasons = Array.isArray(result.compile_fallback) ? result.compile_fallback : [];
  return result.compiled || reasons.length === 0 ? undefined : reasons.join("; ");
}

/** A one-line summary for notifications and the output channel. */
export function summarize(result: RunResult): string {
  const what = kindTitle(result.kind);
  const status = statusOf(result);
  if (status === "failed") {
    return `${what} failed: ${result.error ?? "unknown error"}`;
  }
  const bits: string[] = [];
  const corpus = result.corpus;
  if (corpus && typeof corpus === "object") {
    bits.push(`${speedText(corpus.tokens_per_s)} tokens/s`);
    if (typeof corpus.held_out_bits_per_token === "number") {
      bits.push(`held-out ${bitsText(corpus.held_out_bits_per_token)} bits/token (unigram ${bitsText(corpus.unigram_bits_per_token)})`);
    }
  }
  if (Array.isArray(result.losses) && result.losses.length) {
    bits.push(`final loss ${formatNumber(result.losses[result.losses.length - 1])}`);
  }
  const diverged = divergenceText(result.diagnostics);
  if (diverged) {
    bits.push(diverged);
  }
  const fallback = compileFallbackText(result);
  if (result.compiled) {
    bits.push("compiled");
  } else if (fallback) {
    bits.push(`not compiled: ${fallback}`);
  }
  if (typeof result.elapsed === "number") {
    bits.push(`${formatNumber(result.elapsed)} s`);
  }
  if (status === "cancelled" && result.checkpoint) {
    bits.push(`checkpoint kept: ${result.checkpoint}`);
  }
  return `${what} ${status === "cancelled" ? "cancelled" : "finished"}${bits.length ? ` (${bits.join(", ")})` : ""}`;
}
