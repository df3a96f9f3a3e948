/**
 * The HTTP server of a microservice: serves the REST handlers of the `Routes` service, plus
 * `GET /system/health` (the `Health` checks), `GET /spec/openapi` and `GET /spec/asyncapi`.
 *
 * Each request gets a `Request` (kind `"rest"`, route `"METHOD /path/:pattern"`, a fresh UUID,
 * the lower-cased headers, the `user` header) and runs through the routes' middleware. Path
 * parameters, query parameters and the JSON body are decoded with the handler's Schemas; the
 * result is encoded with its `success` Schema and sent with the handler's status. Headers that
 * handlers or middleware set with `Request.setHeader` are sent back on the response.
 *
 * Every error is a JSON body `{"error": tag, "message": …}` and never carries a stack trace:
 *
 * | failure | status | `error` |
 * | --- | --- | --- |
 * | body is not JSON | 400 | `InvalidJson` |
 * | params, query or body fail their Schema | 400 | `InvalidRequest` (+ `issues`) |
 * | a string (or key) in them holds NUL or an unpaired surrogate, which no store can hold | 400 | `InvalidRequest` (+ `issues`) |
 * | body over `bodyLimitBytes` | 413 | `PayloadTooLarge` |
 * | slower than `requestTimeoutMs` | 503 | `Timeout` |
 * | domain error (a tagged error that is not a port error) | `HttpStatus.statusOf` (default 400) | its tag, plus its data fields |
 * | port error `Conflict` / `NotFound` / `Deleted` / `Invalid*` | 409 / 404 / 410 / 400 | `Conflict` / `NotFound` / `AlreadyDeleted` / `InvalidRequest` |
 * | outage (`PortError.isRetryable`, transient `SqlError`) | 503 | `Unavailable` (generic message; the cause is logged) |
 * | other port errors, defects | 500 | `InternalError` (the cause is logged) |
 * | unknown path / known path, other method | 404 / 405 | `RouteNotFound` / `MethodNotAllowed` |
 *
 * @since 0.1.0
 */
import { ByteSize, Cause, Context, Data, Duration, Effect, Exit, Layer, Option, Predicate, Schema, type Types } from "effect"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import * as PlatformHttpServer from "effect/http/HttpServer"
import type { ServeError } from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import * as PortError from "../errors/PortError.ts"
import * as Request from "../router/Request.ts"
import { type Middleware, type RestHandler, Routes, type RoutesShape, withMiddleware } from "../router/Router.ts"
import { unstorableMessage, unstorableStringAt } from "../internal/Json.ts"
import { describeCause, errorBody, schemaIssues } from "../internal/Outcome.ts"
import * as HttpStatus from "./HttpStatus.ts"
import * as Health from "./Health.ts"
import * as HttpApiScalar from "effect/http-api/HttpApiScalar"
import * as Api from "./Api.ts"
import * as GraphQL from "./GraphQL.ts"
import * as Specs from "./Specs.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Interface to listen on, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly host: string
  /** `0` picks a free port; read the bound one from `HttpAddress`. */
  readonly port: number
  /** Largest accepted request body. */
  readonly bodyLimitBytes: number
  /** Upper bound of one request, body reading and middleware included. */
  readonly requestTimeoutMs: number
  /** Reported by the health endpoint and used as the title of the specs. */
  readonly serviceName: string
}

/**
 * Where the server listens, once bound (the actual port when `port` was 0).
 *
 * @category services
 * @since 0.1.0
 */
export class HttpAddress extends Context.Service<HttpAddress, {
  readonly host: string
  readonly port: number
  /** `http://host:port`. */
  readonly url: string
}>()("effect-minos/http/HttpAddress") {}

/**
 * An error response: status and JSON body.
 *
 * @category models
 * @since 0.1.0
 */
export interface ErrorResponse {
  readonly status: number
  readonly body: Readonly<Record<string, unknown>>
  /** A server-side problem: the full cause goes to the log, the body stays generic. */
  readonly internal: boolean
}

/** A request we reject before the handler runs (bad JSON, Schema failure, body too large). */
class Rejected extends Data.Error<{ readonly status: number; readonly body: Readonly<Record<string, unknown>> }> {}

