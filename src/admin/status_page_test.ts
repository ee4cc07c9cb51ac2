import assert from "node:assert/strict";
import { RateMeter } from "./_rates.ts";
import { renderStatusPage, statusRateTotals } from "./status_page.ts";
import { sampleSnapshot, stats } from "./_test_snapshot.ts";
import type { AdminSnapshot } from "./types.ts";

const NOW = 1_700_000_060_000;

/** Strings as a hostile cluster could set them: names, annotation values, error texts. */
const HOSTILE = [
  `<script>alert("name")</script>`,
  `"><img src=x onerror=alert(1)>`,
  `' onmouseover='alert(2)`,
  `</td></tr></table><iframe src="//evil"></iframe>`,
  `<svg onload=alert(3)>`,
  `<style>body{display:none}</style>`,
  `<meta http-equiv="refresh" content="0;url=//evil">`,
  `<a href="javascript:alert(4)">x</a>`,
  "\u001b[31mred\u0000",
] as const;

function hostileSnapshot(): AdminSnapshot {
  const [a, b, c, d, e, f, g, h, i] = HOSTILE;
  return sampleSnapshot({
    ready: false,
    readyReasons: [a],
    discovery: { source: "kubernetes", state: "disconnected", lastChangeAt: NOW, lastError: b },
    listeners: [{
      name: a,
      address: c,
      stats: stats({ bytesFromClients: 10 }),
      access: { allow: [f], deny: [g] },
      maxConnectionsPerSource: 3,
    }],
    pools: [
      {
        name: a,
        isFailOpen: true,
        fingerprint: d,
        backends: [
          {
            key: e,
            weight: 1,
            health: "unhealthy",
            activeConnections: 0,
            isDraining: false,
            counters: {
              connections: 1,
              connectFailures: 2,
              bytesToBackend: 3,
              bytesFromBackend: 4,
            },
            healthDetail: { cause: "passive", error: f, sinceMs: NOW - 1000 },
            service: `${c}/${d}`,
            node: g,
            pod: h,
          },
        ],
        warnings: [`Ignoring annotation nautiluslb.cloudresty.io/weight of Service x: "${a}"`],
        excluded: [
          { address: g, service: h, node: i, pod: a, reason: "node-not-ready", detail: b },
        ],
      },
      { name: c, isFailOpen: false, backends: [] },
    ],
    config: {
      reloadsSucceeded: 1,
      reloadsFailed: 1,
      lastSuccessAt: NOW,
      sha256: d,
      recentReloads: [{ atMs: NOW, outcome: "refused", summary: g }],
    },
    workers: [{
      worker: 0,
      restarts: 0,
      accepted: 0,
      activeConnections: 0,
      pools: [{ name: e, fingerprint: h }],
    }],
  });
}

const ELEMENTS = new Set(
  ("html head meta title style body header h1 h2 h3 p span time a main section dl dt dd " +
    "table thead tbody tr th td code div details summary br ul li").split(" "),
);
const ATTRIBUTES = new Set(
  ("lang charset name content http-equiv id class href title datetime open " +
    "data-listener data-pool data-backend").split(" "),
);

/**
 * Every start tag of `page` with its attributes. Fails when a `<` followed by a letter does
 * not start a well-formed tag whose attribute values are all double-quoted.
 */
function startTags(page: string): { name: string; attributes: [string, string][] }[] {
  const tags: { name: string; attributes: [string, string][] }[] = [];
  const start = /<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:="[^"<>]*")?)*)\s*>/y;
  for (const m of page.matchAll(/<[a-zA-Z!]/g)) {
    if (page.startsWith("<!doctype html>", m.index)) continue;
    start.lastIndex = m.index;
    const tag = start.exec(page);
    assert.ok(tag !== null, `malformed tag at ${m.index}: ${page.slice(m.index, m.index + 60)}`);
    const attributes = [...tag[2]!.matchAll(/([a-zA-Z-]+)(?:="([^"]*)")?/g)].map((
      a,
    ): [string, string] => [a[1]!, a[2] ?? ""]);
    tags.push({ name: tag[1]!.toLowerCase(), attributes });
  }
  return tags;
}

