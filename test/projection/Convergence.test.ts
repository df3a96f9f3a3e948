/**
 * The read side converges whatever happens to the process: the exam service on PostgreSQL + Kafka
 * under a bounded load of creates/updates/deletes is killed with SIGKILL at random points, restarted,
 * and at the end every read-model document equals its aggregate's state (0 stale, 0 zombies) in
 * both read models: the inline one (command transaction + event-log follower) and the one fed from
 * Kafka's per-event-type topics.
 *
 * Size: MINOS_CONVERGENCE_KILLS (default 2) kills, MINOS_CONVERGENCE_COMMANDS (default 120) commands
 * per run.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Fiber, Ref, Schedule } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { freePort, http, start } from "../support/Process.ts"
import { describeKafka, describePostgres, postgres } from "../support/Services.ts"

const kills = Number(process.env["MINOS_CONVERGENCE_KILLS"] ?? 2)
const commands = Number(process.env["MINOS_CONVERGENCE_COMMANDS"] ?? 120)
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
const schema = `conv_${run}`

const query = <A>(text: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ host: postgres.host, port: postgres.port, user: postgres.user, password: "min0s", database: postgres.database })
    await client.connect()
    try {
      await client.query(`SET search_path TO "${schema}"`)
      return (await client.query(text)).rows as Array<A>
    } finally {
      await client.end()
    }
  })

interface Counts {
  readonly aggregates: number
  readonly stale: number
  readonly zombies: number
  readonly foreign: number
}

/** Compares a collection with the event store: stale = live aggregate whose document is missing or behind; zombie = a document of a deleted aggregate. */
const compare = (collection: string) =>
  Effect.gen(function*() {
    const aggregates = yield* query<{ id: string; version: number; deleted: boolean }>(
      `SELECT e.aggregate_id::text AS id, max(e.version) AS version, bool_or(e.type = 'ExamDeleted') AS deleted
       FROM minos_events e WHERE e.aggregate = 'Exam' AND e.transaction_id = '00000000-0000-0000-0000-000000000000' GROUP BY e.aggregate_id`
    )
    const docs = new Map((yield* query<{ id: string; version: number }>(
      `SELECT id, (document->>'version')::int AS version FROM minos_documents WHERE collection = '${collection}'`
    )).map((d) => [d.id, d.version]))
    let stale = 0
    let zombies = 0
    const mine = new Set<string>()
    for (const a of aggregates) {
      mine.add(a.id)
      const doc = docs.get(a.id)
      if (a.deleted) {
        if (doc !== undefined) zombies++
      } else if (doc !== a.version) stale++
    }
    // exams of other test runs on the shared Kafka topics are not this store's
    const foreign = [...docs.keys()].filter((id) => !mine.has(id)).length
    return { aggregates: aggregates.length, stale, zombies, foreign } satisfies Counts
  })

const load = (url: string, count: number, done: Ref.Ref<number>) =>
  Effect.gen(function*() {
    const ids: Array<string> = []
    yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
      Effect.gen(function*() {
        const roll = Math.random()
        if (ids.length < 3 || roll < 0.4) {
          const r = yield* http("POST", `${url}/exams`, { title: `T${i}`, subject: `conv-${run}`, durationMinutes: 30 + (i % 60) })
          if (r.status === 201) ids.push(r.body.uuid)
        } else if (roll < 0.9) {
          const id = ids[Math.floor(Math.random() * ids.length)]!
          yield* http("PATCH", `${url}/exams/${id}`, { title: `U${i}`, seats: 1 + (i % 50), ...(i % 3 === 0 ? { roomUuid: null } : { roomUuid: `r${i}` }) })
        } else {
          yield* http("DELETE", `${url}/exams/${ids[Math.floor(Math.random() * ids.length)]!}`)
        }
        yield* Ref.update(done, (n) => n + 1)
      }).pipe(Effect.catchCause(() => Effect.void)), { concurrency: 6, discard: true })
  })

describePostgres("read side convergence (PostgreSQL)", () => {
  describeKafka("and Kafka", () => {
    it.live(`SIGKILL ×${kills} under load: every read-model document equals its aggregate (0 stale, 0 zombies)`, () =>
      Effect.scoped(Effect.gen(function*() {
        const env = {
          MINOS_STORAGE_POSTGRES_HOST: "127.0.0.1",
          MINOS_BROKER_HOST: "127.0.0.1",
          MINOS_SERVICE_NAME: `exam-conv-${run}`,
          MINOS_STORAGE_POSTGRES_SCHEMA: schema,
          MINOS_STORAGE_POSTGRES_DATABASE: postgres.database,
          MINOS_SAGA_STORAGE_PATH: join(mkdtempSync(join(tmpdir(), "conv-saga-")), "sagas"),
          MINOS_REST_PORT: String(yield* freePort)
        }
        const args = ["config.yml", "--services", "--entry", "test/projection/fixtures/ConvergenceService.ts"]
        for (let k = 0; k < kills; k++) {
          const service = yield* start(args, env, 90_000)
          const done = yield* Ref.make(0)
          const writer = yield* Effect.forkChild(load(service.url, commands, done))
          // kill at a random point of the load
          const at = Math.floor(commands * (0.2 + Math.random() * 0.6))
          yield* Ref.get(done).pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n >= at }), Effect.timeout("60 seconds"), Effect.ignore)
          yield* service.stop("SIGKILL")
          yield* Fiber.interrupt(writer)
          const before = { inline: yield* compare("exams"), remote: yield* compare("exams_remote") }
          console.log(`convergence: kill ${k + 1} after ${yield* Ref.get(done)} command(s): right after the kill inline stale=${before.inline.stale} zombies=${before.inline.zombies}, remote stale=${before.remote.stale} zombies=${before.remote.zombies}`)
        }
        // the last start: more load, then catch-up
        const last = yield* start(args, env, 90_000)
        yield* load(last.url, Math.ceil(commands / 4), yield* Ref.make(0))
        const settled = (c: Counts) => c.stale === 0 && c.zombies === 0
        const result = yield* Effect.all({ inline: compare("exams"), remote: compare("exams_remote") }).pipe(
          Effect.repeat({ schedule: Schedule.spaced("500 millis"), until: (r) => settled(r.inline) && settled(r.remote) }),
          Effect.timeoutOption("90 seconds"),
          Effect.flatMap((r) => (r._tag === "Some" ? Effect.succeed(r.value) : Effect.all({ inline: compare("exams"), remote: compare("exams_remote") })))
        )
        console.log(
          `convergence: after catch-up, ${result.inline.aggregates} exam(s): inline stale=${result.inline.stale} zombies=${result.inline.zombies}; ` +
            `remote (Kafka, per-event-type topics) stale=${result.remote.stale} zombies=${result.remote.zombies} (foreign ${result.remote.foreign})`
        )
        assert.strictEqual(result.inline.stale, 0)
        assert.strictEqual(result.inline.zombies, 0)
        assert.strictEqual(result.remote.stale, 0)
        assert.strictEqual(result.remote.zombies, 0)
        assert.isAbove(result.inline.aggregates, 0)
        yield* query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).pipe(Effect.ignore)
      })), 400_000)
  })
})
