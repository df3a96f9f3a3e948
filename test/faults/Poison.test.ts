/**
 * Fault 7: malformed and poison broker messages on the topics the exam service consumes (commands, its reply topic):
 * bytes that are not JSON, NUL bytes, invalid UTF-8, JSON that is not an envelope, envelopes with
 * bad fields, payloads failing their Schema or holding NUL / lone surrogates, huge and deeply
 * nested values, an unusable reply topic, an unreadable reply, a duplicated command. Afterwards every poison message is
 * dead-lettered or claimed as answered, none wrote a row, the duplicate had one effect, a valid
 * command sent last is handled (no partition is stuck), the outbox drains and the service runs on.
 */
import { assert, it } from "@effect/vitest"
import { Clock, Duration, Effect, Schedule } from "effect"
import { randomUUID } from "node:crypto"
import * as Message from "../../src/broker/Message.ts"
import * as Naming from "../../src/broker/Naming.ts"
import * as Checker from "./support/Checker.ts"
import * as Fleet from "./support/Fleet.ts"
import * as Cluster from "./support/Cluster.ts"
import { describeClusterFault } from "./support/Gate.ts"
import * as PrivatePg from "./support/PrivatePg.ts"
import * as Report from "./support/Report.ts"
import * as Topics from "./support/Topics.ts"

interface Poison {
  readonly what: string
  readonly topic: string
  readonly key: string | null
  readonly value: Buffer | string | null
  readonly headers?: Record<string, string>
  /** Its envelope identifier, when it has one the consumer can read. */
  readonly identifier?: string
  /** A string the stored dead letter's value contains. */
  readonly marker: string
}

const envelope = (topic: string, content: unknown, overrides: Record<string, unknown> = {}, replyTopic: string | null = null) => {
  const identifier = randomUUID()
  return { identifier, text: JSON.stringify({ ...Message.make({ topic, identifier, content, replyTopic }), ...overrides }) }
}

const poisons = (replyTopic: string, subject: string, serviceReplyTopic: string): ReadonlyArray<Poison> => {
  const m = () => `poison-${randomUUID()}`
  const list: Array<Poison> = []
  const add = (what: string, topic: string, value: Buffer | string | null, extra: Partial<Poison> = {}) => {
    const marker = extra.marker ?? m()
    list.push({ what, topic, key: extra.key === undefined ? randomUUID() : extra.key, value, marker, ...extra })
  }
  let mk = m()
  add("not JSON", "CreateExam", `garbage ${mk}`, { marker: mk })
  add("empty value", "CreateExam", "", { marker: "" })
  add("null value (tombstone)", "CreateExam", null, { marker: "" })
  mk = m()
  add("JSON, not an envelope", "CreateExam", JSON.stringify({ hello: mk }), { marker: mk })
  mk = m()
  add("envelope with wrong field types", "CreateExam", JSON.stringify({ version: "1", topic: 5, identifier: mk, reply_topic: 1, strategy: "x", payload: [] }), { marker: mk })
  mk = m()
  add("identifier not a UUID", "CreateExam", JSON.stringify({ ...Message.make({ topic: "CreateExam", identifier: randomUUID(), content: {} }), identifier: mk }), { marker: mk })
  mk = m()
  add("NUL bytes", "CreateExam", Buffer.concat([Buffer.from(`{"x":"${mk}`), Buffer.from([0, 0, 0]), Buffer.from("\"}")]), { marker: mk })
  mk = m()
  add("invalid UTF-8", "CreateExam", Buffer.concat([Buffer.from(`${mk} `), Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80])]), { marker: mk })
  mk = m()
  add("deeply nested", "CreateExam", `{"m":"${mk}","x":${"[".repeat(20_000)}${"]".repeat(20_000)}}`, { marker: mk })
  for (const [what, content] of [
    ["payload failing its Schema", { title: 5, subject: [], durationMinutes: "x" }],
    ["payload with a NUL", { title: "a\u0000b", subject, durationMinutes: 5 }],
    ["payload with a lone surrogate", { title: "a\ud800b", subject, durationMinutes: 5 }],
    ["payload with a NUL in a key", { title: "t", subject, durationMinutes: 5, "k\u0000": 1 }],
    ["huge payload", { title: "x".repeat(700_000), subject, durationMinutes: 5 }]
  ] as const) {
    const e = envelope("CreateExam", content, {}, replyTopic)
    add(what, "CreateExam", e.text, { identifier: e.identifier, marker: e.identifier })
  }
  const badReply = envelope("CreateExam", { title: "bad reply topic", subject, durationMinutes: 5 }, {}, "no such topic!!")
  add("unusable reply topic", "CreateExam", badReply.text, { marker: badReply.identifier })
  const nulHeader = envelope("CreateExam", { title: "t", subject, durationMinutes: 5 }, { payload: { content: { title: 5 }, status: 200, headers: { "x-a\u0000": "b\u0000" } } }, replyTopic)
  add("NUL in the envelope's headers", "CreateExam", nulHeader.text, { identifier: nulHeader.identifier, marker: nulHeader.identifier })
  mk = m()
  add("NUL in the key and a Kafka header", "CreateExam", `not json ${mk}`, { key: "k\u0000ey", headers: { "x-bad": "v\u0000" }, marker: mk })
  const update = envelope("UpdateExam", { uuid: "not-a-uuid", title: 5 }, {}, replyTopic)
  add("UpdateExam failing its Schema", "UpdateExam", update.text, { identifier: update.identifier, marker: update.identifier })
  // the service's own reply topic: a reply it cannot read
  mk = m()
  add("undecodable reply", serviceReplyTopic, `not a reply ${mk}`, { marker: mk })
  const del = envelope("DeleteExam", { uuid: "x\u0000" }, {}, replyTopic)
  add("DeleteExam with a NUL", "DeleteExam", del.text, { identifier: del.identifier, marker: del.identifier })
  return list
}

