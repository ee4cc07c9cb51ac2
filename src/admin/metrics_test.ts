import assert from "node:assert/strict";
import { Histogram } from "../core/histogram.ts";
import { AdminMetrics } from "./metrics.ts";
import { sampleSnapshot, stats } from "./_test_snapshot.ts";

function lines(text: string): Set<string> {
  return new Set(text.split("\n"));
}

Deno.test("AdminMetrics renders listener counters and gauges with exact values", async () => {
  const metrics = new AdminMetrics({ processMetrics: false });
  const text = await metrics.render(sampleSnapshot());
  const got = lines(text);
  for (
    const line of [
      "# TYPE nautiluslb_listener_connections_accepted_total counter",
      'nautiluslb_listener_connections_accepted_total{listener="a"} 3',
      "# TYPE nautiluslb_listener_connections_active gauge",
      'nautiluslb_listener_connections_active{listener="a"} 2',
      "# TYPE nautiluslb_listener_bytes_total counter",
      'nautiluslb_listener_bytes_total{listener="a",direction="from_client"} 1024',
      'nautiluslb_listener_bytes_total{listener="a",direction="to_client"} 4096',
      'nautiluslb_listener_connect_failures_total{listener="a"} 5',
      'nautiluslb_listener_idle_timeouts_total{listener="a"} 7',
      "# TYPE nautiluslb_backend_weight gauge",
      'nautiluslb_backend_weight{pool="a",backend="10.0.0.2:80"} 2',
    ]
  ) {
    assert.ok(got.has(line), `missing line: ${line}\n${text}`);
  }
});

Deno.test("AdminMetrics renders backend, pool and process-level metrics", async () => {
  const metrics = new AdminMetrics({ processMetrics: false });
  const text = await metrics.render(sampleSnapshot());
  const got = lines(text);
  for (
    const line of [
      'nautiluslb_backend_up{pool="a",backend="10.0.0.1:80"} 1',
      'nautiluslb_backend_up{pool="a",backend="10.0.0.2:80"} 0',
      'nautiluslb_backend_up{pool="a",backend="[fd00::3]:80"} 1',
      'nautiluslb_backend_health_state{pool="a",backend="10.0.0.1:80",state="healthy"} 1',
      'nautiluslb_backend_health_state{pool="a",backend="10.0.0.1:80",state="unknown"} 0',
      'nautiluslb_backend_health_state{pool="a",backend="10.0.0.1:80",state="unhealthy"} 0',
      'nautiluslb_backend_health_state{pool="a",backend="10.0.0.2:80",state="unhealthy"} 1',
      'nautiluslb_backend_health_state{pool="a",backend="[fd00::3]:80",state="unknown"} 1',
      'nautiluslb_backend_connections_active{pool="a",backend="10.0.0.1:80"} 2',
      'nautiluslb_backend_connections_active{pool="a",backend="[fd00::3]:80"} 1',
      'nautiluslb_backend_draining{pool="a",backend="10.0.0.1:80"} 0',
      'nautiluslb_backend_draining{pool="a",backend="[fd00::3]:80"} 1',
      'nautiluslb_pool_backends{pool="a"} 2',
      'nautiluslb_pool_healthy_backends{pool="a"} 1',
      'nautiluslb_pool_fail_open{pool="a"} 0',
      'nautiluslb_pool_info{pool="a",fingerprint="abc123"} 1',
      "nautiluslb_discovery_connected 1",
      'nautiluslb_discovery_state{source="kubernetes",state="synced"} 1',
      'nautiluslb_discovery_state{source="kubernetes",state="disconnected"} 0',
      'nautiluslb_discovery_last_change_timestamp_seconds{source="kubernetes"} 1700000000',
      "nautiluslb_ready 1",
      "# TYPE nautiluslb_health_transitions_total counter",
      "nautiluslb_health_transitions_total 4",
    ]
  ) {
    assert.ok(got.has(line), `missing line: ${line}\n${text}`);
  }
  assert.ok(!text.includes("process_cpu"), "process metrics were disabled");
});

Deno.test("AdminMetrics drops series that left the snapshot and tracks new values", async () => {
  const metrics = new AdminMetrics({ processMetrics: false });
  await metrics.render(sampleSnapshot());
  const text = await metrics.render(
    sampleSnapshot({
      ready: false,
      discovery: { source: "kubernetes", state: "disconnected" },
      listeners: [{ name: "b", address: ":81", stats: stats({ accepted: 9 }) }],
      pools: [{ name: "b", isFailOpen: true, backends: [] }],
      healthTransitions: undefined,
    }),
  );
  const got = lines(text);
  assert.ok(got.has('nautiluslb_listener_connections_accepted_total{listener="b"} 9'), text);
  assert.ok(got.has('nautiluslb_pool_fail_open{pool="b"} 1'), text);
  assert.ok(got.has('nautiluslb_pool_backends{pool="b"} 0'), text);
  assert.ok(got.has("nautiluslb_discovery_connected 0"), text);
  assert.ok(got.has("nautiluslb_ready 0"), text);
  assert.ok(got.has("nautiluslb_health_transitions_total 0"), text);
  assert.ok(!text.includes('listener="a"'), text);
  assert.ok(!text.includes('pool="a"'), text);
  assert.ok(!text.includes("nautiluslb_pool_info{"), text);
  assert.ok(!text.includes("nautiluslb_discovery_last_change_timestamp_seconds{"), text);
});

