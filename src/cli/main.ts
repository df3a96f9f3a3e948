/**
 * `effect-minos` command line.
 *
 *   effect-minos config check [file]    print the resolved config as JSON (secrets redacted)
 *
 * @since 0.1.0
 */
import { Console, Effect } from "effect"
import * as MinosConfig from "../config/MinosConfig.ts"

const usage = `usage:
  effect-minos config check [config.yml]`

const configCheck = (file: string | undefined) =>
  MinosConfig.load(file ?? MinosConfig.defaultPath()).pipe(
    Effect.flatMap((settings) => Console.log(JSON.stringify(MinosConfig.toJson(settings), null, 2))),
    Effect.as(0),
    Effect.catchTag("ConfigError", (e) => Effect.as(Console.error(`ConfigError (${e.reason}): ${e.message}`), 1))
  )

/** Runs the CLI on `argv` (without node and script) and resolves to the exit code. */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<number> => {
  const [command, ...rest] = argv
  if (command === "config" && rest[0] === "check") return configCheck(rest[1])
  return Effect.as(Console.error(usage), command === undefined || command === "help" || command === "--help" ? 0 : 2)
}

Effect.runPromise(run(process.argv.slice(2))).then((code) => {
  process.exitCode = code
})
