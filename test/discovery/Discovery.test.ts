/**
 * Service discovery over real HTTP. The registries (minos-discovery, Kong) are external services
 * that cannot run here, so `RegistryStub` stands in for them: a node:http server on 127.0.0.1 that
 * implements the endpoints our clients call and records every request. Real sockets, real clock,
 * short backoffs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Logger, Schema, Scope } from "effect"
import * as HttpClient from "effect/http/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as MinosConfig from "../../src/config/MinosConfig.ts"
import { Discovery, DiscoveryError, endpointsOf, type Registration, toMinosUrl } from "../../src/discovery/Discovery.ts"
import * as DiscoveryLayer from "../../src/discovery/DiscoveryLayer.ts"
import * as KongDiscoveryClient from "../../src/discovery/KongDiscoveryClient.ts"
import * as MinosDiscoveryClient from "../../src/discovery/MinosDiscoveryClient.ts"
import { HttpAddress } from "../../src/http/HttpServer.ts"
import * as Router from "../../src/router/Router.ts"
import * as Microservice from "../../src/runtime/Microservice.ts"
import { freePort, type RegistryStub, stub, waitUntil } from "./RegistryStub.ts"

const handlers = [
  Router.rest("POST", "/exams", {}, () => Effect.succeed({})),
  Router.rest("GET", "/exams/:uuid", { params: Schema.Struct({ uuid: Schema.String }) }, () => Effect.succeed({})),
  Router.rest("DELETE", "/exams/:uuid", {}, () => Effect.void),
  Router.rest("GET", "/exams", {}, () => Effect.succeed([])),
  Router.rest("PATCH", "/exams/{uuid}/seats", {}, () => Effect.void),
  Router.command("CreateExam", { payload: Schema.Struct({ title: Schema.String }) }, () => Effect.void)
] as const

const sortedEndpoints = [
  { url: "/exams", method: "GET" },
  { url: "/exams", method: "POST" },
  { url: "/exams/{uuid}", method: "DELETE" },
  { url: "/exams/{uuid}", method: "GET" },
  { url: "/exams/{uuid}/seats", method: "PATCH" }
]

const settings = (discovery: { client: "minos" | "kong"; port: number; enabled?: boolean }, rest = false): MinosConfig.Settings => ({
  source: { file: "<test>", format: "effect-minos/1" },
  service: { name: "exams", aggregate: undefined, entry: undefined },
  rest: { enabled: rest, host: "127.0.0.1", port: 0, bodyLimitBytes: 1_048_576, requestTimeoutMs: 10_000 },
  storage: { backend: "lmdb", path: mkdtempSync(join(tmpdir(), "discovery-")), mapSize: 64 * 1024 * 1024 },
  broker: { backend: "memory" },
  queue: { batchSize: 500, retry: 2, retryBackoffMs: 20, pollIntervalMs: 200 },
  saga: { storage: { backend: "lmdb", path: join(mkdtempSync(join(tmpdir(), "discovery-saga-")), "sagas.lmdb") } },
  discovery: { enabled: discovery.enabled ?? true, client: discovery.client, host: "127.0.0.1", port: discovery.port },
  startup: { retries: 3, retryDelayMs: 200 },
  components: { consumer: true, handlers: true, replies: true, events: true, rest, snapshots: true, relay: true, periodic: true, system: false, sagas: false },
  application: {}
})

const fast = {
  env: { MINOS_DISCOVERY_ADDRESS: "10.0.0.7" },
  initialBackoff: "20 millis",
  maxBackoff: "80 millis",
  unregisterTimeout: "1 second",
  policy: { timeout: "500 millis", attempts: 2, backoff: "10 millis" }
} satisfies DiscoveryLayer.Options

const address = Layer.succeed(HttpAddress, HttpAddress.of({ host: "0.0.0.0", port: 4321, url: "http://0.0.0.0:4321" }))

/** The discovery background part of a service "exams" listening on port 4321. */
const discoveryPart = (config: MinosConfig.Settings, options: DiscoveryLayer.Options = fast) =>
  Microservice.layerDiscovery(options).pipe(Layer.provide(Layer.mergeAll(MinosConfig.layerSettings(config), Router.layer(handlers), address)))

