/**
 * `validate` through the real entry point: stdout, stderr and exit codes over the bad configs
 * in `examples/invalid/` (0 valid, 1 invalid, 2 unreadable file).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function validate(...args: string[]): Promise<Run> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "src/main.ts", "validate", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Each bad config and exactly what `validate` prints for it, one issue per line. */
// deno-fmt-ignore
const INVALID: readonly { readonly file: string; readonly lines: readonly string[] }[] = [
  {
    file: "examples/invalid/unknown_key.yaml",
    lines: [
      "examples/invalid/unknown_key.yaml:5:5: configurations[0]: missing required key `listenerAddress`",
      "examples/invalid/unknown_key.yaml:6:5: configurations[0].listenAddress: unknown key `listenAddress`: did you mean `listenerAddress`?",
      "examples/invalid/unknown_key.yaml:9:5: configurations[0].logLevel: unknown key `logLevel`: it belongs under `settings`",
    ],
  },
  {
    file: "examples/invalid/port_out_of_range.yaml",
    lines: [
      "examples/invalid/port_out_of_range.yaml:7:22: configurations[1].listenerAddress: port 70000 is out of range 1-65535",
      "examples/invalid/port_out_of_range.yaml:10:13: configurations[1].healthCheck.port: port 0 is out of range 1-65535",
    ],
  },
  {
    file: "examples/invalid/duplicate_name.yaml",
    lines: [
      'examples/invalid/duplicate_name.yaml:6:11: configurations[1].name: duplicate listener name "web": already used by configurations[0]',
    ],
  },
  {
    file: "examples/invalid/address_conflict.yaml",
    lines: [
      'examples/invalid/address_conflict.yaml:7:22: configurations[1].listenerAddress: address "0.0.0.0:80" conflicts with configurations[0].listenerAddress ":80"',
      'examples/invalid/address_conflict.yaml:10:22: configurations[2].listenerAddress: address "127.0.0.1:80" conflicts with configurations[0].listenerAddress ":80"',
    ],
  },
  {
    file: "examples/invalid/bad_duration.yaml",
    lines: [
      'examples/invalid/bad_duration.yaml:6:21: configurations[0].requestTimeout: invalid duration "5sec": expected a number of seconds or a number with a unit (ms, s, m, h), e.g. "5s", "250ms" or "1m30s"',
      "examples/invalid/bad_duration.yaml:7:18: configurations[0].idleTimeout: invalid duration 0: must be greater than 0",
    ],
  },
  {
    file: "examples/invalid/kubernetes_names.yaml",
    lines: [
      "examples/invalid/kubernetes_names.yaml:5:22: configurations[0].backendPortName: invalid port name \"MongoDB_Port\": must contain only lowercase letters, digits and '-'",
      "examples/invalid/kubernetes_names.yaml:6:16: configurations[0].namespace: invalid namespace \"Development\": must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit",
    ],
  },
  {
    file: "examples/invalid/no_backends.yaml",
    lines: [
      "examples/invalid/no_backends.yaml:3:5: configurations[0]: a listener needs `backendPortName` or a non-empty `backends` list",
    ],
  },
  {
    file: "examples/invalid/yaml_syntax.yaml",
    lines: [
      "examples/invalid/yaml_syntax.yaml:5:1: invalid YAML: tab characters must not be used in indentation",
    ],
  },
  {
    file: "examples/invalid/three_mistakes.yaml",
    lines: [
      "examples/invalid/three_mistakes.yaml:10:22: configurations[1].listenerAddress: port 70000 is out of range 1-65535",
      'examples/invalid/three_mistakes.yaml:15:21: configurations[2].requestTimeout: invalid duration "ten": expected a number of seconds or a number with a unit (ms, s, m, h), e.g. "5s", "250ms" or "1m30s"',
      "examples/invalid/three_mistakes.yaml:18:5: configurations[2].balancr: unknown key `balancr`: did you mean `balancer`?",
    ],
  },
];

