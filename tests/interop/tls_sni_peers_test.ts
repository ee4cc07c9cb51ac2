/**
 * SNI routing, differential: one corpus of ClientHellos sent to a running NautilusLB
 * (`serve`, `protocol: tls`), HAProxy (`req.ssl_sni` with a `map_reg` map) and nginx stream
 * (`ssl_preread` with `map … { hostnames; }`), each route's backend answering with its name.
 * The three decisions must agree, except where `docs/tls_routing.md` says why they differ
 * ({@linkcode KNOWN_DIFFERENCES}).
 *
 * Routes, written in each proxy's own terms: `api.example.com` → api, `*.example.com`
 * (exactly one label) → web, `**.example.com` under `svc.` (any depth) → deep, else dflt.
 * Needs nginx with its stream module, HAProxy, openssl and gnutls-cli
 * (`bash scripts/tls_install.sh`).
 */
import assert from "node:assert/strict";
import { ServeProcess } from "../reliability/_harness.ts";
import { closeQuietly, startNamed, type TestServer } from "../_helpers.ts";
import { findExecutable, type Peer, PEER_HOST, startPeer } from "./_peers.ts";
import { builtCases, captureHello, type HelloCase } from "./_tls_corpus.ts";

const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const hasPeers = findExecutable("nginx") !== undefined &&
  findExecutable("haproxy") !== undefined && findExecutable("openssl") !== undefined &&
  findExecutable("gnutls-cli") !== undefined && existsSync(NGINX_STREAM_MODULE);