describeClusterFault("fault 7: malformed and poison broker messages", () => {
  it.live("poison messages are dead-lettered or answered, write nothing, and block nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      yield* PrivatePg.up
      yield* Cluster.up
      const run = Fleet.runId()
      const schema = `faults_poison_${run}`
      const p = yield* PrivatePg.pool("exam_db")
      const exam = yield* Fleet.service({
        name: "exam",
        config: "config.yml",
        port: Fleet.ports(7).exam,
        database: "exam_db",
        schema,
        serviceName: `exam_poison_${run}`,
        env: { MINOS_BROKER_QUEUE_RETRY: "1" },
        brokers: Cluster.brokers
      })
      yield* exam.start()
      const replyTopic = `FaultsReply${run}`
      const list = poisons(replyTopic, `poison-${run}`, Naming.replyTopic(`exam_poison_${run}`))
      const copies = Report.scale(1, 5)
      for (let i = 0; i < copies; i++) {
        for (const x of list) yield* Topics.produce(Cluster.brokers, x.topic, [{ key: x.key, value: x.value, ...(x.headers ? { headers: x.headers } : {}) }])
      }
      // a valid command, twice with one identifier (one effect), then a last one: all on the poisoned topic
      const valid = (title: string, identifier = randomUUID()) => ({
        identifier,
        value: Message.encode(Message.make({ topic: "CreateExam", identifier, content: { title, subject: `poison-${run}`, durationMinutes: 5 }, replyTopic }))
      })
      const dup = valid("duplicate")
      const last = valid("last")
      yield* Topics.produce(Cluster.brokers, "CreateExam", [{ key: "dup", value: dup.value }, { key: "dup", value: dup.value }])
      yield* Topics.produce(Cluster.brokers, "CreateExam", list.map((x) => ({ key: x.key, value: valid(`after ${x.what}`).value })))
      yield* Topics.produce(Cluster.brokers, "CreateExam", [{ key: "last", value: last.value }])

      // every valid command answered 200: no partition is stuck behind a poison message
      const expectedOk = 2 + list.length
      const replies = yield* Topics.readAll([replyTopic], 60_000, Cluster.brokers).pipe(
        Effect.map((rs) => rs.map((r) => Message.decode(r.value?.toString() ?? "")).flatMap((d) => (d._tag === "Success" ? [d.value] : []))),
        Effect.repeat({ schedule: Schedule.spaced("1 second"), until: (rs) => rs.filter((r) => r.payload.status === 200).length >= expectedOk }),
        Effect.timeoutOption(Duration.seconds(120)),
        Effect.flatMap(() => Topics.readAll([replyTopic], 60_000, Cluster.brokers)),
        Effect.map((rs) => rs.map((r) => Message.decode(r.value?.toString() ?? "")).flatMap((d) => (d._tag === "Success" ? [d.value] : [])))
      )
      const ok = replies.filter((r) => r.payload.status === 200)
      const lastHandled = ok.some((r) => r.identifier === last.identifier)
      const stores = yield* Checker.settle(p, schema, 60_000).pipe(
        Effect.flatMap(() => Checker.read(p, schema)),
        Effect.repeat({ schedule: Schedule.spaced("1 second"), until: (s) => s.outbox === 0 }),
        Effect.timeoutOption(Duration.seconds(30)),
        Effect.flatMap(() => Checker.read(p, schema))
      )
      const dead = yield* PrivatePg.query<{ value: string; identifier: string | null; error: string }>(p, `SELECT value, identifier, error FROM "${schema}".minos_dead_letters`)
      const claimed = new Set(stores.inbox.map((i) => i.identifier))
      const unaccounted = list.filter((x) => {
        if (x.identifier !== undefined && (claimed.has(x.identifier) || dead.some((d) => d.identifier === x.identifier))) return false
        if (x.marker !== "" && dead.some((d) => d.value.includes(x.marker))) return false
        // empty and null values: dead-lettered with an empty value
        if (x.marker === "") return dead.filter((d) => d.value === "").length === 0
        return true
      })
      // on a shared broker the service's fresh group also reads earlier runs' commands: only this run's count
      const ours = stores.events.filter((e) => e.type === "ExamCreated" && e.data.fields?.["subject"] === `poison-${run}`)
      const created = new Set(ours.map((e) => e.aggregate_id)).size
      const titles = ours.map((e) => e.data.fields?.["title"])
      const duplicateEffects = titles.filter((t) => t === "duplicate").length
      const rowsFromPoison = created - expectedOk
      const alive = yield* exam.running
      yield* Report.write("7-poison", {
        fault: "7. Malformed and poison broker messages",
        load: `${list.length} kinds of poison × ${copies} on CreateExam, UpdateExam, DeleteExam and the reply topic; ${expectedOk} valid commands after them`,
        zero: {
          poisonUnaccounted: unaccounted.length,
          rowsWrittenByPoison: rowsFromPoison,
          validCommandsUnanswered: expectedOk - new Set(ok.map((r) => r.identifier)).size,
          stuckAfterPoison: lastHandled ? 0 : 1,
          duplicateEffects: duplicateEffects - 1,
          outboxLeft: stores.outbox,
          serviceExited: alive ? 0 : 1
        },
        counted: { deadLetters: dead.length, replies: replies.length, answered400: replies.filter((r) => r.payload.status === 400).length },
        seconds: Math.round(((yield* Clock.currentTimeMillis) - started) / 1000)
      })
      assert.deepStrictEqual(unaccounted.map((x) => x.what), [])
      assert.isTrue(lastHandled, "the last valid command was not answered: a partition is stuck behind a poison message")
      assert.strictEqual(new Set(ok.map((r) => r.identifier)).size, expectedOk)
      assert.strictEqual(rowsFromPoison, 0)
      assert.strictEqual(duplicateEffects, 1)
      assert.strictEqual(stores.outbox, 0)
      assert.isTrue(alive)
      yield* PrivatePg.dropSchema(p, schema)
    })), 600_000)
})