const internalError: ErrorResponse = {
  status: 500,
  body: { error: "InternalError", message: "Internal server error" },
  internal: true
}

const unavailable: ErrorResponse = {
  status: 503,
  // the cause (driver message, host, port) goes to the log, never to the caller
  body: { error: "Unavailable", message: "A dependency of the service is unavailable; retry later" },
  internal: false
}

/**
 * How a typed failure of a handler is answered (see `PortError.kindOf`).
 *
 * @since 0.1.0
 */
export const errorResponse = (error: unknown): ErrorResponse => {
  if (error instanceof Rejected) return { status: error.status, body: error.body, internal: false }
  const message = Predicate.hasProperty(error, "message") && typeof error.message === "string" ? error.message : ""
  switch (PortError.kindOf(error)) {
    case "Conflict":
      return { status: 409, body: { error: "Conflict", message }, internal: false }
    case "NotFound":
      return { status: 404, body: { error: "NotFound", message }, internal: false }
    case "Gone":
      return { status: 410, body: { error: "AlreadyDeleted", message }, internal: false }
    case "Invalid":
      return { status: 400, body: { error: "InvalidRequest", message }, internal: false }
    case "Unavailable":
      return unavailable
    case "Internal":
      return internalError
    case "Domain": {
      const { _tag, ...fields } = errorBody(error)
      return { status: HttpStatus.statusOf(error as object), body: { error: _tag, ...fields }, internal: false }
    }
  }
}

const json = (status: number, body: unknown, headers?: Readonly<Record<string, string>>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(body, headers === undefined ? { status } : { status, headers })

/** The response for a failed (or interrupted) request; defects and port errors are logged. */
const failureResponse = (cause: Cause.Cause<unknown>, route: string): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.succeed(json(503, { error: "Unavailable", message: "Request interrupted" }))
  const failure = Cause.findErrorOption(cause)
  const dies = cause.reasons.filter(Cause.isDieReason)
  // a server going away fails the query and then the ROLLBACK, which dies with the same outage
  const outage = dies.length > 0 && dies.every((d) => PortError.isRetryable(d.defect)) &&
    (Option.isNone(failure) || PortError.kindOf(failure.value) === "Unavailable")
  const response = outage ? unavailable : Option.isSome(failure) && dies.length === 0 ? errorResponse(failure.value) : internalError
  const log = response.internal
    ? Effect.logError(`${route} failed`, cause)
    : response.status >= 500
    ? Effect.logWarning(`${route}: ${describeCause(cause)}`)
    : Effect.void
  return Effect.as(log, json(response.status, response.body))
}

/** No store can hold these strings: refused at the edge, the same on every backend, before the handler runs. */
const storable = (input: unknown, what: string): Effect.Effect<unknown, Rejected> => {
  const bad = unstorableStringAt(input)
  if (bad === undefined) return Effect.succeed(input)
  const issues = [{ path: bad, message: "Strings may not contain NUL (\\u0000) or unpaired surrogates" }]
  return Effect.fail(new Rejected({ status: 400, body: { error: "InvalidRequest", message: `Invalid ${what}: ${unstorableMessage(bad)}`, issues } }))
}

