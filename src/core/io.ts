/**
 * The two socket chores every layer needs: write a whole buffer, close without caring
 * whether the peer or another path closed first.
 *
 * @module
 */

/**
 * Writes all of `bytes`: `write` may take fewer bytes than offered (a full socket buffer).
 * @throws what `write` throws; the bytes written before it are not reported
 */
export async function writeAll(
  writer: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await writer.write(bytes.subarray(offset));
}

/**
 * Closes `resource`, ignoring the error of one closed already: the owner that closes second
 * (a timer, the other half of a pipe) has nothing left to do.
 */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
