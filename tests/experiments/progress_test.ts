import assert from "node:assert/strict";
import {
  bar,
  etaSeconds,
  formatDuration,
  lineProgress,
  notebookProgress,
  progressBundle,
  progressLine,
  type TaskProgress,
  terminalProgress,
} from "../../lib/experiments/progress.ts";

const task = (done: number, extra: Partial<TaskProgress> = {}): TaskProgress => ({
  label: "meco/dfme seed 0",
  unit: "queries",
  done,
  total: 1000,
  resumedFrom: 0,
  sessionMs: 10_000,
  ...extra,
});

Deno.test("the ETA counts only this invocation's progress (a resumed run does not look faster)", () => {
  assert.equal(etaSeconds(task(500)), 10); // 50 q/s, 500 left
  assert.equal(etaSeconds(task(500, { resumedFrom: 400 })), 50); // 10 q/s, 500 left
  assert.equal(etaSeconds(task(400, { resumedFrom: 400 })), undefined);
  assert.equal(etaSeconds(task(1000)), 0);
  assert.equal(formatDuration(undefined), "?");
  assert.equal(formatDuration(12.4), "12s");
  assert.equal(formatDuration(245), "4m05s");
  assert.equal(formatDuration(3720), "1h02m");
});

Deno.test("the progress line shows the bar, the count, the clone accuracy so far and the ETA", () => {
  assert.equal(bar(0.5, 10), "[#####.....]");
  assert.equal(bar(2, 4), "[####]");
  assert.equal(bar(Number.NaN, 4), "[....]");
  const line = progressLine(task(250, { cloneAcc: 0.8312 }));
  assert.equal(line, "meco/dfme seed 0 [######..................] 250/1000 queries (25%)  clone acc 83.12%  ETA 30s");
});

Deno.test("log lines are throttled but every new clone accuracy is shown", () => {
  const lines: string[] = [];
  const sink = lineProgress((m) => lines.push(m), 60_000);
  sink.update(task(100));
  sink.update(task(200)); // throttled
  sink.update(task(300, { cloneAcc: 0.5 })); // new accuracy
  sink.update(task(400, { cloneAcc: 0.5 })); // throttled
  sink.end(task(1000, { cloneAcc: 0.7 }), "clone accuracy 70.00% after 1000 queries");
  assert.equal(lines.length, 3);
  assert.match(lines[0], / 100\/1000 queries/);
  assert.match(lines[1], / 300\/1000 queries .*clone acc 50\.00%/);
  assert.equal(lines[2], "meco/dfme seed 0: clone accuracy 70.00% after 1000 queries");
});

Deno.test("the terminal bar redraws one line in place and ends it with the summary", () => {
  let out = "";
  const sink = terminalProgress((s) => out += s, 0);
  sink.update(task(100));
  sink.update(task(200));
  sink.end(task(1000), "done");
  const frames = out.split("\r").slice(1);
  assert.equal(frames.length, 3);
  assert.ok(!frames[0].includes("\n") && !frames[1].includes("\n"));
  assert.match(frames[2], /1000\/1000 queries \(100%\).*\nmeco\/dfme seed 0: done\n$/);
});

Deno.test("the notebook display is created once per task, then updated in place by display_id", async () => {
  const calls: { bundle: Record<string, string>; opts: { update?: boolean; display_id?: string; raw?: boolean } }[] =
    [];
  const kernel = {
    display: (obj: unknown, opts?: { raw?: boolean; update?: boolean; display_id?: string }) => {
      calls.push({ bundle: obj as Record<string, string>, opts: opts ?? {} });
      return Promise.resolve();
    },
  };
  const sink = notebookProgress(kernel, 0);
  await sink.update(task(100));
  await sink.update(task(500, { cloneAcc: 0.25 }));
  await sink.update(task(100, { label: "meco training seed 0", unit: "steps" }));
  await sink.end(task(1000, { cloneAcc: 0.6 }), "clone accuracy 60.00%");
  assert.equal(calls.length, 4);
  assert.deepEqual(calls.map((c) => c.opts.update), [false, true, false, true]);
  assert.ok(calls.every((c) => c.opts.raw === true));
  assert.equal(calls[0].opts.display_id, calls[1].opts.display_id);
  assert.equal(calls[0].opts.display_id, calls[3].opts.display_id);
  assert.notEqual(calls[0].opts.display_id, calls[2].opts.display_id);
  assert.match(calls[1].bundle["text/html"], /<progress value="0\.5000" max="1"/);
  assert.match(calls[1].bundle["text/html"], /clone acc <b>25\.00%<\/b>.*ETA/);
  assert.match(calls[3].bundle["text/plain"], /clone accuracy 60\.00%/);
});

Deno.test("labels and units are escaped, not dropped, in the notebook display", () => {
  const b = progressBundle(task(1, { label: "<script>x</script>" }));
  assert.ok(!b["text/html"].includes("<script>"), b["text/html"]);
  assert.ok(b["text/html"].includes("&lt;script&gt;x&lt;/script&gt;: 1/1000 queries"), b["text/html"]);
  const amp = progressBundle(task(1, { label: "a&b", unit: "<q>" }))["text/html"];
  assert.ok(amp.includes("a&amp;b: 1/1000 &lt;q&gt;"), amp);
});
