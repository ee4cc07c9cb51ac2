/**
 * Property tests of what comes from the cluster: annotation values, and Kubernetes objects
 * with missing or odd fields (null, wrong types, huge numbers, deep nesting), as a watch or a
 * hand-written manifest may deliver them.
 *
 * Contracts under test: the annotation parsers and resolution never throw; the converters
 * throw only their documented `TypeError` ("Cannot convert ..."); `parseManifests` only its
 * documented `SyntaxError`.
 *
 * Runs are seeded, so a failure reproduces: fast-check prints the seed and the shrunk
 * counterexample's path; rerun with `FUZZ_SEED=<seed>` (and optionally `FUZZ_RUNS=<n>` for a
 * longer search), e.g. `FUZZ_SEED=42 deno test --allow-all tests/reliability/`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  convertObject,
  endpointSliceFromObject,
  endpointSlicesFromEndpoints,
  type Inventory,
  nodeFromObject,
  parseManifests,
  serviceFromObject,
  type ServiceInfo,
} from "../../src/discovery/mod.ts";
import {
  ANNOTATION_BACKEND_MODE,
  ANNOTATION_ENABLED,
  ANNOTATION_WEIGHT,
  BACKEND_MODE_NAMES,
  KNOWN_ANNOTATIONS,
  MAX_BACKEND_WEIGHT,
  parseBackendMode,
  parseWeight,
  type PoolSpec,
  resolvePools,
} from "../../src/resolve/mod.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20_261_201);
const RUNS_FACTOR = Number(Deno.env.get("FUZZ_RUNS") ?? 1);
const ROOT = new URL("../../", import.meta.url);

function options(numRuns: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns: Math.max(1, Math.round(numRuns * RUNS_FACTOR)) };
}

// ---------------------------------------------------------------------------------------
// Annotations

/** Annotation values as people write them, and as they should not. */
const annotationText = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.constantFrom(
    "",
    " ",
    "true",
    "True",
    "TRUE",
    "1",
    "0",
    "1000",
    "1001",
    "-1",
    "01",
    "1e3",
    "0x10",
    "9".repeat(400),
    " 7 ",
    "７",
    "NodePort",
    " endpoints\n",
    "auto\u0000",
    "constructor",
    "__proto__",
  ),
);

Deno.test("fuzz: annotation parsers never throw and return only valid values", () => {
  fc.assert(
    fc.property(annotationText, (text) => {
      const weight = parseWeight(text);
      if (weight !== undefined) {
        assert.ok(Number.isInteger(weight) && weight >= 0 && weight <= MAX_BACKEND_WEIGHT, text);
      }
      const mode = parseBackendMode(text);
      if (mode !== undefined) assert.ok(BACKEND_MODE_NAMES.includes(mode), text);
    }),
    options(2_000),
  );
  for (let n = 0; n <= MAX_BACKEND_WEIGHT; n++) assert.equal(parseWeight(String(n)), n);
});

async function exampleInventory(): Promise<Inventory> {
  const sources = await Promise.all(
    ["examples/cluster/nodes.yaml", "examples/cluster/services.yaml"].map(async (name) => ({
      name,
      text: await Deno.readTextFile(new URL(name, ROOT)),
    })),
  );
  return parseManifests(sources).inventory;
}

const anyAnnotations = fc.dictionary(
  fc.oneof(
    fc.constantFrom(...KNOWN_ANNOTATIONS, ANNOTATION_ENABLED, ANNOTATION_WEIGHT),
    fc.constantFrom(ANNOTATION_BACKEND_MODE),
    fc.string({ maxLength: 12 }),
  ),
  annotationText,
  { maxKeys: 6 },
);
// Half the maps opt the Service in, so every seed reaches resolution of enabled Services
// (a random "true" under the enabled key alone is too rare to rely on).
const annotationMap = fc.oneof(
  anyAnnotations,
  anyAnnotations.map((map) => ({ ...map, [ANNOTATION_ENABLED]: "true" })),
);

