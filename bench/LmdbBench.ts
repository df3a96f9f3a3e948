/**
 * Event store benchmarks on LMDB: our EventStore / Repository on `Lmdb.layer` against the raw `lmdb`
 * package doing the same puts, one `transactionSync` per append (what our write path does), in its
 * own environment with the same named databases and the same value shapes.
 *
 * Both environments are fresh temp dirs with lmdb's default durability (a sync at every commit).
 */
import { Effect } from "effect"
import { open, type RootDatabase } from "lmdb"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Message from "../src/broker/Message.ts"
import * as Lmdb from "../src/lmdb/Lmdb.ts"
import { examFields } from "../test/fixtures/Domain.ts"
import { type Case, concurrently } from "./Harness.ts"
import { batchEvents, createdData, ourStorage } from "./OurStorage.ts"

const uuid = () => crypto.randomUUID()

/** A fresh temp dir, removed when the scope closes (after the environment in it was closed). */
export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** Our storage bundle on a fresh LMDB environment (default durability). */
export const lmdbLayer = (path: string) => Lmdb.layer({ path })

/**
 * The raw side: its own environment with the databases our layout uses (same `open` options as
 * `Lmdb.layer`: maxDbs 32, default map size, default sync).
 */
const openRaw = (path: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const root: RootDatabase = open({ path, maxDbs: 32 })
      return {
        root,
        events: root.openDB<unknown, [string, string, number]>({ name: "events" }),
        streams: root.openDB<number, [string, string]>({ name: "streams" }),
        positions: root.openDB<[string, number], number>({ name: "positions" }),
        snapshots: root.openDB<unknown, [string, string, string]>({ name: "snapshots" }),
        outbox: root.openDB<unknown, number>({ name: "outbox" }),
        meta: root.openDB<number, string>({ name: "meta" })
      }
    }),
    (raw) => Effect.promise(() => raw.root.close())
  )

type Raw = Effect.Success<ReturnType<typeof openRaw>>

/**
 * One main-store append of `values`, inside a write transaction, as `LmdbEventStore.appendIn` does it:
 * get `streams[id,""]` (version check), get+put the `meta["position"]` counter, put `events[id,"",v]`
 * and `positions[p]` per event, put `streams[id,""]`. For one event: 2 gets and 4 puts in 4 databases.
 */
const rawAppendIn = (raw: Raw, id: string, values: ReadonlyArray<{ a: string; t: string; d: unknown; m: object; c: number }>) => {
  const current = raw.streams.get([id, ""]) ?? 0
  if (current !== 0) throw new Error("conflict")
  const last = raw.meta.get("position") ?? 0
  raw.meta.putSync("position", last + values.length)
  for (let i = 0; i < values.length; i++) {
    const p = last + 1 + i
    raw.events.putSync([id, "", i + 1], { p, ...values[i]! })
    raw.positions.putSync(p, [id, i + 1])
  }
  raw.streams.putSync([id, ""], values.length)
}

export const lmdbCases = (rawPath: string) =>
  Effect.gen(function*() {
    const raw = yield* openRaw(rawPath)
    const ours = yield* ourStorage
    const data = createdData

    const appendRaw = (concurrency: number) => ({
      run: (ops: number) =>
        concurrently(ops, concurrency, () =>
          Effect.sync(() => {
            const id = uuid()
            const now = Date.now()
            raw.root.transactionSync(() => rawAppendIn(raw, id, [{ a: "Exam", t: "ExamCreated", d: data, m: {}, c: now }]))
          }))
    })

    const batchRaw = {
      run: (ops: number) =>
        Effect.sync(() => {
          for (let done = 0; done < ops; done += 1000) {
            const id = uuid()
            const now = Date.now()
            const values = batchEvents(1000).map((e) => ({ a: "Exam", t: e.type, d: e.data, m: {}, c: now }))
            raw.root.transactionSync(() => rawAppendIn(raw, id, values))
          }
        })
    }

    // The whole command, raw: the reads our Repository.create does before the commit (snapshot get,
    // stream range read, stream version get), then one write transaction with what the unit of work
    // applies: the append above (2 gets, 4 puts), the snapshot (get + put `snapshots[Exam,"",id]`) and
    // the outbox row (get+put `meta["outbox"]`, put `outbox[seq]` with the encoded envelope):
    // 5 gets and 7 puts in 6 databases.
    const commandRaw = (concurrency: number) => ({
      run: (ops: number) =>
        concurrently(ops, concurrency, () =>
          Effect.sync(() => {
            const id = uuid()
            const now = Date.now()
            raw.snapshots.get(["Exam", "", id])
            for (const _ of raw.events.getRange({ start: [id, "", 1], end: [id, "", Number.MAX_SAFE_INTEGER], inclusiveEnd: true })) void _
            raw.streams.get([id, ""])
            const identifier = uuid()
            const content = { uuid: id, aggregate: "Exam", version: 1, type: "ExamCreated", action: "create", createdAt: now, data: { _tag: "ExamCreated", ...data } }
            const value = Message.encode(Message.make({ topic: "ExamCreated", identifier, content, strategy: "multicast" }))
            raw.root.transactionSync(() => {
              rawAppendIn(raw, id, [{ a: "Exam", t: "ExamCreated", d: data, m: {}, c: now }])
              const key: [string, string, string] = ["Exam", "", id]
              if (raw.snapshots.get(key) === undefined) raw.snapshots.putSync(key, { v: 1, d: { ...examFields }, x: false, c: now, u: now })
              const seq = (raw.meta.get("outbox") ?? 0) + 1
              raw.meta.putSync("outbox", seq)
              raw.outbox.putSync(seq, { topic: "ExamCreated", key: id, value, headers: { "message-id": identifier }, createdAt: now })
            })
          }))
    })

    const cases: ReadonlyArray<Case> = [
      ...[1, 8].map((c): Case => ({
        group: "lmdb",
        name: `append 1 event, concurrency ${c}`,
        ops: 2000,
        // one fsync per append: the machine's fsync latency is noisy, so more (cheap) rounds
        rounds: 5,
        unit: "append",
        ours: ours.append(c),
        raw: appendRaw(c),
        goalRatio: 0.5
      })),
      { group: "lmdb", name: "append batch of 1,000 events", ops: 50_000, unit: "event", ours: ours.batch, raw: batchRaw, goalRate: 10_000 },
      ...[1, 8].map((c): Case => ({
        group: "lmdb",
        name: `command (load+append+snapshot+outbox), conc. ${c}`,
        ops: 2000,
        unit: "command",
        ours: ours.command(c),
        raw: commandRaw(c)
      }))
    ]
    return cases
  })

/** The LMDB group: our environment and the raw one in fresh temp dirs, both removed at the end. */
export const lmdbGroup = <A, E>(body: (cases: ReadonlyArray<Case>) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.gen(function*() {
    const oursDir = yield* tempDir("bench-lmdb-ours-")
    const rawDir = yield* tempDir("bench-lmdb-raw-")
    return yield* Effect.scoped(Effect.gen(function*() {
      const cases = yield* lmdbCases(rawDir)
      return yield* body(cases)
    }).pipe(Effect.provide(lmdbLayer(oursDir))))
  }))