Deno.test("AdminMetrics escapes label values and skips invalid counter values", async () => {
  const metrics = new AdminMetrics({ processMetrics: false });
  const text = await metrics.render(
    sampleSnapshot({
      listeners: [
        { name: 'we"ird\\', address: ":1", stats: stats({ accepted: 1 }) },
        { name: "neg", address: ":2", stats: stats({ accepted: -1, connectFailures: NaN }) },
      ],
    }),
  );
  const got = lines(text);
  assert.ok(
    got.has('nautiluslb_listener_connections_accepted_total{listener="we\\"ird\\\\"} 1'),
    text,
  );
  assert.ok(!text.includes('nautiluslb_listener_connections_accepted_total{listener="neg"}'), text);
  assert.ok(
    !text.includes('nautiluslb_listener_connect_failures_total{listener="neg"}'),
    text,
  );
});

Deno.test("AdminMetrics serializes concurrent renders, one snapshot each", async () => {
  const metrics = new AdminMetrics({ processMetrics: false });
  const texts = await Promise.all(
    [1, 2, 3, 4].map((n) =>
      metrics.render(
        sampleSnapshot({
          listeners: [{ name: "a", address: ":1", stats: stats({ accepted: n }) }],
        }),
      )
    ),
  );
  texts.forEach((text, i) => {
    assert.ok(
      lines(text).has(`nautiluslb_listener_connections_accepted_total{listener="a"} ${i + 1}`),
      text,
    );
  });
});

Deno.test("AdminMetrics includes working process metrics and drops Deno's empty event-loop histogram", async () => {
  const first = new AdminMetrics();
  const second = new AdminMetrics();
  for (const metrics of [first, second]) {
    const text = await metrics.render(sampleSnapshot());
    assert.match(text, /^process_cpu_seconds_total \d/m);
    assert.match(text, /^process_resident_memory_bytes \d/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds \d/m);
    assert.ok(!text.includes("nodejs_eventloop_lag_p99_seconds"), text);
    assert.ok(!/ nan$/im.test(text), "no NaN samples");
    // The resident set size comes from Deno (the /proc reading needs --allow-all): never 0.
    const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1]);
    assert.ok(rss > 10 * 2 ** 20, `rss ${rss}`);
    assert.ok(Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1]) > 0, text);
    assert.ok(lines(text).has('nautiluslb_listener_connections_accepted_total{listener="a"} 3'));
  }
  assert.equal(first.contentType, "text/plain; version=0.0.4; charset=utf-8");
});

