/**
 * MiniImageNet (100 ImageNet classes, 600 images each, 84×84×3) from the
 * usual pickled splits `mini-imagenet-cache-{train,val,test}.pkl` — dicts
 * of `image_data` (uint8 [N, 84, 84, 3]) and `class_dict` ({wnid: [indices]}),
 * as distributed for few-shot learning. Those splits hold disjoint classes
 * (64 / 16 / 20); for classification, as in the MeCo experiments, the three
 * are merged into 100 classes (labels in sorted wnid order) and each class's
 * last `testPerClass` images (default 100) form the test split, the rest
 * (500 per class) the training split. Images are resized while decoding
 * (bilinear), so 60000 images at 32×32 need 0.7 GB rather than 5 GB.
 *
 * @module
 */

import { join } from "node:path";
import { defaultDataDir } from "./cache_dir.ts";
import { DataError } from "./data_error.ts";
import type { Dataset, Split } from "./dataset.ts";
import { PickledArray, readPickle } from "./pickle.ts";
import { pathExists } from "./read_bytes.ts";
import { resizeImage } from "./resize.ts";

/** The pickled splits, in the order their classes are read. */
export const MINIIMAGENET_FILES: readonly string[] = [
  "mini-imagenet-cache-train.pkl",
  "mini-imagenet-cache-val.pkl",
  "mini-imagenet-cache-test.pkl",
];

/** The 100 MiniImageNet classes (ImageNet wnids), sorted: label i is the i-th. */
export const MINIIMAGENET_CLASSES: readonly string[] = [
  "n01532829",
  "n01558993",
  "n01704323",
  "n01749939",
  "n01770081",
  "n01843383",
  "n01855672",
  "n01910747",
  "n01930112",
  "n01981276",
  "n02074367",
  "n02089867",
  "n02091244",
  "n02091831",
  "n02099601",
  "n02101006",
  "n02105505",
  "n02108089",
  "n02108551",
  "n02108915",
  "n02110063",
  "n02110341",
  "n02111277",
  "n02113712",
  "n02114548",
  "n02116738",
  "n02120079",
  "n02129165",
  "n02138441",
  "n02165456",
  "n02174001",
  "n02219486",
  "n02443484",
  "n02457408",
  "n02606052",
  "n02687172",
  "n02747177",
  "n02795169",
  "n02823428",
  "n02871525",
  "n02950826",
  "n02966193",
  "n02971356",
  "n02981792",
  "n03017168",
  "n03047690",
  "n03062245",
  "n03075370",
  "n03127925",
  "n03146219",
  "n03207743",
  "n03220513",
  "n03272010",
  "n03337140",
  "n03347037",
  "n03400231",
  "n03417042",
  "n03476684",
  "n03527444",
  "n03535780",
  "n03544143",
  "n03584254",
  "n03676483",
  "n03770439",
  "n03773504",
  "n03775546",
  "n03838899",
  "n03854065",
  "n03888605",
  "n03908618",
  "n03924679",
  "n03980874",
  "n03998194",
  "n04067472",
  "n04146614",
  "n04149813",
  "n04243546",
  "n04251144",
  "n04258138",
  "n04275548",
  "n04296562",
  "n04389033",
  "n04418357",
  "n04435653",
  "n04443257",
  "n04509417",
  "n04515003",
  "n04522168",
  "n04596742",
  "n04604644",
  "n04612504",
  "n06794110",
  "n07584110",
  "n07613480",
  "n07697537",
  "n07747607",
  "n09246464",
  "n09256479",
  "n13054560",
  "n13133613",
];

/** Subfolder of the data directory searched by default. */
export const MINIIMAGENET_FOLDER = "miniimagenet";

/** Classes and images per class of the canonical dataset. */
export const MINIIMAGENET_COUNTS = { classes: 100, perClass: 600 } as const;

/** Options for {@linkcode loadMiniImagenet}. */
export interface MiniImagenetOptions {
  /** Directory holding the three .pkl files; overrides the default `<data dir>/miniimagenet`. */
  dir?: string;
  /** Data directory (default {@linkcode defaultDataDir}). */
  dataDir?: string;
  /** Side of the square images returned (default: as stored, 84 for the real files). */
  imageSize?: number;
  /** Images per class held out for the test split (default 100). */
  testPerClass?: number;
  /** Require the canonical 100 classes × 600 images (default `true`). */
  verify?: boolean;
}

