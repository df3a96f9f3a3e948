/**
 * The REST routes of a service compiled to `effect/http-api`: one `HttpApiEndpoint` per
 * `Router.rest` handler (the same handler list that serves REST and the broker), in an `HttpApi`
 * with the built-in endpoints (`/system/health`, the specs, `/docs`, GraphQL). From it come the
 * OpenAPI document (`OpenApi.fromApi`: every declared error and status, the success Schema of each
 * route), the docs UI (`HttpApiScalar`, Scalar as Effect ships it) and a typed client
 * (`HttpApiClient`, see `RestClient`).
 *
 * Every error answer has the one body `HttpServer` writes, `{ error, message, issues? }`; a
 * route lists the statuses it can answer: 400 (invalid input, and declared domain errors without a
 * status of their own), 404, 409, 410, 413 (routes with a body), 422 and others from declared
 * errors' `HttpStatus`, 401/403 when the route requires authentication, 500 and 503.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as OpenApi from "effect/http-api/OpenApi"
import type { RestHandler, RoutesShape } from "../router/Router.ts"
import * as HttpStatus from "./HttpStatus.ts"

const Issue = Schema.Struct({ path: Schema.String, message: Schema.String })

/** The body of every error answer (`HttpServer.errorResponse`). */
export const ErrorBody = Schema.Struct({
  error: Schema.String.annotate({ description: "The error's tag, e.g. NotFound, InvalidRequest, Unavailable" }),
  message: Schema.optional(Schema.String),
  issues: Schema.optional(Schema.Array(Issue))
})

const errorAt = (status: number, identifier: string, description: string) =>
  ErrorBody.annotate({ identifier, description }).pipe(HttpApiSchema.status(status))

/** The errors every route can answer, by status. */
const standard = {
  400: errorAt(400, "InvalidRequest", "Invalid input (path, query or body), or rejected by the domain"),
  401: errorAt(401, "Unauthenticated", "No valid credentials"),
  403: errorAt(403, "Forbidden", "The caller lacks a required role"),
  404: errorAt(404, "NotFound", "Not found"),
  409: errorAt(409, "Conflict", "A concurrent change, or an expected version that is not the current one"),
  410: errorAt(410, "AlreadyDeleted", "Deleted"),
  413: errorAt(413, "PayloadTooLarge", "The request body exceeds the limit"),
  500: errorAt(500, "InternalError", "Internal error (the cause is logged, not returned)"),
  503: errorAt(503, "Unavailable", "A dependency is unavailable, or the request timed out; retry later")
} as const

/** `/exams/:uuid` → `getExamsUuid`. */
export const operationId = (h: Pick<RestHandler, "method" | "path">): string =>
  h.method.toLowerCase() +
  h.path
    .split("/")
    .filter((s) => s !== "")
    .map((s) => s.replace(/^[:{]|}$/g, ""))
    .map((s) => s.charAt(0).toUpperCase() + s.slice(1).replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase()))
    .join("")

const pathParams = (path: string): ReadonlyArray<string> => [...path.matchAll(/:([A-Za-z0-9_]+)|\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1] ?? m[2] ?? "")

/** `/exams/{uuid}` → `/exams/:uuid`. */
const routerPath = (path: string): `/${string}` => path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1") as `/${string}`

/**
 * A declared domain error as it is answered: `{ error: <tag>, ...its fields }` at its `HttpStatus`.
 * A tagged error class is one Schema; a union of them is split into its members.
 */
