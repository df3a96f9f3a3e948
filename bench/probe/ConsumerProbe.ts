/**
 * The consumer's per-message cost without Kafka: N envelopes on the in-process broker, then our
 * consumer (one no-op event handler, fresh group) handles them; the rate is from the first batch to
 * the last record handled. Compare storages to see what the per-message inbox transaction costs:
 *
 *   STORE=lmdb        node --conditions=effect-minos-source --import tsx bench/probe/ConsumerProbe.ts   # LMDB, sync at each commit
 *   STORE=lmdb-nosync node --conditions=effect-minos-source --import tsx bench/probe/ConsumerProbe.ts   # LMDB without fsync
 *   STORE=pg          node --conditions=effect-minos-source --import tsx bench/probe/ConsumerProbe.ts   # PostgreSQL (fresh schema, dropped)
 *
 * Add `--cpu-prof --cpu-prof-dir=/tmp/prof` after `node` for a profile.
 */
import { Deferred, Effect, Layer, Schema } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Broker, type BrokerShape } from "../../src/broker/Broker.ts"
import * as MemoryBroker from "../../src/memory/MemoryBroker.ts"
import * as Replies from "../../src/messaging/Replies.ts"
import * as Consumer from "../../src/messaging/Consumer.ts"
import * as Router from "../../src/router/Router.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import type * as Storage from "../../src/storage/Storage.ts"
import { envelopes } from "../MessagingBench.ts"
import { dropSchemas, postgresLayer } from "../StorageBench.ts"

const Payload = Schema.Struct({ uuid: Schema.String, version: Schema.Int })
const N = Number(process.env["N"] ?? 10_000)
const store = process.env["STORE"] ?? "lmdb"

const round = (n: number) =>
  Effect.scoped(Effect.gen(function*() {
    const broker = yield* Broker
    const topic = `probe.${store}.${Math.random().toString(36).slice(2)}`
    yield* broker.publish(envelopes(topic, n))
    const done = yield* Deferred.make<number>()
    let first: number | undefined
    let handled = 0
    let batches = 0
    const watched: BrokerShape = {
      ...broker,
      consume: (o) =>
        broker.consume({
          ...o,
          handle: (rs) =>
            Effect.suspend(() => {
              first ??= performance.now()
              batches++
              return o.handle(rs)
            }).pipe(Effect.tap(() => {
              if (rs[0]?.topic !== topic) return Effect.void
              handled += rs.length
              return handled >= n ? Deferred.succeed(done, performance.now()) : Effect.void
            }))
        })
    }
    const routes = yield* Router.make([Router.event(topic, { payload: Payload }, () => Effect.void)])
    yield* Consumer.make({ group: `${topic}.g`, replyTopic: "probe.replies", retry: 2, backoffMs: 20 }).pipe(
      Effect.provideService(Broker, watched),
      Effect.provideService(Router.Routes, routes)
    )
    const end = yield* Deferred.await(done)
    console.log(`${store}: ${Math.round((n * 1000) / (end - first!))}/s (${n} records in ${batches} batches)`)
  }))

const dir = mkdtempSync(join(tmpdir(), "consumer-probe-"))
const schema = `probe_${Date.now().toString(36)}`
const storage: Layer.Layer<Storage.Services, unknown> = store === "pg" ? postgresLayer(schema) : Lmdb.layer({ path: dir, noSync: store === "lmdb-nosync" })
const program = Effect.gen(function*() {
  yield* round(2_000)
  for (let i = 0; i < 3; i++) yield* round(N)
}).pipe(Effect.provide(Layer.mergeAll(MemoryBroker.layer(), Replies.layer)), Effect.provide(storage))

await Effect.runPromise((program as Effect.Effect<void>).pipe(Effect.ensuring(dropSchemas(store === "pg" ? [schema] : []))))
rmSync(dir, { recursive: true, force: true })
