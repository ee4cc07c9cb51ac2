/**
 * The status page served at `/` on the admin address: one self-contained HTML document
 * rendered from the same {@linkcode AdminSnapshot} as `/pools`, for a human with a browser.
 *
 * It has no script, no external asset and no form: a `<meta http-equiv="refresh">` reloads
 * it. Every string that may come from Kubernetes or the config (names, annotation values,
 * error messages) is escaped by the {@linkcode html} template tag; none is placed in a URL,
 * a script or a style. The server adds a Content-Security-Policy that forbids scripts and
 * any load from elsewhere, as a second line of defence.
 *
 * @module
 */
import { formatDurationMs } from "../core/duration.ts";
import type { ExcludedBackend, HealthCheckSpec } from "../core/plan.ts";
import { Html, html } from "./_html.ts";
import type { Rates } from "./_rates.ts";
import type {
  AdminBackend,
  AdminListener,
  AdminPool,
  AdminReload,
  AdminSnapshot,
  AdminWorker,
} from "./types.ts";
import { MAX_SHOWN_ACCESS_ENTRIES } from "./types.ts";

/** Default {@linkcode StatusPageOptions.refreshSeconds}. */
export const DEFAULT_STATUS_REFRESH_SECONDS = 5;

/** Longest {@linkcode StatusPageOptions.refreshSeconds} accepted. */
export const MAX_STATUS_REFRESH_SECONDS = 3600;

/** Options of {@linkcode renderStatusPage}. */
export interface StatusPageOptions {
  /** Now, in ms since the Unix epoch: the page's time and the base of every "ago". */
  readonly nowMs: number;
  /**
   * Seconds before the browser loads the page again; 0 turns refreshing off.
   * @default {DEFAULT_STATUS_REFRESH_SECONDS}
   */
  readonly refreshSeconds?: number;
  /** Byte rates of the keys {@linkcode statusRateTotals} returns; no rates shown when absent. */
  readonly rates?: Rates;
}

/** Content-Security-Policy sent with the page: inline styles only, nothing loaded, no frames. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; " +
  "form-action 'none'; frame-ancestors 'none'";

/**
 * The running totals the page shows rates of, keyed for a {@linkcode RateMeter}: bytes in
 * and out per listener and per backend of each pool.
 */
export function statusRateTotals(snapshot: AdminSnapshot): Map<string, number> {
  const totals = new Map<string, number>();
  for (const l of snapshot.listeners) {
    totals.set(listenerRateKey(l.name, "in"), l.stats.bytesFromClients);
    totals.set(listenerRateKey(l.name, "out"), l.stats.bytesToClients);
  }
  for (const p of snapshot.pools) {
    for (const b of p.backends) {
      if (b.counters === undefined) continue;
      totals.set(backendRateKey(p.name, b.key, "in"), b.counters.bytesToBackend);
      totals.set(backendRateKey(p.name, b.key, "out"), b.counters.bytesFromBackend);
    }
  }
  return totals;
}

/**
 * Renders the status page of `snapshot` as a complete HTML document.
 *
 * Layout: readiness, discovery, then one section per listener with its counters and its
 * pools (a pool belongs to the listener of the same name, or `<listener>/<route>` for a
 * listener with several pools, e.g. TLS routes), each with its backends (health, why, since
 * when, check, connections, bytes and rates, draining), its Maglev fingerprint and the
 * candidates discovery left out with their reasons; pools of no listener; workers and
 * their fingerprints; the running config and its recent reloads.
 *
 * @throws {RangeError} when `refreshSeconds` is not an integer from 0 to
 *   {@linkcode MAX_STATUS_REFRESH_SECONDS}
 */
