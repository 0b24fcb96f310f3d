/**
 * Figures as Plotly JSON specs (plotly.js needs a browser, so the library
 * only emits specs), written as self-contained HTML with plotly.js-dist
 * inlined, and rendered to PNG by a headless Chromium when one is installed.
 *
 * @module
 */

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
 * Clone accuracy (%) against queries, one line per series; series sharing a
 * label are averaged point-wise (mean over seeds) with a ±std band.
 */
export function curveFigure(series: CurveSeries[], title: string): PlotlySpec {
  const byLabel = new Map<string, CurveSeries[]>();
  for (const s of series) byLabel.set(s.label, [...(byLabel.get(s.label) ?? []), s]);
  const data: Record<string, unknown>[] = [];
  for (const [label, group] of byLabel) {
    const qs = [...new Set(group.flatMap((s) => s.points.map((p) => p.queries)))].sort((a, b) => a - b);
    const mean: number[] = [], std: number[] = [], xs: number[] = [];
    for (const q of qs) {
      const vals = group.map((s) => s.points.find((p) => p.queries === q)?.cloneAcc).filter((v) =>
        v !== undefined
      ) as number[];
      if (vals.length === 0) continue;
      const m = vals.reduce((a, b) => a + b, 0) / vals.length;
      const v = vals.length > 1 ? vals.reduce((a, b) => a + (b - m) ** 2, 0) / (vals.length - 1) : 0;
      xs.push(q);
      mean.push(100 * m);
      std.push(100 * Math.sqrt(v));
    }
    data.push({
      type: "scatter",
      mode: "lines+markers",
      name: `${label} (n=${group.length})`,
      x: xs,
      y: mean,
      error_y: { type: "data", array: std, visible: group.length > 1 },
    });
  }
  return {
    data,
    layout: {
      title: { text: title },
      xaxis: { title: { text: "queries" } },
      yaxis: { title: { text: "clone test accuracy (%)" }, range: [0, 100] },
      width: 760,
      height: 460,
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
 * names the unit, `range` fixes the axis (e.g. [0, 100] for percentages).
 */
export function barFigure(bars: Bar[], title: string, yTitle: string, range?: [number, number]): PlotlySpec {
  return {
    data: [{
      type: "bar",
      x: bars.map((b) => b.label),
      y: bars.map((b) => b.mean),
      error_y: { type: "data", array: bars.map((b) => b.std), visible: bars.some((b) => b.std > 0) },
      text: bars.map((b) => b.mean.toFixed(2)),
      textposition: "inside",
    }],
    layout: {
      title: { text: title },
      yaxis: { title: { text: yTitle }, ...(range ? { range } : {}) },
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

/** A self-contained HTML page (plotly.js inlined) showing `spec`; `note` is shown under it. */
export async function figureHtml(spec: PlotlySpec, note = ""): Promise<string> {
  const js = await plotlyJs();
  const esc = (s: string) => s.replaceAll("<", "&lt;");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${
    esc(String((spec.layout.title as { text?: string })?.text ?? "figure"))
  }</title>
<script>${js.replaceAll("</script", "<\\/script")}</script></head>
<body><div id="fig"></div><p style="font:12px monospace">${esc(note)}</p>
<script>Plotly.newPlot("fig", ${JSON.stringify(spec.data)}, ${
    JSON.stringify(spec.layout)
  }, {displayModeBar: false});</script>
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

/**
 * Renders an HTML file to PNG with headless Chromium; returns false (and
 * writes nothing) when no Chromium is installed.
 */
export async function renderPng(htmlPath: string, pngPath: string, size = [800, 520]): Promise<boolean> {
  const chromium = await findChromium();
  if (chromium === undefined) return false;
  const profile = await Deno.makeTempDir({ prefix: "meco-chromium-" });
  try {
    const tmp = `${pngPath}.tmp-${crypto.randomUUID()}.png`;
    const out = await new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        `--window-size=${size[0]},${size[1]}`,
        "--virtual-time-budget=5000",
        `--screenshot=${tmp}`,
        `file://${await Deno.realPath(htmlPath)}`,
      ],
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
  return (await renderPng(html, png)) ? { html, png } : { html };
}

/**
 * A figure as a notebook MIME bundle: the Plotly spec, and `<dir>/<base>.png`
 * (base64) when one was rendered.
 */
export async function figureBundle(spec: PlotlySpec, dir: string, base: string): Promise<Record<string, unknown>> {
  const bundle: Record<string, unknown> = {
    "application/vnd.plotly.v1+json": spec,
    "text/plain": `figure: ${dir}/${base}.html`,
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
