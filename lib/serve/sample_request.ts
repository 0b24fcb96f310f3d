/**
 * `deno task sample-request [--dataset mnist] [--n 2] [--start 0] [--encoding json|base64]`:
 * prints a `POST /v1/predict` body holding test images of a dataset (values
 * in [0, 1]), to try a server with curl.
 *
 * @module
 */
import { DATASETS, loadDataset } from "../data/mod.ts";
import { cliError, parseCli } from "../cli/args.ts";
import { predictBody } from "./client.ts";

const DATASET_NAMES = Object.keys(DATASETS) as (keyof typeof DATASETS)[];

const CLI = {
  usage: "deno task sample-request [--dataset mnist] [--n 2] [--start 0] [--encoding json|base64]",
  description: "Prints a POST /v1/predict body holding test images of a dataset, to try a server with curl.",
  options: {
    dataset: { type: "choice", choices: DATASET_NAMES, default: "mnist", value: "NAME", help: "dataset" },
    n: { type: "integer", min: 1, default: 2, help: "number of images" },
    start: { type: "integer", min: 0, default: 0, help: "index of the first test image" },
    encoding: { type: "choice", choices: ["json", "base64"], default: "json", help: "nested arrays or float32 base64" },
  },
} as const;

if (import.meta.main) {
  const { values } = parseCli(CLI);
  const { dataset, n, start, encoding } = values;
  const test = await loadDataset(dataset, "test");
  if (start + n > test.n) cliError(CLI, `--start ${start} --n ${n}: the ${dataset} test split has ${test.n} images`);
  const pool = { data: test.images, n: test.n, shape: [test.height, test.width, test.channels] as const };
  console.log(predictBody(pool, start, n, encoding));
  console.error(`labels: [${Array.from(test.labels.subarray(start, start + n)).join(", ")}]`);
}