export function renderStatusPage(snapshot: AdminSnapshot, options: StatusPageOptions): string {
  const refresh = options.refreshSeconds ?? DEFAULT_STATUS_REFRESH_SECONDS;
  if (!Number.isInteger(refresh) || refresh < 0 || refresh > MAX_STATUS_REFRESH_SECONDS) {
    throw new RangeError(
      `Cannot render the status page as 'refreshSeconds' must be an integer from 0 to ${MAX_STATUS_REFRESH_SECONDS}: current value is ${refresh}`,
    );
  }
  const ctx: Context = { nowMs: options.nowMs, rates: options.rates };
  const claimed = new Set<string>();
  const listeners = snapshot.listeners.map((l) => {
    const pools = snapshot.pools.filter((p) => belongsTo(p.name, l.name));
    for (const p of pools) claimed.add(p.name);
    return renderListener(l, pools, ctx);
  });
  const orphans = snapshot.pools.filter((p) => !claimed.has(p.name));
  const generated = new Date(options.nowMs).toISOString();
  const page = html`
    <!doctype html>
    <html lang="en">
      <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    ${refresh > 0 && html`<meta http-equiv="refresh" content="${refresh}">`}
    <title>NautilusLB status</title>
    <style>${STYLE}</style>
      </head>
      <body>
        <header>
    <h1>NautilusLB</h1>
    ${renderReadiness(snapshot)}
    <p class="meta">Generated <time datetime="${generated}">${generated}</time>${refresh > 0
      ? ` · refreshes every ${refresh}s`
      : " · not refreshing"} · read-only · also as <a href="/pools">JSON</a>, <a href="/metrics">metrics</a>, <a href="/readyz?verbose">readiness</a></p>
        </header>
        <main>
    ${renderDiscovery(snapshot, ctx)}
    ${listeners.length === 0
      ? html`
        <section class="listener">
          <h2>Listeners</h2>
          <p class="empty">No listener runs.</p>
        </section>
      `
      : listeners}
    ${orphans.length > 0 &&
      html`<section class="listener" id="other-pools"><h2>Pools of no listener</h2>${
        orphans.map((p) => renderPool(p, ctx))
      }</section>`}
    ${snapshot.workers !== undefined && renderWorkers(snapshot.workers, snapshot.pools)}
    ${renderConfig(snapshot, ctx)}
        </main>
      </body>
    </html>
  `;
  return page.value.trimStart();
}

interface Context {
  readonly nowMs: number;
  readonly rates: Rates | undefined;
}

/** True when pool `pool` is listener `listener`'s: the same name or `<listener>/<route>`. */
function belongsTo(pool: string, listener: string): boolean {
  return pool === listener || pool.startsWith(`${listener}/`);
}

function listenerRateKey(listener: string, direction: "in" | "out"): string {
  return `listener\0${listener}\0${direction}`;
}

function backendRateKey(pool: string, key: string, direction: "in" | "out"): string {
  return `backend\0${pool}\0${key}\0${direction}`;
}

function renderReadiness(snapshot: AdminSnapshot): Html {
  const reasons = snapshot.readyReasons.filter((r) => r.trim() !== "");
  return html`<p id="readiness" class="${snapshot.ready ? "ok" : "bad"}"><span class="badge">${
    snapshot.ready ? "ready" : "not ready"
  }</span>${
    reasons.length > 0 && html`
      <span class="why">${reasons.join("; ")}</span>
    `
  }</p>`;
}

function renderDiscovery(snapshot: AdminSnapshot, ctx: Context): Html {
  const d = snapshot.discovery;
  const state = d.state === "synced" ? "ok" : d.state === "syncing" ? "warn" : "bad";
  return html`
    <section id="discovery">
      <h2>Discovery</h2>
      <dl>
    <dt>Source</dt><dd>${d.source}</dd>
    <dt>State</dt><dd><span class="state ${state}">${d.state}</span></dd>
    <dt>Last change</dt><dd>${d.lastChangeAt === undefined
      ? "none yet"
      : since(d.lastChangeAt, ctx)}</dd>
    ${d.lastError !== undefined && html`
      <dt>Last error</dt>
      <dd class="error">${d.lastError}</dd>
    `}
    ${snapshot.healthTransitions !== undefined &&
      html`
        <dt>Health changes</dt>
        <dd>${count(snapshot.healthTransitions)} since start</dd>
      `}
      </dl>
    </section>
  `;
}

function renderListener(l: AdminListener, pools: readonly AdminPool[], ctx: Context): Html {
  const s = l.stats;
  const rateIn = rate(ctx, listenerRateKey(l.name, "in"));
  const rateOut = rate(ctx, listenerRateKey(l.name, "out"));
  return html`<section class="listener" data-listener="${l.name}">
<h2>Listener <span class="name">${l.name}</span> <code>${l.address}</code>${admission(l)}</h2>
<table class="stats"><tr>
<th>Active</th><th>Accepted</th><th>Refused</th><th>From clients</th><th>To clients</th><th>Connect failures</th><th>No backend</th><th>Idle timeouts</th>
</tr><tr>
<td class="active">${count(s.activeConnections)}</td><td>${count(s.accepted)}</td><td>${
    count(s.refused)
  }${byCause(s.refusedByCause)}</td>
<td>${bytes(s.bytesFromClients)}${rateIn}</td><td>${bytes(s.bytesToClients)}${rateOut}</td>
<td>${count(s.connectFailures)}</td><td>${count(s.noBackend)}</td><td>${count(s.idleTimeouts)}</td>
</tr></table>
${
    pools.length === 0
      ? html`<p class="empty">No pool.</p>`
      : pools.map((p) =>
        renderPool(p, ctx, p.name === l.name ? undefined : p.name.slice(l.name.length + 1))
      )
  }
</section>`;
}

