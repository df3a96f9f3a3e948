/**
 * `Leadership` on PostgreSQL: one session advisory lock per name, keyed by the schema and the name,
 * all held on ONE connection this process reserves from the pool (so many singletons cost one
 * connection). PostgreSQL frees a session's locks when the session ends: a leader that crashes, is
 * killed or is cut off loses its leases, and another replica takes them at its next try.
 *
 * **Details**
 *
 * - The session is opened on the first `acquire` and checked with `SELECT 1` every `checkInterval`
 *   while it holds a lease; when a statement on it fails, every lease of this process is lost (the
 *   running singletons are interrupted) and the next `acquire` opens a new session.
 * - Before the connection goes back to the pool its locks are dropped (`pg_advisory_unlock_all`), so
 *   a pooled connection never carries a lease.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit, Layer, Option, Ref, Scope, Semaphore } from "effect"
import { SqlClient, type SqlConnection } from "effect/sql"
import { checkSchedule, Leadership, type LeadershipOptions, type LeadershipShape, type Lease, makeWith } from "../cluster/Leadership.ts"

interface Session {
  readonly connection: SqlConnection.Connection
  readonly scope: Scope.Closeable
  /** Completed when the session is gone: every lease taken on it is lost. */
  readonly closed: Deferred.Deferred<void>
  readonly names: Set<string>
}

// the schema names the service: two services on one database never contend for a name
const keyOf = "hashtextextended('effect-minos:leader:' || coalesce(current_schema(), current_setting('search_path')) || ':' || $1, 0)"

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: LeadershipOptions = {}): Effect.Effect<LeadershipShape, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const current = yield* Ref.make(Option.none<Session>())
    // one statement at a time on the shared session
    const lock = yield* Semaphore.make(1)

    // uninterruptible: a half-closed session would keep its connection out of the pool for good
    const close = (session: Session) =>
      Effect.uninterruptible(Effect.gen(function*() {
        yield* Ref.update(current, (s) => (Option.isSome(s) && s.value === session ? Option.none() : s))
        yield* session.connection.executeRaw("SELECT pg_advisory_unlock_all()", []).pipe(Effect.timeout("2 seconds"), Effect.ignore)
        yield* Scope.close(session.scope, Exit.void)
        yield* Deferred.succeed(session.closed, undefined)
      }))

    const open = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const connection = yield* Scope.provide(scope)(sql.reserve).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
      const session: Session = { connection, scope, closed: yield* Deferred.make<void>(), names: new Set() }
      yield* Ref.set(current, Option.some(session))
      return session
    })

    /** Runs `f` on the session (opening one when needed); a failure ends the session. */
    const onSession = <A>(f: (session: Session) => Effect.Effect<A, unknown>) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const existing = yield* Ref.get(current)
        const session = Option.isSome(existing) ? existing.value : yield* open
        return yield* f(session).pipe(Effect.tapError(() => close(session)))
      }))

    const lease: Lease = {
      acquire: (name) =>
        onSession((session) =>
          Effect.map(session.connection.execute(`SELECT pg_try_advisory_lock(${keyOf}) AS ok`, [name], undefined), (rows) => {
            const ok = (rows[0] as { ok?: unknown } | undefined)?.ok === true
            if (ok) session.names.add(name)
            return ok
          })
        ).pipe(
          Effect.catchCause((cause) => Effect.as(Effect.logDebug("leadership: cannot reach PostgreSQL", cause), false))
        ),
      lost: (name) =>
        Effect.gen(function*() {
          const session = yield* Ref.get(current)
          if (Option.isNone(session) || !session.value.names.has(name)) return
          const closed = session.value.closed
          // check the session until a statement fails or someone else closes it
          const check = onSession((s) => (s === session.value ? s.connection.executeRaw("SELECT 1", []) : Effect.fail("replaced")))
          yield* Effect.raceFirst(
            Deferred.await(closed),
            check.pipe(Effect.repeat(checkSchedule(options)), Effect.ignore)
          )
        }),
      release: (name) =>
        Effect.gen(function*() {
          const session = yield* Ref.get(current)
          if (Option.isNone(session) || !session.value.names.delete(name)) return
          yield* onSession((s) =>
            s === session.value ? s.connection.execute(`SELECT pg_advisory_unlock(${keyOf})`, [name], undefined) : Effect.void
          ).pipe(Effect.ignore)
        })
    }

    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Ref.get(current), (session) => (Option.isSome(session) ? close(session.value) : Effect.void))
    )
    return makeWith(lease, options)
  })

/**
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: LeadershipOptions = {}): Layer.Layer<Leadership, never, SqlClient.SqlClient> =>
  Layer.effect(Leadership, Effect.map(make(options), Leadership.of))
