/**
 * A stand-in for the external registries, which cannot run here: a small node:http server on
 * 127.0.0.1 that implements the minos-discovery endpoints and the Kong admin endpoints our clients
 * call, keeps their state, and records every request it receives.
 *
 * - minos-discovery: `POST /microservices/{name}` (201; 400 when `address`, `port` or `endpoints` is
 *   missing or another key is present, as the real handler's `Microservice(**body)` does) and
 *   `DELETE /microservices/{name}` (200; 404 when unknown).
 * - Kong admin: `PUT /services/{name}`, `GET /services/{name}/routes` (pages of 2, with `next`),
 *   `PUT /routes/{name}`, `DELETE /routes/{id or name}`, `DELETE /services/{name}` (400 while the
 *   service still has routes, like Kong).
 */
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface Recorded {
  readonly method: string
  /** Path and query, as sent. */
  readonly path: string
  readonly body: unknown
}

/** An override: a reply, `"hang"` (never answer), or `undefined` to use the stub's normal behaviour. */
export type Override = (request: Recorded) => { readonly status: number; readonly body?: unknown } | "hang" | undefined

interface KongRoute {
  readonly id: string
  readonly name: string
  readonly methods: ReadonlyArray<string>
  readonly paths: ReadonlyArray<string>
  readonly service: { readonly id: string }
  readonly [key: string]: unknown
}

const minosKeys = new Set(["name", "address", "port", "endpoints", "status"])

export class RegistryStub {
  readonly requests: Array<Recorded> = []
  override: Override | undefined = undefined
  /** minos-discovery entries by name. */
  readonly microservices = new Map<string, Record<string, unknown>>()
  /** Kong services by name. */
  readonly services = new Map<string, { readonly id: string; readonly name: string; readonly host: unknown; readonly port: unknown; readonly protocol: unknown }>()
  /** Kong routes by name. */
  readonly routes = new Map<string, KongRoute>()
  private server: Server | undefined = undefined
  private hanging: Array<ServerResponse> = []
  port = 0

  /** Listens on `port` (0: a free one) and returns the bound port. */
  start(port = 0): Promise<number> {
    const server = createServer((req, res) => void this.handle(req, res))
    this.server = server
    return new Promise((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => {
        this.port = (server.address() as AddressInfo).port
        resolve(this.port)
      })
    })
  }

  stop(): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const res of this.hanging.splice(0)) res.destroy()
    if (server === undefined) return Promise.resolve()
    return new Promise((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  of(method: string): ReadonlyArray<Recorded> {
    return this.requests.filter((r) => r.method === method)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const text = Buffer.concat(chunks).toString("utf8")
    let body: unknown = undefined
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      body = text
    }
    const recorded: Recorded = { method: req.method ?? "", path: req.url ?? "/", body }
    this.requests.push(recorded)
    const forced = this.override?.(recorded)
    if (forced === "hang") {
      this.hanging.push(res)
      return
    }
    const reply = forced ?? this.route(recorded)
    const payload = reply.body === undefined ? "" : JSON.stringify(reply.body)
    res.writeHead(reply.status, payload === "" ? {} : { "content-type": "application/json" })
    res.end(payload)
  }

  private route(r: Recorded): { readonly status: number; readonly body?: unknown } {
    const url = new URL(r.path, "http://stub")
    const parts = url.pathname.split("/").filter((p) => p !== "").map(decodeURIComponent)
    const body = (r.body ?? {}) as Record<string, unknown>
    const key = `${r.method} /${parts.map((p, i) => (i % 2 === 1 ? "*" : p)).join("/")}`
    switch (key) {
      // --- minos-discovery
      case "POST /microservices/*": {
        const missing = ["address", "port", "endpoints"].filter((k) => !(k in body))
        const extra = Object.keys(body).filter((k) => !minosKeys.has(k))
        if (missing.length > 0 || extra.length > 0) return { status: 400, body: { missing, extra } }
        this.microservices.set(parts[1]!, { ...body, name: parts[1]! })
        return { status: 201 }
      }
      case "DELETE /microservices/*":
        return this.microservices.delete(parts[1]!) ? { status: 200 } : { status: 404 }
      // --- Kong admin
      case "PUT /services/*": {
        const name = parts[1]!
        const id = this.services.get(name)?.id ?? randomUUID()
        const service = { id, name, host: body["host"], port: body["port"], protocol: body["protocol"] }
        this.services.set(name, service)
        return { status: 200, body: service }
      }
      case "GET /services/*/routes": {
        const service = this.services.get(parts[1]!)
        if (service === undefined) return { status: 404, body: { message: "Not found" } }
        const all = [...this.routes.values()].filter((rt) => rt.service.id === service.id)
        const offset = Number(url.searchParams.get("offset") ?? 0)
        const next = offset + 2 < all.length ? `/services/${parts[1]!}/routes?offset=${offset + 2}` : null
        return { status: 200, body: { data: all.slice(offset, offset + 2), next } }
      }
      case "PUT /routes/*": {
        const name = parts[1]!
        const serviceId = (body["service"] as { id?: string } | undefined)?.id
        if (![...this.services.values()].some((s) => s.id === serviceId)) return { status: 400, body: { message: "unknown service" } }
        const route = { ...body, id: this.routes.get(name)?.id ?? randomUUID(), name } as KongRoute
        this.routes.set(name, route)
        return { status: 200, body: route }
      }
      case "DELETE /routes/*": {
        const target = [...this.routes.values()].find((rt) => rt.id === parts[1] || rt.name === parts[1])
        if (target !== undefined) this.routes.delete(target.name)
        return { status: 204 }
      }
      case "DELETE /services/*": {
        const service = this.services.get(parts[1]!)
        if (service === undefined) return { status: 204 }
        if ([...this.routes.values()].some((rt) => rt.service.id === service.id)) {
          return { status: 400, body: { message: "an existing 'routes' entity references this 'services' entity" } }
        }
        this.services.delete(parts[1]!)
        return { status: 204 }
      }
      default:
        return { status: 404, body: { message: `no stub for ${key}` } }
    }
  }
}

/** A started stub, stopped when the scope closes. */
export const stub = (port = 0) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const s = new RegistryStub()
      await s.start(port)
      return s
    }),
    (s) => Effect.promise(() => s.stop())
  )

/** A port nothing listens on (bound, then released). */
export const freePort = Effect.promise(async () => {
  const s = new RegistryStub()
  const port = await s.start()
  await s.stop()
  return port
})

/** Polls `probe` every 10 ms until `ok` holds or `timeoutMs` passed; returns the last value. */
export const waitUntil = <A>(probe: () => A, ok: (a: A) => boolean, timeoutMs = 5_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const a = probe()
      if (ok(a) || Date.now() > deadline) return a
      yield* Effect.sleep("10 millis")
    }
  })
