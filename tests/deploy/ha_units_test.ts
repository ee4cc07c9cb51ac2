/**
 * The systemd files of the high-availability recipes (docs/high_availability.md): the
 * keepalived drop-in `deploy/keepalived/nautiluslb-vrrp.conf` for
 * `deploy/systemd/nautiluslb.service`, and `deploy/bgp/nautiluslb-bgp-health.service`.
 *
 * - `systemd-analyze verify` is clean for the main unit with the drop-in loaded as a drop-in:
 *   a temporary unit directory holds `nautiluslb.service` and
 *   `nautiluslb.service.d/nautiluslb-vrrp.conf`, both as shipped. A copy of the drop-in whose
 *   ExecStopPost names a missing command fails verify, so verify does read the drop-in.
 * - `systemd-analyze verify` is clean for the health unit in a temporary unit directory, with
 *   two changes for what a test machine lacks. ExecStart names the repository's script instead
 *   of the installed /usr/local/lib/nautiluslb/nautiluslb-bgp-health.sh (verify fails on a
 *   command that does not exist, as the unit as shipped shows on a machine without that file),
 *   and each unit of `Requires=` (bird.service) gets a stub beside it that runs /bin/true, found
 *   before any installed one, so the result does not depend on BIRD being installed. Every
 *   other line is as shipped.
 * - The drop-in's ExecStartPre, ExecStartPost and ExecStopPost, parsed from the file, run with
 *   the main unit's credentials (setpriv: the dynamic uid, ambient CAP_NET_BIND_SERVICE,
 *   no_new_privs; its UMask), with /run/nautiluslb replaced by a temporary RuntimeDirectory
 *   the dynamic uid owns, and write 1, 0, 1 in turn to the track file the docs hand to
 *   keepalived; the same ExecStartPre in a directory root owns fails, so the credentials
 *   apply. Not reproduced: the mount namespace of ProtectSystem=strict (systemd keeps the
 *   RuntimeDirectory writable in it).
 * - The health unit's NLB_CHECK_INTERVAL, NLB_CHECK_FALL and NLB_CHECK_RISE are the values of
 *   the docs' description and timing rule, whose sum is the shutdownDelay it names, and the
 *   script's defaults (tests/ha/ecmp_test.ts runs the script without the unit's environment).
 */
import assert from "node:assert/strict";
import {
  type Credentials,
  deployTest,
  DYNAMIC_UID,
  environmentOf,
  one,
  REPO_ROOT,
  serviceSettings,
  setprivArgs,
  unitCredentials,
  verifyUnits,
} from "./_deploy.ts";

const MAIN_UNIT = `${REPO_ROOT}deploy/systemd/nautiluslb.service`;
const DROP_IN = `${REPO_ROOT}deploy/keepalived/nautiluslb-vrrp.conf`;
const HEALTH_UNIT = `${REPO_ROOT}deploy/bgp/nautiluslb-bgp-health.service`;
const HEALTH_SCRIPT = `${REPO_ROOT}deploy/bgp/nautiluslb-bgp-health.sh`;
const HA_DOC = `${REPO_ROOT}docs/high_availability.md`;

/**
 * An `Exec*=` command line split as systemd splits it: words separated by blanks, single or
 * double quotes grouping. Fails on what it does not know: a prefix (`-@:+!`, which changes
 * the credentials or the handling of a failure), backslash escapes, `$` variables and `%`
 * specifiers.
 */
function execArgv(line: string): string[] {
  assert.doesNotMatch(line, /^[-@:+!]/, `no prefix: ${line}`);
  assert.doesNotMatch(line, /[\\$%]/, `no escapes, variables or specifiers: ${line}`);
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const c of line) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + c;
    }
  }
  assert.equal(quote, undefined, `unterminated quote: ${line}`);
  if (word !== undefined) words.push(word);
  return words;
}

