/**
 * `effect-minos dead-letters list|replay …`: opens the service's storage from its config (no broker
 * needed: a replay is staged in the outbox, which the running service's relay publishes).
 *
 * @since 0.1.0
 */
import { Console, Effect, Layer } from "effect"
import * as MinosConfig from "../config/MinosConfig.ts"
import * as DeadLetters from "../messaging/DeadLetters.ts"
import { describeCause } from "../internal/Outcome.ts"
import { layerStorage } from "./Microservice.ts"
import type * as Storage from "../storage/Storage.ts"

const option = (args: ReadonlyArray<string>, name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

/** Runs the command; resolves to the exit code. */
export const deadLetters = (args: ReadonlyArray<string>): Effect.Effect<number> => {
  const [verb, ...rest] = args
  const positional = rest.filter((a, i) => !a.startsWith("--") && !(i > 0 && rest[i - 1]!.startsWith("--")))
  const topic = option(rest, "--topic")
  const run = <A, E>(file: string | undefined, body: Effect.Effect<A, E, Storage.Services>): Effect.Effect<A, unknown> =>
    Effect.gen(function*() {
      const settings = yield* MinosConfig.load(file ?? MinosConfig.defaultPath())
      return yield* Effect.scoped(body.pipe(Effect.provide(layerStorage.pipe(Layer.provide(MinosConfig.layerSettings(settings))))))
    })
  let program: Effect.Effect<number, unknown>
  if (verb === "list") {
    program = run(positional[0], Effect.gen(function*() {
      const letters = yield* DeadLetters.list({ topic })
      for (const l of letters) {
        yield* Console.log(`${l.id}\t${l.topic}\t${l.attempts} attempt(s)\t${new Date(l.lastFailedAt).toISOString()}\t${l.error}`)
      }
      yield* Console.log(`${letters.length} dead letter(s)`)
      return 0
    }))
  } else if (verb === "replay" && positional[0] !== undefined) {
    const which = positional[0]
    program = run(positional[1], Effect.gen(function*() {
      if (which === "all") {
        const n = yield* DeadLetters.replayAll({ topic })
        yield* Console.log(`replayed ${n} dead letter(s)`)
        return 0
      }
      const id = Number(which)
      if (!Number.isInteger(id)) {
        yield* Console.error(`not a dead letter id: ${which}`)
        return 2
      }
      const letter = yield* DeadLetters.replay(id)
      yield* Console.log(`replayed ${letter.id} to ${letter.topic}`)
      return 0
    }))
  } else {
    return Effect.as(Console.error("usage: effect-minos dead-letters list [config.yml] [--topic T] | replay <id|all> [config.yml] [--topic T]"), 2)
  }
  return program.pipe(Effect.catchCause((cause) => Effect.as(Console.error(`dead-letters: ${describeCause(cause)}`), 1)))
}