/** The listener's source ACL and per-source limit, when known; nothing when both are off. */
function admission(l: AdminListener): Html | undefined {
  const parts: Html[] = [];
  if (l.access !== undefined) {
    for (const kind of ["allow", "deny"] as const) {
      const list = l.access[kind];
      if (list.length === 0) continue;
      const shown = list.slice(0, MAX_SHOWN_ACCESS_ENTRIES).join(", ");
      const more = list.length > MAX_SHOWN_ACCESS_ENTRIES
        ? ` and ${list.length - MAX_SHOWN_ACCESS_ENTRIES} more`
        : "";
      parts.push(html`<span class="${kind}">${kind} ${shown}${more}</span>`);
    }
  }
  if (l.maxConnectionsPerSource !== undefined && l.maxConnectionsPerSource > 0) {
    parts.push(
      html`<span class="per-source">at most ${count(l.maxConnectionsPerSource)} per source</span>`,
    );
  }
  if (parts.length === 0) return undefined;
  const joined = parts.map((p, i) => i === 0 ? p : html`${SEPARATOR}${p}`);
  return html`${SPACE}<span class="admission">${joined}</span>`;
}

const SEPARATOR = new Html(" · ");
const SPACE = new Html(" ");

function renderPool(pool: AdminPool, ctx: Context, route?: string): Html {
  const members = pool.backends.filter((b) => !b.isDraining);
  const eligible = members.filter((b) => b.health !== "unhealthy").length;
  const state = eligible === 0 ? "bad" : eligible < members.length ? "warn" : "ok";
  return html`<div class="pool" data-pool="${pool.name}">
<h3>${
    route === undefined
      ? html`Pool <span class="name">${pool.name}</span>`
      : html`Route <span class="name">${route}</span>`
  }
<span class="state ${state}">${eligible}/${members.length} eligible</span>
${
    pool.isFailOpen &&
    html`<span class="state bad">fail-open: no healthy backend, any is used</span>`
  }
</h3>
${
    pool.fingerprint !== undefined &&
    html`<p class="meta">Maglev fingerprint <code class="fingerprint">${pool.fingerprint}</code></p>`
  }
${
    pool.backends.length === 0 ? html`<p class="empty">No backend.</p>` : html`
      <table class="backends">
        <thead>
          <tr>
            <th>Backend</th>
            <th>Health</th>
            <th>Why</th>
            <th>Since</th>
            <th>Check</th>
            <th>Weight</th>
            <th>Active</th>
            <th>Connections</th>
            <th>Connect failures</th>
            <th>To backend</th>
            <th>From backend</th>
          </tr>
        </thead>
        <tbody>${pool.backends.map((b) => renderBackend(pool.name, b, ctx))}</tbody>
      </table>
    `
  }
${
    pool.warnings !== undefined && pool.warnings.length > 0 &&
    html`<ul class="warnings">${pool.warnings.map((w) => html`<li>${w}</li>`)}</ul>`
  }
${renderExcluded(pool.excluded)}
</div>`;
}

function renderBackend(pool: string, b: AdminBackend, ctx: Context): Html {
  const status = b.isDraining ? "draining" : b.health;
  const c = b.counters;
  return html`
    <tr class="backend ${status}" data-backend="${b.key}">
      <td><code>${b.key}</code>${origin(b)}</td>
      <td><span class="health ${status}">${b.isDraining
        ? `draining (${b.health})`
        : b.health}</span></td>
      <td class="why">${why(b)}</td>
      <td>${b.healthDetail === undefined ? "" : since(b.healthDetail.sinceMs, ctx)}</td>
      <td>${b.check === undefined ? "" : describeCheck(b.check)}</td>
      <td>${count(b.weight)}</td>
      <td class="active">${count(b.activeConnections)}${b.maxConnections
        ? html`
          <span class="meta">of ${count(b.maxConnections)}</span>
        `
        : ""}</td>
      <td>${c === undefined ? "" : count(c.connections)}</td>
      <td>${c === undefined ? "" : count(c.connectFailures)}</td>
      <td>${c === undefined
        ? ""
        : html`${bytes(c.bytesToBackend)}${rate(ctx, backendRateKey(pool, b.key, "in"))}`}</td>
      <td>${c === undefined
        ? ""
        : html`${bytes(c.bytesFromBackend)}${rate(ctx, backendRateKey(pool, b.key, "out"))}`}</td>
    </tr>
  `;
}

