/**
 * The DBOS side of the saga benchmark, registered the same way in both processes (DBOS dispatches a
 * queued workflow only to a process of the same application version, and finds functions by name):
 *
 * - `benchSaga(n)`, run by the coordinator (the benchmark process): a durable step, then enqueues
 *   `benchRemote` on the responder's queue (durable), then waits durably for its reply
 *   (`DBOS.recv`). Two durable steps and a durable wait for a message from another process, like
 *   our saga's local step and remote step (a command through the broker and its reply).
 * - `benchRemote(parent, n)`, run by the responder (bench/dbos/Responder.ts, a child process that
 *   alone listens on the queue): a durable step, then `DBOS.send` of the reply to `parent`.
 */
import { DBOS } from "@dbos-inc/dbos-sdk"

export const QUEUE = "minos_bench_remote"
export const TOPIC = "reply"

/** The DBOS config both processes use: the system tables in `schema` of the bench database. */
export const config = (url: string, schema: string, listenQueues: ReadonlyArray<string>) => ({
  name: "minos-bench",
  systemDatabaseUrl: url,
  systemDatabaseSchemaName: schema,
  applicationVersion: "minos-bench-1",
  listenQueues: [...listenQueues],
  logLevel: "warn"
})

export const benchRemote = DBOS.registerWorkflow(async (parent: string, n: number) => {
  const reply = await DBOS.runStep(async () => n + 1, { name: "remoteWork" })
  await DBOS.send(parent, reply, TOPIC)
}, { name: "benchRemote" })

export const benchSaga = DBOS.registerWorkflow(async (n: number) => {
  const local = await DBOS.runStep(async () => n * 2, { name: "local" })
  await DBOS.startWorkflow(benchRemote, { queueName: QUEUE })(DBOS.workflowID!, local)
  const reply = await DBOS.recv<number>(TOPIC, 60)
  if (reply === null) throw new Error(`saga ${n}: no reply in 60 s`)
  return reply
}, { name: "benchSaga" })
