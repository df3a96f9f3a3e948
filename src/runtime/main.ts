/**
 * `effect-minos` command line.
 *
 *   effect-minos start [config.yml] [--services] [--entry module]   run a service (docs/runtime.md)
 *   effect-minos config check [config.yml]                          print the resolved config (secrets redacted)
 *   effect-minos dead-letters list [config.yml] [--topic T]         list dead letters
 *   effect-minos dead-letters replay <id|all> [config.yml]          replay one or all
 *   effect-minos projections list [config.yml]                      projections: checkpoint, lag, parked
 *   effect-minos projections rebuild <name> [config.yml] [--detach] replay a projection into a new generation
 *   effect-minos sagas list|show|history|cancel|retry|resume …      manage saga executions (a running service)
 *
 * @since 0.1.0
 */
import { Console, Effect } from "effect"
import * as MinosConfig from "../config/MinosConfig.ts"

const usage = `usage:
  effect-minos start [config.yml] [--services] [--entry <module>]
  effect-minos config check [config.yml]
  effect-minos dead-letters list [config.yml] [--topic <topic>]
  effect-minos dead-letters replay <id|all> [config.yml] [--topic <topic>]
  effect-minos projections list [config.yml]
  effect-minos projections rebuild <name> [config.yml] [--detach]
  effect-minos sagas list [config.yml] [--status S] [--saga NAME] [--older-than-ms N] [--url URL]
  effect-minos sagas show|history|cancel|retry|resume <uuid> [config.yml] [--url URL]`

const configCheck = (file: string | undefined) =>
  MinosConfig.load(file ?? MinosConfig.defaultPath()).pipe(
    Effect.flatMap((settings) => Console.log(JSON.stringify(MinosConfig.toJson(settings), null, 2))),
    Effect.as(0),
    Effect.catchTag("ConfigError", (e) => Effect.as(Console.error(`ConfigError (${e.reason}): ${e.message}`), 1))
  )

const argv = process.argv.slice(2)
const [command, ...rest] = argv
if (command === "start") {
  const { start } = await import("./Cli.ts")
  start(rest)
} else if (command === "dead-letters") {
  const { deadLetters } = await import("./DeadLettersCommand.ts")
  process.exitCode = await Effect.runPromise(deadLetters(rest))
} else if (command === "projections") {
  const { projections } = await import("./ProjectionsCommand.ts")
  process.exitCode = await Effect.runPromise(projections(rest))
} else if (command === "sagas") {
  const { sagas } = await import("./SagasCommand.ts")
  process.exitCode = await Effect.runPromise(sagas(rest))
} else if (command === "config" && rest[0] === "check") {
  process.exitCode = await Effect.runPromise(configCheck(rest[1]))
} else {
  await Effect.runPromise(Console.error(usage))
  process.exitCode = command === undefined || command === "help" || command === "--help" ? 0 : 2
}
