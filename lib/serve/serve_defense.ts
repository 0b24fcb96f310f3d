/**
 * The defense a server puts in front of its bundle's victim.
 *
 * @module
 */
import type { Defense } from "../defenses/defense.ts";
import { undefended } from "../defenses/undefended.ts";
import { mecoDefense } from "../meco/deploy.ts";
import type { LoadedBundle } from "./bundle.ts";
import type { ServeDefenseConfig } from "./config.ts";

/**
 * Builds the configured defense around `bundle`: `none` answers the victim's
 * softmax, `meco` the bundle's defended target behind its perturbation
 * network (a fresh ε per request, from the stream of `seed`).
 *
 * @throws {Error} naming the bundle when it lacks what the defense needs
 */
export function buildServeDefense(cfg: ServeDefenseConfig, bundle: LoadedBundle, seed: number): Defense {
  switch (cfg.type) {
    case "none":
      return undefended(bundle.victim);
    case "meco": {
      const m = bundle.meta.meco;
      if (bundle.meco === undefined || m === null) {
        throw new Error(
          `bundle ${bundle.dir} has no MeCo nets (defense: meco); export it from a config with a meco defense`,
        );
      }
      return mecoDefense(bundle.meco, {
        seed,
        variant: m.config.variant,
        width: m.config.width,
        bound: m.config.bound,
      });
    }
    default:
      throw new Error(`defense '${cfg.type}' is not available for serving in this build`);
  }
}
