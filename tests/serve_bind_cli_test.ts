/**
 * `serve` bind checks through the real entry point: a listener that cannot bind is named with
 * its address; a second `serve` on a port another one serves is refused (SO_REUSEPORT would
 * let it bind silently and take a share of the traffic) unless it says it is a handover
 * (`serve --handover`), which then shares the port.
 */
import assert from "node:assert/strict";
import { closeQuietly, delay, freePort, HOST, readName, startNamed } from "./_helpers.ts";
import { spawnServe, waitReady } from "./_serve_process.ts";

async function withConfig(
  yaml: string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/config.yaml`;
    await Deno.writeTextFile(path, yaml);
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function config(listener: string, backend: number, admin: number, workers = 1): string {
  return `settings: { adminAddress: "${HOST}:${admin}", logLevel: warning, workers: ${workers} }
configurations:
  - name: web
    listenerAddress: "${listener}"
    drainTimeout: 1s
    maxConnections: 100
    healthCheck: { enabled: false }
    backends: ["${HOST}:${backend}"]
`;
}

/** Waits for the process to exit; returns its code (SIGKILL after `ms`). */
async function exitCode(child: Deno.ChildProcess, ms = 30_000): Promise<number> {
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
  }, ms);
  try {
    return (await child.status).code;
  } finally {
    clearTimeout(timer);
  }
}

/** Names the backends that `count` new connections to `port` reach. */
async function namesOf(port: number, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connect({ hostname: HOST, port });
    try {
      names.push(await readName(conn, 1));
    } finally {
      closeQuietly(conn);
    }
  }
  return names;
}

Deno.test("serve names the listener and the address it cannot bind", async () => {
  await using backend = startNamed("a");
  // 192.0.2.0/24 (TEST-NET-1, RFC 5737) is on no interface: the bind fails with EADDRNOTAVAIL.
  const address = `192.0.2.1:${freePort()}`;
  await withConfig(config(address, backend.port, freePort()), async (path) => {
    const serve = spawnServe(path, 0);
    const code = await exitCode(serve.child);
    await serve.kill();
    assert.equal(code, 1);
    assert.equal(
      serve.stderr(),
      `nautiluslb: Cannot start listeners: web: cannot bind ${address}: ` +
        "Cannot assign requested address (os error 99)\n",
    );
  });
});

for (const workers of [1, 2]) {
  Deno.test(`a second serve on a served port is refused; with --handover it shares it (workers: ${workers})`, async () => {
    await using first = startNamed("1");
    await using second = startNamed("2");
    const port = freePort();
    const firstAdmin = freePort();
    const secondAdmin = freePort();
    const listener = `${HOST}:${port}`;
    await withConfig(config(listener, first.port, firstAdmin, workers), async (firstPath) => {
      await withConfig(config(listener, second.port, secondAdmin, workers), async (secondPath) => {
        const old = spawnServe(firstPath, firstAdmin);
        try {
          await waitReady(old);
          const refused = spawnServe(secondPath, secondAdmin);
          const code = await exitCode(refused.child);
          await refused.kill();
          assert.equal(code, 1, refused.stderr());
          assert.equal(
            refused.stderr(),
            `nautiluslb: Cannot start listeners: web: cannot bind ${listener}: ` +
              "Address already in use (os error 98): another process serves it (to take over " +
              "from a running serve, start the new one with serve --handover)\n",
          );
          assert.deepEqual(
            new Set(await namesOf(port, 20)),
            new Set(["1"]),
            "the first serves all",
          );

          const handover = spawnServe(secondPath, secondAdmin, { args: ["--handover"] });
          try {
            await waitReady(handover);
            // The kernel spreads new connections over both processes' sockets.
            const seen = new Set<string>();
            for (let round = 0; round < 20 && seen.size < 2; round++) {
              for (const name of await namesOf(port, 20)) seen.add(name);
              await delay(10);
            }
            assert.deepEqual(seen, new Set(["1", "2"]));
            assert.equal(handover.stderr(), "");
          } finally {
            await handover.kill();
          }
        } finally {
          await old.kill();
        }
      });
    });
  });
}

Deno.test("serve --handover refuses an address held without SO_REUSEPORT, naming it", async () => {
  await using backend = startNamed("a");
  const taken = Deno.listen({ hostname: HOST, port: 0 });
  try {
    const listener = `${HOST}:${taken.addr.port}`;
    await withConfig(config(listener, backend.port, freePort()), async (path) => {
      const serve = spawnServe(path, 0, { args: ["--handover"] });
      const code = await exitCode(serve.child);
      await serve.kill();
      assert.equal(code, 1);
      assert.equal(
        serve.stderr(),
        `nautiluslb: Cannot start listeners: web: cannot bind ${listener}: ` +
          "Address already in use (os error 98): the process that serves it does not share it " +
          "(SO_REUSEPORT), so it cannot be handed over\n",
      );
    });
  } finally {
    taken.close();
  }
});

/** Why a process without CAP_NET_BIND_SERVICE cannot be started here, or `undefined`. */
function whyNoCapabilityDrop(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root (unshare -n needs it)";
  for (const tool of ["unshare", "setpriv"]) {
    const found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].some((dir) => {
      try {
        return Deno.statSync(`${dir}/${tool}`).isFile;
      } catch {
        return false;
      }
    });
    if (!found) return `no ${tool} (util-linux)`;
  }
  return undefined;
}

const noCapabilityDrop = whyNoCapabilityDrop();
if (noCapabilityDrop !== undefined) {
  console.log(`privileged port bind test skipped: ${noCapabilityDrop}`);
}

Deno.test({
  name: "serve without CAP_NET_BIND_SERVICE names the listener, the address and what to change",
  ignore: noCapabilityDrop !== undefined,
  fn: async () => {
    await using backend = startNamed("a");
    // Port 80 in a private network namespace (gone with the process), bound by root
    // without the capability: refused with EACCES.
    await withConfig(config("127.0.0.1:80", backend.port, 0), async (path) => {
      const yaml = (await Deno.readTextFile(path)).replace(
        /adminAddress: "[^"]*"/,
        'adminAddress: ""',
      );
      await Deno.writeTextFile(path, yaml);
      const out = await new Deno.Command("unshare", {
        args: [
          "-n",
          "setpriv",
          "--bounding-set",
          "-net_bind_service",
          "--inh-caps",
          "-net_bind_service",
          Deno.execPath(),
          "run",
          "-A",
          "--unstable-net",
          new URL("../src/main.ts", import.meta.url).pathname,
          "serve",
          "-c",
          path,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.equal(
        stderr,
        "nautiluslb: Cannot start listeners: web: cannot bind 127.0.0.1:80: Permission denied " +
          "(os error 13): port 80 is privileged and this process lacks CAP_NET_BIND_SERVICE: in a " +
          "container run it with --sysctl net.ipv4.ip_unprivileged_port_start=0, under systemd " +
          "set AmbientCapabilities=CAP_NET_BIND_SERVICE (docs/deploy.md)\n",
      );
    });
  },
});

Deno.test("serve refuses a UDP listener address another process serves, naming it", async () => {
  const taken = Deno.listenDatagram({ hostname: HOST, port: 0, transport: "udp" });
  try {
    const listener = `${HOST}:${(taken.addr as Deno.NetAddr).port}`;
    const yaml = `settings: { adminAddress: "", logLevel: warning }
configurations:
  - name: dns
    listenerAddress: "${listener}"
    protocol: udp
    healthCheck: { enabled: false }
    backends: ["${HOST}:1"]
`;
    await withConfig(yaml, async (path) => {
      const serve = spawnServe(path, 0);
      const code = await exitCode(serve.child);
      await serve.kill();
      assert.equal(code, 1);
      assert.equal(
        serve.stderr(),
        `nautiluslb: Cannot start listeners: dns: cannot bind ${listener}: ` +
          "Address already in use (os error 98): another process serves it (to take over " +
          "from a running serve, start the new one with serve --handover)\n",
      );
    });
  } finally {
    taken.close();
  }
});
