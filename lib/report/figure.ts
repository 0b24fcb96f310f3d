/**
 * Figures as Plotly JSON specs (plotly.js needs a browser, so the library
 * only emits specs), written as self-contained HTML with plotly.js-dist
 * inlined, and rendered to PNG by a headless Chromium when one is installed.
 *
 * @module
 */

import * as aq from "arquero";
import { switchedOff } from "../system/optional_parts.ts";
import { writeTextAtomic } from "../experiments/cache.ts";

/** A Plotly figure: traces and layout, as plotly.js takes them. */
export interface PlotlySpec {
  /** Traces. */
  data: Record<string, unknown>[];
  /** Layout. */
  layout: Record<string, unknown>;
}

/** One learning curve: a label and (queries, accuracy) points. */
export interface CurveSeries {
  /** Legend label. */
  label: string;
  /** Points in query order; accuracy as a fraction. */
  points: { queries: number; cloneAcc: number }[];
}

/**
 * An axis range fitted to values with error bars: [min − err, max + err]
 * padded by 8% of the span (at least `minSpan`), clamped to `clamp`.
 */
export function fittedRange(
  values: { value: number; err: number }[],
  minSpan: number,
  clamp: [number, number] = [-Infinity, Infinity],
): [number, number] | undefined {
  const finite = values.filter((v) => Number.isFinite(v.value));
  if (finite.length === 0) return undefined;
  let lo = Math.min(...finite.map((v) => v.value - (Number.isFinite(v.err) ? v.err : 0)));
  let hi = Math.max(...finite.map((v) => v.value + (Number.isFinite(v.err) ? v.err : 0)));
  const span = Math.max(hi - lo, minSpan);
  const mid = (lo + hi) / 2;
  lo = mid - span / 2 - 0.08 * span;
  hi = mid + span / 2 + 0.08 * span;
  return [Math.max(lo, clamp[0]), Math.min(hi, clamp[1])];
}

/** A legend laid out horizontally under the plot, so that long labels wrap inside the image. */
export const LEGEND_BELOW = { orientation: "h", x: 0, xanchor: "left", y: -0.18, yanchor: "top" } as const;

/** Mean, std (0 for one value) and count of the values at one point of one labelled curve. */
export interface PointStat {
  /** The curve. */
  label: string;
  /** Where on the query axis. */
  queries: number;
  /** Mean over seeds. */
  mean: number;
  /** Sample standard deviation over seeds (0 for one). */
  std: number;
  /** Number of values. */
  n: number;
}

/** Per (label, queries), the mean ± std of `value` over the rows (arquero `groupby` + `rollup`), by queries. */
export function pointStats(rows: { label: string; queries: number; value: number }[]): PointStat[] {
  return rows.length === 0 ? [] : aq.from(rows)
    .groupby("label", "queries")
    .rollup({ mean: aq.op.mean("value"), std: aq.op.stdev("value"), n: aq.op.count() })
    .derive({ std: (d: { std: number | undefined; n: number }) => (d.n > 1 ? d.std : 0) })
    .orderby("queries")
    .objects() as PointStat[];
}

/** One line per label through its points' means, with ±std error bars where `seeds(label)` > 1. */
export function meanTraces(
  labels: string[],
  stats: PointStat[],
  seeds: (label: string) => number,
): Record<string, unknown>[] {
  return labels.map((label) => {
    const pts = stats.filter((p) => p.label === label);
    const n = seeds(label);
    return {
      type: "scatter",
      mode: "lines+markers",
      name: `${label} (n=${n})`,
      x: pts.map((p) => p.queries),
      y: pts.map((p) => p.mean),
      error_y: { type: "data", array: pts.map((p) => p.std), visible: n > 1 },
    };
  });
}

/**
 * Clone accuracy (%) against queries, one line per label: series sharing a
 * label (seeds) are averaged point-wise with a ±std band (arquero
 * `groupby` + `rollup`). The accuracy axis is fitted to the curves (so that
 * two close curves stay apart) and the legend sits under the plot.
 */
export function curveFigure(series: CurveSeries[], title: string): PlotlySpec {
  const labels = [...new Set(series.map((s) => s.label))];
  const seeds = new Map(labels.map((l) => [l, series.filter((s) => s.label === l).length]));
  const flat = series.flatMap((s) =>
    s.points.map((p) => ({ label: s.label, queries: p.queries, acc: 100 * p.cloneAcc }))
  );
  const stats = pointStats(flat.map((f) => ({ label: f.label, queries: f.queries, value: f.acc })));
  const data = meanTraces(labels, stats, (label) => seeds.get(label) ?? 0);
  const range = fittedRange(stats.map((p) => ({ value: p.mean, err: p.std })), 2, [0, 100]);
  return {
    data,
    layout: {
      title: { text: title },
      xaxis: { title: { text: "queries" } },
      yaxis: { title: { text: "clone test accuracy (%)" }, ...(range ? { range } : {}) },
      legend: LEGEND_BELOW,
      width: 760,
      height: 500,
    },
  };
}