interface Line {
  readonly level: string
  readonly text: string
}

/** Runs `body` with a logger that records every line (and still prints nothing else). */
const withLogs = <A, E, R>(body: (logs: Array<Line>) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const logs: Array<Line> = []
    const recorder = Logger.make((o) => {
      const parts = Array.isArray(o.message) ? o.message : [o.message]
      logs.push({ level: o.logLevel, text: parts.map(String).join(" ") + (o.cause.reasons.length === 0 ? "" : Cause.pretty(o.cause)) })
    })
    return body(logs).pipe(Effect.provide(Logger.layer([recorder])))
  })

/** Builds `layer` in its own scope; returns the scope so a test can release it. */
const start = <E>(layer: Layer.Layer<never, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(layer, scope)
    return scope
  })

const registration: Registration = { name: "exams", host: "10.0.0.7", port: 4321, endpoints: sortedEndpoints }

const client = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient | Discovery>, layer: Layer.Layer<Discovery, never, HttpClient.HttpClient>) =>
  effect.pipe(Effect.provide(layer), Effect.provide(NodeHttpClient.layerNodeHttp))

const minosClient = (s: RegistryStub, attempts = 3) =>
  MinosDiscoveryClient.layer({ host: "127.0.0.1", port: s.port, policy: { timeout: "300 millis", attempts, backoff: "10 millis" } })

const kongClient = (s: RegistryStub) => KongDiscoveryClient.layer({ host: "127.0.0.1", port: s.port, policy: { timeout: "300 millis", attempts: 2, backoff: "10 millis" } })

describe("Discovery", () => {
  it.effect("lists the REST routes as minos endpoints, sorted by url then method", () =>
    Effect.gen(function*() {
      const routes = yield* Router.make(handlers)
      assert.deepStrictEqual(endpointsOf(routes), sortedEndpoints)
      assert.strictEqual(toMinosUrl("/a/:b/c/:d_e"), "/a/{b}/c/{d_e}")
    }))

  it.effect("turns minos URLs into anchored Kong regex paths", () =>
    Effect.sync(() => {
      assert.strictEqual(KongDiscoveryClient.kongPath("/exams"), "~/exams$")
      assert.strictEqual(KongDiscoveryClient.kongPath("/exams/{uuid}"), "~/exams/[^/]+$")
      assert.strictEqual(KongDiscoveryClient.kongPath("/exams/{uuid}/seats"), "~/exams/[^/]+/seats$")
      assert.strictEqual(KongDiscoveryClient.kongPath("/files/{name:[a-z]+}"), "~/files/[a-z]+$")
      assert.strictEqual(KongDiscoveryClient.kongPath("/v1.0/{id:\\d+}"), "~/v1\\.0/\\d+$")
      assert.strictEqual(KongDiscoveryClient.kongPath("/"), "~/$")
    }))
})