const domainErrors = (error: Schema.Top | undefined): ReadonlyArray<Schema.Top> => {
  if (error === undefined) return []
  const members: ReadonlyArray<Schema.Top> = "members" in error && Array.isArray((error as { members?: unknown }).members)
    ? (error as unknown as { members: ReadonlyArray<Schema.Top> }).members
    : [error]
  return members.flatMap((member) => {
    const fields = (member as { fields?: Schema.Struct.Fields }).fields
    if (fields === undefined || !("_tag" in fields)) return []
    const tagAst = (fields["_tag"] as Schema.Top).ast
    const tag = tagAst._tag === "Literal" ? String(tagAst.literal) : "DomainError"
    const { _tag, ...rest } = fields
    const status = HttpStatus.statusOfClass(member) ?? 400
    return [Schema.Struct({ error: Schema.Literal(tag), ...rest }).annotate({ identifier: tag, description: `${tag} (domain error)` }).pipe(HttpApiSchema.status(status))]
  })
}

/** Whether a route needs credentials (a handler's `auth`, when the router declares one). */
const needsAuth = (h: RestHandler): boolean => {
  const auth = (h as { readonly auth?: unknown }).auth
  return auth !== undefined && auth !== "public"
}

const endpointOf = (h: RestHandler) => {
  const declared = domainErrors(h.error)
  const errors: Array<Schema.Top> = [
    standard[400], standard[404], standard[409], standard[410], standard[500], standard[503],
    ...(h.body === undefined ? [] : [standard[413]]),
    ...(needsAuth(h) ? [standard[401], standard[403]] : []),
    ...declared
  ]
  const success = (h.success ?? Schema.Unknown).pipe(HttpApiSchema.status(h.status))
  const make = HttpApiEndpoint.make(h.method) as unknown as (id: string, path: `/${string}`, options: object) => HttpApiEndpoint.Top
  const endpoint = make(h.name ?? operationId(h), routerPath(h.path), {
    disableCodecs: true,
    // a path parameter without a params Schema is a string (as the router hands it over)
    ...(h.params !== undefined ? { params: h.params } : pathParams(h.path).length > 0 ? { params: Schema.Struct(Object.fromEntries(pathParams(h.path).map((p) => [p, Schema.String]))) } : {}),
    ...(h.query === undefined ? {} : { query: h.query }),
    ...(h.body === undefined ? {} : { payload: h.body }),
    success: h.status === 204 ? HttpApiSchema.NoContent : success,
    error: errors
  })
  return h.summary === undefined ? endpoint : endpoint.annotate(OpenApi.Summary, h.summary)
}

const Health = Schema.Struct({
  status: Schema.Literals(["ok", "unavailable"]),
  service: Schema.String,
  checks: Schema.Record(Schema.String, Schema.String)
}).annotate({ identifier: "Health" })

const Document = Schema.Record(Schema.String, Schema.Unknown)

/** Endpoints are assembled at start-up from the routes, so their precise types are not kept here. */
export const erase = (endpoint: unknown): HttpApiEndpoint.Top => endpoint as HttpApiEndpoint.Top

const GraphQLRequest = Schema.Struct({
  query: Schema.String,
  variables: Schema.optional(Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown))),
  operationName: Schema.optional(Schema.NullOr(Schema.String))
}).annotate({ identifier: "GraphQLRequest" })

const GraphQLResponse = Schema.Struct({
  data: Schema.optional(Schema.Unknown),
  errors: Schema.optional(Schema.Array(Schema.Struct({
    message: Schema.String,
    path: Schema.optional(Schema.Array(Schema.Union([Schema.String, Schema.Number]))),
    extensions: Schema.optional(Schema.Struct({ error: Schema.String, status: Schema.Int }))
  })))
}).annotate({ identifier: "GraphQLResponse" })