/** Runs `argv` with credentials `c` and umask `umask` (octal), as systemd runs a unit's command. */
function runAs(
  c: Credentials,
  umask: string,
  argv: readonly string[],
): Promise<Deno.CommandOutput> {
  return new Deno.Command("sh", {
    args: ["-c", `umask ${umask} && exec "$@"`, "sh", ...setprivArgs(c), ...argv],
    env: { PATH: "/usr/bin:/bin" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
}

/** Text with every run of blanks, line breaks included, made one space. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, " ");
}

deployTest("systemd-analyze verify accepts nautiluslb.service with the keepalived drop-in", {
  tools: ["systemd-analyze"],
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-units-" });
  try {
    await Deno.copyFile(MAIN_UNIT, `${dir}/nautiluslb.service`);
    await Deno.mkdir(`${dir}/nautiluslb.service.d`);
    const dropIn = `${dir}/nautiluslb.service.d/nautiluslb-vrrp.conf`;
    await Deno.copyFile(DROP_IN, dropIn);
    const clean = await verifyUnits([`${dir}/nautiluslb.service`]);
    assert.equal(clean.code, 0, clean.text);
    assert.equal(clean.text.trim(), "");

    // Not vacuous: the same directory with a drop-in whose ExecStopPost command is missing.
    const text = await Deno.readTextFile(DROP_IN);
    const command = execArgv(one(serviceSettings(text), "ExecStopPost"))[0]!;
    const missing = `${command}-missing`;
    await Deno.writeTextFile(
      dropIn,
      text.replace(`ExecStopPost=${command} `, `ExecStopPost=${missing} `),
    );
    const broken = await verifyUnits([`${dir}/nautiluslb.service`]);
    assert.notEqual(broken.code, 0, broken.text);
    assert.match(broken.text, new RegExp(`${missing} is not executable`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

deployTest("systemd-analyze verify accepts nautiluslb-bgp-health.service", {
  tools: ["systemd-analyze"],
}, async () => {
  const shipped = await Deno.readTextFile(HEALTH_UNIT);
  const installed = one(serviceSettings(shipped), "ExecStart");
  assert.match(installed, /^\/usr\/local\/lib\/nautiluslb\/nautiluslb-bgp-health\.sh$/);
  const rewritten = shipped.replace(`\nExecStart=${installed}\n`, `\nExecStart=${HEALTH_SCRIPT}\n`);
  const changed = shipped.split("\n").filter((line, i) => line !== rewritten.split("\n")[i]);
  assert.deepEqual(changed, [`ExecStart=${installed}`], "only ExecStart is rewritten");

  const required = /^Requires=(.*)$/m.exec(shipped)?.[1]?.split(/\s+/) ?? [];
  assert.deepEqual(required, ["bird.service"]);
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-units-" });
  try {
    for (const name of required) {
      await Deno.writeTextFile(
        `${dir}/${name}`,
        "[Unit]\nDescription=Stand-in for a required unit\n\n[Service]\nExecStart=/bin/true\n",
      );
    }
    const unit = `${dir}/nautiluslb-bgp-health.service`;
    // As shipped, on a machine where the script is not installed: verify names the command.
    const isInstalled = await Deno.stat(installed).then(() => true, () => false);
    if (!isInstalled) {
      await Deno.writeTextFile(unit, shipped);
      const out = await verifyUnits([unit]);
      assert.notEqual(out.code, 0, out.text);
      assert.match(out.text, new RegExp(`${installed} is not executable`));
    }
    await Deno.writeTextFile(unit, rewritten);
    const out = await verifyUnits([unit]);
    assert.equal(out.code, 0, out.text);
    assert.equal(out.text.trim(), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

deployTest(
  "the drop-in's commands with the main unit's credentials write the track file 1, 0, 1",
  { tools: ["setpriv"], root: true },
  async () => {
    const main = serviceSettings(await Deno.readTextFile(MAIN_UNIT));
    const dropIn = serviceSettings(await Deno.readTextFile(DROP_IN));
    const credentials = unitCredentials(main);
    const umask = one(main, "UMask");
    const runtimeDirectory = `/run/${one(dropIn, "RuntimeDirectory")}`;
    // The file keepalived tracks, as the docs hand it to keepalived.conf.tmpl.
    const trackFile = /NLB_TRACK_FILE=(\S+)/.exec(await Deno.readTextFile(HA_DOC))?.[1];
    assert.ok(
      trackFile !== undefined && trackFile.startsWith(`${runtimeDirectory}/`),
      `${trackFile} in the RuntimeDirectory`,
    );

    const parent = await Deno.makeTempDir({ prefix: "nautiluslb-run-" });
    try {
      await Deno.chmod(parent, 0o755);
      const run = `${parent}/${one(dropIn, "RuntimeDirectory")}`;
      const track = trackFile.replace(runtimeDirectory, run);
      const commands = ["ExecStartPre", "ExecStartPost", "ExecStopPost"].map((key) => {
        const argv = execArgv(one(dropIn, key));
        assert.ok(argv.some((w) => w.includes(trackFile)), `${key} writes ${trackFile}`);
        return { key, argv: argv.map((w) => w.replaceAll(runtimeDirectory, run)) };
      });
      // systemd creates the RuntimeDirectory owned by the unit's user, mode 0755 by default.
      const mode = parseInt(dropIn.get("RuntimeDirectoryMode")?.[0] ?? "0755", 8);
      await Deno.mkdir(run, { mode });
      await Deno.chmod(run, mode);

      // Not vacuous: in a directory root owns, the unit's user cannot write the file.
      const denied = await runAs(credentials, umask, commands[0]!.argv);
      assert.notEqual(denied.code, 0);
      assert.match(new TextDecoder().decode(denied.stderr), /Permission denied/);

      await Deno.chown(run, DYNAMIC_UID, DYNAMIC_UID);
      const seen: string[] = [];
      for (const { key, argv } of commands) {
        const out = await runAs(credentials, umask, argv);
        assert.equal(out.code, 0, `${key}: ${new TextDecoder().decode(out.stderr)}`);
        seen.push((await Deno.readTextFile(track)).trim());
      }
      assert.deepEqual(seen, ["1", "0", "1"]);
      const info = await Deno.stat(track);
      assert.equal(info.uid, DYNAMIC_UID);
      assert.equal(info.mode! & 0o777, 0o666 & ~parseInt(umask, 8));
    } finally {
      await Deno.remove(parent, { recursive: true });
    }
  },
);

Deno.test("the health unit's check timing is the docs' timing rule and the script's defaults", async () => {
  const env = environmentOf(serviceSettings(await Deno.readTextFile(HEALTH_UNIT)));
  const interval = Number(env.get("NLB_CHECK_INTERVAL"));
  const fall = Number(env.get("NLB_CHECK_FALL"));
  const rise = Number(env.get("NLB_CHECK_RISE"));
  assert.ok(interval > 0 && fall >= 1 && rise >= 1, `${[...env]}`);

  const doc = oneLine(await Deno.readTextFile(HA_DOC));
  const described =
    /enables it after (\d+) passing checks and disables it \(a BGP withdraw\) after (\d+) failing ones, checking every (\d+) ms\./
      .exec(doc);
  assert.ok(described, "the docs describe the health check");
  assert.deepEqual(described.slice(1).map(Number), [rise, fall, interval * 1000]);

  const rule =
    /\*\*Timing rule\*\*: ([\d.]+) s × (\d+) \+ ([\d.]+) s \+ ([\d.]+) s margin = `shutdownDelay: ([\d.]+)s`/
      .exec(doc);
  assert.ok(rule, "the docs state the timing rule");
  const [ruleInterval, ruleFall, update, margin, shutdownDelay] = rule.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  assert.deepEqual([ruleInterval, ruleFall], [interval, fall]);
  assert.ok(
    Math.abs(ruleInterval * ruleFall + update + margin - shutdownDelay) < 1e-9,
    `${rule[0]} adds up`,
  );

  const script = await Deno.readTextFile(HEALTH_SCRIPT);
  const defaultOf = (name: string) =>
    Number(new RegExp(`\\$\\{${name}:-([^}]+)\\}`).exec(script)?.[1]);
  assert.deepEqual(
    ["NLB_CHECK_INTERVAL", "NLB_CHECK_FALL", "NLB_CHECK_RISE"].map(defaultOf),
    [interval, fall, rise],
  );
});
