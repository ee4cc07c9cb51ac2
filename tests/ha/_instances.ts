/**
 * NautilusLB instances of the high-availability suite: `serve` in an instance namespace
 * (through the reliability harness) with a supervisor that writes the keepalived track file
 * as the systemd drop-in in `deploy/keepalived/` does, its config, and the echo backends.
 *
 * @module
 */
import { BackendProcess, ServeProcess } from "../reliability/_harness.ts";
import { BACKEND_ADDRESS, INSTANCE_ADDRESS, type InstanceName, type Lab } from "./_lab.ts";

/** The listener port on every instance (inside private namespaces, so fixed). */
export const LISTEN_PORT = 28080;
/** The admin port on every instance. */
export const ADMIN_PORT = 29090;
/** Starts the echo backends `be1`..`be{count}` in the backend namespace. */
export function startBackends(lab: Lab, count: number): Promise<BackendProcess[]> {
  return Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        BackendProcess.start(`be${i + 1}`, BACKEND_ADDRESS, 28_001 + i, lab.prefix("backends")),
    ),
  );
}

/** A serve config for an instance: Maglev with one seed, so both pick the same backend. */
export function serveConfig(backends: readonly string[], shutdownDelay: string): string {
  return [
    "settings:",
    "  logLevel: warning",
    // Inside the instance namespace: keepalived, the BGP health script and the host read it.
    `  adminAddress: "0.0.0.0:${ADMIN_PORT}"`,
    `  shutdownDelay: ${shutdownDelay}`,
    "configurations:",
    "  - name: web",
    `    listenerAddress: ":${LISTEN_PORT}"`,
    "    balancer: maglev",
    "    maglev:",
    "      seed: 2026",
    "    drainTimeout: 2s",
    "    healthCheck:",
    "      interval: 1s",
    `    backends: [${backends.map((b) => `"${b}"`).join(", ")}]`,
    "",
  ].join("\n");
}
/** One NautilusLB instance: its serve process and what the supervisor does around it. */
export class Instance {
  readonly name: InstanceName;
  readonly dir: string;
  readonly trackFile: string;
  serve: ServeProcess | undefined;
  readonly #lab: Lab;
  readonly #config: string;
  /** Settles once the track file says 1 after serve's exit (the supervisor's ExecStopPost). */
  #marked: Promise<void> = Promise.resolve();

  constructor(lab: Lab, name: InstanceName, dir: string, config: string) {
    this.#lab = lab;
    this.name = name;
    this.dir = dir;
    this.trackFile = `${dir}/vrrp-track`;
    this.#config = config;
  }

  get address(): string {
    return INSTANCE_ADDRESS[this.name];
  }

  /**
   * Starts serve and waits until `/readyz` answers 200; as systemd with the drop-in does,
   * the track file says 1 before the start, 0 once started and 1 again when serve exits.
   */
  async start(): Promise<void> {
    await Deno.writeTextFile(this.trackFile, "1\n");
    const serve = await ServeProcess.start(this.#config, ADMIN_PORT, {
      prefix: this.#lab.prefix(this.name),
      adminHostname: this.address,
    });
    this.serve = serve;
    await Deno.writeTextFile(this.trackFile, "0\n");
    this.#marked = serve.status.then(() => Deno.writeTextFile(this.trackFile, "1\n"))
      .catch(() => {});
  }

  /** Sends `signal` to serve and waits for its exit (and the track file). */
  async kill(signal: Deno.Signal): Promise<void> {
    this.serve?.kill(signal);
    await this.exited();
  }

  /** Waits until serve has exited (after a signal sent through `serve`). */
  async exited(): Promise<void> {
    const serve = this.serve;
    if (serve === undefined) return;
    await serve.status;
    this.serve = undefined;
    await this.#marked;
    await serve.stop();
  }

  /** Stops serve if it runs. */
  async stop(): Promise<void> {
    await this.serve?.stop();
    this.serve = undefined;
    await this.#marked;
  }
}