/** One bar of {@linkcode barFigure}: a label, mean and std (in the unit shown). */
export interface Bar {
  /** Category label. */
  label: string;
  /** Bar height. */
  mean: number;
  /** Error bar (0 for a single seed). */
  std: number;
}

/**
 * Bars with ±std error bars, e.g. final clone accuracy per defense; `yTitle`
 * names the unit. The value axis is fitted to the bars and their error bars
 * (`range` overrides it), so that close values stay visibly apart; the
 * numbers are printed on the bars.
 */
export function barFigure(bars: Bar[], title: string, yTitle: string, range?: [number, number]): PlotlySpec {
  const fitted = range ?? fittedRange(bars.map((b) => ({ value: b.mean, err: b.std })), 0.5);
  return {
    data: [{
      type: "bar",
      x: bars.map((b) => b.label),
      y: bars.map((b) => b.mean),
      error_y: { type: "data", array: bars.map((b) => b.std), visible: bars.some((b) => b.std > 0) },
      text: bars.map((b) => b.mean.toFixed(2)),
      textposition: "outside",
      cliponaxis: false,
    }],
    layout: {
      title: { text: title },
      yaxis: { title: { text: yTitle }, ...(fitted ? { range: fitted } : {}) },
      width: 760,
      height: 460,
    },
  };
}

let plotlySource: string | undefined;

async function plotlyJs(): Promise<string> {
  if (plotlySource !== undefined) return plotlySource;
  const url = import.meta.resolve("plotly.js-dist");
  const path = url.startsWith("file://") ? new URL(url).pathname : undefined;
  const candidates = [
    ...(path ? [path] : []),
    `${Deno.cwd()}/node_modules/plotly.js-dist/plotly.js`,
  ];
  for (const c of candidates) {
    try {
      plotlySource = await Deno.readTextFile(c);
      return plotlySource;
    } catch {
      // try the next
    }
  }
  throw new Error(`plotly.js-dist not found (tried ${candidates.join(", ")}); run 'deno install'`);
}

/** Height in pixels of the note line under a figure's plot. */
export const NOTE_HEIGHT = 24;

/** The page size a figure's HTML needs: the plot's layout size plus the note line. */
export function pageSize(spec: PlotlySpec): [number, number] {
  const w = Number(spec.layout.width ?? 760), h = Number(spec.layout.height ?? 460);
  return [w, h + NOTE_HEIGHT];
}

/**
 * A self-contained HTML page (plotly.js inlined) showing `spec` at its layout
 * size, with `note` on one line under it; the page has no margins and no
 * scrollbars. After plotting it records on `<body data-layout>` the legend's
 * box and whether the page overflows, which {@linkcode figureLayout} reads.
 */