Deno.test("fuzz: resolution with arbitrary annotations never throws", async () => {
  const base = await exampleInventory();
  const services = [...base.services.values()];
  assert.ok(services.length > 0);
  let plansWithBackends = 0;
  fc.assert(
    fc.property(
      fc.array(annotationMap, { minLength: services.length, maxLength: services.length }),
      fc.constantFrom("auto", "nodeport", "clusterip", "endpoints"),
      fc.option(fc.oneof(fc.constantFrom("http", "https", "mongodb"), fc.string({ maxLength: 8 }))),
      (annotations, backendMode, backendPortName) => {
        const changed = new Map<string, ServiceInfo>();
        services.forEach((service, i) => {
          changed.set(`${service.namespace}/${service.name}`, {
            ...service,
            annotations: annotations[i]!,
          });
        });
        const spec: PoolSpec = {
          name: "fuzz",
          listenerAddress: ":80",
          ...(backendPortName === null ? {} : { backendPortName }),
          backendMode,
          nodeAddressTypes: ["InternalIP", "ExternalIP"],
          excludeCordonedNodes: false,
          backends: [],
        };
        const [plan] = resolvePools({ ...base, services: changed }, [spec]);
        assert.ok(plan !== undefined);
        assert.equal(plan.name, "fuzz");
        for (const backend of plan.backends) {
          assert.ok(Number.isInteger(backend.weight), JSON.stringify(backend));
          assert.ok(
            backend.weight >= 0 && backend.weight <= MAX_BACKEND_WEIGHT,
            JSON.stringify(backend),
          );
          const limit = backend.maxConnections;
          if (limit !== undefined) {
            assert.ok(Number.isInteger(limit) && limit >= 1 && limit <= 10_000_000, `${limit}`);
          }
        }
        for (const warning of plan.warnings) assert.equal(typeof warning, "string");
        if (plan.backends.length > 0) plansWithBackends++;
      },
    ),
    options(500),
  );
  // The generator reaches enabled Services, so the weight checks above did run.
  assert.ok(plansWithBackends > 0);
});

// ---------------------------------------------------------------------------------------
// Kubernetes objects

/** A value nested `depth` levels deep, alternating lists and maps. */
function nested(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { name: value, port: i };
  return value;
}

/**
 * Generators of Kubernetes objects whose fields are sometimes odd, with values nested up to
 * `maxDepth` levels.
 */
function kubeArbitraries(maxDepth: number) {
  /** Anything a field might hold when it should not. */
  const oddValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constantFrom(
        null,
        undefined,
        true,
        false,
        0,
        -0,
        -1,
        65536,
        1e308,
        -1e308,
        Number.MAX_SAFE_INTEGER + 2,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        "",
        "None",
        "10.0.0.1",
        "::1",
        "fe80::1%eth0",
        "True",
        "http",
        "TCP",
        "NodePort",
        "Local",
        "__proto__",
      ),
      fc.integer(),
      fc.double(),
      fc.string({ maxLength: 16 }),
      fc.array(tie("value"), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 8 }), tie("value"), { maxKeys: 3 }),
      fc.integer({ min: 50, max: maxDepth }).map((depth) => nested(depth, "x")),
    ),
  })).value;

  /** A field that is usually well-typed, sometimes odd, sometimes absent. */
  function field<T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
    return fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: oddValue });
  }

  const port = fc.record(
    {
      name: field(fc.constantFrom("http", "https", "")),
      protocol: field(fc.constantFrom("TCP", "UDP", "SCTP")),
      port: field(fc.integer({ min: 1, max: 65535 })),
      nodePort: field(fc.integer({ min: 30000, max: 32767 })),
      targetPort: field(fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constant("http"))),
    },
    { requiredKeys: [] },
  );

  const address = field(fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()));

  const metadata = fc.record(
    {
      name: field(fc.constantFrom("web", "db", "node-1")),
      namespace: field(fc.constantFrom("default", "dev", "")),
      labels: field(fc.dictionary(fc.string({ maxLength: 8 }), field(fc.string()), { maxKeys: 3 })),
      annotations: field(annotationMap),
    },
    { requiredKeys: [] },
  );

  const endpoint = fc.record(
    {
      addresses: field(fc.array(address, { maxLength: 3 })),
      conditions: field(
        fc.record({ ready: field(fc.boolean()), serving: field(fc.boolean()) }, {
          requiredKeys: [],
        }),
      ),
      nodeName: field(fc.constantFrom("node-1", "node-2")),
      topology: field(fc.dictionary(fc.constant("kubernetes.io/hostname"), field(fc.string()))),
      targetRef: field(fc.record({ kind: field(fc.constant("Pod")), name: field(fc.string()) })),
    },
    { requiredKeys: [] },
  );

  const kubeObject = fc.record(
    {
      kind: field(fc.constantFrom("Service", "Node", "EndpointSlice", "Endpoints", "Pod", "List")),
      apiVersion: field(
        fc.constantFrom("v1", "discovery.k8s.io/v1", "discovery.k8s.io/v1beta1", "apps/v1"),
      ),
      metadata: field(metadata),
      spec: field(
        fc.record({
          type: field(fc.constantFrom("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")),
          clusterIP: address,
          clusterIPs: field(fc.array(address, { maxLength: 3 })),
          ports: field(fc.array(port, { maxLength: 3 })),
          externalTrafficPolicy: field(fc.constantFrom("Cluster", "Local")),
          healthCheckNodePort: field(fc.integer({ min: 30000, max: 32767 })),
          unschedulable: field(fc.boolean()),
        }, { requiredKeys: [] }),
      ),
      status: field(
        fc.record({
          addresses: field(
            fc.array(
              fc.record({ type: field(fc.constantFrom("InternalIP", "ExternalIP")), address }),
              { maxLength: 3 },
            ),
          ),
          conditions: field(
            fc.array(
              fc.record({
                type: field(fc.constant("Ready")),
                status: field(fc.constantFrom("True", "False", "Unknown")),
              }),
              { maxLength: 2 },
            ),
          ),
        }, { requiredKeys: [] }),
      ),
      addressType: field(fc.constantFrom("IPv4", "IPv6", "FQDN")),
      endpoints: field(fc.array(endpoint, { maxLength: 3 })),
      ports: field(fc.array(port, { maxLength: 3 })),
      subsets: field(
        fc.array(
          fc.record({
            addresses: field(fc.array(fc.record({ ip: address, nodeName: field(fc.string()) }))),
            notReadyAddresses: field(fc.array(fc.record({ ip: address }))),
            ports: field(fc.array(port, { maxLength: 2 })),
          }, { requiredKeys: [] }),
          { maxLength: 2 },
        ),
      ),
      items: field(fc.array(oddValue, { maxLength: 2 })),
    },
    { requiredKeys: [] },
  );
  return { oddValue, kubeObject };
}

