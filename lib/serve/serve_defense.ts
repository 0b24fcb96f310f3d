/**
 * The defense a server puts in front of its bundle's victim.
 *
 * @module
 */
import { buildDefense } from "../defenses/build.ts";
import type { Defense } from "../defenses/defense.ts";
import { mecoDefense } from "../meco/deploy.ts";
import type { LoadedBundle } from "./bundle.ts";
import type { ServeDefenseConfig } from "./config.ts";

/**
 * Builds the configured defense around `bundle`: `meco` answers with the
 * bundle's defended target behind its perturbation network (a fresh ε per
 * request, from the stream of `seed`); every other type wraps the bundle's
 * victim as the experiment runner does (lib/defenses/build.ts).
 *
 * @throws {Error} naming the bundle when it lacks what the defense needs
 */
export function buildServeDefense(cfg: ServeDefenseConfig, bundle: LoadedBundle, seed: number): Defense {
  switch (cfg.type) {
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
      return buildDefense(cfg, bundle.victim, {
        seed,
        imageShape: bundle.meta.image_shape,
        numClasses: bundle.meta.num_classes,
        arch: bundle.meta.arch,
      });
  }
}
