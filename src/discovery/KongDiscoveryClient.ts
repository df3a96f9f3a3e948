/**
 * The `Discovery` port over the Kong admin API (`discovery.host`/`discovery.port` point at the admin
 * listener, usually port 8001): the microservice becomes a Kong service and each REST endpoint a
 * route of it, as minos's Kong plugin does.
 *
 * register (idempotent; a re-registration replaces the previous one without a gap):
 *
 * 1. `PUT /services/{name}` `{"name", "host", "port", "protocol": "http"}` — create or update.
 * 2. `GET /services/{name}/routes` — the routes it has now (following `next` pages).
 * 3. per endpoint, `PUT /routes/{route}` `{"name": route, "protocols": ["http"], "methods": [method],
 *    "paths": [path], "service": {"id"}, "strip_path": false, "regex_priority": 0}` — create or update.
 * 4. `DELETE /routes/{id}` for the routes of step 2 that are not in step 3 (stale endpoints).
 *
 * unregister: `GET /services/{name}/routes`, `DELETE /routes/{id}` for each, `DELETE /services/{name}`
 * (minos's order: Kong refuses to delete a service that still has routes). A 404 anywhere means
 * "already gone".
 *
 * Paths: `/exams/{uuid}` becomes the Kong 3 regex path `~/exams/[^/]+$` (`{name:regex}` keeps its
 * regex); every path is anchored, so a route matches exactly the URLs the service serves. Route
 * names are `{service}-{method}-{path slug}`. minos POSTed the service and, on 409, deleted and
 * re-created it; the upserts here reach the same state without the delete.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Schema } from "effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import { Discovery, DiscoveryError, type Registration } from "./Discovery.ts"
import * as Http from "./internal/http.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Host of Kong's admin API. */
  readonly host: string
  /** Port of Kong's admin API. */
  readonly port: number
  /** Timeout, attempts and backoff of one call; defaults: 5 s, 3 attempts, 200 ms doubling. */
  readonly policy?: Partial<Http.Policy>
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** `{name}` or `{name:regex}` (aiohttp's syntax). */
const parameter = /^\{([A-Za-z0-9_]+)(?::(.+))?\}$/

/**
 * A minos URL as a Kong 3 regex path: `/exams/{uuid}` → `~/exams/[^/]+$`, `/exams` → `~/exams$`.
 *
 * @since 0.1.0
 */
export const kongPath = (url: string): string => {
  const parts = url.split("/").map((part) => {
    const match = parameter.exec(part)
    if (match === null) return escapeRegExp(part)
    return match[2] ?? "[^/]+"
  })
  const path = parts.join("/")
  return `~${path === "" ? "/" : path}$`
}

const slug = (url: string): string => {
  const s = url.split("/").map((part) => parameter.exec(part)?.[1] ?? part).join("-").replace(/[^A-Za-z0-9]+/g, "-").replace(/^-+|-+$/g, "")
  return s === "" ? "root" : s
}

/**
 * The Kong routes of a registration: one per endpoint, with unique names.
 *
 * @since 0.1.0
 */
export const routesOf = (registration: Registration): ReadonlyArray<{ readonly name: string; readonly method: string; readonly path: string }> => {
  const used = new Set<string>()
  return registration.endpoints.map((e) => {
    const base = `${registration.name}-${e.method.toLowerCase()}-${slug(e.url)}`
    let name = base
    for (let n = 2; used.has(name); n++) name = `${base}-${n}`
    used.add(name)
    return { name, method: e.method, path: kongPath(e.url) }
  })
}

const KongService = Schema.Struct({ id: Schema.String })
const KongRoutes = Schema.Struct({
  data: Schema.Array(Schema.Struct({ id: Schema.String, name: Schema.optional(Schema.NullOr(Schema.String)) })),
  next: Schema.optional(Schema.NullOr(Schema.String))
})

const decode = <S extends Schema.Top>(schema: S, reply: Http.Reply, what: string): Effect.Effect<S["Type"], DiscoveryError> =>
  Http.json(reply, what).pipe(
    Effect.flatMap((body) =>
      Schema.decodeUnknownEffect(schema as unknown as Schema.Codec<S["Type"], unknown>)(body, { onExcessProperty: "ignore" }).pipe(
        Effect.mapError((cause) => new DiscoveryError({ reason: "Unknown", message: `${what}: unexpected answer: ${cause.message}`, cause }))
      )
    )
  )

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("KongDiscoveryClient.make")(function*(options: Options) {
  const client = yield* HttpClient.HttpClient
  const policy: Http.Policy = { ...Http.defaultPolicy, ...options.policy }
  const base = `http://${options.host}:${options.port}`
  const service = (name: string) => `${base}/services/${encodeURIComponent(name)}`

  /** The routes of a service; `undefined` when the service does not exist. */
  const listRoutes = Effect.fnUntraced(function*(name: string) {
    const routes: Array<{ readonly id: string; readonly name?: string | null | undefined }> = []
    let url: string | null | undefined = `${service(name)}/routes`
    // Kong pages by 100; a bound keeps a misbehaving server from looping us forever.
    for (let page = 0; url !== null && url !== undefined && page < 100; page++) {
      const reply = yield* Http.send(client, HttpClientRequest.get(url), policy, [404])
      if (reply.status === 404) return undefined
      const body: typeof KongRoutes.Type = yield* decode(KongRoutes, reply, `GET ${url}`)
      routes.push(...body.data)
      url = body.next === null || body.next === undefined ? undefined : body.next.startsWith("http") ? body.next : `${base}${body.next}`
    }
    return routes
  })

  const deleteRoute = (id: string) => Http.send(client, HttpClientRequest.delete(`${base}/routes/${encodeURIComponent(id)}`), policy, [404])

  return Discovery.of({
    register: Effect.fn("KongDiscoveryClient.register")(function*(registration: Registration) {
      const servicePut = HttpClientRequest.put(service(registration.name)).pipe(
        HttpClientRequest.bodyJsonUnsafe({ name: registration.name, host: registration.host, port: registration.port, protocol: "http" })
      )
      const created = yield* decode(KongService, yield* Http.send(client, servicePut, policy), `PUT ${servicePut.url}`)
      const existing = (yield* listRoutes(registration.name)) ?? []
      const wanted = routesOf(registration)
      for (const route of wanted) {
        const request = HttpClientRequest.put(`${base}/routes/${encodeURIComponent(route.name)}`).pipe(
          HttpClientRequest.bodyJsonUnsafe({
            name: route.name,
            protocols: ["http"],
            methods: [route.method],
            paths: [route.path],
            service: { id: created.id },
            strip_path: false,
            regex_priority: 0
          })
        )
        yield* Http.send(client, request, policy)
      }
      const names = new Set(wanted.map((r) => r.name))
      for (const stale of existing.filter((r) => r.name === null || r.name === undefined || !names.has(r.name))) {
        yield* deleteRoute(stale.id)
      }
    }),
    unregister: Effect.fn("KongDiscoveryClient.unregister")(function*(name: string) {
      const routes = yield* listRoutes(name)
      if (routes === undefined) return
      for (const route of routes) yield* deleteRoute(route.id)
      yield* Http.send(client, HttpClientRequest.delete(service(name)), policy, [404])
    })
  })
})

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<Discovery, never, HttpClient.HttpClient> => Layer.effect(Discovery, make(options))
