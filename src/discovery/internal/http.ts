/**
 * One HTTP call to a registry, bounded: a timeout per attempt, a few attempts with exponential
 * backoff on outages (no answer, 408, 429, 5xx), none on other 4xx. Every failure is a
 * `DiscoveryError`.
 */
import { Duration, Effect, Schedule } from "effect"
import type * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientRequest from "effect/http/HttpClientRequest"
import { DiscoveryError } from "../Discovery.ts"

/** How hard one call tries. */
export interface Policy {
  /** Upper bound of one attempt, reading the response included. */
  readonly timeout: Duration.Input
  /** Attempts in all (at least 1). */
  readonly attempts: number
  /** Delay before the second attempt; it doubles for each later one. */
  readonly backoff: Duration.Input
}

export const defaultPolicy: Policy = { timeout: "5 seconds", attempts: 3, backoff: "200 millis" }

export interface Reply {
  readonly status: number
  readonly text: string
}

const snippet = (text: string): string => {
  const t = text.trim().replace(/\s+/g, " ")
  return t.length > 200 ? `${t.slice(0, 200)}…` : t
}

/** Outages are retryable; other client errors are the caller's fault. */
export const statusError = (what: string, reply: Reply): DiscoveryError => {
  const detail = reply.text.trim() === "" ? "" : `: ${snippet(reply.text)}`
  const message = `${what} answered ${reply.status}${detail}`
  if (reply.status === 408 || reply.status === 429 || reply.status >= 500) return new DiscoveryError({ reason: "Unavailable", status: reply.status, message })
  if (reply.status >= 400) return new DiscoveryError({ reason: "Rejected", status: reply.status, message })
  return new DiscoveryError({ reason: "Unknown", status: reply.status, message })
}

const once = (client: HttpClient.HttpClient, request: HttpClientRequest.HttpClientRequest, timeout: Duration.Input, what: string) =>
  Effect.gen(function*() {
    const response = yield* client.execute(request)
    const text = yield* response.text
    return { status: response.status, text } satisfies Reply
  }).pipe(
    Effect.mapError((error) =>
      new DiscoveryError({
        reason: error.reason._tag === "TransportError" || error.reason._tag === "DecodeError" ? "Unavailable" : "Unknown",
        message: `${what}: ${error.reason.message}`,
        cause: error
      })
    ),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new DiscoveryError({ reason: "Unavailable", message: `${what}: no answer within ${Duration.format(Duration.fromInputUnsafe(timeout))}` }))
    })
  )

/**
 * Sends `request` and returns the reply when its status is 2xx or one of `accept`; fails otherwise.
 */
export const send = (
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  policy: Policy,
  accept: ReadonlyArray<number> = []
): Effect.Effect<Reply, DiscoveryError> => {
  const what = `${request.method} ${request.url}`
  return once(client, request, policy.timeout, what).pipe(
    Effect.flatMap((reply) =>
      (reply.status >= 200 && reply.status < 300) || accept.includes(reply.status) ? Effect.succeed(reply) : Effect.fail(statusError(what, reply))
    ),
    Effect.retry({
      while: (e: DiscoveryError) => e.isRetryable,
      times: Math.max(0, policy.attempts - 1),
      schedule: Schedule.exponential(policy.backoff)
    })
  )
}

/** The reply's body as JSON; an `Unknown` error when it is not JSON. */
export const json = (reply: Reply, what: string): Effect.Effect<unknown, DiscoveryError> =>
  Effect.try({
    try: () => JSON.parse(reply.text) as unknown,
    catch: (cause) => new DiscoveryError({ reason: "Unknown", message: `${what}: the answer is not JSON (${snippet(reply.text)})`, cause })
  })
