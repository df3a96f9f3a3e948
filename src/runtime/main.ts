/**
 * The `effect-minos` command line, on `effect/cli`: one module per command, listed in `commands`
 * (add a command by adding its module's `command` there). `--help` on any command prints its usage
 * on stdout; unknown flags and commands are errors (exit 1); `--version` prints the package version.
 *
 *   effect-minos start [config.yml] [--services] [--entry module]   run a service (docs/runtime.md)
 *   effect-minos config check [config.yml]                          print the resolved config (secrets redacted)
 *   effect-minos dead-letters list [config.yml] [--topic T]         list dead letters
 *   effect-minos dead-letters replay <id|all> [config.yml]          replay one or all
 *   effect-minos projections list [config.yml]                      projections: checkpoint, lag, parked
 *   effect-minos projections rebuild <name> [config.yml] [--detach] replay a projection into a new generation
 *   effect-minos sagas list|show|history|cancel|retry|resume …      manage saga executions (a running service)
 *   effect-minos new service <name> [--dir D]                       scaffold a runnable service
 *
 * @since 0.1.0
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { createRequire } from "node:module"
import { runMain } from "./internal/Process.ts"
import * as ConfigCommand from "./ConfigCommand.ts"
import * as DeadLettersCommand from "./DeadLettersCommand.ts"
import * as NewCommand from "./NewCommand.ts"
import * as ProjectionsCommand from "./ProjectionsCommand.ts"
import * as SagasCommand from "./SagasCommand.ts"
import * as StartCommand from "./StartCommand.ts"

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string }

const commands = [
  StartCommand.command,
  ConfigCommand.command,
  DeadLettersCommand.command,
  ProjectionsCommand.command,
  SagasCommand.command,
  NewCommand.command
] as const

const cli = Command.make("effect-minos").pipe(
  Command.withDescription("Event-sourced CQRS microservices on Effect"),
  Command.withSubcommands(commands)
)

runMain(Command.run(cli, { version }).pipe(Effect.provide(NodeServices.layer)))
