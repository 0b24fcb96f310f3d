import assert from "node:assert/strict";
import {
  missingPartsLine,
  onednnAdvice,
  OPTIONAL_PART_NAMES,
  optionalPart,
  optionalParts,
  switchedOff,
} from "../../lib/system/optional_parts.ts";

/** Runs `fn` with MECO_WITHOUT set to `value` and MECO_NATIVE unset (its own switch), restoring both after. */
function withWithout<T>(value: string, fn: () => T): T {
  const saved = { MECO_WITHOUT: Deno.env.get("MECO_WITHOUT"), MECO_NATIVE: Deno.env.get("MECO_NATIVE") };
  Deno.env.set("MECO_WITHOUT", value);
  Deno.env.delete("MECO_NATIVE");
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

Deno.test("optional parts: MECO_WITHOUT switches parts off by name or all, and refuses an unknown name", () => {
  withWithout("all", () => {
    assert.deepEqual([...switchedOff()].sort(), [...OPTIONAL_PART_NAMES].sort());
    for (const p of optionalParts()) {
      assert.equal(p.available, false);
      assert.match(p.reason, /switched off by MECO_WITHOUT/);
      assert.match(p.install, /^apt-get install /);
    }
    const line = missingPartsLine();
    for (const name of OPTIONAL_PART_NAMES) assert.ok(line.includes(`${name} (`), `${name} named in: ${line}`);
    assert.match(line, /install: apt-get install libdnnl2/);
    assert.match(onednnAdvice(), /7× slower .*install it: apt-get install libdnnl2/);
  });
  withWithout(" jupyter , chromium", () => {
    assert.deepEqual([...switchedOff()].sort(), ["chromium", "jupyter"]);
    assert.equal(optionalPart("jupyter").available, false);
  });
  withWithout("onednn,cuda", () => assert.throws(() => switchedOff(), /MECO_WITHOUT: unknown part "cuda"/));
  withWithout("", () => assert.equal(switchedOff().size, 0));
  withWithout("", () => {
    Deno.env.set("MECO_NATIVE", "0");
    assert.deepEqual([...switchedOff()], ["onednn"]);
    assert.match(optionalPart("onednn").reason, /switched off by MECO_NATIVE=0/);
  });
});

Deno.test("optional parts: a part is available exactly when one of its files exists", () => {
  withWithout("", () => {
    const exists = (f: string) => {
      try {
        return Deno.statSync(f).isFile;
      } catch {
        return false;
      }
    };
    assert.equal(optionalPart("onednn").available, exists("/usr/lib/x86_64-linux-gnu/libdnnl.so.2"));
    assert.equal(
      optionalPart("fashion-mnist").available,
      exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
    );
    const all = optionalParts();
    assert.equal(missingPartsLine(all) === "", all.every((p) => p.available));
  });
});

Deno.test("deno task test's runner passes deno test's status through and ends with the missing-parts line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "meco-runner-" });
  try {
    await Deno.writeTextFile(`${dir}/pass_test.ts`, `Deno.test("passes", () => {});\n`);
    await Deno.writeTextFile(`${dir}/fail_test.ts`, `Deno.test("fails", () => { throw new Error("no"); });\n`);
    const runner = new URL("../../lib/system/test_runner.ts", import.meta.url).pathname;
    const run = async (file: string) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", runner, `${dir}/${file}`],
        env: { MECO_WITHOUT: "all", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, text: new TextDecoder().decode(out.stdout).trim() };
    };
    const ok = await run("pass_test.ts");
    assert.equal(ok.code, 0);
    const last = ok.text.split("\n").at(-1)!;
    assert.match(
      last,
      /^skipped, needing parts that are missing: onednn .*chromium .*install: apt-get install chromium\)$/,
    );
    const bad = await run("fail_test.ts");
    assert.notEqual(bad.code, 0, "a failing suite fails the task");
    assert.match(bad.text.split("\n").at(-1)!, /^skipped, needing parts that are missing/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
