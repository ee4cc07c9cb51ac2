import assert from "node:assert/strict";
import { REDACTED, redactSecrets, redactUrl } from "./redact.ts";

Deno.test("redactSecrets() removes every kind of credential and keeps the rest", () => {
  const cases: [string, string][] = [
    ["https://user:pw@host:6443/api", `https://${REDACTED}@host:6443/api`],
    ["proxy http://tok@10.0.0.1 refused", `proxy http://${REDACTED}@10.0.0.1 refused`],
    ["    token: abc.def-123", `    token: ${REDACTED}`],
    ['{"password": "hunter2", "user": "me"}', `{"password": ${REDACTED}, "user": "me"}`],
    ["client-key-data: LS0tLS1CRUdJTg==", `client-key-data: ${REDACTED}`],
    ["Authorization: Bearer eyJhbGciOi.x.y", `Authorization: Bearer ${REDACTED}`],
    ["Basic dXNlcjpwdw==", `Basic ${REDACTED}`],
    [
      "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nb",
      `a\n${REDACTED}\nb`,
    ],
    [
      "GET /api/v1/nodes returned 500: etcd timeout",
      "GET /api/v1/nodes returned 500: etcd timeout",
    ],
    ["server https://10.0.0.1:443, context kind", "server https://10.0.0.1:443, context kind"],
  ];
  for (const [input, expected] of cases) assert.equal(redactSecrets(input), expected, input);
});

Deno.test("redactUrl() drops user-info and leaves other URLs unchanged", () => {
  assert.equal(redactUrl("https://admin:pw@k8s.example:6443"), "https://k8s.example:6443");
  assert.equal(redactUrl("https://admin:pw@k8s.example/"), "https://k8s.example/");
  assert.equal(redactUrl("https://10.0.0.1:443"), "https://10.0.0.1:443");
  assert.equal(redactUrl("not a url token: x"), `not a url token: ${REDACTED}`);
});
