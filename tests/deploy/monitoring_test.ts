/**
 * deploy/monitoring proven with Prometheus from Debian's packages: the rules pass
 * `promtool check rules`, the PrometheusRule holds the same groups, and a Prometheus scraping
 * a running `serve` (serve's own permissions) under load returns data for every dashboard
 * panel and every metric the alerts read; a killed backend makes its alert pending, then
 * firing.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { freePort, HOST } from "../_helpers.ts";
import { deployTest, NamedServer, pollFor, REPO_ROOT, sh, stopChild } from "./_deploy.ts";

const MONITORING = `${REPO_ROOT}deploy/monitoring`;

// deno-lint-ignore no-explicit-any
type Obj = any;

Deno.test("the PrometheusRule holds exactly the groups of rules.yaml", async () => {
  const rules = parse(await Deno.readTextFile(`${MONITORING}/rules.yaml`));
  const cr = parse(await Deno.readTextFile(`${MONITORING}/prometheusrule.yaml`));
  assert.equal(cr.kind, "PrometheusRule");
  assert.deepEqual(cr.spec, rules);
  const alerts = rules.groups.flatMap((g: Obj) => g.rules.map((r: Obj) => r.alert));
  assert.deepEqual(alerts, [
    "NautilusLBPoolNoHealthyBackend",
    "NautilusLBBackendFlapping",
    "NautilusLBDiscoveryDisconnected",
    "NautilusLBReloadFailed",
    "NautilusLBRefusalsRising",
    "NautilusLBNearFdLimit",
  ]);
});

deployTest("promtool check rules is clean", { tools: ["promtool"] }, async () => {
  const out = await sh("promtool", ["check", "rules", `${MONITORING}/rules.yaml`]);
  assert.match(out, /SUCCESS: 6 rules found/);
});

/** Prometheus's HTTP API on `base`. */
async function api(base: string, path: string): Promise<Obj> {
  const res = await fetch(`${base}${path}`);
  const body = await res.json();
  assert.equal(body.status, "success", JSON.stringify(body));
  return body.data;
}

async function query(base: string, expr: string): Promise<Obj[]> {
  return (await api(base, `/api/v1/query?query=${encodeURIComponent(expr)}`)).result;
}