/** `POST {path}` and `GET {path}/schema` (see `GraphQL`). */
const graphqlEndpoints = (path: `/${string}`): ReadonlyArray<HttpApiEndpoint.Top> => [
  erase(HttpApiEndpoint.post("postGraphql", path, {
    payload: GraphQLRequest,
    success: GraphQLResponse,
    error: [GraphQLResponse.pipe(HttpApiSchema.status(400)), GraphQLResponse.pipe(HttpApiSchema.status(404)), GraphQLResponse.pipe(HttpApiSchema.status(409)), GraphQLResponse.pipe(HttpApiSchema.status(500)), GraphQLResponse.pipe(HttpApiSchema.status(503)), standard[413]]
  }).annotate(OpenApi.Summary, "GraphQL: the service's queries and mutations (status: the highest of 200, 400, each field's, 500)")),
  erase(HttpApiEndpoint.get("getGraphqlSchema", `${path}/schema`, { success: Schema.String.pipe(HttpApiSchema.asText()) })
    .annotate(OpenApi.Summary, "The GraphQL schema (SDL)"))
]

/** The endpoints `HttpServer` adds to every service. */
const builtIns = (taken: ReadonlySet<string>): ReadonlyArray<HttpApiEndpoint.Top> => {
  const out: Array<HttpApiEndpoint.Top> = []
  const add = (key: string, e: HttpApiEndpoint.Top) => {
    if (!taken.has(key)) out.push(e)
  }
  add("GET /system/health", erase(HttpApiEndpoint.get("getSystemHealth", "/system/health", {
    success: Health,
    error: Health.pipe(HttpApiSchema.status(503))
  }).annotate(OpenApi.Summary, "Health of the service and its dependencies")))
  add("GET /spec/openapi", erase(HttpApiEndpoint.get("getSpecOpenapi", "/spec/openapi", { success: Document }).annotate(OpenApi.Summary, "This document (OpenAPI 3.1)")))
  add("GET /spec/asyncapi", erase(HttpApiEndpoint.get("getSpecAsyncapi", "/spec/asyncapi", { success: Document }).annotate(OpenApi.Summary, "The messaging (AsyncAPI 3.0)")))
  return out
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly title: string
  readonly version?: string | undefined
  /** Where the service serves GraphQL, when it does (`GraphQL.pathOf`). */
  readonly graphql?: `/${string}` | undefined
  readonly extra?: Extra | undefined
}

/**
 * Extra endpoints a transport mounts next to the REST routes, for the document.
 *
 * @category models
 * @since 0.1.0
 */
export type Extra = ReadonlyArray<HttpApiEndpoint.Top>

/**
 * The `HttpApi` of a service's routes: group `service` (its REST handlers, in order) and group
 * `system` (the built-in endpoints and `extra`). Built at start-up from the routes, so its type is
 * the erased `HttpApi.Top`; `RestClient` gives the typed view.
 *
 * @category constructors
 * @since 0.1.0
 */
export const fromRoutes = (routes: Pick<RoutesShape, "rest">, options: Options): HttpApi.Top => {
  const taken = new Set(routes.rest.map((h) => `${h.method} ${routerPath(h.path)}`))
  const service = routes.rest.map(endpointOf)
  const system = [...builtIns(taken), ...(options.graphql === undefined ? [] : graphqlEndpoints(options.graphql)), ...(options.extra ?? [])]
  let api = HttpApi.make(options.title) as unknown as { add: (g: HttpApiGroup.Top) => unknown }
  if (service.length > 0) api = api.add((HttpApiGroup.make("service") as unknown as { add: (...e: Array<HttpApiEndpoint.Top>) => HttpApiGroup.Top }).add(...service)) as typeof api
  if (system.length > 0) api = api.add((HttpApiGroup.make("system") as unknown as { add: (...e: Array<HttpApiEndpoint.Top>) => HttpApiGroup.Top }).add(...system)) as typeof api
  return (api as unknown as HttpApi.Top).annotate(OpenApi.Title, options.title).annotate(OpenApi.Version, options.version ?? "0.1.0")
}

/**
 * The OpenAPI 3.1 document of a service's routes, from `OpenApi.fromApi`.
 *
 * @category constructors
 * @since 0.1.0
 */
export const openApi = (routes: Pick<RoutesShape, "rest">, options: Options): OpenApi.OpenAPISpec =>
  OpenApi.fromApi(fromRoutes(routes, options) as never)
