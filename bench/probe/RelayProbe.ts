/**
 * Where `OutboxRelay.drain(1000)` spends its time: the broker's publish (wrapped and timed) versus
 * the rest (claiming the rows in storage and deleting them after the ack). Real Kafka, PostgreSQL
 * (STORE=pg) or LMDB (STORE=lmdb, the default).
 *
 *   node --conditions=effect-minos-source --import tsx bench/probe/RelayProbe.ts
 */
import { Context, Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Broker, type BrokerShape } from "../../src/broker/Broker.ts"
import { Outbox } from "../../src/queue/Outbox.ts"
import * as OutboxRelay from "../../src/messaging/OutboxRelay.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { envelopes, kafkaBroker, rawKafka } from "../MessagingBench.ts"
import { dropSchemas, postgresLayer } from "../StorageBench.ts"

const N = Number(process.env["N"] ?? 20_000)
const store = process.env["STORE"] ?? "lmdb"
const runId = `probe${Date.now().toString(36)}`
const dir = mkdtempSync(join(tmpdir(), "relay-probe-"))
const schema = `probe_${Date.now().toString(36)}`

const storage: Layer.Layer<Storage.Services, unknown> = store === "pg" ? postgresLayer(schema) : Lmdb.layer({ path: dir })

const program = Effect.gen(function*() {
  const raw = yield* rawKafka(runId)
  const kafka = yield* kafkaBroker(runId)
  const broker = Context.get(kafka, Broker)
  const outbox = yield* Outbox
  for (let round = 0; round < 4; round++) {
    const topic = yield* raw.topic("relay-probe")
    yield* broker.ensureTopics([topic])
    const records = envelopes(topic, N)
    for (let i = 0; i < N; i += 1000) yield* outbox.stage(records.slice(i, i + 1000))
    let publishMs = 0
    let calls = 0
    const timed: BrokerShape = {
      ...broker,
      publish: (rs) =>
        Effect.suspend(() => {
          const t = performance.now()
          calls++
          return broker.publish(rs).pipe(Effect.ensuring(Effect.sync(() => (publishMs += performance.now() - t))))
        })
    }
    const start = performance.now()
    yield* OutboxRelay.drain(1000).pipe(Effect.provideService(Broker, timed))
    const total = performance.now() - start
    console.log(`${store} round ${round}: ${Math.round(N * 1000 / total)}/s; total ${total.toFixed(0)} ms = publish ${publishMs.toFixed(0)} ms (${calls} calls) + storage ${(total - publishMs).toFixed(0)} ms`)
  }
}).pipe(Effect.scoped, Effect.provide(storage))

await Effect.runPromise((program as Effect.Effect<void>).pipe(Effect.ensuring(dropSchemas(store === "pg" ? [schema] : []))))
rmSync(dir, { recursive: true, force: true })
