import assert from "node:assert/strict";
import { getLogger, resetLogging, setupLogging } from "./mod.ts";

/** The JSON lines one call of `log` writes through the real setup. */
async function jsonLines(log: (logger: ReturnType<typeof getLogger>) => void): Promise<unknown[]> {
  const lines: string[] = [];
  await setupLogging({ format: "json", level: "info", write: (line) => lines.push(line) });
  try {
    log(getLogger("test"));
  } finally {
    await resetLogging();
  }
  for (const line of lines) assert.ok(line.endsWith("}\n") && !line.slice(0, -1).includes("\n"));
  return lines.map((line) => JSON.parse(line));
}

Deno.test("json log: strings in the message are not quoted; properties stay structured", async () => {
  const [record] = await jsonLines((log) =>
    log.warn("Cannot reload {path}: {error}; {count} problem(s)", {
      path: "conf/a.yaml",
      error: new RangeError("port 70000 is out of range", { cause: new Error("inner") }),
      count: 3,
    })
  ) as [Record<string, unknown>];
  assert.equal(
    record.message,
    "Cannot reload conf/a.yaml: port 70000 is out of range; 3 problem(s)",
  );
  assert.equal(record.level, "WARN");
  assert.equal(record.logger, "nautiluslb.test");
  assert.ok(!Number.isNaN(Date.parse(record["@timestamp"] as string)));
  assert.deepEqual(record.properties, {
    path: "conf/a.yaml",
    error: {
      name: "RangeError",
      message: "port 70000 is out of range",
      cause: { name: "Error", message: "inner" },
    },
    count: 3,
  });
});

Deno.test("json log: objects, bigints and cycles do not lose the record", async () => {
  const cycle: Record<string, unknown> = { name: "loop" };
  cycle.self = cycle;
  const records = await jsonLines((log) => {
    log.info("Listening on {address} ({sizes})", { address: "127.0.0.1:80", sizes: [1, 2] });
    log.info("Counted {n}", { n: 12n });
    log.error("Odd {value}", { value: cycle });
  }) as Record<string, unknown>[];
  assert.equal(records[0]!.message, "Listening on 127.0.0.1:80 ([1,2])");
  assert.deepEqual(records[0]!.properties, { address: "127.0.0.1:80", sizes: [1, 2] });
  assert.equal(records[1]!.message, "Counted 12");
  assert.deepEqual(records[1]!.properties, { n: "12" });
  assert.match(records[2]!.message as string, /^Odd .*loop/);
  assert.equal(typeof records[2]!.properties, "string");
  assert.match(records[2]!.properties as string, /Circular/);
});
