/** The input rules both saga-store backends enforce. */
import { isUuid } from "../../eventstore/EventStore.ts"
import { isJson } from "../../eventstore/internal/validate.ts"
import { type ExecutionRecord, ExecutionStatus, SagaStoreError } from "../SagaStore.ts"

export const STATUSES: ReadonlyArray<ExecutionStatus> = ExecutionStatus.literals

export const isStatus = (u: unknown): u is ExecutionStatus => typeof u === "string" && (STATUSES as ReadonlyArray<string>).includes(u)

/** Epoch ms from 1970 to the last date JavaScript (and PostgreSQL) can hold. */
export const isTime = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u) && u >= 0 && u <= 8.64e15

export const error = (reason: SagaStoreError["reason"], message: string, cause?: unknown) =>
  new SagaStoreError({ reason, message, ...(cause === undefined ? {} : { cause }) })

/** What is wrong with a record to write, if anything. */
export const checkRecord = (r: Omit<ExecutionRecord, "revision">): string | undefined => {
  if (typeof r !== "object" || r === null) return "The execution is not a record"
  if (typeof r.id !== "string" || !isUuid(r.id)) return `Execution id ${JSON.stringify(r.id)} is not a UUID`
  if (typeof r.saga !== "string" || r.saga.length === 0) return "The saga name is empty"
  if (!Number.isInteger(r.version) || r.version < 1) return `The saga version must be a positive integer, got ${r.version}`
  if (!isStatus(r.status)) return `Unknown execution status ${JSON.stringify(r.status)}`
  if (r.deadline !== null && !isTime(r.deadline)) return `The deadline must be null or epoch milliseconds, got ${r.deadline}`
  if (!isTime(r.createdAt) || !isTime(r.updatedAt)) return "createdAt and updatedAt must be epoch milliseconds"
  if (!isJson(r.data)) return "The execution data is not JSON"
  return undefined
}

export const checkLimit = (limit: number): string | undefined =>
  Number.isInteger(limit) && limit >= 0 ? undefined : `The limit must be a non-negative integer, got ${limit}`