describe("MinosDiscoveryClient", () => {
  it.live("registers with POST /microservices/{name} and the minos body", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), minosClient(s))
      assert.strictEqual(s.requests.length, 1)
      const [post] = s.requests
      assert.strictEqual(post!.method, "POST")
      assert.strictEqual(post!.path, "/microservices/exams")
      assert.deepStrictEqual(post!.body, {
        address: "10.0.0.7",
        port: 4321,
        endpoints: [["GET", "/exams"], ["POST", "/exams"], ["DELETE", "/exams/{uuid}"], ["GET", "/exams/{uuid}"], ["PATCH", "/exams/{uuid}/seats"]]
      })
      assert.isTrue(s.microservices.has("exams"))
    })))

  it.live("unregisters with DELETE /microservices/{name}, and an unknown name is not an error", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      yield* client(Effect.flatMap(Discovery, (d) => Effect.andThen(d.register(registration), d.unregister("exams"))), minosClient(s))
      yield* client(Effect.flatMap(Discovery, (d) => d.unregister("exams")), minosClient(s))
      assert.deepStrictEqual(s.requests.map((r) => `${r.method} ${r.path}`), ["POST /microservices/exams", "DELETE /microservices/exams", "DELETE /microservices/exams"])
      assert.isFalse(s.microservices.has("exams"))
    })))

  it.live("fails a 4xx with a Rejected error after one request", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      s.override = () => ({ status: 422, body: { error: "bad endpoints" } })
      const error = yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), minosClient(s)).pipe(Effect.flip)
      assert.instanceOf(error, DiscoveryError)
      assert.strictEqual(error.reason, "Rejected")
      assert.strictEqual(error.status, 422)
      assert.isFalse(error.isRetryable)
      assert.include(error.message, "bad endpoints")
      assert.strictEqual(s.requests.length, 1)
    })))

  it.live("retries a 5xx a bounded number of times, then fails Unavailable", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      s.override = () => ({ status: 503 })
      const error = yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), minosClient(s, 3)).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Unavailable")
      assert.isTrue(error.isRetryable)
      assert.strictEqual(s.requests.length, 3)
      // and a registry that recovers within the attempts is a success
      let n = 0
      s.override = () => (++n === 1 ? { status: 502 } : undefined)
      yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), minosClient(s, 3))
      assert.isTrue(s.microservices.has("exams"))
    })))

  it.live("gives up on a registry that does not answer after the timeout", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      s.override = () => "hang"
      const started = Date.now()
      const error = yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), minosClient(s, 2)).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Unavailable")
      assert.include(error.message, "no answer within")
      assert.strictEqual(s.requests.length, 2)
      assert.isBelow(Date.now() - started, 2_000)
    })))

  it.live("fails a refused connection as Unavailable", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const error = yield* client(
        Effect.flatMap(Discovery, (d) => d.register(registration)),
        MinosDiscoveryClient.layer({ host: "127.0.0.1", port, policy: { attempts: 1 } })
      ).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Unavailable")
    }))
})