function howToGet(dir: string): string {
  return `put ${MINIIMAGENET_FILES.join(", ")} (the pickled MiniImageNet splits: dicts with image_data, ` +
    `uint8 [N, 84, 84, 3], and class_dict, {wnid: [indices]}) in ${dir}; set MECO_DATA_DIR or the ` +
    `dataDir option to use another data directory, or dataset.dir (the dir option) to read another folder`;
}

interface Parsed {
  train: Dataset;
  test: Dataset;
}

const loaded = new Map<string, Promise<Parsed>>();

/**
 * Loads one split of MiniImageNet from the pickled splits (see the module
 * comment for the class merge and the train/test division). Both splits are
 * built from one reading of the files, which is shared by the calls of this
 * process with the same directory and options.
 *
 * @example
 * ```ts ignore
 * import { loadMiniImagenet } from "./miniimagenet.ts";
 * const test = await loadMiniImagenet("test", { imageSize: 32 }); // 10000 images, 100 classes
 * ```
 */
export async function loadMiniImagenet(split: Split, opts: MiniImagenetOptions = {}): Promise<Dataset> {
  const dir = opts.dir ?? join(opts.dataDir ?? defaultDataDir(), MINIIMAGENET_FOLDER);
  const size = opts.imageSize;
  const testPerClass = opts.testPerClass ?? 100;
  const verify = opts.verify ?? true;
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) {
    throw new RangeError(`MiniImageNet imageSize must be a positive integer, got ${size}`);
  }
  if (!Number.isInteger(testPerClass) || testPerClass < 1) {
    throw new RangeError(`MiniImageNet testPerClass must be a positive integer, got ${testPerClass}`);
  }
  const key = JSON.stringify([dir, size ?? null, testPerClass, verify]);
  let p = loaded.get(key);
  if (p === undefined) {
    p = parseAll(dir, size, testPerClass, verify);
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
  }
  return (await p)[split];
}

/** Forgets the splits kept by {@linkcode loadMiniImagenet} (frees their memory). */
export function clearMiniImagenetCache(): void {
  loaded.clear();
}

interface ClassImages {
  wnid: string;
  file: string;
  source: PickledArray;
  indices: number[];
}