/** Refusals by cause (`limit 3, acl 1`), the causes with none left out. */
function byCause(causes: Readonly<Record<string, number>> | undefined): Html | undefined {
  const parts = Object.entries(causes ?? {}).filter(([, n]) => n > 0).map(([cause, n]) =>
    `${cause} ${count(n)}`
  );
  if (parts.length === 0) return undefined;
  return html`
    <span class="meta causes">(${parts.join(", ")})</span>
  `;
}

/** Where a backend comes from (Service, node, pod), on a line of its own; nothing for static ones. */
function origin(b: AdminBackend): Html | undefined {
  const parts = [b.service, b.node && `node ${b.node}`, b.pod && `pod ${b.pod}`].filter((p) =>
    typeof p === "string" && p !== ""
  );
  if (parts.length === 0) return undefined;
  return html`<br><span class="meta origin">${parts.join(" · ")}</span>`;
}

/** Why a backend has its state, in words: what decided it and the failure behind it. */
function why(b: AdminBackend): string {
  const parts: string[] = [];
  if (b.isDraining) parts.push("removed from the pool, open connections finish");
  const d = b.healthDetail;
  if (d === undefined) {
    if (b.health === "unknown" && !b.isDraining) {
      parts.push(b.check?.enabled === false ? "no active check" : "not checked yet");
    }
  } else {
    const decided = d.cause === "active"
      ? (b.health === "unhealthy" ? "active check failed" : "active check passed")
      : d.cause === "passive"
      ? (b.health === "unhealthy" ? "ejected after failed client connects" : "client connects")
      : d.cause === "config"
      ? "active checks turned off"
      : d.cause === "cooldown"
      ? "passive ejection ended"
      : d.cause;
    parts.push(d.error === undefined ? decided : `${decided}: ${d.error}`);
  }
  return parts.join("; ");
}

function describeCheck(check: HealthCheckSpec): string {
  if (!check.enabled) return "passive only";
  const kind = check.http !== undefined
    ? `http :${check.http.port}${check.http.path}`
    : `${
      check.tls
        ? "tls"
        : check.send !== undefined || check.expect !== undefined
        ? "tcp send/expect"
        : "tcp"
    }${check.port !== undefined ? ` :${check.port}` : ""}`;
  return `${kind} every ${
    formatDurationMs(check.intervalMs)
  }, rise ${check.rise}, fall ${check.fall}`;
}

function renderExcluded(excluded: readonly ExcludedBackend[] | undefined): Html | undefined {
  if (excluded === undefined || excluded.length === 0) return undefined;
  return html`
    <details class="excluded" ${excluded.length <= 10
      ? html`
        open
      `
      : ""}>
      <summary>${count(excluded.length)} left out by discovery</summary>
      <table>
        <thead>
          <tr>
            <th>Address</th>
            <th>Service</th>
            <th>Node</th>
            <th>Pod</th>
            <th>Reason</th>
            <th>Detail</th>
          </tr>
        </thead>
        <tbody>${excluded.map((e) =>
          html`
            <tr>
              <td><code>${e.address ?? ""}</code></td>
              <td>${e.service ?? ""}</td>
              <td>${e.node ?? ""}</td>
              <td>${e.pod ?? ""}</td>
              <td><span class="reason">${e.reason}</span></td>
              <td>${e.detail ?? ""}</td>
            </tr>
          `
        )}</tbody>
      </table>
    </details>
  `;
}

