/**
 * Shared pieces of the deployment tests: which tools and privileges a test needs (skipped
 * with a one-line notice when missing, failed instead when `NAUTILUS_DEPLOY_REQUIRED=1`, as
 * CI sets it), a config with static backends, and a running process's `/metrics`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The repository's root directory, with a trailing slash. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Set by CI: a missing tool or privilege fails the test instead of skipping it. */
export const IS_REQUIRED: boolean = Deno.env.get("NAUTILUS_DEPLOY_REQUIRED") === "1";

/** What a deployment test needs from the machine. */
export interface Needs {
  /** Commands that must be on PATH (or in /usr/sbin, /sbin). */
  readonly tools?: readonly string[];
  /** Runs as uid 0 (setpriv, setcap, network namespaces, podman). */
  readonly root?: boolean;
}

function hasTool(name: string): boolean {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    try {
      if (dir !== "" && Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** What is missing for `needs`, or `undefined` when nothing is. */
export function missingFor(needs: Needs): string | undefined {
  const missing = (needs.tools ?? []).filter((t) => !hasTool(t));
  if (needs.root === true && Deno.uid() !== 0) missing.push("root");
  return missing.length === 0 ? undefined : missing.join(", ");
}

/**
 * Registers a test that runs only when `needs` are met. When they are not, it is skipped with
 * a one-line notice on stderr, or, with `NAUTILUS_DEPLOY_REQUIRED=1`, it fails saying what
 * is missing.
 */
export function deployTest(name: string, needs: Needs, fn: () => Promise<void>): void {
  const missing = missingFor(needs);
  if (missing !== undefined && !IS_REQUIRED) {
    console.error(`skipped: ${name}: needs ${missing} (NAUTILUS_DEPLOY_REQUIRED=1 makes it fail)`);
    Deno.test({ name, ignore: true, fn });
    return;
  }
  Deno.test(name, async () => {
    if (missing !== undefined) throw new Error(`Cannot run this test: missing ${missing}`);
    await fn();
  });
}

/** Runs a command to completion; throws with its output when it fails. */
export async function sh(
  cmd: string,
  args: readonly string[],
  options: { readonly env?: Record<string, string>; readonly cwd?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args: [...args],
    env: options.env,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: exit ${out.code}: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return text;
}

/** Parses a Prometheus text exposition into `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** Polls `probe` every 100 ms until it returns a value other than `undefined`, bounded by `ms`. */
export async function pollFor<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`, { cause: last });
}

/** Reads everything a TCP peer sends until it closes, with a deadline. */
export async function exchange(
  port: number,
  hostname = "127.0.0.1",
  ms = 5_000,
): Promise<string> {
  const conn = await Deno.connect({ hostname, port });
  try {
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      const text = new TextDecoder().decode(
        new Uint8Array(chunks.flatMap((c) => [...c])),
      );
      if (text.length > 0) return text;
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  } finally {
    conn.close();
  }
}
