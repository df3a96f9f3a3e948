/**
 * Handlers, declared in code: broker commands, queries and events, REST routes and periodic jobs,
 * each with the Schemas of its input (and output), plus middleware around all of them.
 *
 * ```ts
 * const routes = Router.make([
 *   Router.command("CreateExam", { payload: CreateExam, success: Created }, (input) => exams.create(...)),
 *   Router.event("ExamCreated", { payload: DomainEvent.Content }, (event) => readModel.upsert(event)),
 *   Router.rest("GET", "/exams/:uuid", { params: Schema.Struct({ uuid: Uuid }) }, ({ params }) => exams.get(params.uuid)),
 *   Router.periodic("*\/5 * * * *", "prune", prune)
 * ])
 * ```
 *
 * Two command/query handlers on one topic, or two REST handlers on one method and path, are a
 * `RouteError` when the routes are built; several event handlers on one topic all run.
 *
 * @since 0.1.0
 */
import { Context, Cron, Effect, Layer, Result, Schema } from "effect"
import type * as Contract from "./Contract.ts"
import type { Aggregate, PublishedTopic } from "../domain/Aggregate.ts"
import { Request, type RequestShape } from "./Request.ts"

/**
 * @category models
 * @since 0.1.0
 */
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE"

/**
 * A broker handler. `handle` may use the `Request` service.
 *
 * @category models
 * @since 0.1.0
 */
export interface BrokerHandler<P = any, A = any, E = any, R = any> {
  readonly _tag: "Broker"
  readonly kind: "command" | "query" | "event"
  readonly topic: string
  readonly payload: Schema.Codec<P, unknown>
  readonly success: Schema.Codec<A, unknown> | undefined
  /** The domain errors it answers with (a 400 reply), from its contract; for the specs. */
  readonly error?: Schema.Top | undefined
  readonly handle: (payload: P) => Effect.Effect<A, E, R>
}

/**
 * @category models
 * @since 0.1.0
 */
export interface RestInput<B, P, Q> {
  readonly body: B
  readonly params: P
  readonly query: Q
}

/**
 * A REST handler. Paths use `:name` parameters (`/exams/:uuid`).
 *
 * @category models
 * @since 0.1.0
 */
export interface RestHandler<B = any, P = any, Q = any, A = any, E = any, R = any> {
  readonly _tag: "Rest"
  readonly method: HttpMethod
  readonly path: string
  readonly body: Schema.Codec<B, unknown> | undefined
  readonly params: Schema.Codec<P, unknown> | undefined
  readonly query: Schema.Codec<Q, unknown> | undefined
  readonly success: Schema.Codec<A, unknown> | undefined
  /** Status of a successful response (default 200). */
  readonly status: number
  readonly summary: string | undefined
  /** The route's name for clients and the OpenAPI operation id (default: from method and path). */
  readonly name?: string | undefined
  /** The domain errors it declares (for the OpenAPI document and clients). */
  readonly error?: Schema.Top | undefined
  readonly handle: (input: RestInput<B, P, Q>) => Effect.Effect<A, E, R>
}

/**
 * A periodic job: a cron expression (5 or 6 fields, UTC) or `@reboot` (once at start). Runs never overlap.
 *
 * @category models
 * @since 0.1.0
 */
export interface PeriodicHandler<E = any, R = any> {
  readonly _tag: "Periodic"
  readonly name: string
  readonly schedule: string
  readonly handle: Effect.Effect<void, E, R>
}

/**
 * @category models
 * @since 0.1.0
 */
/**
 * A GraphQL field: a query or a mutation of the service's GraphQL schema (`POST /{service}/graphql`).
 * Its arguments and output are Schemas, from which the GraphQL types are generated.
 *
 * @category models
 * @since 0.1.0
 */
export interface GraphQLHandler<Args = any, A = any, E = any, R = any> {
  readonly _tag: "GraphQL"
  readonly kind: "query" | "mutation"
  readonly name: string
  /** The arguments, a Struct: one GraphQL argument per field. */
  readonly args: Schema.Codec<Args, unknown> | undefined
  readonly output: Schema.Codec<A, unknown>
  readonly description: string | undefined
  readonly handle: (args: Args) => Effect.Effect<A, E, R>
}

/**
 * @category models
 * @since 0.1.0
 */
export type Handler = BrokerHandler | RestHandler | PeriodicHandler | GraphQLHandler

/** The services a handler needs, minus the ones the router provides. */
export type HandlerServices<H> = H extends GraphQLHandler<any, any, any, infer R> ? Exclude<R, Request>
  : H extends BrokerHandler<any, any, any, infer R> ? Exclude<R, Request>
  : H extends RestHandler<any, any, any, any, any, infer R> ? Exclude<R, Request>
  : H extends PeriodicHandler<any, infer R> ? Exclude<R, Request>
  : never

