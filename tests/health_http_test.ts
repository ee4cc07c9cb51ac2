/**
 * `healthCheck.type: http` against a real nginx (Debian package `nginx`): 200 and 503 on a
 * switch, Host and expectStatus, redirects judged by their own status and never followed,
 * a large body not read, HTTPS for TLS pools; and the `check` command on such a config.
 *
 * nginx listens on a port the kernel handed out a moment before (nginx cannot take port 0).
 */
import assert from "node:assert/strict";
import { probeTarget } from "../src/health/mod.ts";
import type { HealthCheckSpec } from "../src/health/mod.ts";
import { parseStatusRanges } from "../src/config/mod.ts";
import { freePort } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url);

/** A foreground nginx with a /healthz that answers 503 while `<dir>/down` exists. */
class Nginx implements AsyncDisposable {
  readonly dir: string;
  readonly port: number;
  readonly tlsPort: number;
  readonly #child: Deno.ChildProcess;

  private constructor(dir: string, port: number, tlsPort: number, child: Deno.ChildProcess) {
    this.dir = dir;
    this.port = port;
    this.tlsPort = tlsPort;
    this.#child = child;
  }

  static async start(): Promise<Nginx> {
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb-nginx-" });
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=app.example",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ]);
    const port = freePort();
    const tlsPort = freePort();
    // 16 MiB: reading it would show in the probe's time and the test's memory.
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(16 * 1024 * 1024));
    const routes = `
      location = /healthz { if (-f ${dir}/down) { return 503 "down\\n"; } return 200 "ok\\n"; }
      location = /moved { return 302 /healthz; }
      location = /big { alias ${dir}/big.bin; }
      location = /teapot { return 418; }`;
    await Deno.writeTextFile(
      `${dir}/nginx.conf`,
      `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server { listen 127.0.0.1:${port} default_server; return 421; }
  server { listen 127.0.0.1:${port}; server_name app.example; ${routes} }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    ${routes}
  }
}
`,
    );
    const child = new Deno.Command("nginx", {
      args: ["-c", `${dir}/nginx.conf`, "-p", dir],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const nginx = new Nginx(dir, port, tlsPort, child);
    // Ready when both ports accept.
    const deadline = performance.now() + 10_000;
    for (const p of [port, tlsPort]) {
      while (true) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: p })).close();
          break;
        } catch (error) {
          if (performance.now() > deadline) {
            await nginx[Symbol.asyncDispose]();
            throw new Error(`nginx did not start on ${p}`, { cause: error });
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    return nginx;
  }

  async setDown(isDown: boolean): Promise<void> {
    if (isDown) await Deno.writeTextFile(`${this.dir}/down`, "");
    else await Deno.remove(`${this.dir}/down`).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // exited already
    }
    await this.#child.stderr.cancel().catch(() => {});
    await this.#child.status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`Cannot run ${cmd}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function check(http: HealthCheckSpec["http"], tls = false): HealthCheckSpec {
  return {
    enabled: true,
    intervalMs: 1000,
    timeoutMs: 2000,
    rise: 1,
    fall: 1,
    maxEjectionPercent: 50,
    ...(tls && { tls: true }),
    http,
  };
}

async function probe(port: number, spec: HealthCheckSpec) {
  return await probeTarget({
    key: `127.0.0.1:${port}`,
    pool: "web",
    host: "127.0.0.1",
    port,
    check: spec,
  });
}

Deno.test("HTTP checks against nginx: 200 passes, 503 on a switch fails, and back", async () => {
  await using nginx = await Nginx.start();
  const spec = check({
    path: "/healthz",
    host: "app.example",
    expectStatus: parseStatusRanges("200-399"),
  });
  assert.deepEqual((await probe(nginx.port, spec)).ok, true);
  await nginx.setDown(true);
  const down = await probe(nginx.port, spec);
  assert.equal(down.ok, false);
  assert.equal(down.error, "HTTP 503");
  await nginx.setDown(false);
  assert.equal((await probe(nginx.port, spec)).ok, true);
});

Deno.test("HTTP checks: Host decides the vhost, expectStatus the verdict, redirects are not followed", async () => {
  await using nginx = await Nginx.start();
  const on = (path: string, host: string | undefined, expect: string) =>
    probe(
      nginx.port,
      check({
        path,
        ...(host !== undefined && { host }),
        expectStatus: parseStatusRanges(expect),
      }),
    );
  // Without the Host header the default server answers 421.
  assert.equal((await on("/healthz", undefined, "200-399")).error, "HTTP 421");
  assert.equal((await on("/healthz", "app.example", "200")).ok, true);
  // /moved redirects to a healthy page: judged by the 302 itself.
  assert.equal((await on("/moved", "app.example", "200")).error, "HTTP 302");
  assert.equal((await on("/moved", "app.example", "200-399")).ok, true);
  assert.equal((await on("/teapot", "app.example", "200,418")).ok, true);
  // Only the status line is read: a 16 MiB body is never downloaded.
  const big = await on("/big", "app.example", "200");
  assert.equal(big.ok, true, big.error ?? "");
  assert.ok(big.latencyMs < 500, `probe took ${big.latencyMs} ms`);
});

Deno.test("HTTPS checks for TLS pools: no certificate verification, status judged the same", async () => {
  await using nginx = await Nginx.start();
  const spec = check(
    { path: "/healthz", host: "app.example", expectStatus: parseStatusRanges("200") },
    true,
  );
  assert.equal((await probe(nginx.tlsPort, spec)).ok, true);
  await nginx.setDown(true);
  assert.equal((await probe(nginx.tlsPort, spec)).error, "HTTP 503");
  // Plain HTTP to the TLS port fails: the check does speak TLS.
  const plain = await probe(nginx.tlsPort, { ...spec, tls: false });
  assert.equal(plain.ok, false);
});

Deno.test("check with healthCheck.type http reports nginx healthy, then unhealthy with exit 1", async () => {
  await using nginx = await Nginx.start();
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      config,
      `configurations:
  - name: web
    listenerAddress: "127.0.0.1:${freePort()}"
    backends: ["127.0.0.1:${freePort()}"]
    healthCheck:
      type: http
      port: ${nginx.port}
      http: { path: /healthz, host: app.example, expectStatus: 200 }
`,
    );
    const checkCli = async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "src/main.ts", "check", "-c", config],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
    };
    const up = await checkCli();
    assert.equal(up.code, 0, up.stdout);
    assert.match(up.stdout, /healthy/);
    await nginx.setDown(true);
    const down = await checkCli();
    assert.equal(down.code, 1, down.stdout);
    assert.match(down.stdout, /HTTP 503/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
