/**
 * `deploy/systemd/nautiluslb.service`: `systemd-analyze verify` is clean, and the unit's
 * command, run with the unit's credentials (a non-root user, the one ambient capability,
 * no_new_privs, LimitNOFILE), binds :80 and forwards traffic, reloads on the unit's
 * ExecReload signal and stops cleanly on SIGTERM; without the ambient capability it stops at
 * once saying what to change. The host is a network namespace.
 */
import assert from "node:assert/strict";
import {
  type Credentials,
  deployTest,
  DYNAMIC_UID,
  environmentOf,
  exchange,
  NamedServer,
  Netns,
  one,
  pollFor,
  readableRuntime,
  REPO_ROOT,
  serviceSettings,
  setprivArgs,
  sh,
  stopChild,
  unitCredentials,
  verifyUnits,
} from "./_deploy.ts";

const UNIT = `${REPO_ROOT}deploy/systemd/nautiluslb.service`;

deployTest("systemd-analyze verify accepts the unit", {
  tools: ["systemd-analyze"],
}, async () => {
  const { code, text } = await verifyUnits([UNIT]);
  assert.equal(code, 0, text);
  assert.equal(text.trim(), "");
});

Deno.test("the unit runs non-root with one capability, hardening, SIGHUP reload and a restart policy", async () => {
  const s = serviceSettings(await Deno.readTextFile(UNIT));
  assert.equal(one(s, "DynamicUser"), "yes");
  assert.equal(one(s, "AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
  assert.equal(one(s, "CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
  for (const key of ["NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables"]) {
    assert.equal(one(s, key), "yes", key);
  }
  assert.equal(one(s, "ProtectSystem"), "strict");
  assert.equal(one(s, "ExecReload"), "/bin/kill -HUP $MAINPID");
  assert.equal(one(s, "Restart"), "on-failure");
  assert.ok(Number(one(s, "LimitNOFILE")) >= 2 * 10_000 + 64, "room for maxConnections");
  assert.ok(!one(s, "ExecStart").includes(" -A "), "never -A");
});

deployTest(
  "the unit's command with the unit's credentials binds :80 and forwards, reloads, stops",
  {
    tools: ["setpriv", "prlimit", "ip"],
    root: true,
  },
  async () => {
    const s = serviceSettings(await Deno.readTextFile(UNIT));
    const credentials = unitCredentials(s);
    // LimitNOFILE, or this machine's hard limit where that is lower (raising it needs more
    // than root in a container).
    const hard = Number((await sh("sh", ["-c", "ulimit -Hn"])).trim());
    const nofile = Math.min(Number(one(s, "LimitNOFILE")), Number.isFinite(hard) ? hard : Infinity);
    const ns = await Netns.create("sd", 1);
    const runtime = await readableRuntime(DYNAMIC_UID);
    const backend = new NamedServer(ns.hostIp, "alpha");
    let child: Deno.ChildProcess | undefined;
    try {
      const etc = `${runtime.dir}/etc`;
      await Deno.mkdir(etc);
      await Deno.writeTextFile(
        `${etc}/config.yaml`,
        `settings:\n  adminAddress: ""\nconfigurations:\n  - name: web\n    listenerAddress: ":80"\n` +
          `    requestTimeout: 5\n    backends: ["${ns.hostIp}:${backend.port}"]\n`,
      );
      await Deno.chmod(etc, 0o755);
      // ExecStart with the unit's paths mapped onto the copies, specifiers expanded.
      const exec = one(s, "ExecStart")
        .replace("/usr/local/bin/deno", runtime.deno)
        .replace("/opt/nautiluslb", runtime.app)
        .replace("/etc/nautiluslb", etc)
        .split(" ");
      const env: Record<string, string> = { PATH: "/usr/bin:/bin" };
      for (const [k, v] of environmentOf(s)) {
        env[k] = v.replace("%C/nautiluslb", runtime.denoDir).replace("%d", `${runtime.dir}/creds`);
      }
      const spawn = (c: Credentials) => {
        const argv = ns.exec([
          "prlimit",
          `--nofile=${nofile}:${nofile}`,
          ...setprivArgs(c),
          ...exec,
        ]);
        return new Deno.Command(argv[0]!, {
          args: argv.slice(1),
          cwd: etc,
          env,
          clearEnv: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      };
      // Without AmbientCapabilities the same command stops at once, saying what to change.
      const bare = await spawn({ ...credentials, inheritable: [], ambient: [] }).output();
      const bareErr = new TextDecoder().decode(bare.stderr);
      assert.notEqual(bare.code, 0, bareErr);
      assert.match(bareErr, /port 80 is privileged and this process lacks CAP_NET_BIND_SERVICE/);

      child = spawn(credentials);
      let hasExited = false;
      child.status.then(() => hasExited = true);
      const answer = await pollFor("traffic through :80", 30_000, async () => {
        if (hasExited) throw new Error("serve exited");
        const text = await exchange(80, ns.nsIp, 2_000);
        return text === "" ? undefined : text;
      });
      assert.equal(answer, "alpha");
      // ExecReload: SIGHUP reloads in place; the listener keeps serving.
      child.kill("SIGHUP");
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(await exchange(80, ns.nsIp), "alpha");
      child.kill("SIGTERM");
      const out = await child.output();
      child = undefined;
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.match(stderr, /Serving config/);
      assert.doesNotMatch(stderr, /Permission denied/);
    } finally {
      if (child !== undefined) console.error(await stopChild(child));
      await backend.close();
      await runtime.close();
      await ns.close();
    }
  },
);
