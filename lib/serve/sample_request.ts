/**
 * `deno task sample-request [--dataset mnist] [--n 2] [--start 0] [--encoding json|base64]`:
 * prints a `POST /v1/predict` body holding test images of a dataset (values
 * in [0, 1]), to try a server with curl.
 *
 * @module
 */
import { loadDataset } from "../data/mod.ts";
import { type Encoding, predictBody } from "./client.ts";

function usage(msg: string): never {
  console.error(`error: ${msg}`);
  console.error("usage: deno task sample-request [--dataset mnist] [--n 2] [--start 0] [--encoding json|base64]");
  Deno.exit(2);
}

if (import.meta.main) {
  const args = [...Deno.args];
  let dataset = "mnist", n = 2, start = 0, encoding: string = "json";
  const int = (flag: string, v: string | undefined, min: number) => {
    const x = Number(v);
    if (v === undefined || !Number.isInteger(x) || x < min) usage(`${flag}: expected an integer ≥ ${min}, found ${v}`);
    return x;
  };
  while (args.length > 0) {
    const a = args.shift()!;
    if (a === "--dataset") dataset = args.shift() ?? usage("--dataset needs a name");
    else if (a === "--n") n = int(a, args.shift(), 1);
    else if (a === "--start") start = int(a, args.shift(), 0);
    else if (a === "--encoding") encoding = args.shift() ?? usage("--encoding needs json or base64");
    else usage(`unexpected argument ${a}`);
  }
  if (encoding !== "json" && encoding !== "base64") usage(`--encoding: expected json or base64, found ${encoding}`);
  const test = await loadDataset(dataset as Parameters<typeof loadDataset>[0], "test");
  if (start + n > test.n) usage(`--start ${start} --n ${n}: the ${dataset} test split has ${test.n} images`);
  const pool = { data: test.images, n: test.n, shape: [test.height, test.width, test.channels] as const };
  console.log(predictBody(pool, start, n, encoding as Encoding));
  console.error(`labels: [${Array.from(test.labels.subarray(start, start + n)).join(", ")}]`);
}
