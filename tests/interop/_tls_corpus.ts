/**
 * The ClientHello corpus of the TLS interop tests: real hellos captured from `openssl
 * s_client` and `gnutls-cli`, and hellos built byte by byte (split into records, one byte per
 * segment, padded, GREASE, ECH, no SNI, an IP literal, upper case with a trailing dot, over
 * the size bound, never finished, plain text). Each case says how its bytes go on the wire.
 *
 * @module
 */
import { ClientHelloReader } from "../../src/proxy/mod.ts";
import { buildClientHello } from "../../src/proxy/tls/_test_hello.ts";

/** One corpus entry. */
export interface HelloCase {
  /** Short label, for assertion messages. */
  readonly label: string;
  readonly bytes: Uint8Array;
  /** Write one byte per TCP segment (Nagle off), else all at once. */
  readonly isPerByte?: boolean;
  /** Keep the connection open without sending more (a hello that never ends). */
  readonly isUnfinished?: boolean;
}

/**
 * Runs `argv` against a loopback socket that keeps the first complete ClientHello the
 * client sends, then closes. For `openssl s_client` and `gnutls-cli`.
 */
export async function captureHello(argv: (port: number) => string[]): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  const capture = (async () => {
    const conn = await listener.accept();
    const reader = new ClientHelloReader();
    const got: number[] = [];
    const buffer = new Uint8Array(4096);
    try {
      while (reader.progress.kind === "more") {
        const n = await conn.read(buffer);
        if (n === null) break;
        got.push(...buffer.subarray(0, n));
        reader.push(buffer.subarray(0, n));
      }
    } finally {
      conn.close();
    }
    if (reader.progress.kind !== "done") {
      throw new Error(
        `Cannot capture a ClientHello from ${argv(port)[0]}: ${reader.progress.kind}`,
      );
    }
    return new Uint8Array(got);
  })();
  const [command, ...args] = argv(port);
  const child = new Deno.Command(command!, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    return await capture;
  } finally {
    listener.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await child.status;
  }
}

/** Built cases; `maxClientHello` is the bound the proxies run with. */
export function builtCases(maxClientHello: number): HelloCase[] {
  return [
    { label: "exact", bytes: buildClientHello({ serverName: "api.example.com" }) },
    { label: "one label", bytes: buildClientHello({ serverName: "www.example.com" }) },
    { label: "two labels", bytes: buildClientHello({ serverName: "a.b.example.com" }) },
    { label: "any depth", bytes: buildClientHello({ serverName: "x.y.svc.example.com" }) },
    { label: "apex", bytes: buildClientHello({ serverName: "example.com" }) },
    {
      label: "upper case, trailing dot",
      bytes: buildClientHello({ serverName: "API.Example.COM." }),
    },
    { label: "no SNI", bytes: buildClientHello({}) },
    { label: "IP literal", bytes: buildClientHello({ serverName: "10.1.2.3" }) },
    { label: "unknown name", bytes: buildClientHello({ serverName: "other.test" }) },
    { label: "GREASE", bytes: buildClientHello({ serverName: "g.example.com", grease: true }) },
    {
      label: "ECH outer public_name",
      bytes: buildClientHello({ serverName: "api.example.com", echPayloadBytes: 300 }),
    },
    {
      label: "padded 2 KB",
      bytes: buildClientHello({ serverName: "api.example.com", padTo: 2048 }),
    },
    {
      label: "padded 6 KB",
      bytes: buildClientHello({ serverName: "p.svc.example.com", padTo: 6000 }),
    },
    {
      label: "3 records",
      bytes: buildClientHello({ serverName: "api.example.com", recordSizes: [60, 60] }),
    },
    {
      label: "padded 6 KB in 4 records",
      bytes: buildClientHello({ serverName: "api.example.com", padTo: 6000, recordSizes: [1500] }),
    },
    {
      label: "one byte per segment",
      bytes: buildClientHello({ serverName: "api.example.com" }),
      isPerByte: true,
    },
    {
      label: "over maxClientHello",
      bytes: buildClientHello({
        serverName: "api.example.com",
        padTo: maxClientHello + 2000,
        recordSizes: [8000],
      }),
    },
    {
      label: "never finished",
      bytes: buildClientHello({ serverName: "api.example.com" }).subarray(0, 40),
      isUnfinished: true,
    },
    {
      label: "plain text",
      bytes: new TextEncoder().encode("GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
    },
  ];
}
