import assert from "node:assert/strict";
import { loadKubeConfig } from "./kubeconfig.ts";

const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/** One cluster, user and context, all named `context`; a token, else basic auth. */
interface KubeconfigOptions {
  context: string;
  server: string;
  token?: string;
  current?: string;
  username?: string;
}

function kubeconfigText(options: KubeconfigOptions): string {
  const user = options.token !== undefined
    ? `    token: ${options.token}`
    : `    username: ${options.username}\n    password: secret`;
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${options.context}`,
    "  cluster:",
    `    server: ${options.server}`,
    `    certificate-authority-data: ${btoa(CA_PEM)}`,
    "users:",
    `- name: ${options.context}`,
    "  user:",
    user,
    "contexts:",
    `- name: ${options.context}`,
    "  context:",
    `    cluster: ${options.context}`,
    `    user: ${options.context}`,
    `current-context: ${options.current ?? options.context}`,
    "",
  ].join("\n");
}

/** Writes {@linkcode kubeconfigText} of `options` to `path`. */
function writeKubeconfig(path: string, options: KubeconfigOptions): Promise<void> {
  return Deno.writeTextFile(path, kubeconfigText(options));
}

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nautiluslb-kubeconfig-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function envOf(vars: Record<string, string>): (name: string) => string | undefined {
  return (name) => vars[name];
}

Deno.test("loadKubeConfig prefers an explicit path over every other source", async () => {
  await withTempDir(async (dir) => {
    const explicit = `${dir}/explicit`;
    const fromVar = `${dir}/from-var`;
    await writeKubeconfig(explicit, { context: "a", server: "https://a:6443", token: "t-a" });
    await writeKubeconfig(fromVar, { context: "b", server: "https://b:6443", token: "t-b" });
    const creds = await loadKubeConfig({
      kubeconfigPath: explicit,
      env: envOf({ KUBECONFIG: fromVar, KUBERNETES_SERVICE_HOST: "10.0.0.1", HOME: dir }),
    });
    assert.equal(creds.source, "path");
    assert.equal(creds.path, explicit);
    assert.equal(creds.context, "a");
    assert.equal(creds.server, "https://a:6443");
    assert.equal(
      creds.describe(),
      `kubeconfig ${explicit} (explicit path), context a, server https://a:6443`,
    );
    const auth = await creds.requestAuth();
    assert.deepEqual(auth.headers, { Authorization: "Bearer t-a" });
    assert.equal(auth.caPem, CA_PEM);
    assert.equal(auth.server, "https://a:6443");
  });
});

Deno.test("loadKubeConfig reports a missing explicit file", async () => {
  await assert.rejects(
    () => loadKubeConfig({ kubeconfigPath: "/nonexistent/kubeconfig", env: envOf({}) }),
    { message: "Cannot read kubeconfig '/nonexistent/kubeconfig': file does not exist" },
  );
});

Deno.test("loadKubeConfig merges KUBECONFIG files; the first current-context wins", async () => {
  await withTempDir(async (dir) => {
    const one = `${dir}/one`;
    const two = `${dir}/two`;
    await writeKubeconfig(one, { context: "one", server: "https://one", token: "1" });
    await writeKubeconfig(two, { context: "two", server: "https://two", token: "2" });
    const env = envOf({ KUBECONFIG: `${dir}/missing:${one}:${two}`, HOME: dir });
    const first = await loadKubeConfig({ env });
    assert.equal(first.source, "KUBECONFIG");
    assert.equal(first.path, `${one}:${two}`);
    assert.equal(first.context, "one");
    const second = await loadKubeConfig({ env, context: "two" });
    assert.equal(second.server, "https://two");
    assert.deepEqual((await second.requestAuth()).headers, { Authorization: "Bearer 2" });
  });
});

Deno.test("loadKubeConfig names the known contexts when the asked one is missing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/config`;
    await writeKubeconfig(path, { context: "kind", server: "https://k", token: "t" });
    await assert.rejects(() => loadKubeConfig({ kubeconfigPath: path, context: "prod" }), {
      message: `Cannot use context 'prod': kubeconfig '${path}' has contexts: kind`,
    });
  });
});

