import { assert, describe, layer } from "@effect/vitest"
import { Cause, Effect, Layer, Logger, Schema } from "effect"
import { BrokerError } from "../../src/broker/Broker.ts"
import { AlreadyDeleted, AlreadyExists, InvalidCommand, NotFound } from "../../src/domain/DomainError.ts"
import { withStatus } from "../../src/http/HttpStatus.ts"
import { EventStoreError } from "../../src/eventstore/EventStore.ts"
import * as Health from "../../src/http/Health.ts"
import * as HttpServer from "../../src/http/HttpServer.ts"
import { Request } from "../../src/router/Request.ts"
import * as Router from "../../src/router/Router.ts"
import { StorageError } from "../../src/storage/UnitOfWork.ts"

class OverBudget extends Schema.TaggedError<OverBudget>()("OverBudget", { limit: Schema.Int, message: Schema.String }) {}
withStatus(422)(OverBudget)

const CreateExam = Schema.Struct({ title: Schema.NonEmptyString, points: Schema.Int })
// Encodes `points` as a string, so a test can tell the success Schema was applied.
const ExamOut = Schema.Struct({ id: Schema.String, title: Schema.String, points: Schema.FiniteFromString })

const failures = {
  "not-found": Effect.fail(new NotFound({ aggregate: "Exam", id: "e1" })),
  "already-exists": Effect.fail(new AlreadyExists({ aggregate: "Exam", id: "e1" })),
  "already-deleted": Effect.fail(new AlreadyDeleted({ aggregate: "Exam", id: "e1" })),
  "invalid-command": Effect.fail(new InvalidCommand({ aggregate: "Exam", field: "title", message: "title is taken" })),
  "over-budget": Effect.fail(new OverBudget({ limit: 3, message: "Too many exams" })),
  "conflict": Effect.fail(new EventStoreError({ reason: "Conflict", message: "Stream e1 is at version 4, expected 3", aggregateId: "e1" })),
  "storage-down": Effect.fail(new StorageError({ reason: "Unavailable", message: "PostgreSQL is unreachable" })),
  // the server went away: the query failed, then the ROLLBACK died on the closed connection
  "storage-down-rollback-died": Effect.failCause(Cause.combine(
    Cause.fail(new EventStoreError({ reason: "Unavailable", message: "append: ConnectionError (Connection closed) 127.0.0.1:5432" })),
    Cause.die(new StorageError({ reason: "Unavailable", message: "rollback: Connection closed" }))
  )),
  "defect-during-outage": Effect.failCause(Cause.combine(
    Cause.fail(new EventStoreError({ reason: "Unavailable", message: "append: ConnectionError" })),
    Cause.die(new Error("a bug"))
  )),
  "broker-timeout": Effect.fail(new BrokerError({ reason: "Timeout", message: "Kafka did not answer" })),
  "corrupt": Effect.fail(new EventStoreError({ reason: "Corrupt", message: "row 7 is not JSON: secret detail" })),
  "defect": Effect.die(new Error("boom: secret detail"))
} as const

const middlewareCalls: Array<string> = []

const recording: Router.Middleware = (effect, request) =>
  Effect.gen(function*() {
    middlewareCalls.push(`before ${request.route}`)
    yield* request.setHeader("x-request-id", request.identifier)
    const out = yield* effect
    middlewareCalls.push(`after ${request.route}`)
    return out
  })

