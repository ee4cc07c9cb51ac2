/**
 * `nautiluslb serve`: run the load balancer.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import type { Config, ListenerConfig } from "../config/mod.ts";
import type { PoolPlan } from "../core/plan.ts";
import type { Backend } from "../core/types.ts";
import { createBalancer } from "../balancer/mod.ts";
import { getLogger, writeOut } from "../log/mod.ts";
import { Pool } from "../pool/mod.ts";
import { ProxyListener } from "../proxy/mod.ts";
import { HealthScheduler, type HealthTransition } from "../health/mod.ts";
import { healthTargetsOf } from "../resolve/mod.ts";
import { DEFAULT_CHECK_CONCURRENCY, poolsDown, probeAll } from "./_check.ts";
import { type AdminServer, type AdminSnapshot, startAdminServer } from "../admin/mod.ts";
import { parseHostPort } from "../core/address.ts";
import { CliError, EXIT_BAD, EXIT_OK } from "./_errors.ts";
import { renderPlans } from "./_render.ts";
import { openFromFlags, type PlanSource } from "./_source.ts";

/** Adds `serve` to the program. */
export function addServeCommand(
  program: Command,
  setExit: (code: number) => void,
  signal: AbortSignal,
): void {
  program.command("serve")
    .description("run the load balancer")
    .option("--dry-run", "resolve everything, check that listeners can bind, print the plan, exit")
    .option(
      "--from-manifests <path>",
      "take pools from a YAML file or directory instead of a cluster",
    )
    .option("--kubeconfig <file>", "kubeconfig file (overrides settings.kubeconfigPath)")
    .option("--context <name>", "kubeconfig context")
    .addHelpText(
      "after",
      "\nExamples:\n  nautiluslb serve -c config.yaml\n  nautiluslb serve --dry-run",
    )
    .action(async (options, command) => {
      const { config, source } = await openFromFlags(command, options, signal);
      try {
        if (options.dryRun) {
          setExit(await dryRun(config, source, signal));
          return;
        }
        setExit(await serve(config, source, signal));
      } finally {
        await source.close();
      }
    });
}

/** Turns plan backends into pool backends. */
export function backendsOf(plan: PoolPlan): Backend[] {
  return plan.backends.map((b) => ({
    key: b.address,
    host: b.host,
    port: b.port,
    weight: b.weight,
  }));
}

function bindHost(listener: ListenerConfig): string {
  return listener.host === "" ? "0.0.0.0" : listener.host;
}

/**
 * `serve --dry-run`: what `discover` resolves, one health round as `check` runs it, and
 * whether every listener (and the admin address) could bind. Binds nothing for traffic.
 */
async function dryRun(config: Config, source: PlanSource, signal: AbortSignal): Promise<number> {
  const plans = source.plans;
  const health = await probeAll(healthTargetsOf(plans), DEFAULT_CHECK_CONCURRENCY, signal);
  writeOut(renderPlans(plans, { format: "table", explain: true, health }));
  const problems: string[] = [];
  const tryBind = (what: string, address: string, hostname: string, port: number) => {
    try {
      Deno.listen({ hostname, port }).close();
    } catch (error) {
      problems.push(
        `${what}: cannot bind ${address}: ${error instanceof Error ? error.message : error}`,
      );
    }
  };
  for (const listener of config.configurations) {
    tryBind(listener.name, listener.listenerAddress, bindHost(listener), listener.port);
  }
  if (config.settings.adminAddress !== "") {
    const { host, port } = parseHostPort(config.settings.adminAddress);
    tryBind("admin", config.settings.adminAddress, host === "" ? "127.0.0.1" : host, port);
  }
  for (const plan of plans) {
    if (plan.backends.length === 0) problems.push(`${plan.name}: pool has no backends`);
    else if (poolsDown([plan], health).length > 0) {
      problems.push(`${plan.name}: no healthy backend (0/${plan.backends.length})`);
    }
  }
  if (problems.length > 0) {
    writeOut(`\nDry run found ${problems.length} problem(s):\n${problems.join("\n")}\n`);
    return EXIT_BAD;
  }
  writeOut(
    `\nDry run ok: ${config.configurations.length} listener(s) can bind, every pool has a healthy backend\n`,
  );
  return EXIT_OK;
}