Deno.test("renderStatusPage escapes every string from Kubernetes and config", () => {
  const page = renderStatusPage(hostileSnapshot(), { nowMs: NOW });
  // Only the template's own elements and attributes, every value quoted.
  const tags = startTags(page);
  for (const tag of tags) {
    assert.ok(ELEMENTS.has(tag.name), `unexpected element <${tag.name}>`);
    for (const [name] of tag.attributes) assert.ok(ATTRIBUTES.has(name), `unexpected ${name}=`);
  }
  assert.equal(tags.filter((t) => t.name === "style").length, 1);
  assert.equal(
    tags.filter((t) => t.name === "meta" && t.attributes.some(([n]) => n === "http-equiv")).length,
    1,
  );
  // Every link goes to an admin route of this server.
  const hrefs = tags.flatMap((t) => t.attributes.filter(([n]) => n === "href").map(([, v]) => v));
  assert.deepEqual(hrefs, ["/pools", "/metrics", "/readyz?verbose"]);
  assert.ok(!page.includes("\u001b") && !page.includes("\u0000"));
  // Each hostile string is shown, as text.
  assert.ok(page.includes("&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;"));
  assert.ok(page.includes("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
  assert.ok(page.includes("&#39; onmouseover=&#39;alert(2)"));
  assert.ok(page.includes("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;iframe"));
  assert.ok(page.includes("&lt;svg onload=alert(3)&gt;"));
  assert.ok(page.includes("&lt;meta http-equiv=&quot;refresh&quot;"));
  assert.ok(page.includes("&lt;a href=&quot;javascript:alert(4)&quot;&gt;"));
  assert.ok(page.includes("\ufffd[31mred\ufffd"));
  assert.ok(page.includes(`data-listener="&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;"`));
  assert.ok(page.includes(`data-backend="&lt;svg onload=alert(3)&gt;"`));
  assert.ok(
    page.includes(
      `<li>Ignoring annotation nautiluslb.cloudresty.io/weight of Service x: &quot;&lt;script&gt;`,
    ),
  );
  assert.ok(page.includes(`node &lt;meta http-equiv=&quot;refresh&quot;`));
  assert.ok(
    page.includes(`<span class="allow">allow &lt;style&gt;body{display:none}&lt;/style&gt;</span>`),
  );
  assert.ok(
    page.includes(`<span class="deny">deny &lt;meta http-equiv=&quot;refresh&quot; content=`),
  );
});

Deno.test("renderStatusPage shows the listener's ACL (at most 20 entries) and per-source limit in its header", () => {
  const allow = Array.from({ length: 22 }, (_, i) => `10.0.${i}.0/24`);
  const page = renderStatusPage(
    sampleSnapshot({
      listeners: [
        {
          name: "a",
          address: "0.0.0.0:8080",
          stats: stats(),
          access: { allow, deny: ["10.0.3.7/32", "192.0.2.0/24"] },
          maxConnectionsPerSource: 1000,
        },
        {
          name: "b",
          address: "0.0.0.0:9090",
          stats: stats(),
          access: { allow: [], deny: [] },
          maxConnectionsPerSource: 0,
        },
      ],
      pools: [],
    }),
    { nowMs: NOW },
  );
  const header = (name: string) => {
    const at = page.indexOf(`<h2>Listener <span class="name">${name}</span>`);
    assert.ok(at >= 0, `header of ${name}`);
    return page.slice(at, page.indexOf("</h2>", at) + "</h2>".length);
  };
  assert.equal(
    header("a"),
    `<h2>Listener <span class="name">a</span> <code>0.0.0.0:8080</code> <span class="admission">` +
      `<span class="allow">allow ${allow.slice(0, 20).join(", ")} and 2 more</span> · ` +
      `<span class="deny">deny 10.0.3.7/32, 192.0.2.0/24</span> · ` +
      `<span class="per-source">at most 1,000 per source</span></span></h2>`,
  );
  // Nothing to say when every peer is admitted without a per-source limit.
  assert.equal(
    header("b"),
    `<h2>Listener <span class="name">b</span> <code>0.0.0.0:9090</code></h2>`,
  );
});

Deno.test("renderStatusPage groups pools under their listener, routes by `<listener>/<route>`", () => {
  const pool = (name: string) => ({ name, isFailOpen: false, backends: [] });
  const page = renderStatusPage(
    sampleSnapshot({
      listeners: [
        { name: "tls", address: "0.0.0.0:443", stats: stats() },
        { name: "tl", address: "0.0.0.0:444", stats: stats() },
      ],
      pools: [pool("tls/api"), pool("tls/web"), pool("tl"), pool("gone")],
    }),
    { nowMs: NOW },
  );
  const section = (name: string) => {
    const at = page.indexOf(`data-listener="${name}"`);
    assert.ok(at >= 0, `section of ${name}`);
    return page.slice(at, page.indexOf("</section>", at));
  };
  const tls = section("tls");
  assert.ok(tls.includes(`data-pool="tls/api"`) && tls.includes(`data-pool="tls/web"`));
  assert.ok(tls.includes(`Route <span class="name">api</span>`));
  assert.ok(!tls.includes(`data-pool="tl"`));
  assert.ok(section("tl").includes(`data-pool="tl"`));
  const other = page.slice(page.indexOf(`id="other-pools"`));
  assert.ok(other.includes(`data-pool="gone"`));
});

Deno.test("renderStatusPage shows health, why, since when, check, draining and counters", () => {
  const snapshot = sampleSnapshot({
    pools: [{
      name: "a",
      isFailOpen: false,
      fingerprint: "f00d",
      backends: [
        {
          key: "10.0.0.1:80",
          weight: 1,
          health: "unhealthy",
          activeConnections: 0,
          isDraining: false,
          counters: {
            connections: 12,
            connectFailures: 3,
            bytesToBackend: 2048,
            bytesFromBackend: 3 * 1024 * 1024,
          },
          healthDetail: { cause: "active", error: "connection refused", sinceMs: NOW - 90_000 },
          service: "shop/web",
          node: "node-a",
          check: {
            enabled: true,
            intervalMs: 2000,
            timeoutMs: 1000,
            rise: 2,
            fall: 3,
            maxEjectionPercent: 100,
          },
        },
        {
          key: "10.0.0.2:80",
          weight: 1,
          health: "unhealthy",
          activeConnections: 0,
          isDraining: false,
          healthDetail: { cause: "passive", error: "connect timed out", sinceMs: NOW },
          check: {
            enabled: false,
            intervalMs: 2000,
            timeoutMs: 1000,
            rise: 2,
            fall: 3,
            maxEjectionPercent: 100,
          },
        },
        {
          key: "10.0.0.3:80",
          weight: 2,
          health: "healthy",
          activeConnections: 4,
          maxConnections: 10,
          isDraining: true,
          check: {
            enabled: true,
            intervalMs: 5000,
            timeoutMs: 1000,
            rise: 1,
            fall: 1,
            maxEjectionPercent: 100,
            http: { port: 10256, path: "/healthz" },
          },
        },
      ],
      excluded: [{ address: "10.0.1.9:30080", node: "node-9", reason: "node-not-ready" }],
    }],
  });
  const page = renderStatusPage(snapshot, { nowMs: NOW });
  const row = (key: string) => {
    const at = page.indexOf(`data-backend="${key}"`);
    return page.slice(at, page.indexOf("</tr>", at));
  };
  const dead = row("10.0.0.1:80");
  assert.ok(dead.includes(`<span class="health unhealthy">unhealthy</span>`));
  assert.ok(dead.includes("active check failed: connection refused"));
  assert.ok(
    dead.includes(`datetime="${new Date(NOW - 90_000).toISOString()}"`) &&
      dead.includes("1m30s ago"),
  );
  assert.ok(dead.includes("tcp every 2s, rise 2, fall 3"));
  assert.ok(dead.includes(`<span class="meta origin">shop/web · node node-a</span>`));
  assert.ok(dead.includes("2.0 KiB") && dead.includes("3.0 MiB") && dead.includes(">12<"));
  const ejected = row("10.0.0.2:80");
  assert.ok(ejected.includes("ejected after failed client connects: connect timed out"));
  assert.ok(ejected.includes("passive only") && ejected.includes(">now<"));
  const draining = row("10.0.0.3:80");
  assert.ok(page.includes(`<tr class="backend draining" data-backend="10.0.0.3:80"`));
  assert.ok(draining.includes("draining (healthy)") && draining.includes("removed from the pool"));
  assert.ok(draining.includes("http :10256/healthz every 5s") && draining.includes("of 10"));
  // Draining backends are not members: no member is eligible.
  assert.ok(page.includes(`<span class="state bad">0/2 eligible</span>`));
  assert.ok(page.includes(`<code class="fingerprint">f00d</code>`));
  assert.ok(page.includes("1 left out by discovery") && page.includes("node-not-ready"));
  assert.ok(page.includes("node-9"));
});

Deno.test("renderStatusPage shows rates from a RateMeter over statusRateTotals, and refusals by cause", () => {
  const meter = new RateMeter(1000);
  const before = sampleSnapshot();
  meter.update(statusRateTotals(before), NOW - 2000);
  const after = sampleSnapshot({
    listeners: [{
      name: "a",
      address: "0.0.0.0:8080",
      stats: stats({
        bytesFromClients: 1024 + 4096,
        bytesToClients: 4096,
        refused: 4,
        refusedByCause: {
          limit: 3,
          acl: 1,
          no_backend: 0,
          proxy_header: 0,
          untrusted: 0,
          source_limit: 0,
          tls_peek_timeout: 0,
          tls_hello_too_large: 0,
          tls_no_route: 0,
          tls_bad_hello: 0,
        },
      }),
    }],
  });
  const rates = meter.update(statusRateTotals(after), NOW);
  const page = renderStatusPage(after, { nowMs: NOW, rates });
  assert.ok(page.includes(`<span class="rate">2.0 KiB/s</span>`));
  assert.ok(page.includes(`<span class="rate">0 B/s</span>`));
  assert.match(page, />4\s*<span class="meta causes">\(limit 3, acl 1\)<\/span>/);
});

Deno.test("renderStatusPage: discovery, readiness, workers, config and recent reloads", () => {
  const page = renderStatusPage(
    sampleSnapshot({
      ready: false,
      readyReasons: ["shutting down"],
      discovery: {
        source: "kubernetes",
        state: "disconnected",
        lastChangeAt: NOW - 5000,
        lastError: "connect ECONNREFUSED",
      },
      config: {
        reloadsSucceeded: 2,
        reloadsFailed: 1,
        lastSuccessAt: NOW - 60_000,
        sha256: "ab".repeat(32),
        recentReloads: [
          { atMs: NOW - 120_000, outcome: "applied", summary: "1 listener added (b)" },
          {
            atMs: NOW - 60_000,
            outcome: "refused",
            summary: "Cannot reload config.yaml: 1 problem(s)",
          },
        ],
      },
      workers: [
        {
          worker: 0,
          restarts: 0,
          accepted: 5,
          activeConnections: 1,
          pools: [{ name: "a", fingerprint: "abc123" }],
        },
        {
          worker: 1,
          restarts: 2,
          accepted: 7,
          activeConnections: 0,
          pools: [{ name: "a", fingerprint: "zzz" }],
        },
      ],
    }),
    { nowMs: NOW },
  );
  assert.ok(
    page.includes(`<span class="badge">not ready</span>`) && page.includes("shutting down"),
  );
  assert.ok(page.includes(`<span class="state bad">disconnected</span>`));
  assert.ok(page.includes("connect ECONNREFUSED") && page.includes("5s ago"));
  assert.ok(page.includes("2 applied, 1 refused"));
  // Newest reload first.
  assert.ok(page.indexOf("Cannot reload config.yaml") < page.indexOf("1 listener added (b)"));
  assert.ok(page.includes(`<span class="state ok">agree</span>`));
  assert.ok(page.includes("differ: a zzz"));
});

Deno.test("renderStatusPage refreshes itself unless told not to; refreshSeconds is checked", () => {
  assert.ok(
    renderStatusPage(sampleSnapshot(), { nowMs: NOW }).includes(
      `<meta http-equiv="refresh" content="5">`,
    ),
  );
  assert.ok(
    renderStatusPage(sampleSnapshot(), { nowMs: NOW, refreshSeconds: 30 }).includes(`content="30"`),
  );
  const still = renderStatusPage(sampleSnapshot(), { nowMs: NOW, refreshSeconds: 0 });
  assert.ok(!still.includes("http-equiv") && still.includes("not refreshing"));
  assert.ok(still.startsWith("<!doctype html>"));
  for (const bad of [-1, 1.5, Number.NaN, 3601]) {
    assert.throws(
      () => renderStatusPage(sampleSnapshot(), { nowMs: NOW, refreshSeconds: bad }),
      RangeError,
    );
  }
});
