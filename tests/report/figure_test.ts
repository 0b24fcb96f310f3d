/**
 * A figure rendered headless: the PNG has the page's size, the page does not
 * overflow (no scrollbars) and the legend lies inside the image. Skipped only
 * where Chromium is missing or switched off.
 */
import assert from "node:assert/strict";
import { optionalPart } from "../../lib/system/optional_parts.ts";
import { curveFigure, figureLayout, pageSize, pngSize, writeFigureFiles } from "../../lib/report/mod.ts";

const chromium = optionalPart("chromium");

Deno.test({
  name: "a curve figure renders to a PNG of its page size with the legend inside and no overflow",
  ignore: !chromium.available,
  fn: async () => {
    const labels = ["undefended / dfme", "meco / dfme", "meco w/o DRO / dfme", "batch 256 (per query) long label"];
    const spec = curveFigure(
      labels.flatMap((label, k) =>
        [0, 1, 2].map((seed) => ({
          label,
          points: [1, 2, 3, 4].map((i) => ({
            queries: i * 50_000,
            cloneAcc: 0.9 + 0.01 * k + 0.002 * seed + 0.005 * i,
          })),
        }))
      ),
      "figure test: clone accuracy vs queries",
    );
    const dir = await Deno.makeTempDir({ prefix: "meco-fig-" });
    try {
      const out = await writeFigureFiles(spec, dir, "f", "commit test — a note under the plot");
      assert.ok(out.png !== undefined, "Chromium is installed, so a PNG must be rendered");
      const [w, h] = pageSize(spec);
      assert.deepEqual(pngSize(await Deno.readFile(out.png)), [w, h]);
      const layout = await figureLayout(out.html, [w, h]);
      assert.ok(layout !== undefined);
      assert.equal(layout.overflow, false, "the page must not scroll");
      const lg = layout.legend;
      assert.ok(lg !== null, "the figure has a legend");
      assert.ok(lg.right - lg.left > 50 && lg.bottom - lg.top > 10, `legend box ${JSON.stringify(lg)}`);
      assert.ok(
        lg.left >= 0 && lg.top >= 0 && lg.right <= w && lg.bottom <= h,
        `legend ${JSON.stringify(lg)} in ${w}×${h}`,
      );
      const plot = layout.plot!;
      assert.ok(plot.right <= w && plot.bottom <= h, `plot ${JSON.stringify(plot)} in ${w}×${h}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("pngSize reads the IHDR width and height and refuses other data", () => {
  const png = new Uint8Array(24);
  png.set([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 3, 32, 0, 0, 2, 8]);
  assert.deepEqual(pngSize(png), [800, 520]);
  assert.throws(() => pngSize(new Uint8Array(30)), /not a PNG/);
});