if (Deno.env.get("NAUTILUS_INTEROP_REQUIRED") === "1" && !hasPeers) {
  throw new Error(
    "Cannot run the TLS interop tests: nginx (stream module), haproxy, openssl and gnutls-cli are required (bash scripts/tls_install.sh)",
  );
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Peek timeout of all three proxies (`peekTimeout`, `inspect-delay`, `preread_timeout`). */
const PEEK_S = 2;
const MAX_CLIENT_HELLO = 16_384;
const ROUTES = ["api_", "web_", "deep", "dflt"] as const;
type Decision = (typeof ROUTES)[number] | "closed";

/**
 * Where HAProxy 2.6 and nginx 1.22 decide otherwise than NautilusLB, and why (see
 * docs/tls_routing.md, "Compared with HAProxy and nginx").
 */
const KNOWN_DIFFERENCES: Record<string, Partial<Record<"haproxy" | "nginx", Decision>>> = {
  // A hello that never completes: NautilusLB and nginx close it at the peek timeout;
  // HAProxy ends its inspect-delay and goes on to the default backend.
  "never finished": { haproxy: "dflt" },
  // HAProxy 2.6's req.ssl_sni reads the first TLS record only: a hello split across
  // records has no server name for it, so it goes to the default backend.
  "3 records": { haproxy: "dflt" },
  // Over the bound (16 KiB, HAProxy's tune.bufsize too): NautilusLB refuses it
  // (tls_hello_too_large), as nginx does; HAProxy's full buffer ends the inspection and the
  // connection goes to the default backend.
  "over maxClientHello": { haproxy: "dflt" },
};

function freePort(): number {
  const listener = Deno.listen({ hostname: PEER_HOST, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Sends one case and reads the 4-byte route name, or `closed` when none comes. */
async function decide(port: number, c: HelloCase): Promise<Decision> {
  const conn = await Deno.connect({ hostname: PEER_HOST, port });
  try {
    conn.setNoDelay(true);
    const write = async (bytes: Uint8Array) => {
      let at = 0;
      while (at < bytes.length) at += await conn.write(bytes.subarray(at));
    };
    try {
      if (c.isPerByte === true) {
        for (let i = 0; i < c.bytes.length; i++) await write(c.bytes.subarray(i, i + 1));
      } else {
        await write(c.bytes);
      }
    } catch {
      // Refused while writing (e.g. over the bound): the read below says "closed".
    }
    const got = new Uint8Array(4);
    let filled = 0;
    const timer = setTimeout(() => closeQuietly(conn), (PEEK_S + 4) * 1000);
    try {
      while (filled < 4) {
        const n = await conn.read(got.subarray(filled)).catch(() => null);
        if (n === null) break;
        filled += n;
      }
    } finally {
      clearTimeout(timer);
    }
    const text = new TextDecoder().decode(got.subarray(0, filled));
    return (ROUTES as readonly string[]).includes(text) ? text as Decision : "closed";
  } finally {
    closeQuietly(conn);
  }
}

function haproxyConfig(
  port: number,
  dir: string,
  backends: Record<string, number>,
  hasDefault: boolean,
): string {
  // map_reg takes the first matching line: exact first, then longer suffixes first, as
  // NautilusLB's precedence; `lower` and `\.?$` give its case and trailing-dot rules.
  Deno.writeTextFileSync(
    `${dir}/routes.map`,
    [
      "^api\\.example\\.com\\.?$ be_api_",
      "^.+\\.svc\\.example\\.com\\.?$ be_deep",
      "^[^.]+\\.example\\.com\\.?$ be_web_",
    ].join("\n") + "\n",
  );
  return `
global
  maxconn 200
defaults
  mode tcp
  timeout connect 2s
  timeout client 20s
  timeout server 20s
frontend fe
  bind ${PEER_HOST}:${port}
  tcp-request inspect-delay ${PEEK_S}s
  tcp-request content accept if { req.ssl_hello_type 1 }
${
    hasDefault
      ? `  use_backend %[req.ssl_sni,lower,map_reg(${dir}/routes.map,be_dflt)]\n  default_backend be_dflt\n`
      : `  use_backend %[req.ssl_sni,lower,map_reg(${dir}/routes.map)]\n`
  }${
    Object.entries(backends).map(([name, p]) =>
      `backend be_${name}\n  server s ${PEER_HOST}:${p}\n`
    ).join("")
  }`;
}

function nginxConfig(
  port: number,
  dir: string,
  backends: Record<string, number>,
  hasDefault: boolean,
): string {
  // `hostnames`: exact, then `*.suffix` (nginx's any-depth wildcard), then regexes in order
  // (here the one-label rule); values compared lower-cased without a trailing dot.
  return `
load_module ${NGINX_STREAM_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
stream {
  map $ssl_preread_server_name $route {
    hostnames;
    default ${hasDefault ? `${PEER_HOST}:${backends.dflt}` : '""'};
    api.example.com ${PEER_HOST}:${backends.api_};
    *.svc.example.com ${PEER_HOST}:${backends.deep};
    ~*^[^.]+\\.example\\.com\\.?$ ${PEER_HOST}:${backends.web_};
  }
  server {
    listen ${PEER_HOST}:${port};
    ssl_preread on;
    preread_timeout ${PEEK_S}s;
    proxy_pass $route;
  }
}
`;
}

function nautilusConfig(
  port: number,
  adminPort: number,
  backends: Record<string, number>,
  hasDefault: boolean,
) {
  const b = (name: string) => `["${PEER_HOST}:${backends[name]}"]`;
  return `
settings:
  adminAddress: "127.0.0.1:${adminPort}"
  logLevel: warning
configurations:
  - name: edge
    listenerAddress: "${PEER_HOST}:${port}"
    protocol: tls
    healthCheck: { enabled: false }
    tls:
      peekTimeout: ${PEEK_S}s
      maxClientHello: ${MAX_CLIENT_HELLO}
${hasDefault ? "      defaultRoute: dflt\n" : ""}      routes:
        - { name: api, hosts: [api.example.com], backends: ${b("api_")} }
        - { name: web, hosts: ["*.example.com"], backends: ${b("web_")} }
        - { name: deep, hosts: ["**.svc.example.com"], backends: ${b("deep")} }
${hasDefault ? `        - { name: dflt, backends: ${b("dflt")} }\n` : ""}`;
}

/** What NautilusLB must decide for each case: its documented semantics. */
const EXPECTED: Record<string, Decision> = {
  "openssl s_client": "api_",
  "gnutls-cli": "web_",
  "exact": "api_",
  "one label": "web_",
  "two labels": "dflt",
  "any depth": "deep",
  "apex": "dflt",
  "upper case, trailing dot": "api_",
  "no SNI": "dflt",
  "IP literal": "dflt",
  "unknown name": "dflt",
  "GREASE": "web_",
  "ECH outer public_name": "api_",
  "padded 2 KB": "api_",
  "padded 6 KB": "deep",
  "3 records": "api_",
  "padded 6 KB in 4 records": "api_",
  "one byte per segment": "api_",
  "over maxClientHello": "closed",
  "never finished": "closed",
  "plain text": "dflt",
};

/**
 * Without a default route, every case that went to it is closed instead (NautilusLB counts
 * it as `tls_no_route` or `tls_bad_hello`); HAProxy then closes where it used its default.
 */
const KNOWN_DIFFERENCES_WITHOUT_DEFAULT: typeof KNOWN_DIFFERENCES = {
  "3 records": { haproxy: "closed" },
};

Deno.test({
  name: "interop: NautilusLB, HAProxy and nginx route one ClientHello corpus alike",
  ignore: !hasPeers,
  fn: () => compareOnCorpus(true),
});

Deno.test({
  name: "interop: without a default route the three close the same connections",
  ignore: !hasPeers,
  fn: () => compareOnCorpus(false),
});

async function compareOnCorpus(hasDefault: boolean): Promise<void> {
  {
    const servers: TestServer[] = ROUTES.map((name) => startNamed(name));
    const backends = Object.fromEntries(ROUTES.map((name, i) => [name, servers[i]!.port]));
    const peers: Peer[] = [];
    let serve: ServeProcess | undefined;
    try {
      const corpus: HelloCase[] = [
        {
          label: "openssl s_client",
          bytes: await captureHello((port) => [
            "openssl",
            "s_client",
            "-connect",
            `${PEER_HOST}:${port}`,
            "-servername",
            "api.example.com",
          ]),
        },
        {
          label: "gnutls-cli",
          bytes: await captureHello((port) => [
            "gnutls-cli",
            "--insecure",
            "-p",
            String(port),
            "--sni-hostname",
            "www.example.com",
            PEER_HOST,
          ]),
        },
        ...builtCases(MAX_CLIENT_HELLO),
      ];
      const haproxy = await startPeer(
        "haproxy",
        (port, dir) => haproxyConfig(port, dir, backends, hasDefault),
        (config) => ["-db", "-f", config],
      );
      peers.push(haproxy);
      const nginx = await startPeer(
        "nginx",
        (port, dir) => nginxConfig(port, dir, backends, hasDefault),
        (config, dir) => ["-p", dir, "-e", `${dir}/error.log`, "-c", config],
      );
      peers.push(nginx);
      const port = freePort();
      const adminPort = freePort();
      serve = await ServeProcess.start(
        nautilusConfig(port, adminPort, backends, hasDefault),
        adminPort,
      );

      const rows: string[] = [];
      const problems: string[] = [];
      // The proxies answer one case at a time each; cases run in parallel across proxies.
      for (const c of corpus) {
        const [ours, theirsH, theirsN] = await Promise.all([
          decide(port, c),
          decide(haproxy.port, c),
          decide(nginx.port, c),
        ]);
        rows.push(`${c.label.padEnd(26)} ${ours.padEnd(7)} ${theirsH.padEnd(7)} ${theirsN}`);
        const expectedOurs = !hasDefault && EXPECTED[c.label] === "dflt"
          ? "closed"
          : EXPECTED[c.label];
        if (ours !== expectedOurs) {
          problems.push(`${c.label}: NautilusLB chose ${ours}, expected ${expectedOurs}`);
        }
        const known =
          (hasDefault ? KNOWN_DIFFERENCES : KNOWN_DIFFERENCES_WITHOUT_DEFAULT)[c.label] ?? {};
        for (const [peer, theirs] of [["haproxy", theirsH], ["nginx", theirsN]] as const) {
          const expected = known[peer] ?? ours;
          if (theirs !== expected) {
            problems.push(`${c.label}: ${peer} chose ${theirs}, expected ${expected}`);
          }
        }
      }
      const table = `case                       ours    haproxy nginx\n${rows.join("\n")}`;
      assert.deepEqual(problems, [], table);
      console.log(table);
      // Refusals are counted by cause.
      const refused = (cause: string) =>
        serve!.metric("nautiluslb_connections_refused_total", { cause });
      if (!hasDefault) {
        // no SNI, IP literal, unknown name, two labels, apex; plain text is a bad hello.
        assert.equal(await refused("tls_no_route"), 5);
        assert.equal(await refused("tls_bad_hello"), 1);
      }
      assert.equal(
        await serve.metric("nautiluslb_connections_refused_total", {
          cause: "tls_hello_too_large",
        }),
        1,
      );
      assert.equal(
        await serve.metric("nautiluslb_connections_refused_total", { cause: "tls_peek_timeout" }),
        1,
      );
    } finally {
      await serve?.stop();
      for (const peer of peers) await peer.stop();
      for (const server of servers) await server.close();
    }
  }
}
