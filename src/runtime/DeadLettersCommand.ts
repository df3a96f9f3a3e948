/**
 * `effect-minos dead-letters list|replay …`: opens the service's storage from its config (no broker
 * needed: a replay is staged in the outbox, which the running service's relay publishes).
 *
 * @since 0.1.0
 */
import { Console, Effect, Layer, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as MinosConfig from "../config/MinosConfig.ts"
import { describeCause } from "../internal/Outcome.ts"
import type * as DeadLettersModule from "../messaging/DeadLetters.ts"
import type * as Storage from "../storage/Storage.ts"
import { Failed } from "./internal/Process.ts"

const config = Argument.String("config").pipe(Argument.withDescription("the config file (default ./config.yml)"), Argument.optional)
const topic = Flag.String("topic").pipe(Flag.withDescription("only this topic"), Flag.optional)

/**
 * Runs `body` on the storage the config names; any failure is printed and exits 1. The storage and
 * messaging modules load here, not with the CLI: `--help` and the other commands need none of them.
 */
const withStorage = <A, E>(file: Option.Option<string>, body: (dl: typeof DeadLettersModule) => Effect.Effect<A, E, Storage.Services>) =>
  Effect.gen(function*() {
    const settings = yield* MinosConfig.load(Option.getOrElse(file, () => MinosConfig.defaultPath()))
    const [{ layerStorage }, DeadLetters] = yield* Effect.promise(() => Promise.all([import("./Microservice.ts"), import("../messaging/DeadLetters.ts")]))
    return yield* Effect.scoped(body(DeadLetters).pipe(Effect.provide(layerStorage.pipe(Layer.provide(MinosConfig.layerSettings(settings))))))
  }).pipe(
    Effect.catchCause((cause) => Effect.andThen(Console.error(`dead-letters: ${describeCause(cause)}`), Effect.fail(new Failed({ code: 1 }))))
  )

const list = Command.make("list", { config, topic }, (input) =>
  withStorage(input.config, (DeadLetters) => Effect.gen(function*() {
    const letters = yield* DeadLetters.list({ topic: Option.getOrUndefined(input.topic) })
    for (const l of letters) {
      yield* Console.log(`${l.id}\t${l.topic}\t${l.attempts} attempt(s)\t${new Date(l.lastFailedAt).toISOString()}\t${l.error}`)
    }
    yield* Console.log(`${letters.length} dead letter(s)`)
  }))).pipe(Command.withDescription("List the dead letters"))

const replay = Command.make("replay", {
  which: Argument.String("id").pipe(Argument.withDescription("a dead letter id, or `all`")),
  config,
  topic
}, (input) =>
  Effect.gen(function*() {
    if (input.which !== "all" && !/^\d+$/.test(input.which)) {
      yield* Console.error(`not a dead letter id: ${input.which}`)
      return yield* Effect.fail(new Failed({ code: 2 }))
    }
    yield* withStorage(input.config, (DeadLetters) => Effect.gen(function*() {
      if (input.which === "all") {
        const n = yield* DeadLetters.replayAll({ topic: Option.getOrUndefined(input.topic) })
        yield* Console.log(`replayed ${n} dead letter(s)`)
        return
      }
      const letter = yield* DeadLetters.replay(Number(input.which))
      yield* Console.log(`replayed ${letter.id} to ${letter.topic}`)
    }))
  })).pipe(Command.withDescription("Stage one dead letter (or all) for publishing again"))

/**
 * @category commands
 * @since 0.1.0
 */
export const command = Command.make("dead-letters").pipe(
  Command.withDescription("Messages whose handler kept failing"),
  Command.withSubcommands([list, replay])
)