function renderWorkers(workers: readonly AdminWorker[], pools: readonly AdminPool[]): Html {
  const fingerprints = new Map(pools.map((p) => [p.name, p.fingerprint]));
  return html`
    <section id="workers">
      <h2>Workers</h2>
      <table>
        <thead>
          <tr>
            <th>Worker</th>
            <th>Restarts</th>
            <th>Accepted</th>
            <th>Active</th>
            <th>Fingerprints</th>
          </tr>
        </thead>
        <tbody>${workers.map((w) => {
          const differ = w.pools.filter((p) =>
            p.fingerprint !== undefined && fingerprints.get(p.name) !== p.fingerprint
          );
          return html`
            <tr>
              <td>${w.worker}</td>
              <td>${count(w.restarts)}</td>
              <td>${count(w.accepted)}</td>
              <td>${count(w.activeConnections)}</td>
              <td>${differ.length === 0
                ? html`<span class="state ok">agree</span>`
                : html`<span class="state warn">differ: ${
                  differ.map((p) => `${p.name} ${p.fingerprint}`).join(", ")
                }</span>`}</td>
            </tr>
          `;
        })}</tbody>
      </table>
    </section>
  `;
}

function renderConfig(snapshot: AdminSnapshot, ctx: Context): Html | undefined {
  const c = snapshot.config;
  if (c === undefined) return undefined;
  const recent: readonly AdminReload[] = [...(c.recentReloads ?? [])].reverse();
  return html`<section id="config"><h2>Config</h2>
<dl>
<dt>Loaded</dt><dd>${since(c.lastSuccessAt, ctx)}</dd>
<dt>SHA-256</dt><dd><code title="${c.sha256}">${c.sha256.slice(0, 16)}</code></dd>
<dt>Reloads</dt><dd>${count(c.reloadsSucceeded)} applied, ${count(c.reloadsFailed)} refused</dd>
</dl>
<h3>Recent reloads</h3>
${
    recent.length === 0 ? html`<p class="empty">No reload since start.</p>` : html`
      <table class="reloads">
        <thead>
          <tr>
            <th>When</th>
            <th>Outcome</th>
            <th>What</th>
          </tr>
        </thead>
        <tbody>${recent.map((r) =>
          html`
            <tr class="${r.outcome}">
              <td>${since(r.atMs, ctx)}</td>
              <td><span class="state ${r.outcome === "refused" ? "bad" : "ok"}">${r
                .outcome}</span></td>
              <td>${r.summary}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `
  }
</section>`;
}

function since(atMs: number, ctx: Context): Html {
  const iso = new Date(atMs).toISOString();
  const ago = Math.max(0, Math.round((ctx.nowMs - atMs) / 1000)) * 1000;
  return html`<time datetime="${iso}" title="${iso}">${
    ago === 0 ? "now" : `${formatDurationMs(ago)} ago`
  }</time>`;
}

function rate(ctx: Context, key: string): Html | undefined {
  const perSecond = ctx.rates?.perSecond.get(key);
  if (perSecond === undefined) return undefined;
  return html`
    <span class="rate">${bytes(perSecond)}/s</span>
  `;
}

const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

function count(n: number): string {
  return NUMBER.format(n);
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** Bytes for humans: `512 B`, `1.5 KiB`, `3.0 GiB`. */
export function bytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

const STYLE = new Html(`
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 2rem; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0 1rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.4rem; margin: .6rem 0; }
h2 { font-size: 1.15rem; margin: 1.2rem 0 .4rem; }
h3 { font-size: 1rem; margin: .8rem 0 .3rem; }
.meta, .empty { color: var(--muted); }
code { font: 12px/1.3 ui-monospace, monospace; }
table { border-collapse: collapse; margin: .2rem 0 .6rem; }
th, td { border: 1px solid var(--line); padding: .15rem .45rem; text-align: left; vertical-align: top; }
th { font-weight: 600; background: color-mix(in srgb, var(--line) 35%, transparent); }
td.why { max-width: 28rem; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .2rem 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.badge, .state, .health { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: 12px; font-weight: 600; border: 1px solid currentColor; }
#readiness.ok .badge, .state.ok, .health.healthy { color: var(--ok); }
.state.warn, .health.draining, .health.unknown { color: var(--warn); }
#readiness.bad .badge, .state.bad, .health.unhealthy, .error { color: var(--bad); }
tr.unhealthy td { background: color-mix(in srgb, var(--bad) 8%, transparent); }
tr.draining td { background: color-mix(in srgb, var(--warn) 8%, transparent); }
.rate { color: var(--muted); white-space: nowrap; }
time { white-space: nowrap; }
.pool { margin-left: .8rem; }
ul.warnings { color: var(--warn); margin: .2rem 0; padding-left: 1.2rem; }
section.listener { border-top: 1px solid var(--line); }
h2 .admission { font-size: 12px; font-weight: normal; color: var(--muted); overflow-wrap: anywhere; }
`);
