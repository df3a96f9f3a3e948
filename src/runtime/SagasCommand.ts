/**
 * `effect-minos sagas list|show|history|cancel|retry|resume …`: the saga management API of a
 * running service, over its REST routes (`/sagas`, see `SagaRoutes`). Cancelling runs the saga's
 * compensations, which only the service's own code has, so the command talks to the service rather
 * than to its storage. The address comes from `--url` or from the config's `rest.port`.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as MinosConfig from "../config/MinosConfig.ts"
import { describeCause } from "../internal/Outcome.ts"
import { Failed } from "./internal/Process.ts"

const request = (method: "GET" | "POST", url: string) =>
  Effect.tryPromise(async () => {
    const res = await fetch(url, { method })
    const text = await res.text()
    return { status: res.status, body: text.length > 0 ? JSON.parse(text) as unknown : null }
  })

const config = Argument.String("config").pipe(Argument.withDescription("the service's config file, for its address (default ./config.yml)"), Argument.optional)
const url = Flag.String("url").pipe(Flag.withDescription("the service's address (default: from the config's rest.host/port)"), Flag.optional)

const base = (file: Option.Option<string>, explicit: Option.Option<string>) =>
  Option.match(explicit, {
    onSome: (u) => Effect.succeed(u.replace(/\/+$/, "")),
    onNone: () =>
      Effect.map(MinosConfig.load(Option.getOrElse(file, () => MinosConfig.defaultPath())), (settings) => {
        const host = settings.rest.host === "0.0.0.0" ? "127.0.0.1" : settings.rest.host
        return `http://${host}:${settings.rest.port}`
      })
  })

/** Prints the reply body; a non-2xx reply exits 1. */
const print = (r: { readonly status: number; readonly body: unknown }) =>
  Effect.andThen(Console.log(JSON.stringify(r.body, null, 2)), r.status >= 200 && r.status < 300 ? Effect.void : Effect.fail(new Failed({ code: 1 })))

/** Any failure but `Failed` (already reported) is printed and exits 1. */
const failing = <A, E>(body: Effect.Effect<A, E>): Effect.Effect<A, Failed> =>
  body.pipe(Effect.catchCause((cause) => {
    const error = Cause.findErrorOption(cause)
    return Option.isSome(error) && error.value instanceof Failed
      ? Effect.fail(error.value)
      : Effect.andThen(Console.error(`sagas: ${describeCause(cause)}`), Effect.fail(new Failed({ code: 1 })))
  }))

const list = Command.make("list", {
  config,
  url,
  status: Flag.String("status").pipe(Flag.withDescription("only executions in this status"), Flag.optional),
  saga: Flag.String("saga").pipe(Flag.withDescription("only this saga"), Flag.optional),
  olderThanMs: Flag.Int("older-than-ms").pipe(Flag.withDescription("only executions started more than N ms ago"), Flag.optional)
}, (input) =>
  failing(Effect.gen(function*() {
    const params = new URLSearchParams()
    if (Option.isSome(input.status)) params.set("status", input.status.value)
    if (Option.isSome(input.saga)) params.set("saga", input.saga.value)
    if (Option.isSome(input.olderThanMs)) params.set("startedBefore", String((yield* Clock.currentTimeMillis) - input.olderThanMs.value))
    const r = yield* request("GET", `${yield* base(input.config, input.url)}/sagas?${params}`)
    if (r.status !== 200) return yield* print(r)
    const items = (r.body as { items: ReadonlyArray<{ id: string; saga: string; status: string; phase: string; createdAt: number; error: string | null }> }).items
    for (const x of items) yield* Console.log(`${x.id}\t${x.saga}\t${x.status}\t${x.phase}\t${new Date(x.createdAt).toISOString()}\t${x.error ?? ""}`)
    yield* Console.log(`${items.length} execution(s)`)
  }))).pipe(Command.withDescription("Saga executions, filtered"))

const one = (verb: "show" | "history" | "cancel" | "retry" | "resume", description: string) =>
  Command.make(verb, { uuid: Argument.String("uuid").pipe(Argument.withDescription("the execution")), config, url }, (input) =>
    failing(Effect.gen(function*() {
      const at = yield* base(input.config, input.url)
      const r = verb === "show" ? yield* request("GET", `${at}/sagas/${input.uuid}`)
        : verb === "history" ? yield* request("GET", `${at}/sagas/${input.uuid}/history`)
        : yield* request("POST", `${at}/sagas/${input.uuid}/${verb}`)
      yield* print(r)
    }))).pipe(Command.withDescription(description))

/**
 * @category commands
 * @since 0.1.0
 */
export const command = Command.make("sagas").pipe(
  Command.withDescription("Manage the saga executions of a running service"),
  Command.withSubcommands([
    list,
    one("show", "One execution"),
    one("history", "Its steps, replies and transitions"),
    one("cancel", "Compensate and stop it"),
    one("retry", "Run a failed step again"),
    one("resume", "Continue a paused execution")
  ])
)