/**
 * Wraps every handler run (broker, REST and periodic alike); the first in the list is the outermost.
 *
 * @category models
 * @since 0.1.0
 */
export type Middleware = <A, E, R>(effect: Effect.Effect<A, E, R>, request: RequestShape) => Effect.Effect<A, E, R | Request>

const options = <P, A>(o: { readonly payload: Schema.Codec<P, unknown>; readonly success?: Schema.Codec<A, unknown> | undefined }) => ({
  payload: o.payload,
  success: o.success
})

/**
 * A command handler: on a topic with its Schemas, or on a shared {@link Contract.Contract} (the
 * callers' `RequestClient.call` and `Saga.remote` use the same value).
 *
 * @category constructors
 * @since 0.1.0
 */
export function command<P, A, CE, E = never, R = never>(
  contract: Contract.Contract<P, A, CE>,
  handle: (payload: P) => Effect.Effect<A, E, R>
): BrokerHandler<P, A, E, R>
export function command<P, A = void, E = never, R = never>(
  topic: string,
  o: { readonly payload: Schema.Codec<P, unknown>; readonly success?: Schema.Codec<A, unknown> },
  handle: (payload: P) => Effect.Effect<A, E, R>
): BrokerHandler<P, A, E, R>
export function command(topicOrContract: string | Contract.Contract.Any, o: any, handle?: any): BrokerHandler {
  return brokerHandler("command", topicOrContract, o, handle)
}

/**
 * A query handler (see {@link command}).
 *
 * @category constructors
 * @since 0.1.0
 */
export function query<P, A, CE, E = never, R = never>(
  contract: Contract.Contract<P, A, CE>,
  handle: (payload: P) => Effect.Effect<A, E, R>
): BrokerHandler<P, A, E, R>
export function query<P, A = void, E = never, R = never>(
  topic: string,
  o: { readonly payload: Schema.Codec<P, unknown>; readonly success?: Schema.Codec<A, unknown> },
  handle: (payload: P) => Effect.Effect<A, E, R>
): BrokerHandler<P, A, E, R>
export function query(topicOrContract: string | Contract.Contract.Any, o: any, handle?: any): BrokerHandler {
  return brokerHandler("query", topicOrContract, o, handle)
}

const brokerHandler = (kind: "command" | "query", topicOrContract: string | Contract.Contract.Any, o: any, handle: any): BrokerHandler =>
  typeof topicOrContract === "string"
    ? { _tag: "Broker", kind, topic: topicOrContract, ...options(o), handle }
    : { _tag: "Broker", kind, topic: topicOrContract.name, payload: topicOrContract.payload, success: topicOrContract.success, error: topicOrContract.error, handle: o }

/** @category constructors @since 0.1.0 */
export const event = <P, E = never, R = never>(
  topic: string,
  o: { readonly payload: Schema.Codec<P, unknown> },
  handle: (payload: P) => Effect.Effect<void, E, R>
): BrokerHandler<P, void, E, R> => ({ _tag: "Broker", kind: "event", topic, payload: o.payload, success: undefined, handle })

/**
 * A REST handler. `name` identifies the route to the typed client (`RestClient`) and in the OpenAPI
 * document (default: from method and path); `error` declares the domain errors it answers with (a
 * tagged error class or a union of them; each at its `HttpStatus`), for the document and the client.
 *
 * @category constructors
 * @since 0.1.0
 */
export const rest = <B = unknown, P = {}, Q = {}, A = unknown, E = never, R = never, const N extends string | undefined = undefined>(
  method: HttpMethod,
  path: string,
  o: {
    readonly name?: N
    readonly body?: Schema.Codec<B, unknown>
    readonly params?: Schema.Codec<P, unknown>
    readonly query?: Schema.Codec<Q, unknown>
    readonly success?: Schema.Codec<A, unknown>
    readonly error?: Schema.Top
    readonly status?: number
    readonly summary?: string
  },
  handle: (input: RestInput<B, P, Q>) => Effect.Effect<A, E, R>
): RestHandler<B, P, Q, A, E, R> & { readonly name: N } => ({
  _tag: "Rest",
  method,
  path,
  name: o.name as N,
  body: o.body,
  params: o.params,
  query: o.query,
  success: o.success,
  error: o.error,
  status: o.status ?? 200,
  summary: o.summary,
  handle
})

const graphqlField = (kind: "query" | "mutation") =>
<A, Args = {}, E = never, R = never>(
  name: string,
  o: { readonly args?: Schema.Codec<Args, unknown>; readonly output: Schema.Codec<A, unknown>; readonly description?: string },
  handle: (args: Args) => Effect.Effect<A, E, R>
): GraphQLHandler<Args, A, E, R> => ({ _tag: "GraphQL", kind, name, args: o.args, output: o.output, description: o.description, handle })