Deno.test("AdminMetrics renders refusals by cause, duration histograms and backend totals", async () => {
  const connectionDuration = new Histogram([0.1, 1]);
  for (const seconds of [0.05, 0.5, 0.5, 30]) connectionDuration.observe(seconds);
  const connectDuration = new Histogram([0.001]);
  connectDuration.observe(0.0005);
  const base = sampleSnapshot();
  const snapshot = {
    ...base,
    listeners: [{
      ...base.listeners[0]!,
      stats: stats({
        refusedByCause: {
          limit: 4,
          no_backend: 2,
          proxy_header: 1,
          untrusted: 0,
          acl: 3,
          source_limit: 5,
          tls_peek_timeout: 0,
          tls_hello_too_large: 0,
          tls_no_route: 3,
          tls_bad_hello: 0,
        },
        connectionDuration,
        connectDuration,
      }),
    }],
    pools: [{
      ...base.pools[0]!,
      backends: [{
        ...base.pools[0]!.backends[0]!,
        counters: {
          connections: 9,
          connectFailures: 3,
          bytesToBackend: 100,
          bytesFromBackend: 2000,
        },
      }],
    }],
  };
  const text = await new AdminMetrics({ processMetrics: false }).render(snapshot);
  const got = lines(text);
  for (
    const line of [
      "# TYPE nautiluslb_connections_refused_total counter",
      'nautiluslb_connections_refused_total{listener="a",cause="limit"} 4',
      'nautiluslb_connections_refused_total{listener="a",cause="no_backend"} 2',
      'nautiluslb_connections_refused_total{listener="a",cause="proxy_header"} 1',
      'nautiluslb_connections_refused_total{listener="a",cause="untrusted"} 0',
      'nautiluslb_connections_refused_total{listener="a",cause="acl"} 3',
      'nautiluslb_connections_refused_total{listener="a",cause="source_limit"} 5',
      'nautiluslb_connections_refused_total{listener="a",cause="tls_peek_timeout"} 0',
      'nautiluslb_connections_refused_total{listener="a",cause="tls_no_route"} 3',
      "# TYPE nautiluslb_connection_duration_seconds histogram",
      'nautiluslb_connection_duration_seconds_bucket{listener="a",le="0.1"} 1',
      'nautiluslb_connection_duration_seconds_bucket{listener="a",le="1"} 3',
      'nautiluslb_connection_duration_seconds_bucket{listener="a",le="+Inf"} 4',
      'nautiluslb_connection_duration_seconds_sum{listener="a"} 31.05',
      'nautiluslb_connection_duration_seconds_count{listener="a"} 4',
      "# TYPE nautiluslb_backend_connect_duration_seconds histogram",
      'nautiluslb_backend_connect_duration_seconds_bucket{listener="a",le="0.001"} 1',
      'nautiluslb_backend_connect_duration_seconds_count{listener="a"} 1',
      'nautiluslb_backend_connections_total{pool="a",backend="10.0.0.1:80"} 9',
      'nautiluslb_backend_connect_failures_total{pool="a",backend="10.0.0.1:80"} 3',
      'nautiluslb_backend_bytes_total{pool="a",backend="10.0.0.1:80",direction="to_backend"} 100',
      'nautiluslb_backend_bytes_total{pool="a",backend="10.0.0.1:80",direction="from_backend"} 2000',
    ]
  ) {
    assert.ok(got.has(line), `missing line: ${line}\n${text}`);
  }
});

Deno.test("AdminMetrics renders config reloads, the last success and the file hash", async () => {
  const metrics = new AdminMetrics({ processMetrics: false });
  const without = await metrics.render(sampleSnapshot());
  assert.ok(!without.includes("nautiluslb_config_info{"), "no config series without status");
  const sha256 = "ab".repeat(32);
  const text = await metrics.render(sampleSnapshot({
    config: { reloadsSucceeded: 2, reloadsFailed: 1, lastSuccessAt: 1_700_000_000_500, sha256 },
  }));
  const got = lines(text);
  for (
    const line of [
      "# TYPE nautiluslb_config_reloads_total counter",
      'nautiluslb_config_reloads_total{result="success"} 2',
      'nautiluslb_config_reloads_total{result="failure"} 1',
      "nautiluslb_config_last_reload_success_timestamp_seconds 1700000000.5",
      `nautiluslb_config_info{sha256="${sha256}"} 1`,
    ]
  ) {
    assert.ok(got.has(line), `missing line: ${line}\n${text}`);
  }
});

Deno.test("AdminMetrics leaves out default metrics that never move under Deno", async () => {
  const text = await new AdminMetrics().render(sampleSnapshot());
  for (
    const name of [
      "nodejs_gc_duration_seconds",
      "nodejs_active_handles",
      "nodejs_active_requests",
      "nodejs_active_resources",
    ]
  ) {
    assert.ok(!new RegExp(`^# TYPE ${name}\\b`, "m").test(text), `${name} exported`);
  }
  assert.match(text, /^process_cpu_seconds_total \d/m);
});

Deno.test("AdminMetrics exports no process metric it cannot read under serve's permissions", async () => {
  const text = await new AdminMetrics().render(sampleSnapshot());
  // These read /proc/self, which Deno opens only under --allow-all: they would all be 0.
  for (
    const name of [
      "process_virtual_memory_bytes",
      "process_heap_bytes",
      "process_open_fds",
      "process_max_fds",
    ]
  ) {
    assert.ok(!new RegExp(`^${name}\\b`, "m").test(text), `${name} exported`);
  }
  assert.doesNotMatch(text, /^process_resident_memory_bytes 0$/m);
});

Deno.test("AdminMetrics exports nautiluslb_build_info with the version and runtime", async () => {
  const text = await new AdminMetrics({ processMetrics: false }).render(sampleSnapshot());
  const { version } = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  assert.ok(
    lines(text).has(
      `nautiluslb_build_info{version="${version}",deno="${Deno.version.deno}",v8="${Deno.version.v8}",typescript="${Deno.version.typescript}"} 1`,
    ),
    text,
  );
});

Deno.test("AdminMetrics has one refusal family: the old per-cause names are gone", async () => {
  const text = await new AdminMetrics({ processMetrics: false }).render(sampleSnapshot());
  assert.ok(!text.includes("nautiluslb_listener_connections_refused_total"), text);
  assert.ok(!text.includes("nautiluslb_listener_no_backend_total"), text);
  assert.match(text, /^# TYPE nautiluslb_connections_refused_total counter$/m);
});
