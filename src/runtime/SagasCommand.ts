/**
 * `effect-minos sagas list|show|history|cancel|retry|resume …`: the saga management API of a
 * running service, over its REST routes (`/sagas`, see `SagaRoutes`). Cancelling runs the saga's
 * compensations, which only the service's own code has, so the command talks to the service rather
 * than to its storage. The address comes from `--url` or from the config's `rest.port`.
 *
 * @since 0.1.0
 */
import { Clock, Console, Effect } from "effect"
import * as MinosConfig from "../config/MinosConfig.ts"
import { describeCause } from "../internal/Outcome.ts"

const option = (args: ReadonlyArray<string>, name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

const usage = "usage: effect-minos sagas list [config.yml] [--status S] [--saga NAME] [--older-than-ms N] [--url URL]\n" +
  "       effect-minos sagas show|history|cancel|retry|resume <uuid> [config.yml] [--url URL]"

const request = (method: "GET" | "POST", url: string) =>
  Effect.tryPromise(async () => {
    const res = await fetch(url, { method })
    const text = await res.text()
    return { status: res.status, body: text.length > 0 ? JSON.parse(text) as unknown : null }
  })

/** Runs the command; resolves to the exit code. */
export const sagas = (args: ReadonlyArray<string>): Effect.Effect<number> => {
  const [verb, ...rest] = args
  const positional = rest.filter((a, i) => !a.startsWith("--") && !(i > 0 && rest[i - 1]!.startsWith("--")))
  const base = (file: string | undefined) =>
    Effect.gen(function*() {
      const url = option(rest, "--url")
      if (url !== undefined) return url.replace(/\/+$/, "")
      const settings = yield* MinosConfig.load(file ?? MinosConfig.defaultPath())
      const host = settings.rest.host === "0.0.0.0" ? "127.0.0.1" : settings.rest.host
      return `http://${host}:${settings.rest.port}`
    })
  const print = (r: { readonly status: number; readonly body: unknown }) =>
    Effect.as(Console.log(JSON.stringify(r.body, null, 2)), r.status >= 200 && r.status < 300 ? 0 : 1)
  let program: Effect.Effect<number, unknown>
  if (verb === "list") {
    program = Effect.gen(function*() {
      const params = new URLSearchParams()
      const status = option(rest, "--status")
      const saga = option(rest, "--saga")
      const older = option(rest, "--older-than-ms")
      if (status !== undefined) params.set("status", status)
      if (saga !== undefined) params.set("saga", saga)
      if (older !== undefined) params.set("startedBefore", String((yield* Clock.currentTimeMillis) - Number(older)))
      const r = yield* request("GET", `${yield* base(positional[0])}/sagas?${params}`)
      if (r.status !== 200) return yield* print(r)
      const items = (r.body as { items: ReadonlyArray<{ id: string; saga: string; status: string; phase: string; createdAt: number; error: string | null }> }).items
      for (const x of items) yield* Console.log(`${x.id}\t${x.saga}\t${x.status}\t${x.phase}\t${new Date(x.createdAt).toISOString()}\t${x.error ?? ""}`)
      yield* Console.log(`${items.length} execution(s)`)
      return 0
    })
  } else if (["show", "history", "cancel", "retry", "resume"].includes(verb ?? "") && positional[0] !== undefined) {
    const id = positional[0]
    program = Effect.gen(function*() {
      const url = yield* base(positional[1])
      const r = verb === "show" ? yield* request("GET", `${url}/sagas/${id}`)
        : verb === "history" ? yield* request("GET", `${url}/sagas/${id}/history`)
        : yield* request("POST", `${url}/sagas/${id}/${verb}`)
      return yield* print(r)
    })
  } else {
    return Effect.as(Console.error(usage), 2)
  }
  return program.pipe(Effect.catchCause((cause) => Effect.as(Console.error(`sagas: ${describeCause(cause)}`), 1)))
}