async function parseAll(
  dir: string,
  requested: number | undefined,
  testPerClass: number,
  verify: boolean,
): Promise<Parsed> {
  const missing: string[] = [];
  for (const f of MINIIMAGENET_FILES) if (!(await pathExists(join(dir, f)))) missing.push(f);
  if (missing.length > 0) {
    throw new DataError(
      missing.length === MINIIMAGENET_FILES.length ? dir : join(dir, missing[0]),
      missing.length === MINIIMAGENET_FILES.length ? "not_available" : "missing_file",
      `MiniImageNet is not complete here (missing ${missing.join(", ")}); ${howToGet(dir)}`,
    );
  }
  const classes: ClassImages[] = [];
  const seen = new Map<string, string>();
  let hw: [number, number] | undefined;
  for (const f of MINIIMAGENET_FILES) {
    const path = join(dir, f);
    const { images, classDict } = splitContents(readPickle(await Deno.readFile(path), path), path);
    const [n, h, w] = images.shape;
    if (hw !== undefined && (hw[0] !== h || hw[1] !== w)) {
      throw new DataError(path, "bad_header", "image size differs between the split files", {
        expected: `${hw[0]}×${hw[1]}`,
        found: `${h}×${w}`,
      });
    }
    hw = [h, w];
    const owner = new Int32Array(n).fill(-1);
    for (const [wnid, indices] of classDict) {
      const other = seen.get(wnid);
      if (other !== undefined) throw new DataError(path, "bad_header", `class ${wnid} also appears in ${other}`);
      seen.set(wnid, f);
      for (const i of indices) {
        if (!Number.isInteger(i) || i < 0 || i >= n) {
          throw new DataError(path, "bad_label", `class ${wnid} lists image ${i}, outside [0, ${n})`);
        }
        if (owner[i] !== -1) throw new DataError(path, "bad_label", `image ${i} is listed under two classes`);
        owner[i] = 1;
      }
      classes.push({ wnid, file: path, source: images, indices });
    }
    if (verify) {
      const unlisted = owner.indexOf(-1);
      if (unlisted >= 0) throw new DataError(path, "count_mismatch", `image ${unlisted} belongs to no class`);
    }
  }
  classes.sort((a, b) => (a.wnid < b.wnid ? -1 : a.wnid > b.wnid ? 1 : 0));
  if (verify) {
    if (classes.length !== MINIIMAGENET_COUNTS.classes) {
      throw new DataError(dir, "count_mismatch", "MiniImageNet should have 100 classes over its three files", {
        expected: MINIIMAGENET_COUNTS.classes,
        found: classes.length,
      });
    }
    const odd = classes.find((c, i) => c.wnid !== MINIIMAGENET_CLASSES[i]);
    if (odd !== undefined) {
      throw new DataError(odd.file, "bad_label", `class ${odd.wnid} is not one of MiniImageNet's 100 classes`);
    }
    for (const c of classes) {
      if (c.indices.length !== MINIIMAGENET_COUNTS.perClass) {
        throw new DataError(c.file, "count_mismatch", `class ${c.wnid} should have 600 images`, {
          expected: MINIIMAGENET_COUNTS.perClass,
          found: c.indices.length,
        });
      }
    }
  }
  for (const c of classes) {
    if (c.indices.length <= testPerClass) {
      throw new DataError(
        c.file,
        "count_mismatch",
        `class ${c.wnid} has ${c.indices.length} images, too few to hold out ${testPerClass} for testing`,
      );
    }
  }
  const classNames = classes.map((c) => c.wnid);
  const build = (split: Split): Dataset => {
    const picks = classes.map((c) =>
      split === "train" ? c.indices.slice(0, c.indices.length - testPerClass) : c.indices.slice(-testPerClass)
    );
    const n = picks.reduce((s, p) => s + p.length, 0);
    const [h, w] = hw!;
    const size = requested ?? h;
    const per = size * size * 3;
    const images = new Float32Array(n * per);
    const labels = new Int32Array(n);
    const src = new Float32Array(h * w * 3);
    let k = 0;
    picks.forEach((idx, label) => {
      const data = classes[label].source.data;
      for (const i of idx) {
        const raw = data.subarray(i * h * w * 3, (i + 1) * h * w * 3);
        for (let j = 0; j < raw.length; j++) src[j] = raw[j] / 255;
        const out = images.subarray(k * per, (k + 1) * per);
        if (h === size && w === size) out.set(src);
        else resizeImage(src, h, w, 3, size, size, out);
        labels[k++] = label;
      }
    });
    return {
      name: "miniimagenet",
      split,
      images,
      labels,
      n,
      height: size,
      width: size,
      channels: 3,
      numClasses: classes.length,
      classNames,
    };
  };
  return { train: build("train"), test: build("test") };
}

function splitContents(obj: unknown, path: string): { images: PickledArray; classDict: Map<string, number[]> } {
  if (!(obj instanceof Map)) {
    throw new DataError(path, "bad_header", "expected a pickled dict with image_data and class_dict");
  }
  const images = obj.get("image_data");
  const classDict = obj.get("class_dict");
  if (!(images instanceof PickledArray)) {
    throw new DataError(path, "bad_header", "image_data is missing or not a NumPy array");
  }
  if (images.dtype !== "u1" || images.shape.length !== 4 || images.shape[3] !== 3 || images.fortran) {
    throw new DataError(path, "bad_header", "image_data should be a C-ordered uint8 array [N, H, W, 3]", {
      expected: "u1 [N, H, W, 3]",
      found: `${images.dtype} [${images.shape.join(", ")}]${images.fortran ? " (Fortran order)" : ""}`,
    });
  }
  const expectedBytes = images.shape.reduce((a, b) => a * b, 1);
  if (images.data.length !== expectedBytes) {
    throw new DataError(path, "truncated", "image_data holds fewer or more bytes than its shape", {
      expected: expectedBytes,
      found: images.data.length,
    });
  }
  if (!(classDict instanceof Map)) throw new DataError(path, "bad_header", "class_dict is missing or not a dict");
  const out = new Map<string, number[]>();
  for (const [k, v] of classDict) {
    if (typeof k !== "string" || !Array.isArray(v)) {
      throw new DataError(path, "bad_header", "class_dict should map class names to lists of image indices");
    }
    out.set(k, v as number[]);
  }
  return { images, classDict: out };
}
