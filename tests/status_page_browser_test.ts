/**
 * The status page as a browser shows it: a real `serve` with three pools (one with a dead
 * backend, one with a backend draining after a reload, one Maglev pool), read by headless
 * Chromium over the DevTools protocol. Checks what Chromium rendered (the DOM it built, the
 * colours it computed, its reloads, its console) against `/pools`.
 *
 * Needs Chromium (`bash scripts/statuspage_install.sh`); without it the test is skipped with
 * one notice line, unless `NAUTILUS_BROWSER_REQUIRED=1` (CI), where that is an error.
 * `NAUTILUS_STATUS_SCREENSHOT=docs/images/status_page.png` also writes the screenshot there.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Chromium, CHROMIUM_PATH, hasChromium } from "./_chromium.ts";
import {
  closeQuietly,
  connect,
  delay,
  freePort,
  HOST,
  readName,
  startNamed,
  type TestServer,
} from "./_helpers.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const READY_MS = 30_000;
const STATE_MS = 10_000;
const NAME_LENGTH = 2;

const isAvailable = await hasChromium();
if (!isAvailable) {
  if (Deno.env.get("NAUTILUS_BROWSER_REQUIRED") === "1") {
    throw new Error(
      `Cannot run the status page browser test: no Chromium at ${CHROMIUM_PATH} (bash scripts/statuspage_install.sh)`,
    );
  }
  console.log(
    `status page browser test skipped: no Chromium at ${CHROMIUM_PATH} (bash scripts/statuspage_install.sh)`,
  );
}

interface PoolsJson {
  pools: {
    name: string;
    fingerprint?: string;
    backends: {
      key: string;
      health: string;
      isDraining: boolean;
      activeConnections: number;
      healthCause?: string;
    }[];
  }[];
}

/** What the test reads back from Chromium's DOM. */
interface Rendered {
  title: string;
  scripts: number;
  readiness: string;
  discovery: string;
  listeners: {
    name: string;
    active: string;
    pools: {
      name: string;
      fingerprint: string | null;
      eligible: string;
      backends: {
        key: string;
        health: string;
        why: string;
        since: string;
        check: string;
        color: string;
        width: number;
      }[];
    }[];
  }[];
  reloads: { outcome: string; what: string }[];
  overflows: boolean;
}

const EXTRACT = `(() => {
  const text = (el) => (el?.textContent ?? "").trim();
  return {
    title: document.title,
    scripts: document.scripts.length,
    readiness: text(document.querySelector("#readiness .badge")),
    discovery: text(document.querySelector("#discovery .state")),
    listeners: [...document.querySelectorAll("section.listener[data-listener]")].map((s) => ({
      name: s.dataset.listener,
      active: text(s.querySelector("table.stats td.active")),
      pools: [...s.querySelectorAll(".pool")].map((p) => ({
        name: p.dataset.pool,
        fingerprint: p.querySelector(".fingerprint")?.textContent ?? null,
        eligible: text(p.querySelector("h3 .state")),
        backends: [...p.querySelectorAll("tr.backend")].map((r) => ({
          key: r.dataset.backend,
          health: text(r.querySelector(".health")),
          why: text(r.querySelector(".why")),
          since: r.querySelector("time")?.getAttribute("datetime") ?? "",
          check: text(r.cells[4]),
          color: getComputedStyle(r.querySelector(".health")).color,
          width: r.getBoundingClientRect().width,
        })),
      })),
    })),
    reloads: [...document.querySelectorAll("#config table.reloads tbody tr")].map((r) => ({
      outcome: text(r.cells[1]),
      what: text(r.cells[2]),
    })),
    overflows: document.documentElement.scrollWidth > window.innerWidth,
  };
})()`;