deployTest(
  "Prometheus scraping serve under load: every panel and alert has data, a killed backend fires",
  {
    tools: ["prometheus"],
  },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb-prometheus-" });
    const alpha = new NamedServer(HOST, "alpha");
    const beta = new NamedServer(HOST, "beta");
    const webPort = freePort();
    const soloPort = freePort();
    const adminPort = freePort();
    const promPort = freePort();
    const base = `http://${HOST}:${promPort}`;
    const load = new AbortController();
    let serve: Deno.ChildProcess | undefined;
    let prometheus: Deno.ChildProcess | undefined;
    let loadDone: Promise<void> = Promise.resolve();
    try {
      const health = `    healthCheck: { interval: 500ms, timeout: 300ms, rise: 1, fall: 2 }\n`;
      await Deno.writeTextFile(
        `${dir}/config.yaml`,
        `settings:\n  adminAddress: "${HOST}:${adminPort}"\n  logLevel: warning\nconfigurations:\n` +
          `  - name: web\n    listenerAddress: "${HOST}:${webPort}"\n    maxConnections: 5\n` +
          `    backends: ["${HOST}:${alpha.port}"]\n${health}` +
          `  - name: solo\n    listenerAddress: "${HOST}:${soloPort}"\n` +
          `    backends: ["${HOST}:${beta.port}"]\n${health}`,
      );
      serve = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--unstable-net",
          "--allow-net",
          "--allow-read",
          "--allow-env",
          "src/main.ts",
          "serve",
          "-c",
          `${dir}/config.yaml`,
        ],
        cwd: REPO_ROOT,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await Deno.writeTextFile(
        `${dir}/prometheus.yml`,
        `global: { scrape_interval: 1s, evaluation_interval: 1s }\n` +
          `rule_files: ["${MONITORING}/rules.yaml"]\n` +
          `scrape_configs:\n  - job_name: nautiluslb\n` +
          `    static_configs: [{ targets: ["${HOST}:${adminPort}"] }]\n`,
      );
      prometheus = new Deno.Command("prometheus", {
        args: [
          `--config.file=${dir}/prometheus.yml`,
          `--storage.tsdb.path=${dir}/data`,
          `--web.listen-address=${HOST}:${promPort}`,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();

      // Load: connections to both listeners, some beyond web's maxConnections (refusals).
      loadDone = (async () => {
        while (!load.signal.aborted) {
          const conns = await Promise.allSettled(
            [webPort, webPort, soloPort].map((port) => Deno.connect({ hostname: HOST, port })),
          );
          await new Promise((r) => setTimeout(r, 50));
          for (const c of conns) if (c.status === "fulfilled") c.value.close();
        }
      })();

      await pollFor("the scrape target up", 60_000, async () => {
        const up = await query(base, `up{job="nautiluslb"} == 1`);
        return up.length === 1 ? true : undefined;
      });
      // Two scrapes at least, so rate() has two samples.
      await new Promise((r) => setTimeout(r, 3_000));

      const dashboard = JSON.parse(await Deno.readTextFile(`${MONITORING}/grafana-dashboard.json`));
      const exprs: string[] = dashboard.panels.flatMap((p: Obj) =>
        p.targets.map((t: Obj) => t.expr)
      );
      assert.ok(exprs.length >= 15);
      for (const expr of exprs) {
        const concrete = expr.replaceAll("$__rate_interval", "1m").replaceAll("$instance", ".*");
        const result = await pollFor(`data for ${concrete}`, 20_000, async () => {
          const r = await query(base, concrete);
          return r.length > 0 ? r : undefined;
        });
        assert.ok(result.length > 0, concrete);
      }
      // Truthful process metrics under serve's permissions.
      assert.equal((await query(base, "process_resident_memory_bytes > 10e6")).length, 1);
      assert.equal((await query(base, `nautiluslb_build_info{version="0.1.0"}`)).length, 1);

      const rules = parse(await Deno.readTextFile(`${MONITORING}/rules.yaml`));
      for (const rule of rules.groups.flatMap((g: Obj) => g.rules)) {
        await query(base, rule.expr); // valid and evaluable
        for (const name of new Set<string>(rule.expr.match(/\b(?:nautiluslb|process)_[a-z_]+/g))) {
          const series = await query(base, `count(${name})`);
          assert.ok(series.length > 0, `${rule.alert}: no series ${name}`);
        }
      }
      const loaded = await api(base, "/api/v1/rules");
      assert.equal(loaded.groups[0].rules.length, 6);

      // Kill the only backend of `solo`: its alert goes pending, then firing.
      await beta.close();
      const stateOf = async () => {
        const { alerts } = await api(base, "/api/v1/alerts");
        return alerts.find((a: Obj) =>
          a.labels.alertname === "NautilusLBPoolNoHealthyBackend" && a.labels.pool === "solo"
        )?.state as string | undefined;
      };
      assert.equal(
        await pollFor("pending", 30_000, async () => {
          const s = await stateOf();
          return s === "pending" ? s : undefined;
        }),
        "pending",
      );
      assert.equal(
        await pollFor("firing", 60_000, async () => {
          const s = await stateOf();
          return s === "firing" ? s : undefined;
        }),
        "firing",
      );
      const web = await query(
        base,
        `ALERTS{alertname="NautilusLBPoolNoHealthyBackend",pool="web"}`,
      );
      assert.equal(web.length, 0, "the healthy pool does not alert");
    } finally {
      load.abort();
      await loadDone;
      if (prometheus !== undefined) await stopChild(prometheus);
      if (serve !== undefined) await stopChild(serve);
      await alpha.close();
      await beta.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