/** Deep nesting is cheap to convert; parsing it as YAML is not, so manifests get less. */
const deep = kubeArbitraries(2_000);
const shallow = kubeArbitraries(60);

/** Calls `fn`, allowing only the converters' documented error. */
function convertsOrRefuses(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TypeError, `unexpected ${String(error)}`);
    assert.match(error.message, /^Cannot convert \w+: /);
  }
}

Deno.test("fuzz: Kubernetes objects with odd fields convert or are refused as documented", () => {
  fc.assert(
    fc.property(
      fc.oneof({ weight: 9, arbitrary: deep.kubeObject }, { weight: 1, arbitrary: deep.oddValue }),
      (object) => {
        convertsOrRefuses(() => {
          const converted = convertObject(object);
          if (converted !== undefined) {
            assert.equal(converted.kind, (object as { kind: unknown }).kind);
            assert.equal(typeof converted.key, "string");
          }
        });
        convertsOrRefuses(() => serviceFromObject(object));
        convertsOrRefuses(() => nodeFromObject(object));
        convertsOrRefuses(() => endpointSliceFromObject(object));
        convertsOrRefuses(() => endpointSlicesFromEndpoints(object));
      },
    ),
    options(1_500),
  );
});

/** Calls `fn`, allowing only `parseManifests`' documented error. */
function parsesOrRefuses(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SyntaxError, `unexpected ${String(error)}`);
  }
}

Deno.test("fuzz: manifests of odd objects parse or are refused as documented", () => {
  const documents = fc.array(
    fc.oneof(
      shallow.kubeObject,
      fc.array(shallow.kubeObject, { maxLength: 3 }).map((items) => ({ kind: "List", items })),
    ),
    { maxLength: 4 },
  );
  fc.assert(
    fc.property(documents, (objects) => {
      // JSON is YAML, and unlike a YAML writer it handles the deeply nested values.
      const text = objects.map((o) => JSON.stringify(o) ?? "null").join("\n---\n");
      parsesOrRefuses(() => {
        const { inventory, warnings } = parseManifests([{ name: "fuzz.yaml", text }]);
        assert.ok(inventory.services instanceof Map);
        // Every warning names its place: the file, with line and column when one object is meant.
        for (const warning of warnings) assert.match(warning, /fuzz\.yaml(:\d+:\d+)?\b/);
      });
    }),
    options(200),
  );
});

Deno.test("fuzz: every truncation of the example manifests parses or is refused", async () => {
  for (const name of ["examples/cluster/nodes.yaml", "examples/cluster/services.yaml"]) {
    const text = await Deno.readTextFile(new URL(name, ROOT));
    for (let end = 0; end <= text.length; end++) {
      parsesOrRefuses(() => parseManifests([{ name, text: text.slice(0, end) }]));
    }
  }
});
