/**
 * Live pools: the one owner of backend membership, health, connection counts and drain.
 *
 * @module
 */
export * from "./pool.ts";
