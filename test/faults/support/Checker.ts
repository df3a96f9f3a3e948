/**
 * The invariants, read from the stores themselves (SQL on the event store, snapshots, outbox, inbox
 * and read model of one schema; Kafka topics with a plain client), never through the service.
 * Each invariant is a count; the faults assert the ones that must be 0.
 */
import { Duration, Effect, Schedule } from "effect"
import type pg from "pg"
import { NIL, stableUuid } from "../../../src/internal/Ids.ts"
import type * as Ledger from "./Ledger.ts"
import * as PrivatePg from "./PrivatePg.ts"
import * as Topics from "./Topics.ts"

interface EventRow extends Record<string, unknown> {
  readonly aggregate_id: string
  readonly version: number
  readonly type: string
  readonly data: { readonly fields?: Record<string, unknown>; readonly diff?: ReadonlyArray<{ readonly name: string; readonly value?: unknown }> }
}

interface SnapshotRow extends Record<string, unknown> {
  readonly aggregate_id: string
  readonly version: number
  readonly deleted: boolean
  readonly document: Record<string, unknown>
}

export interface Stores {
  readonly events: ReadonlyArray<EventRow>
  readonly snapshots: ReadonlyArray<SnapshotRow>
  readonly outbox: number
  readonly deadLetters: ReadonlyArray<string | null>
  readonly inbox: ReadonlyArray<{ readonly topic: string; readonly identifier: string }>
  readonly documents: ReadonlyMap<string, Record<string, unknown>>
}

/** Everything one schema holds, read in one go. */
export const read = (p: pg.Pool, schema: string, options: { readonly collection?: string } = {}) =>
  Effect.gen(function*() {
    const s = `"${schema}"`
    const events = yield* PrivatePg.query<EventRow>(p, `SELECT aggregate_id::text, version, type, data FROM ${s}.minos_events WHERE transaction_id = $1 ORDER BY aggregate_id, version`, [NIL])
    const snapshots = yield* PrivatePg.query<SnapshotRow>(p, `SELECT aggregate_id::text, version, deleted, document FROM ${s}.minos_snapshots WHERE transaction_id = $1`, [NIL])
    const [outbox] = yield* PrivatePg.query<{ n: string }>(p, `SELECT count(*) AS n FROM ${s}.minos_outbox`)
    const dead = yield* PrivatePg.query<{ identifier: string | null }>(p, `SELECT identifier FROM ${s}.minos_dead_letters`)
    const inbox = yield* PrivatePg.query<{ topic: string; identifier: string }>(p, `SELECT topic, identifier FROM ${s}.minos_inbox`)
    const docs = yield* PrivatePg.query<{ id: string; document: Record<string, unknown> }>(p, `SELECT id, document FROM ${s}.minos_documents WHERE collection = $1`, [options.collection ?? "exams"])
    return {
      events,
      snapshots,
      outbox: Number(outbox!.n),
      deadLetters: dead.map((d) => d.identifier),
      inbox,
      documents: new Map(docs.map((d) => [d.id, d.document]))
    } satisfies Stores as Stores
  })

const fieldNames = ["title", "subject", "durationMinutes", "status", "roomUuid", "seats"] as const

/** The aggregate's fields as its events say, replayed here (not by the framework). */
const replay = (events: ReadonlyArray<EventRow>): { version: number; deleted: boolean; fields: Record<string, unknown> } => {
  let fields: Record<string, unknown> = {}
  let deleted = false
  for (const e of events) {
    if (e.type.endsWith("Created")) fields = { ...e.data.fields }
    else if (e.type.endsWith("Updated")) {
      for (const change of e.data.diff ?? []) {
        if ("value" in change) fields[change.name] = change.value
        else delete fields[change.name]
      }
    } else if (e.type.endsWith("Deleted")) deleted = true
  }
  return { version: events.at(-1)?.version ?? 0, deleted, fields }
}

const same = (a: Record<string, unknown>, b: Record<string, unknown>) => fieldNames.every((f) => JSON.stringify(a[f]) === JSON.stringify(b[f]))

const byAggregate = (events: ReadonlyArray<EventRow>) => {
  const out = new Map<string, Array<EventRow>>()
  for (const e of events) {
    const list = out.get(e.aggregate_id)
    if (list === undefined) out.set(e.aggregate_id, [e])
    else list.push(e)
  }
  return out
}