Deno.test("loadKubeConfig uses the in-cluster service account before ~/.kube/config", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/.kube`);
    await writeKubeconfig(`${dir}/.kube/config`, {
      context: "home",
      server: "https://home",
      token: "h",
    });
    await Deno.mkdir(`${dir}/sa`);
    await Deno.writeTextFile(`${dir}/sa/token`, "sa-token");
    await Deno.writeTextFile(`${dir}/sa/ca.crt`, CA_PEM);
    const creds = await loadKubeConfig({
      env: envOf({
        KUBERNETES_SERVICE_HOST: "fd00::1",
        KUBERNETES_SERVICE_PORT: "443",
        HOME: dir,
      }),
      serviceAccountDir: `${dir}/sa`,
    });
    assert.equal(creds.source, "in-cluster");
    assert.equal(creds.server, "https://[fd00::1]:443");
    assert.equal(
      creds.describe(),
      "in-cluster service account, context in-cluster, server https://[fd00::1]:443",
    );
    const auth = await creds.requestAuth();
    assert.equal(auth.headers["Authorization"], "Bearer sa-token");
    assert.equal(auth.caPem, CA_PEM);

    const home = await loadKubeConfig({
      env: envOf({ HOME: dir }),
      serviceAccountDir: `${dir}/sa`,
    });
    assert.equal(home.source, "home");
    assert.equal(home.path, `${dir}/.kube/config`);
  });
});

Deno.test("loadKubeConfig sends basic auth for username/password users", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/config`;
    await writeKubeconfig(path, { context: "c", server: "https://c/", username: "me" });
    const auth = await (await loadKubeConfig({ kubeconfigPath: path })).requestAuth();
    assert.equal(auth.headers["Authorization"], `Basic ${btoa("me:secret")}`);
    assert.equal(auth.server, "https://c");
  });
});

Deno.test("loadKubeConfig explains where it looked when nothing is found", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      () => loadKubeConfig({ env: envOf({ HOME: dir }), serviceAccountDir: `${dir}/sa` }),
      {
        message: "Cannot find Kubernetes credentials: no kubeconfig path given, KUBECONFIG is " +
          "not set, not running in a cluster (KUBERNETES_SERVICE_HOST unset or no token in " +
          `${dir}/sa), and ${dir}/.kube/config does not exist`,
      },
    );
  });
});

const TOKEN = "tok-4f9a1c7e2b";
const PASSWORD = "pw-8d3e6b0a51";
const CLIENT_KEY = btoa("-----BEGIN PRIVATE KEY-----\nkey-7c2e9f\n-----END PRIVATE KEY-----\n");

function errorTexts(error: unknown): string {
  const parts: string[] = [Deno.inspect(error, { depth: 10 })];
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    parts.push(e.message, e.stack ?? "");
  }
  return parts.join("\n");
}

Deno.test("loadKubeConfig keeps secrets out of a parse error of a malformed file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/config`;
    await Deno.writeTextFile(
      path,
      [
        "apiVersion: v1",
        "clusters:",
        "- name: c",
        "  cluster:",
        `    server: https://admin:${PASSWORD}@c:6443`,
        "users:",
        "- name: c",
        "  user:",
        `    token: ${TOKEN}`,
        `    password: ${PASSWORD}`,
        `    client-key-data: ${CLIENT_KEY}`,
        "   bad: indentation",
        "",
      ].join("\n"),
    );
    const error = await loadKubeConfig({ kubeconfigPath: path }).then(
      () => assert.fail("a malformed kubeconfig must not load"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error);
    assert.match(error.message, new RegExp(`^Cannot read kubeconfig '${path}': `));
    const text = errorTexts(error);
    for (const secret of [TOKEN, PASSWORD, CLIENT_KEY, "key-7c2e9f"]) {
      assert.ok(!text.includes(secret), `the error shows ${secret}: ${text}`);
    }
  });
});

Deno.test("KubeCredentials never shows the user-info of a server URL; it becomes basic auth", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/config`;
    await Deno.writeTextFile(
      path,
      kubeconfigText({ context: "c", server: `https://admin:${PASSWORD}@c:6443`, token: "" })
        .replace("    token: \n", "    {}\n").replace("  user:\n    {}", "  user: {}"),
    );
    const creds = await loadKubeConfig({ kubeconfigPath: path });
    assert.equal(creds.server, "https://c:6443");
    assert.ok(!creds.describe().includes(PASSWORD), creds.describe());
    assert.ok(!Deno.inspect(creds).includes(PASSWORD));
    const auth = await creds.requestAuth();
    assert.equal(auth.server, "https://c:6443");
    assert.equal(auth.headers["Authorization"], `Basic ${btoa(`admin:${PASSWORD}`)}`);
  });
});