describe("KongDiscoveryClient", () => {
  it.live("registers a service and one route per endpoint", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), kongClient(s))
      const [put, list, ...routes] = s.requests
      assert.strictEqual(`${put!.method} ${put!.path}`, "PUT /services/exams")
      assert.deepStrictEqual(put!.body, { name: "exams", host: "10.0.0.7", port: 4321, protocol: "http" })
      assert.strictEqual(`${list!.method} ${list!.path}`, "GET /services/exams/routes")
      const serviceId = s.services.get("exams")!.id
      assert.deepStrictEqual(routes.map((r) => `${r.method} ${r.path}`), [
        "PUT /routes/exams-get-exams",
        "PUT /routes/exams-post-exams",
        "PUT /routes/exams-delete-exams-uuid",
        "PUT /routes/exams-get-exams-uuid",
        "PUT /routes/exams-patch-exams-uuid-seats"
      ])
      assert.deepStrictEqual(routes[3]!.body, {
        name: "exams-get-exams-uuid",
        protocols: ["http"],
        methods: ["GET"],
        paths: ["~/exams/[^/]+$"],
        service: { id: serviceId },
        strip_path: false,
        regex_priority: 0
      })
      assert.strictEqual(s.routes.size, 5)
    })))

  it.live("re-registers without duplicates and deletes the routes of removed endpoints", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), kongClient(s))
      const before = new Map([...s.routes.values()].map((r) => [r.name, r.id]))
      s.requests.length = 0
      const fewer = { ...registration, endpoints: registration.endpoints.filter((e) => e.method !== "DELETE") }
      yield* client(Effect.flatMap(Discovery, (d) => d.register(fewer)), kongClient(s))
      assert.deepStrictEqual([...s.routes.keys()].sort(), ["exams-get-exams", "exams-get-exams-uuid", "exams-patch-exams-uuid-seats", "exams-post-exams"])
      // the remaining routes were updated in place (same ids); the listing was paged (2 per page)
      for (const [name, route] of s.routes) assert.strictEqual(route.id, before.get(name))
      assert.deepStrictEqual(s.of("GET").map((r) => r.path), ["/services/exams/routes", "/services/exams/routes?offset=2", "/services/exams/routes?offset=4"])
      assert.deepStrictEqual(s.of("DELETE").map((r) => r.path), [`/routes/${before.get("exams-delete-exams-uuid")}`])
    })))

  it.live("unregisters: deletes the routes, then the service; an unknown service is not an error", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      yield* client(Effect.flatMap(Discovery, (d) => d.register(registration)), kongClient(s))
      s.requests.length = 0
      yield* client(Effect.flatMap(Discovery, (d) => d.unregister("exams")), kongClient(s))
      const deletes = s.of("DELETE").map((r) => r.path)
      assert.strictEqual(deletes.length, 6)
      assert.isTrue(deletes.slice(0, 5).every((p) => p.startsWith("/routes/")))
      assert.strictEqual(deletes[5], "/services/exams")
      assert.strictEqual(s.routes.size, 0)
      assert.strictEqual(s.services.size, 0)
      s.requests.length = 0
      yield* client(Effect.flatMap(Discovery, (d) => d.unregister("exams")), kongClient(s))
      assert.deepStrictEqual(s.requests.map((r) => `${r.method} ${r.path}`), ["GET /services/exams/routes"])
    })))
})