export async function figureHtml(spec: PlotlySpec, note = ""): Promise<string> {
  const js = await plotlyJs();
  const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  const [w, h] = pageSize(spec);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${
    esc(String((spec.layout.title as { text?: string })?.text ?? "figure"))
  }</title>
<style>html,body{margin:0;padding:0;overflow:hidden;width:${w}px;height:${h}px;background:#fff}
#note{font:11px monospace;height:${NOTE_HEIGHT}px;line-height:${NOTE_HEIGHT}px;margin:0 8px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}</style>
<script>${js.replaceAll("</script", "<\\/script")}</script></head>
<body><div id="fig"></div><p id="note">${esc(note)}</p>
<script>Plotly.newPlot("fig", ${JSON.stringify(spec.data)}, ${
    JSON.stringify(spec.layout)
  }, {displayModeBar: false, staticPlot: true}).then(function () {
  var r = function (el) { if (!el) return null; var b = el.getBoundingClientRect(); return {left: b.left, top: b.top, right: b.right, bottom: b.bottom}; };
  var root = document.documentElement;
  document.body.setAttribute("data-layout", JSON.stringify({
    legend: r(document.querySelector("#fig .legend")),
    plot: r(document.querySelector("#fig .main-svg")),
    page: {width: ${w}, height: ${h}},
    overflow: root.scrollWidth > ${w} || root.scrollHeight > ${h}
  }));
});</script>
</body></html>
`;
}

/** The headless Chromium binary, if installed (Debian: /usr/bin/chromium). */
export async function findChromium(): Promise<string | undefined> {
  if (switchedOff().has("chromium")) return undefined;
  for (const c of [Deno.env.get("MECO_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (!c) continue;
    try {
      if ((await Deno.stat(c)).isFile) return c;
    } catch {
      // absent
    }
  }
  return undefined;
}

function chromiumArgs(profile: string, size: [number, number]): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    `--user-data-dir=${profile}`,
    `--window-size=${size[0]},${size[1]}`,
    "--virtual-time-budget=5000",
  ];
}

/**
 * Renders an HTML file to PNG with headless Chromium; returns false (and
 * writes nothing) when no Chromium is installed.
 */
export async function renderPng(
  htmlPath: string,
  pngPath: string,
  size: [number, number] = [800, 520],
): Promise<boolean> {
  const chromium = await findChromium();
  if (chromium === undefined) return false;
  const profile = await Deno.makeTempDir({ prefix: "meco-chromium-" });
  try {
    const tmp = `${pngPath}.tmp-${crypto.randomUUID()}.png`;
    const out = await new Deno.Command(chromium, {
      args: [...chromiumArgs(profile, size), `--screenshot=${tmp}`, `file://${await Deno.realPath(htmlPath)}`],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`chromium failed: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
    await Deno.rename(tmp, pngPath);
    return true;
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/**
 * Writes `<dir>/<base>.html` (plotly.js inlined, `note` under the plot) atomically and, when Chromium is installed,
 * `<dir>/<base>.png`.
 */
export async function writeFigureFiles(
  spec: PlotlySpec,
  dir: string,
  base: string,
  note: string,
): Promise<{ html: string; png?: string }> {
  const html = `${dir}/${base}.html`;
  await writeTextAtomic(html, await figureHtml(spec, note));
  const png = `${dir}/${base}.png`;
  return (await renderPng(html, png, pageSize(spec))) ? { html, png } : { html };
}

/**
 * A figure as a notebook MIME bundle: the Plotly spec, and `<dir>/<base>.png`
 * (base64) when one was rendered.
 */
export async function figureBundle(spec: PlotlySpec, dir: string, base: string): Promise<Record<string, unknown>> {
  const bundle: Record<string, unknown> = {
    "application/vnd.plotly.v1+json": spec,
    "text/plain": `figure: ${relativeToRepo(`${dir}/${base}.html`)}`,
  };
  try {
    const png = await Deno.readFile(`${dir}/${base}.png`);
    let bin = "";
    for (let i = 0; i < png.length; i += 0x8000) bin += String.fromCharCode(...png.subarray(i, i + 0x8000));
    bundle["image/png"] = btoa(bin);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e; // no PNG rendered
  }
  return bundle;
}

/** `path` relative to the repository root when it lies inside it (outputs never show this machine's paths). */
export function relativeToRepo(path: string): string {
  const root = new URL("../../", import.meta.url).pathname;
  return path.startsWith(root) ? path.slice(root.length) : path;
}

/** What {@linkcode figureLayout} reads from a rendered figure page. */
export interface FigureLayout {
  /** The legend's box in page pixels (null without a legend). */
  legend: { left: number; top: number; right: number; bottom: number } | null;
  /** The plot's box. */
  plot: { left: number; top: number; right: number; bottom: number } | null;
  /** The page size the figure was laid out for. */
  page: { width: number; height: number };
  /** Whether the page overflows it (which would show scrollbars). */
  overflow: boolean;
}

/**
 * Lays out a figure page (from {@linkcode figureHtml}) in headless Chromium
 * at its page size and reads where the legend went; undefined without
 * Chromium.
 */
export async function figureLayout(htmlPath: string, size: [number, number]): Promise<FigureLayout | undefined> {
  const chromium = await findChromium();
  if (chromium === undefined) return undefined;
  const profile = await Deno.makeTempDir({ prefix: "meco-chromium-" });
  try {
    const out = await new Deno.Command(chromium, {
      args: [...chromiumArgs(profile, size), "--dump-dom", `file://${await Deno.realPath(htmlPath)}`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`chromium failed: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
    const dom = new TextDecoder().decode(out.stdout);
    const m = dom.match(/data-layout="([^"]*)"/);
    if (m === null) throw new Error(`${htmlPath}: the page recorded no layout (plotly did not finish?)`);
    const json = m[1].replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll(
      "&gt;",
      ">",
    );
    return JSON.parse(json) as FigureLayout;
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** The width and height of a PNG (from its IHDR chunk). */
export function pngSize(png: Uint8Array): [number, number] {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (png.length < 24 || sig.some((b, i) => png[i] !== b)) throw new Error("not a PNG");
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [v.getUint32(16), v.getUint32(20)];
}