/** Parses `FILE:LINE:COLUMN: PATH: message` (or `FILE:LINE:COLUMN: message`) back into an issue. */
function issueOf(line: string): Record<string, unknown> {
  const match = /^(.+?):(\d+):(\d+): (?:([A-Za-z][^ ]*): )?(.*)$/.exec(line);
  assert.ok(match, `not an issue line: ${line}`);
  const [, file, lineNo, column, path, message] = match;
  return { file, line: Number(lineNo), column: Number(column), path: path ?? "", message };
}

Deno.test("validate accepts the repository's config.yaml", async () => {
  const run = await validate("config.yaml");
  // The seed's two listeners without `namespace` take Services of any namespace: warned.
  const warned = ["http_traffic_configuration", "https_traffic_configuration"].map((name, i) =>
    `config\\.yaml:\\d+:5: configurations\\[${i}\\]: listener "${name}" admits Services ` +
    'from any namespace by port name alone: list "namespaces" or set "binding: explicit" \\(warning\\)\\n'
  );
  assert.match(run.stdout, new RegExp(`^${warned.join("")}config\\.yaml: ok\\n$`));
  assert.equal(run.code, 0);
});

Deno.test("validate -o json prints an empty array for a valid config", async () => {
  const run = await validate("config.yaml", "-o", "json");
  assert.deepEqual(JSON.parse(run.stdout), []);
  assert.equal(run.code, 0);
});

Deno.test("validate exits 2 when the file cannot be read, saying so once", async () => {
  const run = await validate("examples/invalid/does_not_exist.yaml");
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.equal(
    run.stderr,
    'nautiluslb: Cannot read config "examples/invalid/does_not_exist.yaml": there is no such file: ' +
      "name the config file with -c PATH, or start from the annotated example config.yaml of " +
      "the NautilusLB repository\n",
  );
});

Deno.test("validate of a directory says it is one and what to pass instead", async () => {
  const run = await validate("examples/invalid");
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.match(
    run.stderr,
    /^nautiluslb: Cannot read config "examples\/invalid": it is a directory, not a file: name the config file with -c PATH/,
  );
});

Deno.test("a command that loads a missing config says so once", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "-A",
      "src/main.ts",
      "-c",
      "examples/invalid/does_not_exist.yaml",
      "check",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 2);
  assert.equal(text.split("Cannot read config").length, 2, text);
  assert.match(
    text,
    /does_not_exist\.yaml": there is no such file: name the config file with -c PATH/,
  );
});

