import assert from "node:assert/strict";
import { Http1Error, indexOfHeadEnd, parseHead } from "./_http1_head.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("indexOfHeadEnd() finds the CRLFCRLF from the given index", () => {
  const head = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody");
  assert.equal(indexOfHeadEnd(head, 0), 23);
  assert.equal(indexOfHeadEnd(head, 23), 23);
  assert.equal(indexOfHeadEnd(head, 24), -1);
  assert.equal(indexOfHeadEnd(bytes("GET / HTTP/1.1\r\n\r"), 0), -1);
});

Deno.test("parseHead() reads the request line, fields and framing", () => {
  assert.deepEqual(
    parseHead(bytes("\r\nGET /metrics?x=1 HTTP/1.1\r\nHost:  a \r\nContent-Length: 3"), 10),
    {
      method: "GET",
      target: "/metrics?x=1",
      headers: [["Host", "a"], ["Content-Length", "3"]],
      keepAlive: true,
      bodyLength: 3,
    },
  );
  assert.equal(
    parseHead(bytes("GET / HTTP/1.1\r\nConnection: Keep-Alive, close"), 10).keepAlive,
    false,
  );
  assert.equal(parseHead(bytes("GET / HTTP/1.0\r\nConnection: keep-alive"), 10).keepAlive, false);
});

Deno.test("parseHead() rejects malformed heads with their status", () => {
  const cases: [string, number, string][] = [
    ["GET http://a/ HTTP/1.1", 400, "bad request line"],
    ["GET / HTTP/2.0", 400, "bad request line"],
    ["GET / HTTP/1.1\r\nNo colon", 400, "bad header field"],
    ["GET / HTTP/1.1\r\nBad Name: x", 400, "bad header field"],
    ["GET / HTTP/1.1\r\nX: a\u0001b", 400, "bad header field"],
    ["GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400, "conflicting content-length"],
    ["GET / HTTP/1.1\r\nContent-Length: -1", 400, "bad content-length"],
    ["GET / HTTP/1.1\r\nTransfer-Encoding: chunked", 501, "transfer-encoding not supported"],
    ["GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3", 431, "too many header fields"],
  ];
  for (const [text, status, message] of cases) {
    assert.throws(
      () => parseHead(bytes(text), 2),
      (error: unknown) => {
        assert.ok(error instanceof Http1Error, text);
        assert.deepEqual([error.status, error.message], [status, message], text);
        return true;
      },
    );
  }
});