function configYaml(
  admin: number,
  ports: { web: number; api: number; hash: number },
  backends: { web: string[]; api: string[]; hash: string[] },
): string {
  const list = (keys: string[]) => keys.map((k) => `"${k}"`).join(", ");
  const check = `    healthCheck:
      interval: 200ms
      timeout: 200ms
      rise: 1
      fall: 1`;
  return `settings:
  logLevel: info
  adminAddress: "${HOST}:${admin}"
configurations:
  - name: web
    listenerAddress: "${HOST}:${ports.web}"
    balancer: round_robin
    connectTimeout: 1s
    backends: [${list(backends.web)}]
${check}
  - name: api
    listenerAddress: "${HOST}:${ports.api}"
    balancer: least_connections
    drainTimeout: 60s
    backends: [${list(backends.api)}]
${check}
  - name: hash
    listenerAddress: "${HOST}:${ports.hash}"
    balancer: maglev
    backends: [${list(backends.hash)}]
${check}
`;
}

/** A `serve` child process with the documented permissions; stderr is collected. */
function spawnServe(config: string, args: readonly string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "src/main.ts",
      "serve",
      "-c",
      config,
      ...args,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (text += chunk) }),
  ).catch(() => {});
  return {
    child,
    log: () => text,
    async stop(): Promise<void> {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await reading;
    },
  };
}

async function waitForPools(
  admin: number,
  test: (pools: PoolsJson) => boolean,
  what: string,
  log: () => string,
  timeoutMs = STATE_MS,
): Promise<PoolsJson> {
  const deadline = performance.now() + timeoutMs;
  let last: PoolsJson | undefined;
  while (performance.now() < deadline) {
    try {
      const res = await fetch(`http://${HOST}:${admin}/pools`);
      last = await res.json() as PoolsJson;
      if (test(last)) return last;
    } catch { /* not up yet */ }
    await delay(50);
  }
  throw new Error(`Timed out waiting for ${what}: ${JSON.stringify(last)}\n${log()}`);
}

function backendOf(pools: PoolsJson, pool: string, key: string) {
  return pools.pools.find((p) => p.name === pool)?.backends.find((b) => b.key === key);
}