/** A config with `count` listeners, each with one problem (a port out of range). */
async function manyProblems(count: number): Promise<{ path: string; dir: string }> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/many.yaml`;
  const listeners = Array.from(
    { length: count },
    (_, i) =>
      `  - name: l${i}\n    listenerAddress: "127.0.0.1:70000"\n    backends: ["127.0.0.1:1"]\n`,
  );
  await Deno.writeTextFile(path, `configurations:\n${listeners.join("")}`);
  return { path, dir };
}

Deno.test("validate prints the first 100 problems and says how many more", async () => {
  const { path, dir } = await manyProblems(150);
  try {
    const run = await validate(path);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, "");
    const lines = run.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 101);
    assert.equal(
      lines[0],
      `${path}:3:22: configurations[0].listenerAddress: port 70000 is out of range 1-65535`,
    );
    assert.match(lines[99]!, /: configurations\[99\]\.listenerAddress: port 70000/);
    assert.equal(
      lines[100],
      "... and 50 more problem(s), 150 in all (--max-problems 0 prints all)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate --max-problems: 0 prints all, N prints N, a bad value is a usage error", async () => {
  const { path, dir } = await manyProblems(150);
  try {
    const all = await validate("--max-problems", "0", path);
    assert.equal(all.code, 1);
    const lines = all.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 150);
    assert.match(lines[149]!, /: configurations\[149\]\.listenerAddress: port 70000/);
    const three = await validate("--max-problems", "3", path);
    assert.equal(three.code, 1);
    assert.deepEqual(three.stdout.trimEnd().split("\n").slice(3), [
      "... and 147 more problem(s), 150 in all (--max-problems 0 prints all)",
    ]);
    const json = await validate("-o", "json", path);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.stdout).length, 150, "json prints every problem");
    const bad = await validate("--max-problems", "-1", path);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, "");
    assert.equal(
      bad.stderr,
      'nautiluslb: Cannot use --max-problems "-1": expected a whole number (0 prints every problem)\n',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate -c /dev/urandom stops at the size limit and exits 2", async () => {
  const started = performance.now();
  const run = await validate("-c", "/dev/urandom");
  const elapsedMs = performance.now() - started;
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.equal(
    run.stderr,
    'nautiluslb: Cannot read config "/dev/urandom": the file is larger than 4 MiB: a config is a few kilobytes\n',
  );
  // Reading stops after 4 MiB; before the limit this ran until the machine ran out of memory.
  assert.ok(elapsedMs < 30_000, `took ${elapsedMs.toFixed(0)} ms`);
});

Deno.test("validate of a FIFO without a writer stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const fifo = `${dir}/config.yaml`;
  try {
    const mkfifo = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(mkfifo.code, 0);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "-A", "src/main.ts", "validate", fifo],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Wait until the process is blocked on the FIFO: it has opened no reader before that, so
    // a non-blocking writer cannot open yet; poll the process's open files instead.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(await hasOpened(child.pid, fifo))) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const killedAt = performance.now();
    child.kill("SIGTERM");
    const { code, stdout, stderr } = await child.output();
    const elapsedMs = performance.now() - killedAt;
    assert.equal(new TextDecoder().decode(stdout), "");
    assert.equal(
      new TextDecoder().decode(stderr),
      `nautiluslb: Cannot read config ${JSON.stringify(fifo)}: interrupted: SIGTERM received\n`,
    );
    assert.equal(code, 2);
    assert.ok(elapsedMs < 10_000, `took ${elapsedMs.toFixed(0)} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Whether process `pid` is waiting to open `path`. A blocked `open(2)` shows in
 * `/proc/PID/syscall` as syscall 257 (openat, x86-64) or 56 (openat, arm64) before the file
 * appears among its descriptors; either way the signal handlers are installed by then.
 */
async function hasOpened(pid: number, path: string): Promise<boolean> {
  try {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    if (!cmdline.includes(path)) return false;
    const syscall = await Deno.readTextFile(`/proc/${pid}/syscall`).catch(() => "");
    const number = Number(syscall.split(" ")[0]);
    if (number === 257 || number === 56) return true;
    for await (const entry of Deno.readDir(`/proc/${pid}/task`)) {
      const task = await Deno.readTextFile(`/proc/${pid}/task/${entry.name}/syscall`)
        .catch(() => "");
      const n = Number(task.split(" ")[0]);
      if (n === 257 || n === 56) return true;
    }
    return false;
  } catch {
    return false;
  }
}

Deno.test("validate reports a UTF-16 config as not UTF-8, with the file name", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/config.yaml`;
  try {
    const text = await Deno.readTextFile(new URL("config.yaml", ROOT));
    const utf16 = new Uint8Array(2 + text.length * 2);
    utf16.set([0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) {
      utf16[2 + 2 * i] = text.charCodeAt(i) & 0xff;
      utf16[3 + 2 * i] = text.charCodeAt(i) >> 8;
    }
    await Deno.writeFile(file, utf16);
    const run = await validate(file);
    assert.equal(
      run.stdout,
      `${file}:1:1: the file is not UTF-8: it starts with a UTF-16 byte order mark: save it as UTF-8\n`,
    );
    assert.equal(run.code, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const { file, lines } of INVALID) {
  Deno.test(`validate reports every problem in ${file}`, async () => {
    const run = await validate(file);
    assert.equal(run.stdout, lines.map((line) => `${line}\n`).join(""));
    assert.equal(run.code, 1);
  });

  Deno.test(`validate -o json reports ${file} as issue objects`, async () => {
    const run = await validate(file, "-o", "json");
    assert.deepEqual(JSON.parse(run.stdout), lines.map(issueOf));
    assert.equal(run.code, 1);
  });
}

Deno.test("every fixture in examples/invalid/ is covered", async () => {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL("examples/invalid/", ROOT))) {
    if (entry.isFile) files.push(`examples/invalid/${entry.name}`);
  }
  assert.deepEqual(files.sort(), INVALID.map((c) => c.file).sort());
});
