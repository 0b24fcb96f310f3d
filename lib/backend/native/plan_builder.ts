/**
 * Building {@linkcode Plan}s from {@linkcode PlanSpec}s and
 * {@linkcode ReorderSpec}s: the primitive descriptor (with its forward hint,
 * post-ops and scratchpad mode), the memory objects of the operands, the
 * reorders into and out of the layouts the primitive chose, and the
 * `dnnl_exec_arg_t` arrays of each execution. Everything made for a plan that
 * fails to build is freed again.
 *
 * @module
 */
import {
  ARG,
  checkStatus,
  createHandle,
  DnnlError,
  MD_BYTES,
  OP_DESC_BYTES,
  QUERY,
  SCRATCHPAD_USER,
} from "./dnnl_ffi.ts";
import { type MemoryDesc, memoryDescBytes } from "./memory_desc.ts";
import { type Execution, Plan, type PlanHost, type PlanSpec, type ReorderSpec } from "./plan.ts";

/** `DNNL_MEMORY_ALLOCATE`: asks oneDNN to allocate (and own) a memory's buffer. (Made on first use: needs FFI permission.) */
let memoryAllocate: Deno.PointerValue | undefined;

/**
 * Operands a primitive writes, by `DNNL_ARG_*` (besides those a spec marks `out`): destinations, gradients, and the
 * workspace (written forward, read backward: copying it back after a backward run changes nothing).
 */
const WRITTEN = new Set<number>([
  ARG.dst,
  ARG.diffSrc,
  ARG.diffWeights,
  ARG.diffScale,
  ARG.diffShift,
  ARG.workspace,
]);

/** The primitives and memory objects made for one plan (freed with it, or at once if building it fails). */
type Owned = { mems: Deno.PointerValue[]; prims: Deno.PointerValue[] };

/** Makes plans for one engine; each plan runs on `host`. */
export class PlanBuilder {
  /** The out-parameter of `dnnl_primitive_desc_query`. */
  private readonly queryOut = new BigUint64Array(1);

  /** @param host what the plans run on @param engine the CPU engine their primitives are made for */
  constructor(private readonly host: PlanHost, private readonly engine: Deno.PointerValue) {}

