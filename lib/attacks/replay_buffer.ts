/**
 * An experience-replay buffer of answered queries (MAZE): images with the
 * victim's answers, kept in CPU memory as a ring of the `capacity` most recent
 * images (unbounded when no capacity is given), sampled uniformly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../data/rng.ts";
import { ResumeError } from "./checkpoint.ts";

/** A buffer of (image, answer) pairs. */
export class ReplayBuffer {
  readonly #imageSize: number;
  readonly #answerSize: number;
  readonly #capacity: number;
  #x: Float32Array = new Float32Array(0);
  #p: Float32Array = new Float32Array(0);
  #size = 0;
  #next = 0; // ring position of the next write once full

  /**
   * An empty buffer.
   *
   * @param imageShape [h, w, c] of one image
   * @param answerSize length of one answer (classes)
   * @param capacity most recent images kept (default: all)
   */
  constructor(readonly imageShape: readonly [number, number, number], answerSize: number, capacity?: number) {
    if (capacity !== undefined && (!Number.isSafeInteger(capacity) || capacity < 1)) {
      throw new RangeError(`ReplayBuffer: capacity must be a positive integer, got ${capacity}`);
    }
    this.#imageSize = imageShape[0] * imageShape[1] * imageShape[2];
    this.#answerSize = answerSize;
    this.#capacity = capacity ?? Infinity;
  }

  /** Images held. */
  get size(): number {
    return this.#size;
  }

  #grow(need: number): void {
    const have = this.#x.length / this.#imageSize;
    if (need <= have) return;
    const rows = Math.min(this.#capacity, Math.max(need, 2 * have, 1024));
    const x = new Float32Array(rows * this.#imageSize);
    const p = new Float32Array(rows * this.#answerSize);
    x.set(this.#x.subarray(0, this.#size * this.#imageSize));
    p.set(this.#p.subarray(0, this.#size * this.#answerSize));
    this.#x = x;
    this.#p = p;
  }

  #put(x: Float32Array, p: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      let row: number;
      if (this.#size < this.#capacity) {
        this.#grow(this.#size + 1);
        row = this.#size++;
      } else {
        row = this.#next;
        this.#next = (this.#next + 1) % this.#capacity;
      }
      this.#x.set(x.subarray(i * this.#imageSize, (i + 1) * this.#imageSize), row * this.#imageSize);
      this.#p.set(p.subarray(i * this.#answerSize, (i + 1) * this.#answerSize), row * this.#answerSize);
    }
  }

  /** Adds a batch: images [n, h, w, c] and answers [n, k] (copied; the caller keeps its tensors). */
  add(x: tf.Tensor4D, p: tf.Tensor2D): void {
    const n = x.shape[0];
    if (p.shape[0] !== n || p.shape[1] !== this.#answerSize) {
      throw new RangeError(`ReplayBuffer.add: answers [${p.shape}] do not match ${n} images × ${this.#answerSize}`);
    }
    this.#put(x.dataSync() as Float32Array, p.dataSync() as Float32Array, n);
  }

  /** `n` pairs drawn uniformly with replacement, as new tensors. */
  sample(n: number, rng: Rng): { x: tf.Tensor4D; p: tf.Tensor2D } {
    if (this.#size === 0) throw new Error("ReplayBuffer.sample: the buffer is empty");
    const x = new Float32Array(n * this.#imageSize);
    const p = new Float32Array(n * this.#answerSize);
    for (let i = 0; i < n; i++) {
      const row = Math.floor(rng() * this.#size);
      x.set(this.#x.subarray(row * this.#imageSize, (row + 1) * this.#imageSize), i * this.#imageSize);
      p.set(this.#p.subarray(row * this.#answerSize, (row + 1) * this.#answerSize), i * this.#answerSize);
    }
    return {
      x: tf.tensor4d(x, [n, ...this.imageShape]),
      p: tf.tensor2d(p, [n, this.#answerSize]),
    };
  }

  /** Writes the buffer to `dir` (raw float32 files and a JSON header). */
  async save(dir: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    const header = { size: this.#size, next: this.#next, imageSize: this.#imageSize, answerSize: this.#answerSize };
    await Deno.writeFile(`${dir}/x.bin`, new Uint8Array(this.#x.buffer, 0, this.#size * this.#imageSize * 4));
    await Deno.writeFile(`${dir}/p.bin`, new Uint8Array(this.#p.buffer, 0, this.#size * this.#answerSize * 4));
    await Deno.writeTextFile(`${dir}/header.json`, JSON.stringify(header));
  }

  /**
   * Replaces the contents with what {@linkcode save} wrote in `dir`.
   *
   * @throws {ResumeError} when the files are missing or do not fit this buffer
   */
  async load(dir: string): Promise<void> {
    let header: { size: number; next: number; imageSize: number; answerSize: number };
    let xb: Uint8Array, pb: Uint8Array;
    try {
      header = JSON.parse(await Deno.readTextFile(`${dir}/header.json`));
      xb = await Deno.readFile(`${dir}/x.bin`);
      pb = await Deno.readFile(`${dir}/p.bin`);
    } catch (e) {
      throw new ResumeError(dir, `replay buffer unreadable: ${e instanceof Error ? e.message : e}`);
    }
    const { size, next } = header;
    if (
      header.imageSize !== this.#imageSize || header.answerSize !== this.#answerSize || size > this.#capacity ||
      xb.byteLength !== size * this.#imageSize * 4 || pb.byteLength !== size * this.#answerSize * 4
    ) {
      throw new ResumeError(dir, `replay buffer of ${size} × (${header.imageSize}, ${header.answerSize}) does not fit`);
    }
    this.#x = new Float32Array(xb.byteLength / 4);
    new Uint8Array(this.#x.buffer).set(xb);
    this.#p = new Float32Array(pb.byteLength / 4);
    new Uint8Array(this.#p.buffer).set(pb);
    this.#size = size;
    this.#next = next;
  }
}
