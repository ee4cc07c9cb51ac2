/**
 * `deno task bench:config [--rounds N] [--baseline REV]`: how long `nautiluslb validate` takes
 * on large configs, as a whole process (Deno's start-up included, as an operator sees it).
 *
 * Shapes, each about 2 MB: 64,000 unknown keys in one listener (every one reported with a
 * did-you-mean check), 25,000 listeners (valid), 40,000 backends whose weights are aliases
 * (valid); and the example
 * `config.yaml` for the start-up floor. With `--baseline REV` the same commands run from a
 * checkout of that revision too, interleaved (A B A B …), and the table gives the ratio per
 * shape (median of the pairwise ratios).
 *
 * @module
 */
const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

interface Args {
  readonly rounds: number;
  readonly baseline: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i === -1 ? undefined : argv[i + 1];
  };
  const rounds = Number(value("--rounds") ?? 7);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(`Cannot run the benchmark as '--rounds' must be a positive integer`);
  }
  return { rounds, baseline: value("--baseline") };
}

const LISTENER = `  - name: web
    listenerAddress: ":8080"
    backendPortName: http
`;

/** Generated configs by shape name. */
function shapes(): Record<string, string> {
  const unknownKeys = ["configurations:\n", LISTENER];
  for (let i = 0; i < 64_000; i++) unknownKeys.push(`    unknownKey${i}: value${i}\n`);
  const listeners = ["configurations:\n"];
  for (let i = 0; i < 25_000; i++) {
    listeners.push(
      `  - name: l${i}\n    listenerAddress: "127.0.0.1:${
        10_000 + i
      }"\n    backendPortName: http\n`,
    );
  }
  const aliases = [
    "configurations:\n",
    '  - name: static\n    listenerAddress: ":8080"\n    backends:\n',
    '      - { address: "10.255.255.255:80", weight: &w 2 }\n',
  ];
  for (let i = 0; i < 40_000; i++) {
    aliases.push(
      `      - { address: "10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:80", weight: *w }\n`,
    );
  }
  return {
    "example config.yaml": Deno.readTextFileSync(`${ROOT}/config.yaml`),
    "64,000 unknown keys": unknownKeys.join(""),
    "25,000 listeners": listeners.join(""),
    "40,000 backends, each with an alias": aliases.join(""),
  };
}

async function timeValidate(root: string, file: string): Promise<number> {
  const started = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", `${root}/src/main.ts`, "validate", file],
    stdout: "null",
    stderr: "null",
    cwd: root,
  }).output();
  const elapsed = performance.now() - started;
  if (code !== 0 && code !== 1) throw new Error(`validate ${file} exited ${code}`);
  return elapsed;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-config-bench-" });
  let baselineRoot: string | undefined;
  try {
    if (args.baseline !== undefined) {
      baselineRoot = `${dir}/baseline`;
      const add = await new Deno.Command("git", {
        args: ["-C", ROOT, "worktree", "add", "--detach", baselineRoot, args.baseline],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!add.success) {
        throw new Error(
          `Cannot check out ${args.baseline}: ${new TextDecoder().decode(add.stderr)}`,
        );
      }
    }
    const rows: string[] = [];
    rows.push(
      baselineRoot === undefined
        ? "| config | size | validate, ms (median, min-max) |\n|---|---:|---:|"
        : `| config | size | validate, ms (median, min-max) | ${args.baseline}, ms | ratio (pairs: median, min-max) |\n|---|---:|---:|---:|---:|`,
    );
    for (const [name, text] of Object.entries(shapes())) {
      const file = `${dir}/${name.replace(/[^a-z0-9]+/gi, "_")}.yaml`;
      await Deno.writeTextFile(file, text);
      await timeValidate(ROOT, file); // warm the module cache
      if (baselineRoot !== undefined) await timeValidate(baselineRoot, file);
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let round = 0; round < args.rounds; round++) {
        ours.push(await timeValidate(ROOT, file));
        if (baselineRoot !== undefined) theirs.push(await timeValidate(baselineRoot, file));
      }
      const size = `${(text.length / 1_000_000).toFixed(2)} MB`;
      const spread = (v: number[]) =>
        `${median(v).toFixed(0)} (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;
      if (baselineRoot === undefined) rows.push(`| ${name} | ${size} | ${spread(ours)} |`);
      else {
        const ratios = ours.map((t, i) => t / theirs[i]!);
        rows.push(
          `| ${name} | ${size} | ${spread(ours)} | ${spread(theirs)} | ${
            median(ratios).toFixed(2)
          } (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) |`,
        );
      }
      console.error(rows.at(-1));
    }
    console.log(rows.join("\n"));
  } finally {
    if (baselineRoot !== undefined) {
      await new Deno.Command("git", {
        args: ["-C", ROOT, "worktree", "remove", "--force", baselineRoot],
        stdout: "null",
        stderr: "null",
      }).output();
    }
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
