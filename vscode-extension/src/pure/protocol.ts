// The shapes of the server's custom request and command results
// (docs/dev/editor-protocol.md). Types only.

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export type FlowchartNodeKind = "input" | "morphism" | "combinator" | "site" | "observed" | "value" | "return";

export interface FlowchartNode {
  id: string;
  label: string;
  kind: FlowchartNodeKind | string;
  range?: LspRange | null;
}

export interface FlowchartResult {
  target: string | null;
  mermaid: string | null;
  nodes: FlowchartNode[];
  targets: string[];
  error: string | null;
}

/** A number from the server: JSON has no NaN or Infinity, so those come as strings. */
export type WireNumber = number | "NaN" | "Infinity" | "-Infinity";

export interface PosteriorRow {
  name: string;
  mean: WireNumber | null;
  sd: WireNumber | null;
  r_hat?: WireNumber | null;
  ess?: WireNumber | null;
  /** Shape of the summarised tensor, when the server gives it (the numbers are averages over it). */
  shape?: number[] | null;
}

export interface SampleStats {
  shape?: number[];
  dtype?: string;
  mean?: WireNumber | null;
  sd?: WireNumber | null;
  min?: WireNumber | null;
  max?: WireNumber | null;
}

export type RunKind = "sample" | "svi" | "nuts";

/** The figures of a fit to a text corpus (an SVI run whose data is a text file). */
export interface CorpusFigures {
  steps?: number;
  total_steps?: number;
  epochs_done?: number;
  epochs?: number;
  tokens_per_s?: WireNumber | null;
  held_out_bits_per_token?: WireNumber | null;
  unigram_bits_per_token?: WireNumber | null;
  /** [step, bits per token] after each held-out evaluation. */
  held_out_bits?: [number, WireNumber][];
  train_rows?: number;
  held_out_rows?: number;
  seq_len?: number;
  batch_size?: number;
  guide?: string;
  device?: string;
  path?: string;
  bytes?: number;
  guide_parameters?: number;
  model_parameters?: number;
  resumed_from?: string | null;
}

export interface RunResult {
  ok: boolean;
  kind?: RunKind | string;
  target?: string | null;
  cancelled?: boolean;
  error?: string | null;
  elapsed?: number | null;
  losses?: number[] | null;
  posterior?: PosteriorRow[] | null;
  samples?: Record<string, SampleStats> | null;
  /** Statistics of the program's return value (sample runs). */
  returned?: SampleStats | null;
  diagnostics?: Record<string, unknown> | null;
  /** Why an SVI fit stopped early (the step and the non-finite loss). */
  diverged?: string | null;
  /** Option keys the server ignored: unknown, or not read by this kind of run. */
  ignored_options?: string[];
  /** A fit to a text corpus: speed, held-out and baseline bits per token, progress. */
  corpus?: CorpusFigures | null;
  /** The checkpoint a corpus fit wrote (kept when it was stopped; `resume` continues it). */
  checkpoint?: string | null;
  /** NUTS: whether the potential ran through torch.compile (false when not asked or fell back). */
  compiled?: boolean | null;
  /** NUTS with `compile`: why compilation fell back to eager evaluation (the warnings' texts). */
  compile_fallback?: string[] | null;
}

/** The client-side commands (package.json `contributes.commands`). */
export const CLIENT_COMMANDS = {
  restartServer: "qvr.client.restartServer",
  sample: "qvr.client.sample",
  fitSvi: "qvr.client.fitSvi",
  runNuts: "qvr.client.runNuts",
  showFlowchart: "qvr.client.showFlowchart",
  cancelRun: "qvr.client.cancelRun",
} as const;

/** The server's commands; vscode-languageclient registers these ids itself. */
export const SERVER_COMMANDS = {
  sample: "qvr.sample",
  fitSvi: "qvr.fitSvi",
  runNuts: "qvr.runNuts",
  cancelRun: "qvr.cancelRun",
} as const;

export const FLOWCHART_REQUEST = "qvr/flowchart";

/** Messages between the flowchart webview and the extension. */
export type FlowchartToHost =
  | { type: "ready" }
  | { type: "reveal"; id: string }
  | { type: "save"; format: "mmd" | "svg"; svg?: string }
  | { type: "target"; target: string };

export interface FlowchartViewState {
  /** Source file name shown in the toolbar. */
  file: string;
  result: FlowchartResult | null;
  /** A message shown instead of (or over) the chart. */
  error: string | null;
  /** True while a request is in flight after an edit. */
  pending?: boolean;
}

export type FlowchartToWebview = { type: "update"; state: FlowchartViewState };

/** Extracts the flowchart node id from the id mermaid gives a node's SVG group. */
export function nodeIdFromSvgId(svgId: string, known: readonly string[]): string | null {
  const m = /^flowchart-(.+)-\d+$/.exec(svgId);
  const candidate = m ? m[1] : svgId;
  if (known.includes(candidate)) {
    return candidate;
  }
  // Some mermaid versions prefix the render id: "<renderId>-flowchart-n3-12".
  const m2 = /flowchart-(.+)-\d+$/.exec(svgId);
  if (m2 && known.includes(m2[1])) {
    return m2[1];
  }
  return null;
}