/**
 * GraphQL queries and mutations, as minos's `@enroute.graphql.query/command`:
 *
 * ```ts
 * Router.graphql.query("exam", { args: Schema.Struct({ uuid: Uuid }), output: ExamBody }, ({ uuid }) => get(uuid))
 * Router.graphql.mutation("createExam", { args: CreateExam, output: Ref }, create)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const graphql = {
  query: graphqlField("query"),
  mutation: graphqlField("mutation")
}

/** @category constructors @since 0.1.0 */
export const periodic = <E = never, R = never>(schedule: string, name: string, handle: Effect.Effect<void, E, R>): PeriodicHandler<E, R> => ({
  _tag: "Periodic",
  name,
  schedule,
  handle
})

/**
 * A handler whose services are already provided.
 *
 * @category models
 * @since 0.1.0
 */
export type Bound<H extends Handler> = H extends GraphQLHandler<infer Args, infer A, infer E, any> ? GraphQLHandler<Args, A, E, Request>
  : H extends BrokerHandler<infer P, infer A, infer E, any> ? BrokerHandler<P, A, E, Request>
  : H extends RestHandler<infer B, infer P, infer Q, infer A, infer E, any> ? RestHandler<B, P, Q, A, E, Request>
  : H extends PeriodicHandler<infer E, any> ? PeriodicHandler<E, Request>
  : never

/**
 * A command or query this service sends to another one (a saga's remote step, a `RequestClient`
 * call), described for the AsyncAPI document. A `Contract.Contract` is one.
 *
 * @category models
 * @since 0.1.0
 */
export interface SentMessage {
  readonly kind: "command" | "query"
  /** The topic it is sent on. */
  readonly name: string
  readonly payload: Schema.Top
  readonly success?: Schema.Top | undefined
  readonly error?: Schema.Top | undefined
}

/**
 * A topic the service publishes its aggregates' domain events on.
 *
 * @category models
 * @since 0.1.0
 */
export interface Published extends PublishedTopic {
  readonly aggregate: string
}

/**
 * What `make` takes beside the handlers.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly middleware?: ReadonlyArray<Middleware> | undefined
  /** The aggregates whose domain events this service publishes (their `published` topics). */
  readonly publishes?: ReadonlyArray<Pick<Aggregate.Any, "name" | "published">> | undefined
  /** The commands and queries it sends to other services. */
  readonly sends?: ReadonlyArray<SentMessage> | undefined
}

/**
 * The routes of a service, ready to be served.
 *
 * @category models
 * @since 0.1.0
 */
export interface RoutesShape {
  readonly commands: ReadonlyMap<string, BrokerHandler<any, any, any, Request>>
  readonly events: ReadonlyMap<string, ReadonlyArray<BrokerHandler<any, void, any, Request>>>
  readonly rest: ReadonlyArray<RestHandler<any, any, any, any, any, Request>>
  readonly periodic: ReadonlyArray<PeriodicHandler<any, Request>>
  readonly graphql: ReadonlyArray<GraphQLHandler<any, any, any, Request>>
  readonly middleware: ReadonlyArray<Middleware>
  /** Every broker topic with a handler. */
  readonly topics: ReadonlyArray<string>
  /** Every topic the service publishes domain events on. */
  readonly published: ReadonlyArray<Published>
  readonly sends: ReadonlyArray<SentMessage>
}

/**
 * @category services
 * @since 0.1.0
 */
export class Routes extends Context.Service<Routes, RoutesShape>()("effect-minos/router/Routes") {}

/**
 * Two handlers claim the same route, or a route is malformed.
 *
 * @category errors
 * @since 0.1.0
 */
export class RouteError extends Schema.TaggedError<RouteError>()("RouteError", {
  reason: Schema.Literals(["Duplicate", "Invalid"]),
  route: Schema.String,
  message: Schema.String
}) {}

const topicPattern = /^[A-Za-z0-9._-]{1,249}$/
const pathPattern = /^\/[A-Za-z0-9._~\-/:{}]*$/

/** Runs a cron expression through Effect's parser; `@reboot` is ours. */
export const parseSchedule = (schedule: string): Result.Result<Cron.Cron | "reboot", string> => {
  if (schedule === "@reboot") return Result.succeed("reboot")
  const parsed = Cron.parse(schedule, "UTC")
  return Result.isSuccess(parsed) ? Result.succeed(parsed.success) : Result.fail(String(parsed.failure.message ?? parsed.failure))
}

