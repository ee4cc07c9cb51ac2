import assert from "node:assert/strict";
import {
  DEFAULT_RESERVED_FDS,
  fdExhaustionHint,
  fdLimitWarning,
  parseOpenFilesLimit,
  readOpenFilesLimit,
} from "./fd_limit.ts";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             63426                63426                processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

Deno.test("parseOpenFilesLimit reads the soft and hard limit", () => {
  assert.deepEqual(parseOpenFilesLimit(LIMITS), { soft: 1024, hard: 524288 });
  assert.deepEqual(
    parseOpenFilesLimit(
      "Max open files            unlimited            unlimited            files",
    ),
    { soft: Infinity, hard: Infinity },
  );
});

Deno.test("parseOpenFilesLimit returns undefined without a valid line", () => {
  assert.equal(parseOpenFilesLimit(""), undefined);
  assert.equal(parseOpenFilesLimit("Max processes 10 10 processes"), undefined);
  assert.equal(parseOpenFilesLimit("Max open files  lots  4096  files"), undefined);
});

Deno.test("readOpenFilesLimit reads this process's limit", async () => {
  const limit = readOpenFilesLimit();
  if (Deno.build.os !== "linux") return;
  // Tests run with --allow-run (or --allow-all), so one of the two sources is available.
  assert.ok(limit !== undefined);
  assert.ok(limit.soft > 0 && limit.soft <= limit.hard, JSON.stringify(limit));
  // The same number the shell reports for this process's children.
  const out = await new Deno.Command("sh", { args: ["-c", "ulimit -n"], stdout: "piped" })
    .output();
  const shell = new TextDecoder().decode(out.stdout).trim();
  assert.equal(shell === "unlimited" ? Infinity : Number(shell), limit.soft);
});

Deno.test("fdLimitWarning: nothing when the limit holds every connection", () => {
  const cases: [number, number[]][] = [
    [1024, [480]], // 480 * 2 + 64 = 1024
    [1024, [100, 200, 180]],
    [65536, [10_000]],
    [Infinity, [10_000_000]],
    [1024, []],
    [1024, [0]], // unlimited listeners cannot be checked
    [64, [0, 0]],
  ];
  for (const [limit, max] of cases) {
    assert.equal(fdLimitWarning(limit, max), undefined, `${limit} ${max}`);
  }
});

Deno.test("fdLimitWarning: one line with the numbers when the limit is too low", () => {
  assert.equal(
    fdLimitWarning(1024, [481]),
    "Open file limit 1024 cannot hold maxConnections 481: each proxied connection needs 2 " +
      'file descriptors, so about 480 connections fit before accept and connect fail with EMFILE; raise "ulimit -n" or LimitNOFILE to at least 1026',
  );
  assert.equal(
    fdLimitWarning(1024, [5000, 0, 5000], { hardLimit: 524288 }),
    "Open file limit 1024 cannot hold maxConnections 10000: each proxied connection needs 2 " +
      'file descriptors, so about 480 connections fit before accept and connect fail with EMFILE; raise "ulimit -n" or LimitNOFILE to at least 20064 (the hard limit 524288 allows it)',
  );
  assert.equal(
    fdLimitWarning(1024, [10_000], { hardLimit: 4096 }),
    "Open file limit 1024 cannot hold maxConnections 10000: each proxied connection needs 2 " +
      'file descriptors, so about 480 connections fit before accept and connect fail with EMFILE; raise "ulimit -n" or LimitNOFILE to at least 20064 (above the hard limit 4096: raise that too)',
  );
});

Deno.test("fdLimitWarning: the reserve is an option", () => {
  assert.equal(DEFAULT_RESERVED_FDS, 64);
  assert.equal(fdLimitWarning(100, [50], { reservedFds: 0 }), undefined);
  assert.match(fdLimitWarning(100, [50], { reservedFds: 1 }) ?? "", /about 49 connections fit/);
  assert.match(fdLimitWarning(10, [50]) ?? "", /about 0 connections fit/);
});

Deno.test("readOpenFilesLimit: the shell fallback and /proc agree, under a low limit", async () => {
  if (Deno.build.os !== "linux") return;
  const module = new URL("./fd_limit.ts", import.meta.url).href;
  const script = `import { readOpenFilesLimit } from ${JSON.stringify(module)};
    console.log(JSON.stringify(readOpenFilesLimit()));`;
  // `deno eval` would grant every permission; a file run with `deno run` does not.
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  const run = async (...flags: string[]) => {
    const out = await new Deno.Command("bash", {
      // Both limits: Deno raises its soft limit to the hard one at start.
      args: ["-c", 'ulimit -n 777 && exec "$0" run "$@"', Deno.execPath(), ...flags, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  try {
    const all = JSON.parse(await run("--allow-all"));
    assert.deepEqual(all, { soft: 777, hard: 777 });
    assert.deepEqual(JSON.parse(await run("--allow-read", "--allow-run=sh")), all);
    assert.equal(await run("--allow-read"), "undefined");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("fdExhaustionHint: says what to raise for EMFILE and ENFILE only", () => {
  let emfile: unknown;
  try {
    // Not a real exhaustion: Deno's error for it, as `accept` would throw it.
    throw Object.assign(new Error("Too many open files (os error 24)"), { code: "EMFILE" });
  } catch (error) {
    emfile = error;
  }
  assert.match(
    fdExhaustionHint(emfile),
    /out of file descriptors.*raise "ulimit -n" or LimitNOFILE/,
  );
  assert.match(fdExhaustionHint(new Error("Too many open files (os error 24)")), /ulimit -n/);
  assert.match(fdExhaustionHint({ code: "ENFILE" }), /system is out of file descriptors/);
  assert.equal(fdExhaustionHint(new Deno.errors.ConnectionReset("reset")), "");
  assert.equal(fdExhaustionHint(null), "");
});
