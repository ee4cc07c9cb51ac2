/**
 * The container image, built with podman from the Dockerfile (base image stand-in from
 * debootstrap and the npm Deno binary, `--pull=never`), run with the original's documented
 * flags: config at /nautiluslb/config.yaml, kubeconfig at /root/.kube/config, `-p …:80`, no
 * command. Traffic flows, SIGTERM drains an open connection, a read-only root filesystem
 * works, and an unreadable kubeconfig stops it at once with one line saying what to change.
 *
 * One change to the original's line: the host side of `-p` is a free port on 127.0.0.1,
 * and the container joins a network on this suite's subnet.
 */
import assert from "node:assert/strict";
import { freePort } from "../_helpers.ts";
import { deployTest, exchange, NamedServer, pollFor, REPO_ROOT, sh } from "./_deploy.ts";

const IMAGE = "docker.io/cloudresty/nautiluslb:latest";
const NETWORK = "dep-net";
const SUBNET = "10.234.50.0/24";
const GATEWAY = "10.234.50.1";
const env = {
  CONTAINERS_CONF: `${REPO_ROOT}deploy/podman/containers.conf`,
  PATH: Deno.env.get("PATH") ?? "",
};

function podman(args: readonly string[]): Promise<string> {
  return sh("podman", ["--runtime", "runc", ...args], { env });
}

/** A backend that answers `name` after `delayMs`, so a connection is open during a stop. */
class SlowServer {
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #done: Promise<void>;

  constructor(name: string, delayMs: number) {
    const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
    this.#listener = listener;
    this.port = listener.addr.port;
    this.#done = (async () => {
      for await (const conn of listener) {
        setTimeout(() => {
          conn.write(new TextEncoder().encode(name)).catch(() => {}).finally(() => conn.close());
        }, delayMs);
      }
    })().catch(() => {});
  }

  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // closed
    }
    await this.#done;
  }
}

/** The original's `docker run` flags, with `extra` before the image. */
function runArgs(name: string, dir: string, port: number, extra: readonly string[] = []): string[] {
  return [
    "run",
    "-d",
    "--name",
    name,
    "--network",
    NETWORK,
    "-v",
    `${dir}/config.yaml:/nautiluslb/config.yaml`,
    "-v",
    `${dir}/kubeconfig:/root/.kube/config`,
    "-p",
    `127.0.0.1:${port}:80`,
    ...extra,
    IMAGE,
  ];
}

async function removeContainer(name: string): Promise<void> {
  await new Deno.Command("podman", {
    args: ["--runtime", "runc", "rm", "-f", "-t", "0", name],
    env,
    stdout: "null",
    stderr: "null",
  }).output();
}

deployTest(
  "the image runs the original's docker run line: traffic, SIGTERM drain, read-only root, kubeconfig",
  {
    tools: ["podman", "runc", "debootstrap"],
    root: true,
  },
  async () => {
    const built = await sh("bash", ["scripts/image_build.sh"], { cwd: REPO_ROOT });
    console.error(`image: ${built.trim()}`);
    await new Deno.Command("podman", {
      args: ["--runtime", "runc", "network", "create", "--subnet", SUBNET, NETWORK],
      env,
      stdout: "null",
      stderr: "null",
    }).output();
    const dir = await Deno.makeTempDir({ prefix: "nautiluslb-image-" });
    const fast = new NamedServer("0.0.0.0", "alpha");
    const slow = new SlowServer("late", 1_500);
    const names = ["dep-nlb-run", "dep-nlb-ro", "dep-nlb-kube"];
    try {
      await Deno.chmod(dir, 0o755);
      await Deno.writeTextFile(
        `${dir}/config.yaml`,
        `settings:\n  adminAddress: ""\nconfigurations:\n  - name: web\n    listenerAddress: ":80"\n` +
          `    requestTimeout: 5\n    backends: ["${GATEWAY}:${fast.port}"]\n`,
      );
      // A kubeconfig as `kubectl` writes it is 0600; readable by the container's user here.
      await Deno.writeTextFile(`${dir}/kubeconfig`, "apiVersion: v1\nkind: Config\n");
      await Deno.chmod(`${dir}/kubeconfig`, 0o644);

      // 1. The original's line: traffic through -p …:80.
      const port = freePort();
      await podman(runArgs(names[0]!, dir, port));
      assert.equal(
        await pollFor("traffic through the container", 30_000, async () => {
          const text = await exchange(port, "127.0.0.1", 2_000);
          return text === "" ? undefined : text;
        }),
        "alpha",
      );
      const logs = await podman(["logs", names[0]!]);
      assert.ok(true, logs);

      // 2. SIGTERM while a connection waits on a slow backend: it still gets its answer.
      await Deno.writeTextFile(
        `${dir}/config.yaml`,
        `settings:\n  adminAddress: ""\nconfigurations:\n  - name: web\n    listenerAddress: ":80"\n` +
          `    requestTimeout: 5\n    backends: ["${GATEWAY}:${slow.port}"]\n`,
      );
      await podman(["kill", "--signal", "HUP", names[0]!]);
      const late = await pollFor("the slow backend after reload", 30_000, async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const reply = (async () => {
          const buf = new Uint8Array(64);
          const n = await conn.read(buf);
          return n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
        })();
        // Wait until the connection reached the slow backend (the fast one answers at once).
        const first = await Promise.race([
          reply,
          new Promise((r) => setTimeout(() => r("pending"), 500)),
        ]);
        if (first !== "pending") {
          conn.close();
          return undefined;
        }
        await podman(["kill", "--signal", "TERM", names[0]!]);
        try {
          return await reply;
        } finally {
          conn.close();
        }
      });
      assert.equal(late, "late");
      const exit = (await podman(["wait", names[0]!])).trim();
      assert.equal(exit, "0", await podman(["logs", names[0]!]));

      // 3. A read-only root filesystem.
      await Deno.writeTextFile(
        `${dir}/config.yaml`,
        `settings:\n  adminAddress: ""\nconfigurations:\n  - name: web\n    listenerAddress: ":80"\n` +
          `    requestTimeout: 5\n    backends: ["${GATEWAY}:${fast.port}"]\n`,
      );
      const roPort = freePort();
      await podman(runArgs(names[1]!, dir, roPort, ["--read-only", "--cap-drop=ALL"]));
      assert.equal(
        await pollFor("traffic with a read-only root", 30_000, async () => {
          const text = await exchange(roPort, "127.0.0.1", 2_000);
          return text === "" ? undefined : text;
        }),
        "alpha",
      );

      // 4. A kubeconfig only its owner can read: one line, at once, saying what to change.
      await Deno.chmod(`${dir}/kubeconfig`, 0o600);
      await podman(runArgs(names[2]!, dir, freePort()));
      assert.equal((await podman(["wait", names[2]!])).trim(), "2");
      const stderr = (await new Deno.Command("podman", {
        args: ["--runtime", "runc", "logs", names[2]!],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output()).stderr;
      const lines = new TextDecoder().decode(stderr).split("\n").filter((l) =>
        l.startsWith("nautiluslb:")
      );
      assert.deepEqual(lines, [
        'nautiluslb: Cannot read kubeconfig "/root/.kube/config": permission denied for uid 1993: ' +
        'add --user "$(id -u):$(id -g)" to the run line (the file\'s owner), or make the file readable by uid 1993',
      ]);
    } finally {
      for (const name of names) await removeContainer(name);
      await new Deno.Command("podman", {
        args: ["--runtime", "runc", "network", "rm", "-f", NETWORK],
        env,
        stdout: "null",
        stderr: "null",
      }).output();
      await fast.close();
      await slow.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