/**
 * Checks the handlers and binds them to the services they need.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <const Hs extends ReadonlyArray<Handler>>(
  handlers: Hs,
  opts: Options = {}
): Effect.Effect<RoutesShape, RouteError, HandlerServices<Hs[number]>> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<HandlerServices<Hs[number]>>()
    const bind = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.provideContext(effect, context as Context.Context<any>) as Effect.Effect<A, E, Request>
    const commands = new Map<string, BrokerHandler<any, any, any, Request>>()
    const events = new Map<string, Array<BrokerHandler<any, void, any, Request>>>()
    const restRoutes: Array<RestHandler<any, any, any, any, any, Request>> = []
    const periodicJobs: Array<PeriodicHandler<any, Request>> = []
    const graphqlFields: Array<GraphQLHandler<any, any, any, Request>> = []
    const seenRest = new Set<string>()
    for (const h of handlers) {
      switch (h._tag) {
        case "Broker": {
          if (!topicPattern.test(h.topic)) {
            return yield* Effect.fail(new RouteError({ reason: "Invalid", route: h.topic, message: `Invalid topic ${JSON.stringify(h.topic)}` }))
          }
          const bound = { ...h, handle: (p: unknown) => bind(h.handle(p)) }
          if (h.kind === "event") {
            const list = events.get(h.topic) ?? []
            list.push(bound)
            events.set(h.topic, list)
          } else {
            if (commands.has(h.topic)) {
              return yield* Effect.fail(new RouteError({ reason: "Duplicate", route: h.topic, message: `Two ${h.kind} handlers for topic ${h.topic}` }))
            }
            if (events.has(h.topic)) {
              return yield* Effect.fail(new RouteError({ reason: "Duplicate", route: h.topic, message: `Topic ${h.topic} has both event and ${h.kind} handlers` }))
            }
            commands.set(h.topic, bound)
          }
          break
        }
        case "Rest": {
          const key = `${h.method} ${h.path.replace(/:[A-Za-z0-9_]+|\{[A-Za-z0-9_]+\}/g, ":")}`
          if (!pathPattern.test(h.path)) {
            return yield* Effect.fail(new RouteError({ reason: "Invalid", route: `${h.method} ${h.path}`, message: `Invalid path ${JSON.stringify(h.path)}` }))
          }
          if (seenRest.has(key)) {
            return yield* Effect.fail(new RouteError({ reason: "Duplicate", route: `${h.method} ${h.path}`, message: `Two handlers for ${h.method} ${h.path}` }))
          }
          seenRest.add(key)
          restRoutes.push({ ...h, handle: (i) => bind(h.handle(i)) })
          break
        }
        case "GraphQL": {
          if (!/^[_A-Za-z][_0-9A-Za-z]*$/.test(h.name)) {
            return yield* Effect.fail(new RouteError({ reason: "Invalid", route: `graphql ${h.name}`, message: `Invalid GraphQL field name ${JSON.stringify(h.name)}` }))
          }
          if (graphqlFields.some((g) => g.kind === h.kind && g.name === h.name)) {
            return yield* Effect.fail(new RouteError({ reason: "Duplicate", route: `graphql ${h.name}`, message: `Two GraphQL ${h.kind} fields named ${h.name}` }))
          }
          graphqlFields.push({ ...h, handle: (a: unknown) => bind(h.handle(a)) })
          break
        }
        case "Periodic": {
          const parsed = parseSchedule(h.schedule)
          if (Result.isFailure(parsed)) {
            return yield* Effect.fail(new RouteError({ reason: "Invalid", route: h.name, message: `Invalid schedule ${JSON.stringify(h.schedule)}: ${parsed.failure}` }))
          }
          periodicJobs.push({ ...h, handle: bind(h.handle) })
          break
        }
      }
    }
    for (const topic of events.keys()) {
      if (commands.has(topic)) return yield* Effect.fail(new RouteError({ reason: "Duplicate", route: topic, message: `Topic ${topic} has both event and command handlers` }))
    }
    return {
      commands,
      events,
      rest: restRoutes,
      periodic: periodicJobs,
      graphql: graphqlFields,
      middleware: opts.middleware ?? [],
      topics: [...commands.keys(), ...events.keys()],
      published: (opts.publishes ?? []).flatMap((a) => (a.published ?? []).map((p) => ({ ...p, aggregate: a.name }))),
      sends: opts.sends ?? []
    }
  })

/**
 * The `Routes` service from handlers; fails with `RouteError` at start-up.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <const Hs extends ReadonlyArray<Handler>>(
  handlers: Hs,
  opts: Options = {}
): Layer.Layer<Routes, RouteError, HandlerServices<Hs[number]>> => Layer.effect(Routes, Effect.map(make(handlers, opts), Routes.of))

/**
 * Runs `effect` through the middleware, outermost first.
 *
 * @since 0.1.0
 */
export const withMiddleware = <A, E>(
  middleware: ReadonlyArray<Middleware>,
  request: RequestShape,
  effect: Effect.Effect<A, E, Request>
): Effect.Effect<A, E> =>
  middleware.reduceRight<Effect.Effect<A, E, Request>>((inner, m) => m(inner, request), effect).pipe(
    Effect.provideService(Request, request)
  )