const handlers = [
  Router.rest("POST", "/exams", { body: CreateExam, success: ExamOut, status: 201, summary: "Create an exam" }, ({ body }) =>
    Effect.succeed({ id: "e1", title: body.title, points: body.points })),
  Router.rest(
    "GET",
    "/exams/:id",
    {
      params: Schema.Struct({ id: Schema.String.check(Schema.isMinLength(2)) }),
      query: Schema.Struct({ limit: Schema.optional(Schema.FiniteFromString), tag: Schema.optional(Schema.String) })
    },
    ({ params, query }) => Effect.succeed({ id: params.id, limit: query.limit ?? null, limitType: typeof query.limit, tag: query.tag ?? null })
  ),
  Router.rest("DELETE", "/exams/:id", { status: 204 }, () => Effect.void),
  Router.rest("GET", "/whoami", {}, () =>
    Effect.gen(function*() {
      const request = yield* Request
      return { user: request.user ?? null, kind: request.kind, route: request.route, identifier: request.identifier, custom: request.headers["x-custom"] ?? null }
    })),
  Router.rest("GET", "/fail/:kind", { params: Schema.Struct({ kind: Schema.Literals(Object.keys(failures) as Array<keyof typeof failures>) }) }, ({ params }) =>
    failures[params.kind] as Effect.Effect<void, unknown>),
  Router.rest("GET", "/slow", {}, () => Effect.as(Effect.sleep("5 seconds"), "late")),
  Router.command("CreateExam", { payload: CreateExam, success: ExamOut }, (p) => Effect.succeed({ id: "e1", ...p })),
  Router.query("GetExam", { payload: Schema.Struct({ id: Schema.String }) }, () => Effect.succeed({})),
  Router.event("ExamCreated", { payload: Schema.Struct({ id: Schema.String, title: Schema.String }) }, () => Effect.void)
] as const

let brokerUp = true
const checks: ReadonlyArray<Health.Check> = [
  { name: "storage", check: Effect.void },
  { name: "broker", check: Effect.suspend(() => (brokerUp ? Effect.void : Effect.fail(new BrokerError({ reason: "Unavailable", message: "no Kafka broker" })))) },
  { name: "hanging", check: Effect.suspend(() => (brokerUp ? Effect.void : Effect.never)) }
]

const options = { host: "127.0.0.1", port: 0, bodyLimitBytes: 1024, requestTimeoutMs: 300, serviceName: "exams" }

const errorLogs: Array<string> = []
const recordErrors = Logger.make((o) => {
  if (o.logLevel === "Error") errorLogs.push([...(Array.isArray(o.message) ? o.message : [o.message]), Cause.pretty(o.cause)].map(String).join(" "))
})

const ServerLive = HttpServer.layer(options).pipe(
  Layer.provide(Router.layer(handlers, { middleware: [recording] })),
  Layer.provide(Health.layer(checks, { timeout: "100 millis" })),
  Layer.provide(Logger.layer([recordErrors], { mergeWithExisting: true }))
)

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly body: any
}

const call = (path: string, init?: RequestInit) =>
  Effect.gen(function*() {
    const { url } = yield* HttpServer.HttpAddress
    const response = yield* Effect.promise(() => fetch(url + path, { ...init, signal: AbortSignal.timeout(5_000) }))
    const text = yield* Effect.promise(() => response.text())
    let body: unknown = undefined
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      body = text
    }
    return { status: response.status, headers: response.headers, text, body } as Reply
  })