/** The identifier the repository gives the message of an event (see `Repository`). */
export const messageId = (aggregate: string, e: Pick<EventRow, "aggregate_id" | "version" | "type">) => stableUuid(`${aggregate}:${e.aggregate_id}:${e.version}:${e.type}`)

/** The store-only invariants (no Kafka): acknowledged writes, versions, snapshots, read model. */
export const storeInvariants = (stores: Stores, acks: ReadonlyArray<Ledger.Ack>, aggregate = "Exam") => {
  const streams = byAggregate(stores.events)
  const at = new Set(stores.events.map((e) => `${e.aggregate_id}@${e.version}`))
  const typeOf = { create: "Created", update: "Updated", delete: "Deleted" } as const
  const lost = acks.filter((a) => {
    const e = streams.get(a.uuid)?.find((x) => x.version === a.version)
    return e === undefined || !e.type.endsWith(typeOf[a.op])
  })
  let gaps = 0
  for (const list of streams.values()) list.forEach((e, i) => { if (e.version !== i + 1) gaps++ })
  const snapshots = new Map(stores.snapshots.map((s) => [s.aggregate_id, s]))
  let snapshotMismatch = 0
  let readModelMismatch = 0
  const readModelExamples: Array<string> = []
  for (const [id, list] of streams) {
    const truth = replay(list)
    const snap = snapshots.get(id)
    if (snap === undefined || snap.version !== truth.version || snap.deleted !== truth.deleted || (!truth.deleted && !same(snap.document, truth.fields))) snapshotMismatch++
    const doc = stores.documents.get(id)
    const ok = truth.deleted ? doc === undefined : doc !== undefined && doc["version"] === truth.version && same(doc, truth.fields)
    if (!ok) {
      readModelMismatch++
      if (readModelExamples.length < 3) readModelExamples.push(`${id}: events v${truth.version}${truth.deleted ? " deleted" : ""} ${JSON.stringify(truth.fields)}, document ${JSON.stringify(doc)}`)
    }
  }
  return {
    aggregates: streams.size,
    events: stores.events.length,
    acknowledged: acks.length,
    acknowledgedLost: lost.length,
    lostExamples: lost.slice(0, 3).map((a) => `${a.op} ${a.uuid}@${a.version}${at.has(`${a.uuid}@${a.version}`) ? " (other type)" : ""}`),
    versionGaps: gaps,
    snapshotMismatch,
    outboxLeft: stores.outbox,
    // on a shared broker a fresh group also reads other runs' messages: only this run's events count
    deadLetters: (() => {
      const ours = new Set(stores.events.map((e) => messageId(aggregate, e)))
      return stores.deadLetters.filter((id) => id !== null && ours.has(id)).length
    })(),
    readModelMismatch,
    readModelExamples
  }
}

/** Events of the store missing from Kafka, and copies beyond the first of each on Kafka. */
export const kafkaInvariants = (stores: Stores, aggregate: string, brokers: ReadonlyArray<string> = Topics.brokers) =>
  Effect.gen(function*() {
    const topics = [...new Set(stores.events.map((e) => e.type))]
    const records = yield* Topics.readAll(topics, 90_000, brokers)
    const seen = new Map<string, number>()
    for (const r of records) {
      const id = r.headers["message-id"]
      if (id !== undefined) seen.set(id, (seen.get(id) ?? 0) + 1)
    }
    let missing = 0
    let duplicates = 0
    for (const e of stores.events) {
      const n = seen.get(messageId(aggregate, e)) ?? 0
      if (n === 0) missing++
      else duplicates += n - 1
    }
    return { kafkaMissing: missing, kafkaDuplicates: duplicates }
  })

/**
 * Waits (bounded) until the outbox is drained and the read model equals the aggregates, then
 * returns the stores as they are: whatever is still off is counted by the invariants.
 */
export const settle = (p: pg.Pool, schema: string, timeoutMs = 90_000) =>
  read(p, schema).pipe(
    Effect.repeat({
      schedule: Schedule.spaced(Duration.millis(500)),
      until: (s) => {
        const inv = storeInvariants(s, [])
        return s.outbox === 0 && inv.readModelMismatch === 0
      }
    }),
    Effect.timeoutOption(Duration.millis(timeoutMs)),
    Effect.flatMap(() => read(p, schema))
  )