  /** A plan running the primitive `spec` describes, on `spec.threads` threads (all by default, at most `maxThreads`). */
  build(spec: PlanSpec, maxThreads: number): Plan {
    const lib = this.host.lib;
    const threads = Math.max(1, Math.min(spec.threads ?? maxThreads, maxThreads));
    this.host.setThreads(threads);
    const owned: Owned = { mems: [], prims: [] };
    const pds: Deno.PointerValue[] = [];
    let attr: Deno.PointerValue = null, postOps: Deno.PointerValue = null, reorderAttr: Deno.PointerValue = null;
    try {
      if ((spec.eltwise !== undefined && spec.eltwise.length > 0) || spec.ownScratchpad) {
        attr = createHandle((o) => lib.dnnl_primitive_attr_create(o), "dnnl_primitive_attr_create");
      }
      if (spec.eltwise !== undefined && spec.eltwise.length > 0) {
        postOps = createHandle((o) => lib.dnnl_post_ops_create(o), "dnnl_post_ops_create");
        for (const [alg, alpha, beta] of spec.eltwise) {
          checkStatus(lib.dnnl_post_ops_append_eltwise(postOps, 1, alg, alpha, beta), "dnnl_post_ops_append_eltwise");
        }
        checkStatus(lib.dnnl_primitive_attr_set_post_ops(attr, postOps), "dnnl_primitive_attr_set_post_ops");
      }
      if (spec.ownScratchpad) {
        reorderAttr = createHandle((o) => lib.dnnl_primitive_attr_create(o), "dnnl_primitive_attr_create");
        for (const a of [attr, reorderAttr]) {
          checkStatus(
            lib.dnnl_primitive_attr_set_scratchpad_mode(a, SCRATCHPAD_USER),
            "dnnl_primitive_attr_set_scratchpad_mode",
          );
        }
      }
      let hintPd: Deno.PointerValue = null;
      if (spec.hint !== undefined) {
        const hintDesc = new Uint8Array(OP_DESC_BYTES);
        spec.hint(hintDesc);
        hintPd = this.primitiveDesc(hintDesc, null, null);
        pds.push(hintPd);
      }
      const opDesc = new Uint8Array(OP_DESC_BYTES);
      spec.init(opDesc);
      const pd = this.primitiveDesc(opDesc, attr, hintPd);
      pds.push(pd);

      const userMemories: Deno.PointerValue[] = [];
      const bytes: number[] = [];
      const layouts: MemoryDesc[] = [];
      const ownedPtrs: (Deno.PointerValue | undefined)[] = [];
      const before: Execution[] = [], after: Execution[] = [];
      const mainArgs: [number, Deno.PointerValue][] = [];
      for (const op of spec.operands) {
        if (op.owned) {
          if (op.query === undefined) throw new Error("an owned operand needs a query");
          const chosen = this.queryMd(pd, op.query);
          const mem = this.allocated(chosen, owned);
          userMemories.push(null);
          bytes.push(Number(lib.dnnl_memory_desc_get_size(chosen)));
          layouts.push(chosen);
          ownedPtrs.push(this.dataOf(mem));
          mainArgs.push([op.arg, mem]);
          continue;
        }
        let user = op.user;
        if (user === undefined) {
          if (op.query === undefined) throw new Error("an operand needs a layout or a query");
          user = this.queryMd(pd, op.query);
        }
        const userMd = user;
        bytes.push(memoryDescBytes(lib, userMd));
        layouts.push(userMd);
        ownedPtrs.push(undefined);
        const userMem = createHandle(
          (o) => lib.dnnl_memory_create(o, userMd, this.engine, null),
          "dnnl_memory_create",
        );
        owned.mems.push(userMem);
        userMemories.push(userMem);
        let mem = userMem;
        if (op.query !== undefined && op.user !== undefined) {
          const chosen = this.queryMd(pd, op.query);
          if (lib.dnnl_memory_desc_equal(chosen, userMd) === 0) {
            mem = this.allocated(chosen, owned);
            const [src, dst, srcMem, dstMem] = op.out ? [chosen, userMd, mem, userMem] : [userMd, chosen, userMem, mem];
            const reorderPd = createHandle(
              (o) => lib.dnnl_reorder_primitive_desc_create(o, src, this.engine, dst, this.engine, reorderAttr),
              "dnnl_reorder_primitive_desc_create",
            );
            pds.push(reorderPd);
            if (spec.ownScratchpad && this.scratchpadBytes(reorderPd) > 0) {
              throw new Error("a reorder of a plan with its own scratchpad needs a scratchpad");
            }
            const reorder = createHandle((o) => lib.dnnl_primitive_create(o, reorderPd), "dnnl_primitive_create");
            owned.prims.push(reorder);
            (op.out ? after : before).push(this.execution(reorder, [[ARG.from, srcMem], [ARG.to, dstMem]]));
          }
        }
        mainArgs.push([op.arg, mem]);
      }
      if (spec.ownScratchpad && this.scratchpadBytes(pd) > 0) {
        mainArgs.push([ARG.scratchpad, this.allocated(this.queryMd(pd, QUERY.scratchpadMd), owned)]);
      }
      const prim = createHandle((o) => lib.dnnl_primitive_create(o, pd), "dnnl_primitive_create");
      owned.prims.push(prim);
      return new Plan(this.host, {
        userMemories,
        executions: [...before, this.execution(prim, mainArgs), ...after],
        owned,
        threads,
        impl: this.implName(pd),
        bytes,
        layouts,
        ownedPtrs,
        name: "oneDNN plan",
        outputs: spec.operands.map((op) => op.out === true || WRITTEN.has(op.arg)),
      });
    } catch (e) {
      for (const prim of owned.prims) lib.dnnl_primitive_destroy(prim);
      for (const mem of owned.mems) lib.dnnl_memory_destroy(mem);
      throw e;
    } finally {
      for (const pd of pds) lib.dnnl_primitive_desc_destroy(pd);
      if (postOps !== null) lib.dnnl_post_ops_destroy(postOps);
      if (attr !== null) lib.dnnl_primitive_attr_destroy(attr);
      if (reorderAttr !== null) lib.dnnl_primitive_attr_destroy(reorderAttr);
    }
  }

