/**
 * The participant side of a saga (minos's `transactional_command` and `SagaService` transaction
 * handlers), fixed where minos was not:
 *
 * - `middleware`: a command that carries the `transactions` header (sent by a saga) runs inside that
 *   minos transaction — opened here when missing, nested in the order given — so its writes stay
 *   invisible until the coordinator commits. The reply's `related_services` header gains this
 *   service, which is how the coordinator learns its participants.
 * - `handlers`: `_Reserve{Name}Transaction`, `_Commit{Name}Transaction`, `_Reject{Name}Transaction`,
 *   each replying (minos sent commits fire-and-forget), idempotent, so the coordinator can retry until
 *   it gets an answer; and a periodic job rejecting transactions left reserved too long (a coordinator
 *   that died between reserve and commit).
 *
 * @since 0.1.0
 */
import { Clock, Effect, Schema } from "effect"
import { commitTopic, rejectTopic, reserveTopic } from "../broker/Naming.ts"
import { CurrentTransaction, TransactionError, Transactions } from "../transaction/Transactions.ts"
import { Request } from "../router/Request.ts"
import * as Router from "../router/Router.ts"

/** The header listing the saga transactions, outermost first (minos: `transactions`). */
export const TRANSACTIONS_HEADER = "transactions"
/** The header listing the services that wrote inside the transaction (minos: `related_services`). */
export const RELATED_SERVICES_HEADER = "related_services"

const split = (header: string | undefined): ReadonlyArray<string> =>
  header === undefined ? [] : header.split(",").map((s) => s.trim()).filter((s) => s.length > 0)

/** Opens the chain of transactions that is missing; fails when one is no longer pending. */
const ensureChain = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const transactions = yield* Transactions
    let parent: string | null = null
    for (const id of ids) {
      const found = yield* transactions.get(id).pipe(
        Effect.map((t) => t as { status: string } | undefined),
        Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed(undefined))
      )
      if (found === undefined) yield* transactions.begin({ id, parent })
      else if (found.status !== "pending") {
        return yield* Effect.fail(new TransactionError({ reason: "IllegalTransition", transaction: id, message: `Transaction ${id} is ${found.status}; it takes no more writes` }))
      }
      parent = id
    }
  })

/**
 * The `transactional` middleware for the service `service`.
 *
 * @since 0.1.0
 */
export const middleware = (service: string): Router.Middleware => (effect, request) => {
  const ids = split(request.headers[TRANSACTIONS_HEADER])
  if (ids.length === 0 || (request.kind !== "command" && request.kind !== "query")) return effect
  return Effect.gen(function*() {
    yield* ensureChain(ids)
    const result = yield* Effect.provideService(effect, CurrentTransaction, ids[ids.length - 1]!)
    const current = yield* Request
    const related = split((yield* current.replyHeaders)[RELATED_SERVICES_HEADER])
    if (!related.includes(service)) yield* current.setHeader(RELATED_SERVICES_HEADER, [...related, service].join(","))
    return result
  }) as typeof effect
}

const Payload = Schema.Struct({ uuid: Schema.String.check(Schema.isUUID()) })
const Outcome = Schema.Struct({ uuid: Schema.String, status: Schema.String })

const statusOf = (uuid: string) =>
  Effect.flatMap(Transactions, (t) => t.get(uuid)).pipe(
    Effect.map((r) => r.status as string),
    Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed("unknown"))
  )

const unknown = (uuid: string, what: string) =>
  Effect.fail(new TransactionError({ reason: "NotFound", transaction: uuid, message: `Transaction ${uuid} is unknown here; nothing to ${what}` }))

/**
 * Reserve: the whole chain is checked (the parent still pending, no collision with the destination or
 * a reserved sibling); a collision rejects the transaction and answers `Conflict` (400). A transaction
 * this service never saw is refused (400 `NotFound`): answering "reserved" would promise writes it
 * does not have.
 */
export const reserve = ({ uuid }: { readonly uuid: string }) =>
  Effect.gen(function*() {
    const status = yield* statusOf(uuid)
    if (status === "unknown") return yield* unknown(uuid, "reserve")
    if (status === "reserved" || status === "committed") return { uuid, status }
    const r = yield* Effect.flatMap(Transactions, (t) => t.reserve(uuid))
    return { uuid, status: r.status }
  })

/** Commit: idempotent; a rejected or unknown transaction cannot commit (400). */
export const commit = ({ uuid }: { readonly uuid: string }) =>
  Effect.gen(function*() {
    const status = yield* statusOf(uuid)
    if (status === "unknown") return yield* unknown(uuid, "commit")
    if (status === "committed") return { uuid, status }
    const r = yield* Effect.flatMap(Transactions, (t) => t.commit(uuid))
    return { uuid, status: r.status }
  })

/** Reject: idempotent (an unknown transaction has nothing to reject); a committed one cannot be rejected (400). */
export const reject = ({ uuid }: { readonly uuid: string }) =>
  Effect.gen(function*() {
    const status = yield* statusOf(uuid)
    if (status === "unknown" || status === "rejected") return { uuid, status: "rejected" }
    const r = yield* Effect.flatMap(Transactions, (t) => t.reject(uuid))
    return { uuid, status: r.status }
  })

/**
 * Rejects transactions reserved for longer than `afterMs` (and their children); returns how many.
 *
 * @since 0.1.0
 */
export const rejectBlocked = (afterMs: number) =>
  Effect.gen(function*() {
    const transactions = yield* Transactions
    const now = yield* Clock.currentTimeMillis
    const blocked = yield* transactions.list({ status: "reserved", olderThan: now - afterMs })
    for (const t of blocked) {
      yield* transactions.reject(t.id).pipe(Effect.catch(() => Effect.void))
      yield* Effect.logWarning(`rejected transaction ${t.id}: reserved for more than ${Math.round(afterMs / 1000)} s without a commit`)
    }
    return blocked.length
  })

/**
 * The transaction handlers of the service `service`.
 *
 * @since 0.1.0
 */
export const handlers = (service: string, options: { readonly rejectReservedAfterMs?: number } = {}) => [
  Router.command(reserveTopic(service), { payload: Payload, success: Outcome }, reserve),
  Router.command(commitTopic(service), { payload: Payload, success: Outcome }, commit),
  Router.command(rejectTopic(service), { payload: Payload, success: Outcome }, reject),
  Router.periodic("* * * * *", "reject-blocked-transactions", Effect.asVoid(rejectBlocked(options.rejectReservedAfterMs ?? 120_000)))
] as const
