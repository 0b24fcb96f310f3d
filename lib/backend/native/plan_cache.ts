/**
 * The plan cache: {@linkcode Plan}s by a key that names shape and
 * attributes, built on a miss, at most `capacity` of them, the least recently
 * used destroyed first.
 *
 * @module
 */
import type { Plan, PlanSpec, ReorderSpec } from "./plan.ts";
import type { PlanBuilder } from "./plan_builder.ts";

/** Plans by key, least recently used first out. */
export class PlanCache {
  private readonly plans = new Map<string, Plan>();

  /**
   * @param builder makes a plan on a miss
   * @param maxThreads threads a plan may use at most
   * @param capacity plans kept
   * @param onBuild called with each plan built (for debug logs)
   */
  constructor(
    private readonly builder: PlanBuilder,
    private readonly maxThreads: number,
    readonly capacity: number,
    private readonly onBuild: (key: string, plan: Plan) => void,
  ) {}

  /** The cached plan for `key`, built by `spec()` on a miss. */
  get(key: string, spec: () => PlanSpec | { reorder: ReorderSpec }): Plan {
    const hit = this.plans.get(key);
    if (hit !== undefined) {
      // Re-insert: Map order is then least- to most-recently used.
      this.plans.delete(key);
      this.plans.set(key, hit);
      return hit;
    }
    const made = spec();
    const plan = "reorder" in made
      ? this.builder.buildReorder(made.reorder)
      : this.builder.build(made, this.maxThreads);
    plan.name = key;
    this.onBuild(key, plan);
    this.plans.set(key, plan);
    if (this.plans.size > this.capacity) {
      const [oldKey, old] = this.plans.entries().next().value as [string, Plan];
      this.plans.delete(oldKey);
      old.destroy();
    }
    return plan;
  }

  /** Number of cached plans. */
  get size(): number {
    return this.plans.size;
  }

  /** Destroys every cached plan. */
  clear(): void {
    for (const plan of this.plans.values()) plan.destroy();
    this.plans.clear();
  }
}
