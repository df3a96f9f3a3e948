/**
 * The 3-broker Kafka cluster of `scripts/kafka.sh cluster` (127.0.0.1:19092-19094 by default; with
 * `KAFKA_CLUSTER_PORT_BASE` a second one elsewhere), for the faults that stop or kill brokers.
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { connect } from "node:net"
import * as Kafka from "../../support/Kafka.ts"

const base = Number(process.env["KAFKA_CLUSTER_PORT_BASE"] ?? 19091)

/** The cluster's bootstrap addresses. */
export const brokers: ReadonlyArray<string> = [1, 2, 3].map((n) => `127.0.0.1:${base + n}`)

const script = (...args: ReadonlyArray<string>) =>
  Effect.callback<string, Error>((resume) => {
    execFile("bash", ["scripts/kafka.sh", "cluster", ...args], { timeout: 240_000 }, (error, stdout, stderr) => {
      if (error) resume(Effect.fail(new Error(`kafka.sh cluster ${args.join(" ")}: ${error.message}\n${stdout}${stderr}`)))
      else resume(Effect.succeed(stdout))
    })
  })

/**
 * Starts the nodes that are down (all of them on a fresh machine) and waits until all serve; once
 * more when that wait ran out (a cluster recovering from a crash of every node takes a while on a
 * busy machine).
 */
export const up = script("up").pipe(Effect.retry({ times: 1 }), Effect.asVoid)
/** SIGKILLs node `n` (1-3), as a crash would. */
export const kill = (n: number) => script("kill", String(n)).pipe(Effect.asVoid)
/** Starts node `n` again and waits until it serves. */
export const start = (n: number) => script("start", String(n)).pipe(Effect.asVoid)
/** The node leading `topic`/`partition` (1-3). */
export const leaderOf = (topic: string, partition: number) => Kafka.leaderOf(brokers, topic, partition)

/** Whether any node of the cluster answers (the gate). */
export const answers = (): Promise<boolean> =>
  Promise.all(brokers.map((address) => new Promise<boolean>((resolve) => {
    const [host, port] = address.split(":")
    const socket = connect({ host: host!, port: Number(port) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2_000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  }))).then((xs) => xs.some((x) => x))
