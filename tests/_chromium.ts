/**
 * Headless Chromium from the Debian package, driven over the DevTools protocol (a WebSocket
 * from Deno): open a page, wait for its loads, evaluate expressions, take screenshots. No
 * npm browser download; `scripts/statuspage_install.sh` installs the package.
 *
 * @module
 */

/** Where Debian installs Chromium; `NAUTILUS_CHROMIUM` overrides it. */
export const CHROMIUM_PATH = Deno.env.get("NAUTILUS_CHROMIUM") ?? "/usr/bin/chromium";

/** Flags for a quiet, isolated headless run on a shared CI machine. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-extensions",
  "--hide-scrollbars",
  "--remote-debugging-address=127.0.0.1",
  "--remote-debugging-port=0",
];

/** True when Chromium can run here (the binary exists and is executable). */
export async function hasChromium(): Promise<boolean> {
  try {
    const info = await Deno.stat(CHROMIUM_PATH);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

interface CdpMessage {
  readonly id?: number;
  readonly method?: string;
  readonly sessionId?: string;
  readonly params?: Record<string, unknown>;
  readonly result?: Record<string, unknown>;
  readonly error?: { readonly message: string };
}

/** A running headless Chromium with one page (tab) attached. */
export class Chromium {
  readonly #child: Deno.ChildProcess;
  readonly #dataDir: string;
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, PromiseWithResolvers<Record<string, unknown>>>();
  readonly #events: CdpMessage[] = [];
  readonly #waiters = new Set<() => void>();
  #sessionId = "";
  #nextId = 1;

  private constructor(child: Deno.ChildProcess, dataDir: string, socket: WebSocket) {
    this.#child = child;
    this.#dataDir = dataDir;
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as CdpMessage;
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error !== undefined) {
          pending?.reject(new Error(`DevTools call failed: ${message.error.message}`));
        } else pending?.resolve(message.result ?? {});
        return;
      }
      this.#events.push(message);
      for (const wake of this.#waiters) wake();
    };
    socket.onclose = () => {
      for (const pending of this.#pending.values()) {
        pending.reject(new Error("DevTools connection closed"));
      }
      this.#pending.clear();
    };
  }

  /**
   * Starts Chromium with a fresh profile and a blank page of `width`×`height` CSS pixels.
   * @throws {Error} when Chromium does not announce its DevTools address within `timeoutMs`
   */
  static async launch(width = 1280, height = 900, timeoutMs = 30_000): Promise<Chromium> {
    const dataDir = await Deno.makeTempDir({ prefix: "nautiluslb_chromium_" });
    const child = new Deno.Command(CHROMIUM_PATH, {
      args: [
        ...FLAGS,
        `--user-data-dir=${dataDir}`,
        `--window-size=${width},${height}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const timer = setTimeout(() => reader.cancel().catch(() => {}), timeoutMs);
    let url: string | undefined;
    try {
      while (url === undefined) {
        const { value, done } = await reader.read();
        if (done) break;
        log += value;
        url = /DevTools listening on (ws:\/\/\S+)/.exec(log)?.[1];
      }
    } finally {
      clearTimeout(timer);
    }
    // Keep draining stderr so Chromium never blocks on a full pipe.
    void (async () => {
      try {
        while (!(await reader.read()).done) { /* drop */ }
      } catch { /* cancelled */ }
    })();
    if (url === undefined) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      throw new Error(`Chromium did not start within ${timeoutMs}ms:\n${log.slice(-2000)}`);
    }
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`Cannot connect to Chromium's DevTools at ${url}`));
    });
    const browser = new Chromium(child, dataDir, socket);
    try {
      const { targetId } = await browser.#call("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await browser.#call("Target.attachToTarget", {
        targetId,
        flatten: true,
      });
      browser.#sessionId = String(sessionId);
      await browser.send("Page.enable");
      await browser.send("Runtime.enable");
      await browser.send("Log.enable");
      await browser.send("Emulation.setDeviceMetricsOverride", {
        width,
        height,
        deviceScaleFactor: 1,
        mobile: false,
      });
    } catch (error) {
      await browser.close();
      throw error;
    }
    return browser;
  }

  /** Events of the page received so far (`Page.loadEventFired`, `Log.entryAdded`, ...). */
  events(method: string): CdpMessage[] {
    return this.#events.filter((e) => e.method === method);
  }

  /** Sends a command to the page's session. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#call(method, params, this.#sessionId);
  }

  /** Navigates and waits for the load event of the new document. */
  async open(url: string, timeoutMs = 15_000): Promise<void> {
    const loads = this.events("Page.loadEventFired").length;
    await this.send("Page.navigate", { url });
    await this.waitForEvents("Page.loadEventFired", loads + 1, timeoutMs);
  }

  /** Waits until `count` events named `method` have arrived since launch. */
  async waitForEvents(method: string, count: number, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.events(method).length < count) {
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `Expected ${count} ${method} event(s) within ${timeoutMs}ms, got ${
            this.events(method).length
          }`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        const waiters = this.#waiters;
        waiters.add(done);
      });
    }
  }

  /** Evaluates `expression` in the page and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.send("Runtime.evaluate", { expression, returnByValue: true });
    const details = result.exceptionDetails as { text?: string } | undefined;
    if (details !== undefined) throw new Error(`Cannot evaluate ${expression}: ${details.text}`);
    return (result.result as { value: T }).value;
  }

  /** A PNG of the whole page (beyond the window), at the window's width. */
  async screenshot(): Promise<Uint8Array> {
    const metrics = await this.send("Page.getLayoutMetrics");
    const size = metrics.cssContentSize as { width: number; height: number };
    const { data } = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: Math.ceil(size.width), height: Math.ceil(size.height), scale: 1 },
    });
    return Uint8Array.from(atob(String(data)), (c) => c.charCodeAt(0));
  }

  /** Closes the connection, kills Chromium and removes its profile. */
  async close(): Promise<void> {
    try {
      this.#socket.close();
    } catch { /* closed */ }
    try {
      this.#child.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#child.status;
    await Deno.remove(this.#dataDir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #call(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const pending = Promise.withResolvers<Record<string, unknown>>();
    this.#pending.set(id, pending);
    this.#socket.send(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }));
    return pending.promise;
  }
}