/** Width and height from a PNG's IHDR chunk; throws unless `bytes` starts like a PNG. */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...bytes.slice(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

Deno.test({
  name: "status page in Chromium: pools, a dead and a draining backend, Maglev, reloads, refresh",
  ignore: !isAvailable,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const servers: TestServer[] = [
    startNamed("w1"),
    startNamed("a1"),
    startNamed("a2"),
    startNamed("h1"),
    startNamed("h2"),
    startNamed("h3"),
  ];
  const [w1, a1, a2, h1, h2, h3] = servers as [TestServer, ...TestServer[]];
  const dead = `${HOST}:${freePort()}`;
  const admin = freePort();
  const ports = { web: freePort(), api: freePort(), hash: freePort() };
  const keys = {
    web: [w1.backend.key, dead],
    api: [a1!.backend.key, a2!.backend.key],
    hash: [h1!.backend.key, h2!.backend.key, h3!.backend.key],
  };
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_status_page_" });
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(config, configYaml(admin, ports, keys));
  const serve = spawnServe(config);
  const log = () => serve.log();
  const clients: Deno.Conn[] = [];
  let browser: Chromium | undefined;
  try {
    // Start-up includes loading npm modules: the longer bound.
    await waitForPools(
      admin,
      (p) => backendOf(p, "web", dead)?.health === "unhealthy",
      "the dead backend to be unhealthy",
      log,
      READY_MS,
    );

    // Traffic through web (bytes) and a connection held on api's a1, which a reload then
    // removes: a1 drains with that connection open.
    for (let i = 0; i < 3; i++) {
      const conn = await connect(ports.web);
      assert.equal(await readName(conn, NAME_LENGTH), "w1");
      conn.close();
    }
    let held: Deno.Conn | undefined;
    for (let i = 0; i < 4 && held === undefined; i++) {
      const conn = await connect(ports.api);
      clients.push(conn);
      if (await readName(conn, NAME_LENGTH) === "a1") held = conn;
    }
    assert.ok(held !== undefined, "a connection to a1");
    await Deno.writeTextFile(
      config,
      configYaml(admin, ports, { ...keys, api: [a2!.backend.key] }),
    );
    serve.child.kill("SIGHUP");
    const pools = await waitForPools(
      admin,
      (p) => backendOf(p, "api", a1!.backend.key)?.isDraining === true,
      "a1 to drain",
      log,
    );
    const hashFingerprint = pools.pools.find((p) => p.name === "hash")?.fingerprint;
    assert.ok(hashFingerprint, "the Maglev pool has a fingerprint");

    browser = await Chromium.launch(1280, 900);
    const started = browser.events("Page.loadEventFired").length;
    await browser.open(`http://${HOST}:${admin}/?refresh=1`);
    const page = await browser.evaluate<Rendered>(EXTRACT);

    assert.equal(page.title, "NautilusLB status");
    assert.equal(page.scripts, 0);
    assert.equal(page.readiness, "ready");
    assert.equal(page.discovery, "synced");
    assert.deepEqual(page.listeners.map((l) => l.name), ["web", "api", "hash"]);
    const [web, api, hash] = page.listeners.map((l) => l.pools[0]!);

    const deadRow = web!.backends.find((b) => b.key === dead)!;
    assert.equal(deadRow.health, "unhealthy");
    assert.match(deadRow.why, /^active check failed: .*refused/i);
    assert.ok(Date.parse(deadRow.since) > Date.now() - 60_000, deadRow.since);
    assert.equal(deadRow.check, "tcp every 200ms, rise 1, fall 1");
    assert.equal(deadRow.color, "rgb(207, 34, 46)", "unhealthy in the page's red");
    const liveRow = web!.backends.find((b) => b.key === w1.backend.key)!;
    assert.equal(liveRow.health, "healthy");
    assert.equal(liveRow.color, "rgb(26, 127, 55)", "healthy in the page's green");
    assert.equal(web!.eligible, "1/2 eligible");

    const draining = api!.backends.find((b) => b.key === a1!.backend.key)!;
    assert.equal(draining.health, "draining (healthy)");
    assert.match(draining.why, /removed from the pool/);
    assert.equal(api!.eligible, "1/1 eligible");

    assert.equal(hash!.fingerprint, hashFingerprint);
    assert.equal(hash!.backends.length, 3);
    assert.ok(hash!.backends.every((b) => b.health === "healthy" && b.width > 0));

    assert.equal(page.reloads.length, 1);
    assert.equal(page.reloads[0]!.outcome, "applied");
    assert.match(page.reloads[0]!.what, /api/);
    assert.equal(page.overflows, false, "fits a 1280 px window without scrolling sideways");

    // It refreshes itself (refresh=1): a second load without any navigation from here.
    await browser.waitForEvents("Page.loadEventFired", started + 2, 5_000);
    // Nothing blocked by the Content-Security-Policy, no error in the console.
    const problems = browser.events("Log.entryAdded").map((e) =>
      (e.params?.entry as { level: string; text: string }) ?? { level: "", text: "" }
    ).filter((e) => e.level === "error" || /Content Security Policy/i.test(e.text));
    assert.deepEqual(problems, []);

    await browser.open(`http://${HOST}:${admin}/?refresh=0`);
    const png = await browser.screenshot();
    const size = pngSize(png);
    assert.equal(size.width, 1280);
    assert.ok(size.height > 400, `page height ${size.height}`);
    const target = Deno.env.get("NAUTILUS_STATUS_SCREENSHOT");
    if (target !== undefined) await Deno.writeFile(target, png);
  } finally {
    await browser?.close();
    for (const c of clients) closeQuietly(c);
    await serve.stop();
    await Promise.all(servers.map((s) => s.close()));
    await Deno.remove(dir, { recursive: true });
  }
});

/** Names and annotation values a hostile or careless cluster could hold, as manifests. */
const HOSTILE_NODE = `<img src=x onerror="document.title='pwned-node'">`;
const HOSTILE_NAMESPACE = `x' onmouseover='document.title=1`;
const HOSTILE_SERVICE = `web</td><script>document.title='pwned-service'</script>`;
const HOSTILE_WEIGHT = `<iframe src="javascript:document.title='pwned-annotation'"></iframe>`;

function hostileCluster(backendPort: number): string {
  const yamlString = (text: string) => JSON.stringify(text);
  return `apiVersion: v1
kind: Node
metadata:
  name: ${yamlString(HOSTILE_NODE)}
status:
  conditions:
    - type: Ready
      status: "False"
  addresses:
    - type: InternalIP
      address: 127.0.0.9
---
apiVersion: v1
kind: Node
metadata:
  name: good
status:
  conditions:
    - type: Ready
      status: "True"
  addresses:
    - type: InternalIP
      address: ${HOST}
---
apiVersion: v1
kind: Service
metadata:
  name: ${yamlString(HOSTILE_SERVICE)}
  namespace: ${yamlString(HOSTILE_NAMESPACE)}
  annotations:
    nautiluslb.cloudresty.io/enabled: "true"
    nautiluslb.cloudresty.io/weight: ${yamlString(HOSTILE_WEIGHT)}
spec:
  type: NodePort
  ports:
    - name: web
      protocol: TCP
      port: 80
      nodePort: ${backendPort}
`;
}

Deno.test({
  name: "status page in Chromium: hostile Kubernetes names and annotation values stay text",
  ignore: !isAvailable,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const backend = startNamed("k1");
  const admin = freePort();
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb_status_hostile_" });
  await Deno.writeTextFile(`${dir}/cluster.yaml`, hostileCluster(backend.port));
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    `settings:
  adminAddress: "${HOST}:${admin}"
configurations:
  - name: web
    listenerAddress: "${HOST}:${freePort()}"
    backendPortName: web
`,
  );
  const serve = spawnServe(`${dir}/config.yaml`, ["--from-manifests", `${dir}/cluster.yaml`]);
  let browser: Chromium | undefined;
  try {
    const service = `${HOSTILE_NAMESPACE}/${HOSTILE_SERVICE}`;
    await waitForPools(
      admin,
      (p) => backendOf(p, "web", backend.backend.key)?.health === "healthy",
      "the backend to be healthy",
      serve.log,
      READY_MS,
    );
    browser = await Chromium.launch(1280, 900);
    await browser.send("Page.setBypassCSP", { enabled: true });
    await browser.open(`http://${HOST}:${admin}/?refresh=0`);
    // The page's own policy is off (bypassed): only escaping stands between these strings and
    // the DOM, and none of them may become an element, an attribute or a script.
    const seen = await browser.evaluate<{
      title: string;
      injected: number;
      handlers: number;
      origin: string;
      excludedNode: string;
      excludedService: string;
      warning: string;
    }>(`(() => {
      const text = (el) => (el?.textContent ?? "").trim();
      const excluded = document.querySelector("details.excluded tbody tr");
      return {
        title: document.title,
        injected: document.querySelectorAll("script, img, iframe, svg").length,
        handlers: [...document.querySelectorAll("*")].filter((el) =>
          [...el.attributes].some((a) => a.name.startsWith("on"))
        ).length,
        origin: text(document.querySelector("tr.backend .origin")),
        excludedNode: text(excluded?.cells[2]),
        excludedService: text(excluded?.cells[1]),
        warning: text(document.querySelector("ul.warnings li")),
      };
    })()`);
    assert.equal(seen.title, "NautilusLB status");
    assert.equal(seen.injected, 0);
    assert.equal(seen.handlers, 0);
    assert.equal(seen.origin, `${service} · node good`);
    assert.equal(seen.excludedNode, HOSTILE_NODE);
    assert.equal(seen.excludedService, service);
    assert.ok(seen.warning.includes(`"${HOSTILE_WEIGHT}"`), seen.warning);
    const dialogs = browser.events("Page.javascriptDialogOpening");
    assert.deepEqual(dialogs, []);
  } finally {
    await browser?.close();
    await serve.stop();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