async function serve(config: Config, source: PlanSource, signal: AbortSignal): Promise<number> {
  const log = getLogger("serve");
  const healthLog = getLogger("health");
  const pools = new Map<string, Pool>();
  let transitions = 0;
  let isStopping = false;
  const health = new HealthScheduler({
    onTransition: (t: HealthTransition) => {
      transitions++;
      pools.get(t.pool)?.setHealth(t.key, t.to);
      const fields = {
        pool: t.pool,
        backend: t.key,
        from: t.from,
        to: t.to,
        cause: t.cause,
        error: t.error ?? "",
      };
      if (t.to === "unhealthy") {
        healthLog.warn("Backend {backend} of pool {pool} is unhealthy ({cause}): {error}", fields);
      } else if (t.from === "unknown" && t.to === "healthy") {
        healthLog.debug("Backend {backend} of pool {pool} passed its first check", fields);
      } else {
        healthLog.info("Backend {backend} of pool {pool} is {to} ({cause})", fields);
      }
    },
  });
  for (const listener of source.listeners) {
    pools.set(
      listener.name,
      new Pool({
        name: listener.name,
        balancer: createBalancer(listener.balancer, {
          maglevTableSize: listener.maglevTableSize,
          maglevSeed: listener.maglevSeed,
        }),
        drainTimeoutMs: listener.drainTimeoutMs,
        onRemoval: listener.onRemoval,
        whenAllUnhealthy: listener.whenAllUnhealthy,
        onConnectResult: (key, ok, error) =>
          health.reportPassive(
            listener.name,
            key,
            ok,
            error === undefined
              ? undefined
              : error instanceof Error
              ? error.message
              : String(error),
          ),
      }),
    );
  }
  const apply = (plans: readonly PoolPlan[]) => {
    for (const plan of plans) pools.get(plan.name)?.update(backendsOf(plan));
    health.update(healthTargetsOf(plans));
  };
  apply(source.plans);

  const listeners: ProxyListener[] = [];
  const proxyLog = getLogger("proxy");
  try {
    for (const l of source.listeners) {
      const proxy = new ProxyListener({
        name: l.name,
        hostname: bindHost(l),
        port: l.port,
        picker: pools.get(l.name)!,
        requestTimeoutMs: l.requestTimeoutMs,
        connectTimeoutMs: l.connectTimeoutMs,
        idleTimeoutMs: l.idleTimeoutMs,
        maxConnections: l.maxConnections,
        maxConnectAttempts: l.maxConnectAttempts,
        logger: proxyLog,
      });
      proxy.listen();
      listeners.push(proxy);
    }
  } catch (error) {
    for (const p of listeners) await p.shutdown(0);
    await health.close();
    throw new CliError(
      `Cannot start listeners: ${error instanceof Error ? error.message : error}`,
      EXIT_BAD,
      { cause: error },
    );
  }

  // One round of checks before the first client, so it does not meet a dead backend; bounded
  // by the longest check timeout.
  const roundMs = Math.max(0, ...source.listeners.map((l) => l.healthCheck.timeoutMs)) + 100;
  let roundTimer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    health.runOnce(signal),
    new Promise((resolve) => roundTimer = setTimeout(resolve, roundMs)),
  ]).catch(() => {});
  clearTimeout(roundTimer);

  const adminStop = new AbortController();
  let admin: AdminServer | undefined;
  if (config.settings.adminAddress !== "") {
    const snapshot = (): AdminSnapshot => {
      const status = source.status();
      const reasons: string[] = [];
      if (isStopping) reasons.push("shutting down");
      return {
        ready: !isStopping,
        readyReasons: reasons,
        discovery: { source: source.kind, ...status },
        listeners: listeners.map((p) => ({
          name: p.name,
          address: `${p.addr.hostname}:${p.addr.port}`,
          stats: p.stats,
        })),
        pools: [...pools.values()].map((pool) => ({
          ...pool.snapshot(),
          isFailOpen: pool.isFailOpen,
          fingerprint: pool.fingerprint(),
        })),
        healthTransitions: transitions,
      };
    };
    try {
      const { host, port } = parseHostPort(config.settings.adminAddress);
      admin = await startAdminServer({
        hostname: host === "" ? "127.0.0.1" : host,
        port,
        signal: adminStop.signal,
        snapshot,
      });
    } catch (error) {
      for (const p of listeners) await p.shutdown(0);
      await health.close();
      throw new CliError(
        `Cannot start admin server on ${config.settings.adminAddress}: ${
          error instanceof Error ? error.message : error
        }`,
        EXIT_BAD,
        { cause: error },
      );
    }
  }

  const serving = listeners.map((p) => p.serve());
  for (const p of listeners) {
    const pool = pools.get(p.name)!;
    const healthy = pool.snapshot().backends.filter((b) => b.health !== "unhealthy").length;
    log.info("Listening on {address} for pool {pool}: {healthy}/{backends} backends up", {
      address: `${p.addr.hostname}:${p.addr.port}`,
      pool: p.name,
      healthy,
      backends: pool.size,
    });
  }
  const watching = (async () => {
    for await (const plans of source.updates()) {
      try {
        apply(plans);
      } catch (error) {
        // Keep serving the pools we have; the next change gets another chance.
        log.error("Cannot apply new pools, keeping the current ones: {error}", { error });
      }
    }
  })();

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  isStopping = true;
  const delayMs = config.settings.shutdownDelayMs;
  if (delayMs > 0) {
    // Readiness fails from now on; keep accepting while probes and upstream balancers notice.
    log.info("Shutting down: /readyz fails, still accepting for {delayMs}ms", { delayMs });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  const drainMs = Math.max(0, ...source.listeners.map((l) => l.drainTimeoutMs));
  const active = listeners.reduce((n, p) => n + p.stats.activeConnections, 0);
  log.info("Shutting down: draining {active} connection(s) for up to {drainMs}ms", {
    active,
    drainMs,
  });
  const forced = await Promise.all(
    listeners.map((p, i) => p.shutdown(source.listeners[i]!.drainTimeoutMs)),
  );
  await Promise.all(serving);
  await source.close();
  await watching;
  await health.close();
  for (const pool of pools.values()) pool.close();
  adminStop.abort();
  await admin?.finished;
  log.info("Stopped; {forced} connection(s) closed at the drain deadline", {
    forced: forced.reduce((a, b) => a + b, 0),
  });
  return EXIT_OK;
}
