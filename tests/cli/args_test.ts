/**
 * The shared command-line parser: typed values and defaults, and every bad
 * command line refused with a message naming the flag and what it expected.
 */
import assert from "node:assert/strict";
import { ArgsError, helpText, parseArgv, parseInteger, parseNumber } from "../../lib/cli/args.ts";
import { repoPath } from "../../lib/experiments/paths.ts";

const spec = {
  usage: "deno task thing <config.yaml> [options]",
  description: "Does a thing.",
  positionals: { name: "<config.yaml>", min: 1, max: 1 },
  options: {
    steps: { type: "integer", min: 1, default: 100, help: "training steps" },
    port: { type: "integer", min: 0, max: 65535, help: "TCP port" },
    lr: { type: "number", min: 0, max: 1, help: "learning rate" },
    tier: { type: "choice", choices: ["soft", "hard"], default: "soft", help: "answer tier" },
    seeds: { type: "integers", min: 0, help: "seeds" },
    set: { type: "string", multiple: true, value: "path=value", help: "override" },
    out: { type: "string", required: true, value: "DIR", help: "output directory" },
    name: { type: "string", nonEmpty: true, help: "label" },
    json: { type: "boolean", help: "print JSON" },
  },
} as const;

function refused(argv: string[]): string {
  try {
    parseArgv(spec, argv);
  } catch (e) {
    assert.ok(e instanceof ArgsError, `${argv.join(" ")}: ${e}`);
    return e.message;
  }
  assert.fail(`accepted: ${argv.join(" ")}`);
}

Deno.test("args: typed values, defaults, repeatable and list flags", () => {
  const r = parseArgv(spec, [
    "c.yaml",
    "--out",
    "o",
    "--steps=10_000",
    "--lr",
    "1e-3",
    "--tier",
    "hard",
    "--seeds",
    "0,2",
    "--set",
    "a=1",
    "--set=b=2",
    "--json",
  ]);
  assert.equal(r.help, false);
  assert.deepEqual(r.positionals, ["c.yaml"]);
  const v = r.values;
  // The declared types flow through: these assignments type-check.
  const steps: number = v.steps, tier: "soft" | "hard" = v.tier, sets: string[] = v.set, json: boolean = v.json;
  const port: number | undefined = v.port, out: string = v.out;
  assert.deepEqual([steps, tier, sets, json, port, out], [10000, "hard", ["a=1", "b=2"], true, undefined, "o"]);
  assert.equal(v.lr, 0.001);
  assert.deepEqual(v.seeds, [0, 2]);
  const d = parseArgv(spec, ["c.yaml", "--out", "o"]).values;
  assert.deepEqual([d.steps, d.tier, d.set, d.json, d.seeds, d.name], [100, "soft", [], false, undefined, undefined]);
  assert.equal(parseArgv(spec, ["--help", "--bogus"]).help, true, "--help wins over a bad flag");
  assert.equal(parseArgv(spec, ["-h"]).help, true);
  assert.equal(parseArgv(spec, ["--out", "o", "--port=-0", "--", "--literal.yaml"]).positionals[0], "--literal.yaml");
});

Deno.test("args: a bad number names the flag and the expected range", () => {
  for (const bad of ["", "0x32", "1e3", "1.5", "-1", " 7", "+3", "Infinity", "NaN", "1__0", "_1", "9007199254740993"]) {
    assert.match(refused(["c", "--out", "o", `--steps=${bad}`]), /^--steps: expected an integer ≥ 1, found "/, bad);
  }
  assert.match(
    refused(["c", "--out", "o", "--port", "65536"]),
    /--port: expected an integer in \[0, 65535\], found "65536"/,
  );
  for (const bad of ["", "abc", "1.5.2", "0x1", "2", "-0.1", "Infinity", "1e", ".", "1,5"]) {
    assert.match(refused(["c", "--out", "o", `--lr=${bad}`]), /^--lr: expected a number in \[0, 1\], found /, bad);
  }
  assert.match(refused(["c", "--out", "o", "--seeds", "0,,1"]), /--seeds: expected an integer ≥ 0, found ""/);
  assert.match(
    refused(["c", "--out", "o", "--seeds="]),
    /--seeds: expected a comma-separated list of integers, each ≥ 0/,
  );
  assert.equal(parseInteger("--x", "-12", -20), -12);
  assert.throws(() => parseInteger("--x", "-12", 0), /--x: expected an integer ≥ 0, found "-12"/);
  assert.equal(parseNumber("--x", ".5"), 0.5);
  assert.equal(parseNumber("--x", "-2E+2"), -200);
});

Deno.test("args: unknown flags, missing values, bad choices, positionals", () => {
  assert.equal(refused(["c", "--out", "o", "--step", "3"]), "unknown option --step; did you mean --steps?");
  assert.equal(refused(["c", "--out", "o", "--colour"]), "unknown option --colour");
  assert.equal(refused(["c", "--out", "o", "-x"]), "unknown option -x");
  assert.equal(refused(["c", "--out"]), "--out needs a value: DIR (output directory)");
  assert.equal(refused(["c", "--out", "o", "--steps"]), "--steps needs a value: an integer ≥ 1 (training steps)");
  assert.match(
    refused(["c", "--out", "o", "--port", "--json"]),
    /^--port needs a value: an integer in \[0, 65535\] \(TCP port\); write --port=VALUE/,
  );
  assert.equal(refused(["c", "--out", "o", "--json=yes"]), "--json takes no value");
  assert.equal(refused(["c"]), "missing --out: DIR (output directory)");
  assert.equal(refused(["c", "--out", "o", "--tier", "medium"]), '--tier: expected one of soft, hard, found "medium"');
  assert.equal(refused(["c", "--out", "o", "--name", ""]), "--name: expected a non-empty value");
  assert.equal(refused(["--out", "o"]), "missing <config.yaml>");
  assert.match(refused(["a", "b", "--out", "o"]), /unexpected argument "b": expected at most 1 \(<config.yaml>\)/);
  const none = { usage: "x", options: {} } as const;
  assert.throws(() => parseArgv(none, ["stray"]), /unexpected argument "stray": this command takes options only/);
});

Deno.test("args: --help lists every option with its range, choices and default", () => {
  const h = helpText(spec);
  assert.match(h, /^usage: deno task thing <config.yaml> \[options\]\n\nDoes a thing\./);
  assert.match(h, /--steps N +training steps \(an integer ≥ 1; default 100\)/);
  assert.match(h, /--tier soft\|hard +answer tier \(default soft\)/);
  assert.match(h, /--out DIR +output directory \(required\)/);
  assert.match(h, /--set path=value +override \(repeatable\)/);
  assert.match(h, /-h, --help +print this help/);
});

Deno.test("args: a CLI refuses a bad flag with exit code 2 and prints its help with exit code 0", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", repoPath("lib/bench/soak.ts"), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, out: new TextDecoder().decode(out.stdout), err: new TextDecoder().decode(out.stderr) };
  };
  const bad = await run(["--steps", "1e3"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^error: --steps: expected an integer ≥ 1, found "1e3"\nusage: /);
  const help = await run(["--help"]);
  assert.equal(help.code, 0, help.err);
  assert.match(help.out, /--model resnet18_8x\|lenet5/);
});