  /** A one-thread plan reordering `reorder.src` into `reorder.dst`; `run([srcPtr, dstPtr])`. */
  buildReorder(reorder: ReorderSpec): Plan {
    const lib = this.host.lib;
    this.host.setThreads(1);
    const owned: Owned = { mems: [], prims: [] };
    let attr: Deno.PointerValue = null, postOps: Deno.PointerValue = null, reorderPd: Deno.PointerValue = null;
    try {
      // Its own scratchpad (if it needs one at all), so that it may run on the helper thread too.
      attr = createHandle((o) => lib.dnnl_primitive_attr_create(o), "dnnl_primitive_attr_create");
      checkStatus(
        lib.dnnl_primitive_attr_set_scratchpad_mode(attr, SCRATCHPAD_USER),
        "dnnl_primitive_attr_set_scratchpad_mode",
      );
      if (reorder.accumulate) {
        postOps = createHandle((o) => lib.dnnl_post_ops_create(o), "dnnl_post_ops_create");
        checkStatus(lib.dnnl_post_ops_append_sum(postOps, 1), "dnnl_post_ops_append_sum");
        checkStatus(lib.dnnl_primitive_attr_set_post_ops(attr, postOps), "dnnl_primitive_attr_set_post_ops");
      }
      const pd = createHandle(
        (o) => lib.dnnl_reorder_primitive_desc_create(o, reorder.src, this.engine, reorder.dst, this.engine, attr),
        "dnnl_reorder_primitive_desc_create",
      );
      reorderPd = pd;
      const mems = [reorder.src, reorder.dst].map((md) => {
        const mem = createHandle((o) => lib.dnnl_memory_create(o, md, this.engine, null), "dnnl_memory_create");
        owned.mems.push(mem);
        return mem;
      });
      const prim = createHandle((o) => lib.dnnl_primitive_create(o, pd), "dnnl_primitive_create");
      owned.prims.push(prim);
      const args: [number, Deno.PointerValue][] = [[ARG.from, mems[0]], [ARG.to, mems[1]]];
      if (this.scratchpadBytes(pd) > 0) {
        args.push([ARG.scratchpad, this.allocated(this.queryMd(pd, QUERY.scratchpadMd), owned)]);
      }
      return new Plan(this.host, {
        userMemories: mems,
        executions: [this.execution(prim, args)],
        owned,
        threads: 1,
        impl: this.implName(pd),
        bytes: [reorder.src, reorder.dst].map((md) => memoryDescBytes(lib, md)),
        layouts: [reorder.src, reorder.dst],
        ownedPtrs: [undefined, undefined],
        name: "reorder",
        outputs: [false, true],
      });
    } catch (e) {
      for (const prim of owned.prims) lib.dnnl_primitive_destroy(prim);
      for (const mem of owned.mems) lib.dnnl_memory_destroy(mem);
      throw e;
    } finally {
      if (reorderPd !== null) lib.dnnl_primitive_desc_destroy(reorderPd);
      if (postOps !== null) lib.dnnl_post_ops_destroy(postOps);
      if (attr !== null) lib.dnnl_primitive_attr_destroy(attr);
    }
  }

  private primitiveDesc(
    opDesc: Uint8Array<ArrayBuffer>,
    attr: Deno.PointerValue,
    hint: Deno.PointerValue,
  ): Deno.PointerValue {
    return createHandle(
      (o) => this.host.lib.dnnl_primitive_desc_create(o, opDesc, attr, this.engine, hint),
      "dnnl_primitive_desc_create",
    );
  }

  /** A memory object of layout `md` with a buffer oneDNN allocates (freed with the plan). */
  private allocated(md: MemoryDesc, owned: Owned): Deno.PointerValue {
    const mem = createHandle(
      (o) =>
        this.host.lib.dnnl_memory_create(
          o,
          md,
          this.engine,
          memoryAllocate ??= Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn),
        ),
      "dnnl_memory_create",
    );
    owned.mems.push(mem);
    return mem;
  }

  /** The data pointer of a memory object. */
  private dataOf(mem: Deno.PointerValue): Deno.PointerValue {
    return createHandle((o) => this.host.lib.dnnl_memory_get_data_handle(mem, o), "dnnl_memory_get_data_handle");
  }

  /** Bytes of the scratchpad a primitive descriptor asks for (0 in library mode or when it needs none). */
  private scratchpadBytes(pd: Deno.PointerValue): number {
    const ptr = this.host.lib.dnnl_primitive_desc_query_md(pd, QUERY.scratchpadMd, 0);
    if (ptr === null) return 0;
    const md = new Uint8Array(MD_BYTES);
    new Deno.UnsafePointerView(ptr).copyInto(md);
    return Number(this.host.lib.dnnl_memory_desc_get_size(md));
  }

  /** One execution of `prim` on `args` (`DNNL_ARG_*`, memory object), its argument array in shared memory. */
  private execution(prim: Deno.PointerValue, args: [number, Deno.PointerValue][]): Execution {
    const buf = new Uint8Array(new SharedArrayBuffer(16 * args.length));
    const view = new DataView(buf.buffer);
    args.forEach(([arg, mem], i) => {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(mem)), true);
    });
    return { prim, args: buf, nargs: args.length };
  }

  /** The memory descriptor a primitive descriptor reports for `what` (a `dnnl_query_t`). */
  private queryMd(pd: Deno.PointerValue, what: number): MemoryDesc {
    const ptr = this.host.lib.dnnl_primitive_desc_query_md(pd, what, 0);
    if (ptr === null) throw new DnnlError(`dnnl_primitive_desc_query_md(${what})`, 2);
    const md = new Uint8Array(MD_BYTES);
    new Deno.UnsafePointerView(ptr).copyInto(md);
    return md;
  }

  /** oneDNN's implementation name of a primitive descriptor (`dnnl_query_impl_info_str`), "?" if none. */
  private implName(pd: Deno.PointerValue): string {
    const s = this.host.lib.dnnl_primitive_desc_query(pd, 8, 0, this.queryOut);
    if (s !== 0 || this.queryOut[0] === 0n) return "?";
    return Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(this.queryOut[0])!);
  }
}
