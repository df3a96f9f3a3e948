/**
 * A typed HTTP client for a service, from the same handler list the service serves: every named
 * `Router.rest` route becomes a method with its input and success types; the calls go through
 * `HttpApiClient` over the service's compiled `HttpApi` (see `Api`), so requests are encoded and
 * replies decoded by the routes' own Schemas.
 *
 * ```ts
 * // exam-client.ts — in another service, or a test
 * import { handlers } from "exam/Handlers"
 * const exam = yield* RestClient.make(handlers, { baseUrl: "http://exam:8082" })
 * const { uuid } = yield* exam.createExam({ body: { title: "Algebra", subject: "math", durationMinutes: 90 } })
 * const one = yield* exam.getExam({ params: { uuid } })   // typed as the route's success Schema
 * ```
 *
 * A failure is a `RestClientError`: `status` and the service's error body (`error`, `message`,
 * `issues`) when it answered, `reason: "Transport"` when it did not.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import type * as HttpClient from "effect/http/HttpClient"
import * as HttpApiClient from "effect/http-api/HttpApiClient"
import type { Handler, RestHandler } from "../router/Router.ts"
import * as Api from "./Api.ts"

/**
 * @category errors
 * @since 0.1.0
 */
export class RestClientError extends Schema.TaggedError<RestClientError>()("RestClientError", {
  reason: Schema.Literals(["Response", "Transport", "Decode"]),
  route: Schema.String,
  status: Schema.optional(Schema.Int),
  error: Schema.optional(Schema.String),
  message: Schema.String
}) {}

type Named<H> = H extends RestHandler<any, any, any, any, any, any> & { readonly name: infer N extends string } ? (string extends N ? never : H) : never

/** What a route's method takes: the parts its Schemas declare. */
export type Input<H> = H extends RestHandler<infer B, infer P, infer Q, any, any, any>
  ? ([keyof P] extends [never] ? {} : { readonly params: P }) & ([keyof Q] extends [never] ? {} : { readonly query?: Q }) & (unknown extends B ? {} : { readonly body: B })
  : never

/** What a route's method returns. */
export type Output<H> = H extends RestHandler<any, any, any, infer A, any, any> ? A : never

/**
 * The client of a handler list: one method per named REST route.
 *
 * @category models
 * @since 0.1.0
 */
export type Client<Hs extends ReadonlyArray<Handler>> = {
  readonly [H in Named<Hs[number]> as H["name"]]: (input: Input<H>) => Effect.Effect<Output<H>, RestClientError>
}

const describe = (route: string, e: unknown): RestClientError => {
  const body = e as { readonly error?: unknown; readonly message?: unknown; readonly _tag?: unknown }
  if (typeof body?.error === "string") {
    return new RestClientError({ reason: "Response", route, error: body.error, message: typeof body.message === "string" ? body.message : body.error })
  }
  const tag = String(body?._tag ?? "")
  if (tag === "HttpClientError") {
    const status = (e as { response?: { status?: number } }).response?.status
    return new RestClientError({ reason: status === undefined ? "Transport" : "Response", route, ...(status === undefined ? {} : { status }), message: String((e as Error).message ?? tag) })
  }
  return new RestClientError({ reason: "Decode", route, message: e instanceof Error ? e.message : String(e) })
}

/**
 * The typed client of a service, from its handlers (only the named REST routes get a method).
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <const Hs extends ReadonlyArray<Handler>>(
  handlers: Hs,
  options: { readonly baseUrl: string | URL; readonly title?: string | undefined }
): Effect.Effect<Client<Hs>, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const rest = handlers.filter((h): h is RestHandler => h._tag === "Rest")
    const api = Api.fromRoutes({ rest }, { title: options.title ?? "service" })
    const client = (yield* HttpApiClient.make(api as never, { baseUrl: options.baseUrl })) as unknown as {
      readonly service: Record<string, (request: object) => Effect.Effect<unknown, unknown>>
    }
    const out: Record<string, (input: { params?: unknown; query?: unknown; body?: unknown }) => Effect.Effect<unknown, RestClientError>> = {}
    for (const h of rest) {
      if (h.name === undefined) continue
      const call = client.service[h.name]!
      const route = `${h.method} ${h.path}`
      out[h.name] = (input) =>
        call({
          ...(input.params === undefined ? {} : { params: input.params }),
          ...(h.query === undefined ? {} : { query: input.query ?? {} }),
          ...(input.body === undefined ? {} : { payload: input.body })
        }).pipe(Effect.mapError((e) => describe(route, e)))
    }
    return out as unknown as Client<Hs>
  })
