/**
 * A minimal reader for Python pickles (protocols 2–5) of plain data and
 * NumPy arrays: what `pickle.dump` writes for dicts, lists, tuples, strings,
 * numbers, bytes and `numpy.ndarray`s — the shape of the MiniImageNet cache
 * files. It executes nothing: the only callables it knows are NumPy's array
 * and dtype reconstructors, `_codecs.encode` (Python 3's protocol-2 bytes) and
 * `collections.OrderedDict`; any other global is an error naming it.
 *
 * @module
 */

import { DataError } from "./data_error.ts";

/** A NumPy array read from a pickle: raw little- or big-endian bytes plus shape and dtype. */
export class PickledArray {
  /**
   * An array of the given layout over `data`.
   *
   * @param shape array shape
   * @param dtype NumPy type string without byte order, e.g. `"u1"`, `"f4"`
   * @param littleEndian byte order of multi-byte elements
   * @param fortran whether the data is column-major
   * @param data the raw element bytes
   */
  constructor(
    readonly shape: number[],
    readonly dtype: string,
    readonly littleEndian: boolean,
    readonly fortran: boolean,
    readonly data: Uint8Array,
  ) {}
}

/** A NumPy dtype under construction (its byte order arrives in a BUILD). */
class PickledDtype {
  byteorder = "=";
  constructor(readonly str: string) {}
}

/** A not-yet-built `_reconstruct`ed array. */
class PendingArray {
  array?: PickledArray;
}

/** A reference to a Python global (module.name). */
class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get full(): string {
    return `${this.module}.${this.name}`;
  }
}

const NUMPY_MODULES = ["numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric"];

/**
 * Decodes one pickle. Dicts become `Map`s, lists and tuples arrays, bytes
 * `Uint8Array`s (views into `bytes`), NumPy arrays {@linkcode PickledArray}s.
 * Faults are {@linkcode DataError}s naming `file`.
 *
 * @example
 * ```ts ignore
 * const obj = readPickle(await Deno.readFile("mini-imagenet-cache-test.pkl"), "mini-imagenet-cache-test.pkl");
 * ```
 */
export function readPickle(bytes: Uint8Array, file: string): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const fail = (fault: "bad_header" | "truncated" | "bad_magic", detail: string): never => {
    throw new DataError(file, fault, `${detail} (pickle offset ${pos})`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail("truncated", `pickle ends inside an opcode: need ${n} more bytes`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), pos += 2, view.getUint16(pos - 2, true));
  const i32 = () => (need(4), pos += 4, view.getInt32(pos - 4, true));
  const u32 = () => (need(4), pos += 4, view.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = Number(view.getBigUint64(pos, true));
    pos += 8;
    return v;
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("truncated", "pickle ends inside a text line");
    const s = new TextDecoder().decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = (b: Uint8Array) => new TextDecoder("utf-8", { fatal: true }).decode(b);
  const pop = () => (stack.length === 0 ? fail("bad_header", "pickle stack underflow") : stack.pop());
  const top = () => (stack.length === 0 ? fail("bad_header", "pickle stack underflow") : stack[stack.length - 1]);
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail("bad_header", "pickle has no MARK to pop to");
    return stack.splice(m!);
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) fail("bad_header", "SETITEM(S) on something that is not a dict");
    for (let i = 0; i + 1 < kv.length; i += 2) (d as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const dtypeOf = (d: unknown) => {
    if (!(d instanceof PickledDtype)) fail("bad_header", "a NumPy array without a dtype");
    const dt = d as PickledDtype;
    const little = dt.byteorder === "<" || dt.byteorder === "|" || dt.byteorder === "=";
    return { str: dt.str.replace(/^[<>|=]/, ""), little: dt.str.startsWith(">") ? false : little };
  };
  const reduce = (f: unknown, args: unknown): unknown => {
    if (!(f instanceof PyGlobal)) return fail("bad_header", "REDUCE of something that is not a known callable");
    const a = args as unknown[];
    if (NUMPY_MODULES.includes(f.module) && f.name === "_reconstruct") return new PendingArray();
    if (f.full === "numpy.dtype") return new PickledDtype(String(a[0]));
    if (NUMPY_MODULES.includes(f.module) && f.name === "_frombuffer") {
      const [buf, dt, shape, order] = a;
      const d = dtypeOf(dt);
      return new PickledArray((shape as number[]).map(Number), d.str, d.little, order === "F", buf as Uint8Array);
    }
    if (f.full === "_codecs.encode") {
      // Python 3 writes bytes at protocol 2 as _codecs.encode(latin-1 text, "latin1")
      const s = String(a[0]);
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
      return out;
    }
    if (f.full === "collections.OrderedDict") return new Map();
    return fail("bad_header", `pickle calls ${f.full}, which this reader does not support`);
  };
  const build = (obj: unknown, state: unknown) => {
    if (obj instanceof PickledDtype) {
      obj.byteorder = String((state as unknown[])[1]);
    } else if (obj instanceof PendingArray) {
      const [, shape, dt, fortran, data] = state as unknown[];
      const d = dtypeOf(dt);
      if (!(data instanceof Uint8Array)) {
        fail("bad_header", "NumPy array data is not raw bytes (object arrays are not supported)");
      }
      obj.array = new PickledArray(
        (shape as number[]).map(Number),
        d.str,
        d.little,
        fortran === true,
        data as Uint8Array,
      );
    } else {
      fail("bad_header", "BUILD on an object this reader does not construct");
    }
  };
  const resolve = (v: unknown): unknown => (v instanceof PendingArray ? v.array : v);

  if (bytes.length < 2 || bytes[0] !== 0x80) {
    throw new DataError(file, "bad_magic", "not a binary Python pickle (protocol 2 or later)", {
      expected: "0x80",
      found: bytes.length > 0 ? `0x${bytes[0].toString(16)}` : "empty file",
    });
  }
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("bad_header", "pickle protocol newer than 5");
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: { // STOP
        const v = resolve(pop());
        return deepResolve(v);
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail("bad_header", "APPEND to something that is not a list");
        (l as unknown[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail("bad_header", "APPENDS to something that is not a list");
        (l as unknown[]).push(...items);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1
        const b = take(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(Number(v));
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x47: // BINFLOAT
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(take(u8())));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(take(u32())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(take(u64())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str: raw bytes)
        stack.push(take(u8()));
        break;
      case 0x54: // BINSTRING
        stack.push(take(i32()));
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(new PyGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        stack.push(new PyGlobal(String(module), String(name)));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), f = pop();
        stack.push(reduce(f, args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop(), cls = pop();
        stack.push(reduce(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        build(top(), state);
        break;
      }
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail("bad_header", `pickle refers to memo entry ${k}, which was never stored`);
        stack.push(memo.get(k));
        break;
      }
      default:
        fail("bad_header", `unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
}

function deepResolve(v: unknown): unknown {
  if (v instanceof PendingArray) return v.array;
  if (v instanceof Map) {
    for (const [k, x] of v) v.set(k, deepResolve(x));
    return v;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = deepResolve(v[i]);
    return v;
  }
  return v;
}
