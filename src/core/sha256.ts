/**
 * Content hashes for what the program runs (the config file's bytes).
 *
 * @module
 */

/** Lower-case hex SHA-256 of `bytes`, as `sha256sum` prints it. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