const decode = <A>(schema: Schema.Codec<A, unknown> | undefined, input: unknown, what: string): Effect.Effect<A, Rejected> =>
  storable(input, what).pipe(
    Effect.flatMap((checked) => schema === undefined ? Effect.succeed(checked as A) : Schema.decodeUnknownEffect(schema)(checked, { errors: "all" })),
    Effect.mapError((error) => {
      if (error instanceof Rejected) return error
      const issues = schemaIssues(error)
      const detail = issues.map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`)).join("; ")
      return new Rejected({ status: 400, body: { error: "InvalidRequest", message: `Invalid ${what}: ${detail}`, issues } })
    })
  )

const tooLarge = (limit: number) =>
  new Rejected({ status: 413, body: { error: "PayloadTooLarge", message: `Request body exceeds ${limit} bytes` } })

const isBodyTooLarge = (error: unknown): boolean => {
  const reason = (error as { reason?: { _tag?: unknown; reason?: unknown } }).reason
  return reason?._tag === "RequestParseError" && reason.reason === "BodyTooLarge"
}

/** The parsed JSON body; `undefined` when there is none. */
const readJson = (request: HttpServerRequest.HttpServerRequest, limit: number, required: boolean): Effect.Effect<unknown, Rejected> =>
  Effect.gen(function*() {
    const length = request.headers["content-length"]
    // Reject on the announced size before reading a byte; chunked bodies hit MaxBodySize instead.
    if (length !== undefined && Number(length) > limit) return yield* Effect.fail(tooLarge(limit))
    if (!required && (length === undefined || length === "0") && request.headers["transfer-encoding"] === undefined) return undefined
    const text = yield* request.text.pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(limit)),
      Effect.mapError((e) =>
        isBodyTooLarge(e) ? tooLarge(limit) : new Rejected({ status: 400, body: { error: "InvalidRequest", message: "Could not read the request body" } })
      )
    )
    if (text.trim() === "") return undefined
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new Rejected({ status: 400, body: { error: "InvalidJson", message: `Request body is not valid JSON: ${e instanceof Error ? e.message : String(e)}` } })
    })
  })

const lowerCased = (headers: Readonly<Record<string, string>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v
  return out
}

/** Headers set by handlers or middleware: the reply headers that the request did not carry. */
const headersSet = (request: Readonly<Record<string, string>>, reply: Readonly<Record<string, string>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(reply)) if (request[k] !== v) out[k] = v
  return out
}

const encodeSuccess = (handler: RestHandler, value: unknown): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.gen(function*() {
    // Escape hatch: a handler may build its own response.
    if (HttpServerResponse.isHttpServerResponse(value)) return value
    const encoded = handler.success === undefined ? value : yield* Effect.orDie(Schema.encodeUnknownEffect(handler.success)(value))
    if (encoded === undefined || handler.status === 204 || handler.status === 304) return HttpServerResponse.empty({ status: handler.status })
    return yield* Effect.orDie(HttpServerResponse.json(encoded, { status: handler.status }))
  })

const handleRest = Effect.fn("HttpServer.handleRest")(function*(handler: RestHandler<any, any, any, any, any, Request.Request>, middleware: ReadonlyArray<Middleware>, options: Options) {
  const route = `${handler.method} ${handler.path}`
  const httpRequest = yield* HttpServerRequest.HttpServerRequest
  const routeContext = yield* HttpRouter.RouteContext
  const searchParams = yield* HttpServerRequest.ParsedSearchParams
  const headers = lowerCased(httpRequest.headers)
  const request = yield* Request.make({ kind: "rest", route, identifier: randomUUID(), headers })
  const run = Effect.gen(function*() {
    const params = yield* decode(handler.params, routeContext.params, "path parameters")
    const query = yield* decode(handler.query, searchParams, "query parameters")
    const raw = yield* readJson(httpRequest, options.bodyLimitBytes, handler.body !== undefined)
    const body = yield* decode(handler.body, raw, "body")
    return yield* handler.handle({ body, params, query })
  })
  const annotate = Effect.annotateLogs({ route, requestId: request.identifier })
  const exit = yield* withMiddleware(middleware, request, run).pipe(
    Effect.flatMap((value) => encodeSuccess(handler, value)),
    Effect.timeoutOption(Duration.millis(options.requestTimeoutMs)),
    Effect.exit,
    annotate
  )
  const response = Exit.isSuccess(exit)
    ? Option.getOrElse(exit.value, () => json(503, { error: "Timeout", message: `${route} took longer than ${options.requestTimeoutMs} ms` }))
    : yield* annotate(failureResponse(exit.cause, route))
  const set = headersSet(headers, yield* request.replyHeaders)
  return Object.keys(set).length === 0 ? response : HttpServerResponse.setHeaders(response, set)
})

/** What a failed GraphQL field answers: the status and body REST would (see `errorResponse`). */
const fieldFailure = (cause: Cause.Cause<unknown>): GraphQL.FieldFailure => {
  if (Cause.hasInterruptsOnly(cause)) return { status: 503, body: { error: "Unavailable", message: "Request interrupted" } }
  const failure = Cause.findErrorOption(cause)
  const response = Option.isSome(failure) && !Cause.hasDies(cause) ? errorResponse(failure.value) : internalError
  return { status: response.status, body: response.body }
}

/** `POST /{service}/graphql` and `GET /{service}/graphql/schema`, when the service has GraphQL fields. */
const graphqlRoutes = (routes: RoutesShape, options: Options) => {
  const schema = GraphQL.schemaOf(routes.graphql)
  if (schema === undefined) return []
  const path = GraphQL.pathOf(options.serviceName)
  const sdl = GraphQL.sdl(schema)
  const execute = Effect.gen(function*() {
    const httpRequest = yield* HttpServerRequest.HttpServerRequest
    const headers = lowerCased(httpRequest.headers)
    const services = yield* Effect.context<never>()
    const body = yield* readJson(httpRequest, options.bodyLimitBytes, true)
    const context: GraphQL.Context = {
      failureOf: fieldFailure,
      run: (handler, effect) =>
        Effect.runPromiseExit(Effect.gen(function*() {
          const route = `graphql ${handler.kind} ${handler.name}`
          const request = yield* Request.make({ kind: "graphql", route, identifier: randomUUID(), headers })
          return yield* withMiddleware(routes.middleware, request, effect).pipe(
            Effect.timeout(Duration.millis(options.requestTimeoutMs)),
            Effect.tapCause((cause) => {
              const f = fieldFailure(cause)
              return f.status >= 500 ? Effect.logError(`${route} failed`, cause) : Effect.void
            }),
            Effect.annotateLogs({ route, requestId: request.identifier })
          )
        }).pipe(Effect.provideContext(services)))
    }
    const result = yield* Effect.promise(() => GraphQL.execute(schema, body, context))
    return json(result.status, result.body)
  }).pipe(Effect.catchCause((cause) => failureResponse(cause, `POST ${path}`)))
  return [
    { method: "POST", path, handler: execute },
    { method: "GET", path: `${path}/schema` as `/${string}`, handler: Effect.succeed(HttpServerResponse.text(sdl)) }
  ] as const
}

/** `/exams/{uuid}` → `/exams/:uuid` (the router's syntax). */
const routerPath = (path: string): `/${string}` => path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1") as `/${string}`

const pathRegExp = (path: string): RegExp =>
  new RegExp(`^${routerPath(path).split(/(:[A-Za-z0-9_]+)/).map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("")}/?$`)

/** Turns the router's `RouteNotFound` into JSON: 405 when another method serves the path. */
const notFound = (known: ReadonlyArray<{ readonly method: string; readonly pattern: RegExp }>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?")[0] ?? "/"
    const allowed = [...new Set(known.filter((k) => k.pattern.test(path)).map((k) => k.method))]
    if (allowed.length > 0) {
      return json(405, { error: "MethodNotAllowed", message: `${request.method} is not allowed on ${path}` }, { allow: allowed.join(", ") })
    }
    return json(404, { error: "RouteNotFound", message: `No route for ${request.method} ${path}` })
  })

const isRouteNotFound = (error: unknown): boolean =>
  (error as { _tag?: unknown; reason?: { _tag?: unknown } })?._tag === "HttpServerError" &&
  (error as { reason: { _tag?: unknown } }).reason?._tag === "RouteNotFound"

const builtIn = (routes: RoutesShape, options: Options, health: Health.HealthShape) => {
  // Routes are fixed at start-up, so the specs are generated once, on first request.
  let openApi: unknown
  let asyncApi: Specs.Json | undefined
  const spec = { title: options.serviceName, graphql: routes.graphql.length === 0 ? undefined : GraphQL.pathOf(options.serviceName) }
  return [
    {
      method: "GET",
      path: "/system/health",
      handler: Effect.map(Health.run(health), (report) =>
        json(report.status === "ok" ? 200 : 503, { status: report.status, service: options.serviceName, checks: report.checks }))
    },
    {
      method: "GET",
      path: "/spec/openapi",
      handler: Effect.sync(() => json(200, (openApi ??= Api.openApi(routes, spec))))
    },
    {
      method: "GET",
      path: "/spec/asyncapi",
      handler: Effect.sync(() => json(200, (asyncApi ??= Specs.asyncApi(routes, spec))))
    }
  ] as const
}

const app = (options: Options) =>
  HttpRouter.use(Effect.fnUntraced(function*(router) {
    const routes = yield* Routes
    const health = yield* Health.current
    const taken = new Set(routes.rest.map((h) => `${h.method} ${routerPath(h.path)}`))
    for (const h of routes.rest) {
      yield* router.add(h.method, routerPath(h.path), handleRest(h, routes.middleware, options))
    }
    // A service may override the built-in endpoints with its own handlers.
    for (const b of [...builtIn(routes, options, health), ...graphqlRoutes(routes, options)]) {
      if (!taken.has(`${b.method} ${b.path}`)) yield* router.add(b.method, b.path, b.handler)
    }
    // Around the router itself, the only place that sees `RouteNotFound` before it becomes an empty 404.
    // Its types forbid handling errors there (they are meant for the server), hence the cast.
    const known = knownRoutes(routes, options)
    const jsonNotFound = (effect: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>) =>
      effect.pipe(
        Effect.catchCause((cause) => {
          const failure = Cause.findErrorOption(cause)
          if (Option.isSome(failure) && isRouteNotFound(failure.value)) return notFound(known)
          return failureResponse(cause, "HTTP")
        })
      )
    yield* router.addGlobalMiddleware(
      jsonNotFound as unknown as (
        effect: Effect.Effect<HttpServerResponse.HttpServerResponse, Types.unhandled>
      ) => Effect.Effect<HttpServerResponse.HttpServerResponse, Types.unhandled, HttpServerRequest.HttpServerRequest>
    )
  }))

/** `GET /docs`: Scalar (bundled with Effect) over the OpenAPI document, unless a route takes the path. */
const docs = (options: Options): Layer.Layer<never, never, HttpRouter.HttpRouter | Routes> =>
  Layer.unwrap(Effect.map(Routes, (routes) =>
    routes.rest.some((h) => h.method === "GET" && h.path === "/docs")
      ? Layer.empty
      : HttpApiScalar.layer(Api.fromRoutes(routes, { title: options.serviceName, graphql: routes.graphql.length === 0 ? undefined : GraphQL.pathOf(options.serviceName) }) as never, { path: "/docs" })))

const knownRoutes = (routes: RoutesShape, options: Options) =>
  [
    ...(routes.graphql.length === 0 ? [] : [
      { method: "POST", pattern: pathRegExp(GraphQL.pathOf(options.serviceName)) },
      { method: "GET", pattern: pathRegExp(`${GraphQL.pathOf(options.serviceName)}/schema`) }
    ]),
    ...routes.rest.map((h) => ({ method: h.method as string, pattern: pathRegExp(h.path) })),
    ...["/system/health", "/spec/openapi", "/spec/asyncapi", "/docs"].map((path) => ({ method: "GET", pattern: pathRegExp(path) }))
  ]

const address = (options: Options): Layer.Layer<HttpAddress, never, PlatformHttpServer.HttpServer> =>
  Layer.effect(HttpAddress, Effect.gen(function*() {
    const server = yield* PlatformHttpServer.HttpServer
    const bound = server.address
    const port = bound._tag === "UnixPathAddress" ? options.port : bound.port
    const url = PlatformHttpServer.formatAddress(bound)
    yield* Effect.log(`listening on ${url}`).pipe(Effect.annotateLogs({ service: options.serviceName }))
    return HttpAddress.of({ host: options.host, port, url })
  }))

/**
 * Serves the `Routes` service over HTTP on `host:port` until the layer is released. The `Health`
 * service is optional (no checks without it).
 *
 * ```ts
 * const Main = HttpServer.layer({ host: "0.0.0.0", port: 8080, bodyLimitBytes: 1_000_000, requestTimeoutMs: 30_000, serviceName: "exams" })
 *   .pipe(Layer.provide(Router.layer(handlers)), Layer.provide(Health.layer(checks)))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<HttpAddress, ServeError, Routes> =>
  Layer.merge(HttpRouter.serve(Layer.merge(app(options), docs(options)), { disableListenLog: true }), address(options)).pipe(
    Layer.provide(NodeHttpServer.layer(() => createServer(), { host: options.host, port: options.port }))
  )
