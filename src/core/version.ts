/**
 * The version of NautilusLB, read from `deno.json`: printed by `--version` and exported as
 * `nautiluslb_build_info`.
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };

/** This build's version (`deno.json`'s `version`). */
export const VERSION: string = denoJson.version;
