/**
 * The defense a server puts in front of its bundle, as arguments of
 * `buildDefense` (lib/defenses/build.ts), the one builder of a defense from its
 * config entry, which the experiment runner uses too: the serving entry
 * resolved against the bundle ({@linkcode bundleDefenseEntry}) and the
 * bundle's shapes, architecture and MeCo nets ({@linkcode bundleBuildOptions}).
 *
 * @example
 * ```ts ignore
 * const entry = bundleDefenseEntry(cfg.defense, bundle);
 * const defense = buildDefense(entry, bundle.victim, bundleBuildOptions(bundle, seed));
 * ```
 *
 * @module
 */
import type { DefenseConfig, ServeDefenseConfig } from "../config/defense_schema.ts";
import type { DefenseBuildOptions } from "../defenses/build.ts";
import type { LoadedBundle } from "./bundle.ts";

/**
 * The config entry that the serving entry `cfg` stands for: `meco`'s is the
 * entry its nets were trained with, recorded in the bundle (so its `variant`,
 * `width` and `bound` deploy them as the runner did), under `cfg`'s label;
 * every other type's is `cfg` itself.
 *
 * @throws {Error} naming the bundle when `cfg` is `meco` and the bundle has no MeCo nets
 */
export function bundleDefenseEntry(cfg: ServeDefenseConfig, bundle: LoadedBundle): DefenseConfig {
  if (cfg.type !== "meco") return cfg;
  const m = bundle.meta.meco;
  if (bundle.meco === undefined || m === null) {
    throw new Error(
      `bundle ${bundle.dir} has no MeCo nets (defense: meco); export it from a config with a meco defense`,
    );
  }
  const { name: _trainedLabel, ...trained } = m.config;
  return cfg.name === undefined ? trained : { ...trained, name: cfg.name };
}

/**
 * What `buildDefense` needs from `bundle` besides the entry and the victim:
 * its image shape, classes and architecture, its MeCo nets when it has them,
 * and `seed`, the seed of the defense's randomness.
 */
export function bundleBuildOptions(bundle: LoadedBundle, seed: number): DefenseBuildOptions {
  return {
    seed,
    imageShape: bundle.meta.image_shape,
    numClasses: bundle.meta.num_classes,
    arch: bundle.meta.arch,
    ...(bundle.meco !== undefined ? { meco: bundle.meco } : {}),
  };
}