describe("DiscoveryLayer", () => {
  it.live("registers in the background and unregisters when released", () =>
    withLogs((logs) =>
      Effect.scoped(Effect.gen(function*() {
        const s = yield* stub()
        const scope = yield* start(discoveryPart(settings({ client: "minos", port: s.port })))
        yield* waitUntil(() => s.microservices.has("exams"), (ok) => ok)
        assert.deepStrictEqual(s.microservices.get("exams"), {
          name: "exams",
          address: "10.0.0.7",
          port: 4321,
          endpoints: sortedEndpoints.map((e) => [e.method, e.url])
        })
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(s.requests.map((r) => `${r.method} ${r.path}`), ["POST /microservices/exams", "DELETE /microservices/exams"])
        assert.isTrue(logs.some((l) => l.level === "Info" && l.text.includes("registered \"exams\" at 10.0.0.7:4321 (5 endpoints)")))
        assert.isTrue(logs.some((l) => l.level === "Info" && l.text.includes("unregistered \"exams\"")))
      }))))

  it.live("does nothing when discovery is disabled", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      const scope = yield* start(discoveryPart(settings({ client: "minos", port: s.port, enabled: false })))
      yield* Effect.sleep("100 millis")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(s.requests.length, 0)
    })))

  it.live("starts while the registry is down, registers when it comes up, and logs the outage once", () =>
    withLogs((logs) =>
      Effect.scoped(Effect.gen(function*() {
        const port = yield* freePort
        const began = Date.now()
        const scope = yield* start(discoveryPart(settings({ client: "minos", port })))
        assert.isBelow(Date.now() - began, 500, "the layer does not wait for the registry")
        yield* Effect.sleep("300 millis") // several failed attempts (backoff 20 → 80 ms)
        const s = yield* stub(port)
        yield* waitUntil(() => s.microservices.has("exams"), (ok) => ok)
        assert.isTrue(s.microservices.has("exams"))
        // the stub records the request before the client has read the answer and logged it
        yield* waitUntil(() => logs.some((l) => l.level === "Info" && l.text.includes("registry is back")), (ok) => ok)
        const warnings = logs.filter((l) => l.level === "Warn")
        assert.strictEqual(warnings.length, 1, JSON.stringify(warnings))
        assert.include(warnings[0]!.text, "registry unavailable")
        assert.isTrue(logs.some((l) => l.level === "Info" && l.text.includes("registry is back")))
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(s.of("DELETE").map((r) => r.path), ["/microservices/exams"])
      }))))

  it.live("logs a rejection once and does not retry it", () =>
    withLogs((logs) =>
      Effect.scoped(Effect.gen(function*() {
        const s = yield* stub()
        s.override = () => ({ status: 400, body: "Missing the following body parameters ['endpoints']" })
        const scope = yield* start(discoveryPart(settings({ client: "minos", port: s.port })))
        yield* waitUntil(() => s.requests.length, (n) => n > 0)
        yield* Effect.sleep("300 millis") // a retry storm would show here (backoff 20 ms)
        assert.strictEqual(s.requests.length, 1)
        const errors = logs.filter((l) => l.level === "Error")
        assert.strictEqual(errors.length, 1)
        assert.include(errors[0]!.text, "rejected")
        assert.include(errors[0]!.text, "400")
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(s.requests.length, 1, "nothing to unregister")
      }))))

  it.live("bounds the wait for the unregistration on release", () =>
    withLogs((logs) =>
      Effect.scoped(Effect.gen(function*() {
        const s = yield* stub()
        const scope = yield* start(discoveryPart(settings({ client: "minos", port: s.port }), { ...fast, unregisterTimeout: "200 millis" }))
        yield* waitUntil(() => s.microservices.has("exams"), (ok) => ok)
        s.override = (r) => (r.method === "DELETE" ? "hang" : undefined)
        const began = Date.now()
        yield* Scope.close(scope, Exit.void)
        assert.isBelow(Date.now() - began, 1_000)
        assert.isTrue(logs.some((l) => l.level === "Warn" && l.text.includes("could not unregister")))
      }))))

  it.live("registers with Kong when discovery.client is kong", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      const scope = yield* start(discoveryPart(settings({ client: "kong", port: s.port })))
      yield* waitUntil(() => s.routes.size, (n) => n === 5)
      assert.deepStrictEqual(s.services.get("exams")?.host, "10.0.0.7")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(s.routes.size, 0)
      assert.strictEqual(s.services.size, 0)
    })))

  it.effect("advertises MINOS_DISCOVERY_ADDRESS, else this machine's IPv4, else the REST host", () =>
    Effect.sync(() => {
      assert.strictEqual(DiscoveryLayer.advertisedHost("0.0.0.0", { MINOS_DISCOVERY_ADDRESS: "exams.internal" }), "exams.internal")
      assert.strictEqual(DiscoveryLayer.advertisedHost("0.0.0.0", {}), DiscoveryLayer.hostIp() ?? "0.0.0.0")
    }))
})

describe("Microservice with discovery", () => {
  it.live("registers the bound HTTP port once the server listens, and unregisters on shutdown", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* stub()
      const config = settings({ client: "minos", port: s.port }, true)
      const service = Microservice.layer({ handlers }).pipe(Layer.provideMerge(MinosConfig.layerSettings(config)))
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(service, scope)
      yield* waitUntil(() => s.microservices.get("exams"), (m) => m !== undefined)
      const entry = s.microservices.get("exams")!
      assert.isAbove(entry["port"] as number, 0)
      assert.notStrictEqual(entry["port"], 4321)
      assert.deepStrictEqual(entry["endpoints"], sortedEndpoints.map((e) => [e.method, e.url]))
      // the registered port answers
      const reply = yield* Effect.promise(() => fetch(`http://127.0.0.1:${entry["port"]}/exams`, { signal: AbortSignal.timeout(5_000) }))
      assert.strictEqual(reply.status, 200)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(s.of("DELETE").map((r) => r.path), ["/microservices/exams"])
    })))
})