const post = (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
  call(path, { method: "POST", body, headers })

const assertNoStack = (reply: Reply) => {
  assert.notMatch(reply.text, /\n\s+at /)
  assert.notInclude(reply.text, "secret")
  assert.notInclude(reply.text, ".ts:")
}

// Real sockets and a real clock (the timeout test), on one server for the block.
layer(ServerLive, { excludeTestServices: true })("HttpServer", (it) => {
  it.effect("binds port 0 to a free port and exposes it", () =>
    Effect.gen(function*() {
      const address = yield* HttpServer.HttpAddress
      assert.isAbove(address.port, 0)
      assert.strictEqual(address.url, `http://127.0.0.1:${address.port}`)
    }))

  describe("decoding and encoding", () => {
    it.effect("answers a valid POST with the handler's status and the encoded result", () =>
      Effect.gen(function*() {
        const reply = yield* post("/exams", JSON.stringify({ title: "Algebra", points: 10 }))
        assert.strictEqual(reply.status, 201)
        assert.include(reply.headers.get("content-type") ?? "", "application/json")
        assert.deepStrictEqual(reply.body, { id: "e1", title: "Algebra", points: "10" })
      }))

    it.effect("rejects a body that fails its Schema with 400 naming the field", () =>
      Effect.gen(function*() {
        const reply = yield* post("/exams", JSON.stringify({ title: "", points: 1.5 }))
        assert.strictEqual(reply.status, 400)
        assert.strictEqual(reply.body.error, "InvalidRequest")
        assert.include(reply.body.message, "title")
        assert.include(reply.body.message, "points")
        assert.deepStrictEqual(reply.body.issues.map((i: { path: string }) => i.path).sort(), ["points", "title"])
      }))

    it.effect("rejects a missing body with 400", () =>
      Effect.gen(function*() {
        const reply = yield* call("/exams", { method: "POST" })
        assert.strictEqual(reply.status, 400)
        assert.strictEqual(reply.body.error, "InvalidRequest")
      }))

    it.effect("rejects malformed JSON with 400 InvalidJson", () =>
      Effect.gen(function*() {
        const reply = yield* post("/exams", "{\"title\": ")
        assert.strictEqual(reply.status, 400)
        assert.strictEqual(reply.body.error, "InvalidJson")
        assert.isString(reply.body.message)
      }))

    it.effect("rejects strings with NUL or an unpaired surrogate with 400, in the body, a key, the query or the path", () =>
      Effect.gen(function*() {
        for (const body of ["{\"title\":\"a\\u0000\",\"points\":1}", "{\"title\":\"a\\ud800\",\"points\":1}", "{\"title\":\"ok\",\"points\":1,\"x\\u0000\":1}"]) {
          const reply = yield* post("/exams", body)
          assert.strictEqual(reply.status, 400, body)
          assert.strictEqual(reply.body.error, "InvalidRequest")
          assert.include(reply.body.message, "NUL")
        }
        const query = yield* call("/exams/e42?tag=a%00b")
        assert.strictEqual(query.status, 400)
        assert.include(query.body.message, "tag")
        const path = yield* call("/exams/e%00")
        assert.strictEqual(path.status, 400)
        assert.include(path.body.message, "id")
      }))

    it.effect("rejects a body over the limit with 413", () =>
      Effect.gen(function*() {
        const reply = yield* post("/exams", JSON.stringify({ title: "x".repeat(2_000), points: 1 }))
        assert.strictEqual(reply.status, 413)
        assert.strictEqual(reply.body.error, "PayloadTooLarge")
      }))

    it.effect("rejects a chunked body over the limit", () =>
      Effect.gen(function*() {
        const chunk = new TextEncoder().encode(JSON.stringify({ title: "x".repeat(2_000), points: 1 }))
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(chunk)
            controller.close()
          }
        })
        const outcome = yield* call("/exams", { method: "POST", body, headers: { "content-type": "application/json" }, duplex: "half" } as RequestInit).pipe(
          Effect.map((r) => r.status),
          Effect.catchDefect(() => Effect.succeed("connection closed"))
        )
        // The server stops reading at the limit; it answers 413 unless the socket was already torn down.
        assert.include([413, "connection closed"], outcome)
      }))

    it.effect("decodes path and query parameters with their Schemas", () =>
      Effect.gen(function*() {
        const reply = yield* call("/exams/e42?limit=5&tag=math")
        assert.strictEqual(reply.status, 200)
        assert.deepStrictEqual(reply.body, { id: "e42", limit: 5, limitType: "number", tag: "math" })
        const noQuery = yield* call("/exams/e42")
        assert.deepStrictEqual(noQuery.body, { id: "e42", limit: null, limitType: "undefined", tag: null })
      }))

    it.effect("rejects invalid path or query parameters with 400 naming them", () =>
      Effect.gen(function*() {
        const badQuery = yield* call("/exams/e42?limit=lots")
        assert.strictEqual(badQuery.status, 400)
        assert.include(badQuery.body.message, "limit")
        const badParam = yield* call("/exams/x")
        assert.strictEqual(badParam.status, 400)
        assert.include(badParam.body.message, "id")
      }))

    it.effect("answers a void handler with an empty body", () =>
      Effect.gen(function*() {
        const reply = yield* call("/exams/e42", { method: "DELETE" })
        assert.strictEqual(reply.status, 204)
        assert.strictEqual(reply.text, "")
      }))
  })

  describe("errors", () => {
    const cases: ReadonlyArray<readonly [keyof typeof failures, number, string]> = [
      ["not-found", 404, "NotFound"],
      ["already-exists", 409, "AlreadyExists"],
      ["already-deleted", 410, "AlreadyDeleted"],
      ["invalid-command", 400, "InvalidCommand"],
      ["over-budget", 422, "OverBudget"],
      ["conflict", 409, "Conflict"],
      ["storage-down", 503, "Unavailable"],
      ["storage-down-rollback-died", 503, "Unavailable"],
      ["defect-during-outage", 500, "InternalError"],
      ["broker-timeout", 503, "Unavailable"],
      ["corrupt", 500, "InternalError"],
      ["defect", 500, "InternalError"]
    ]
    for (const [kind, status, tag] of cases) {
      it.effect(`answers ${kind} with ${status} ${tag}`, () =>
        Effect.gen(function*() {
          const reply = yield* call(`/fail/${kind}`)
          assert.strictEqual(reply.status, status)
          assert.strictEqual(reply.body.error, tag)
          assert.isString(reply.body.message)
          assert.notProperty(reply.body, "stack")
          assert.notProperty(reply.body, "cause")
          assertNoStack(reply)
        }))
    }

    it.effect("sends a domain error's own data fields", () =>
      Effect.gen(function*() {
        const notFound = yield* call("/fail/not-found")
        assert.deepStrictEqual(notFound.body, { error: "NotFound", message: "Exam e1 does not exist", aggregate: "Exam", id: "e1" })
        const invalid = yield* call("/fail/invalid-command")
        assert.deepStrictEqual(invalid.body, { error: "InvalidCommand", message: "title is taken", aggregate: "Exam", field: "title" })
        const overBudget = yield* call("/fail/over-budget")
        assert.deepStrictEqual(overBudget.body, { error: "OverBudget", message: "Too many exams", limit: 3 })
      }))

    it.effect("hides a defect behind a generic 500 and logs its cause", () =>
      Effect.gen(function*() {
        errorLogs.length = 0
        const reply = yield* call("/fail/defect")
        assert.deepStrictEqual(reply.body, { error: "InternalError", message: "Internal server error" })
        const logged = errorLogs.join("\n")
        assert.include(logged, "GET /fail/:kind")
        assert.include(logged, "boom: secret detail")
        assert.include(logged, "HttpServer.test.ts")
      }))

    it.effect("answers a request slower than the timeout with 503", () =>
      Effect.gen(function*() {
        const started = Date.now()
        const reply = yield* call("/slow")
        assert.strictEqual(reply.status, 503)
        assert.strictEqual(reply.body.error, "Timeout")
        assert.isBelow(Date.now() - started, 3_000)
      }))

    it.effect("answers an unknown route with 404 JSON", () =>
      Effect.gen(function*() {
        const reply = yield* call("/nowhere")
        assert.strictEqual(reply.status, 404)
        assert.strictEqual(reply.body.error, "RouteNotFound")
      }))

    it.effect("answers a known path with another method with 405", () =>
      Effect.gen(function*() {
        const reply = yield* call("/exams/e1", { method: "PUT", body: "{}" })
        assert.strictEqual(reply.status, 405)
        assert.strictEqual(reply.body.error, "MethodNotAllowed")
        assert.include(reply.headers.get("allow") ?? "", "GET")
        assert.include(reply.headers.get("allow") ?? "", "DELETE")
      }))
  })

  describe("request and middleware", () => {
    it.effect("gives handlers the Request, with the user header", () =>
      Effect.gen(function*() {
        const reply = yield* call("/whoami", { headers: { user: "alice", "X-Custom": "42" } })
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.body.user, "alice")
        assert.strictEqual(reply.body.kind, "rest")
        assert.strictEqual(reply.body.route, "GET /whoami")
        assert.strictEqual(reply.body.custom, "42")
        assert.match(reply.body.identifier, /^[0-9a-f-]{36}$/)
        const anonymous = yield* call("/whoami")
        assert.isNull(anonymous.body.user)
        assert.notStrictEqual(anonymous.body.identifier, reply.body.identifier)
      }))

    it.effect("runs middleware around handlers and sends the headers it sets", () =>
      Effect.gen(function*() {
        middlewareCalls.length = 0
        const reply = yield* call("/whoami")
        assert.deepStrictEqual(middlewareCalls, ["before GET /whoami", "after GET /whoami"])
        assert.strictEqual(reply.headers.get("x-request-id"), reply.body.identifier)
        // also on error responses
        const failed = yield* call("/fail/not-found")
        assert.isString(failed.headers.get("x-request-id"))
      }))
  })

  describe("health", () => {
    it.effect("reports ok when every check passes", () =>
      Effect.gen(function*() {
        brokerUp = true
        const reply = yield* call("/system/health")
        assert.strictEqual(reply.status, 200)
        assert.deepStrictEqual(reply.body, { status: "ok", service: "exams", checks: { storage: "ok", broker: "ok", hanging: "ok" } })
      }))

    it.effect("reports 503 with the failing checks' messages", () =>
      Effect.gen(function*() {
        brokerUp = false
        const reply = yield* call("/system/health")
        brokerUp = true
        assert.strictEqual(reply.status, 503)
        assert.strictEqual(reply.body.status, "unavailable")
        assert.strictEqual(reply.body.checks.storage, "ok")
        assert.strictEqual(reply.body.checks.broker, "no Kafka broker")
        assert.include(reply.body.checks.hanging, "Timed out")
      }))
  })

  describe("specs", () => {
    it.effect("serves an OpenAPI document of the REST routes", () =>
      Effect.gen(function*() {
        const reply = yield* call("/spec/openapi")
        assert.strictEqual(reply.status, 200)
        const doc = reply.body
        assert.strictEqual(doc.openapi, "3.1.0")
        assert.strictEqual(doc.info.title, "exams")
        const create = doc.paths["/exams"].post
        assert.strictEqual(create.summary, "Create an exam")
        const body = create.requestBody.content["application/json"].schema
        assert.deepStrictEqual(Object.keys(body.properties).sort(), ["points", "title"])
        assert.deepStrictEqual(body.required.sort(), ["points", "title"])
        assert.property(create.responses, "201")
        assert.strictEqual(create.responses["400"].content["application/json"].schema.$ref, "#/components/schemas/InvalidRequest")
        assert.includeMembers(Object.keys(create.responses), ["201", "400", "404", "409", "410", "413", "500", "503"])
        assert.property(doc.components.schemas, "InvalidRequest")
        const get = doc.paths["/exams/{id}"].get
        const params = get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort()
        assert.deepStrictEqual(params, ["path:id", "query:limit", "query:tag"])
        assert.property(doc.paths["/exams/{id}"], "delete")
        assert.property(doc.paths, "/system/health")
      }))

    it.effect("serves an AsyncAPI document of the broker handlers", () =>
      Effect.gen(function*() {
        const reply = yield* call("/spec/asyncapi")
        assert.strictEqual(reply.status, 200)
        const doc = reply.body
        assert.strictEqual(doc.asyncapi, "3.0.0")
        assert.includeMembers(Object.keys(doc.channels), ["CreateExam", "GetExam", "ExamCreated"])
        assert.strictEqual(doc.channels.CreateExam.address, "CreateExam")
        const content = doc.components.messages["CreateExam.received"].payload.properties.payload.properties.content
        assert.deepStrictEqual(Object.keys(content.properties).sort(), ["points", "title"])
        assert.property(doc.operations["receive.CreateExam"], "reply")
        assert.notProperty(doc.operations["receive.ExamCreated"], "reply")
        assert.strictEqual(doc.operations["receive.ExamCreated"]["x-kind"], "event")
      }))
  })
})

layer(HttpServer.layer(options).pipe(Layer.provide(Router.layer([]))), { excludeTestServices: true })("HttpServer without Health", (it) => {
  it.effect("reports ok with no checks", () =>
    Effect.gen(function*() {
      const reply = yield* call("/system/health")
      assert.strictEqual(reply.status, 200)
      assert.deepStrictEqual(reply.body, { status: "ok", service: "exams", checks: {} })
    }))

  it.effect("serves empty specs", () =>
    Effect.gen(function*() {
      const openApi = yield* call("/spec/openapi")
      assert.deepStrictEqual(Object.keys(openApi.body.paths).sort(), ["/spec/asyncapi", "/spec/openapi", "/system/health"])
      const asyncApi = yield* call("/spec/asyncapi")
      assert.deepStrictEqual(asyncApi.body.channels, {})
    }))
})
