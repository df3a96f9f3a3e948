/**
 * minos's topic names for a service (reference §5.4): the saga/command reply topic `{Name}Reply` and
 * the two-phase-commit topics, where `{Name}` is Python's `str.title()` of the service name
 * (`exam` → `Exam`, `foo-bar` → `Foo-Bar`), and domain-event dead letters `{topic}.DLQ`.
 *
 * @since 0.1.0
 */

/** Python's `str.title()`. @since 0.1.0 */
export const title = (name: string): string => name.toLowerCase().replace(/(^|[^a-z])([a-z])/g, (_, sep: string, ch: string) => sep + ch.toUpperCase())

/** @since 0.1.0 */
export const replyTopic = (service: string): string => `${title(service)}Reply`
/** @since 0.1.0 */
export const reserveTopic = (service: string): string => `_Reserve${title(service)}Transaction`
/** @since 0.1.0 */
export const commitTopic = (service: string): string => `_Commit${title(service)}Transaction`
/** @since 0.1.0 */
export const rejectTopic = (service: string): string => `_Reject${title(service)}Transaction`
/** @since 0.1.0 */
export const sagaStatusTopic = (service: string): string => `_Get${title(service)}SagaExecution`
/** @since 0.1.0 */
export const deadLetterTopic = (topic: string): string => `${topic}.DLQ`
/**
 * The stream topic of an aggregate type: every event of every aggregate of that type, keyed by the
 * aggregate id, so one partition carries one aggregate's events in version order (projections of
 * other services consume it). Published beside minos's per-event-type topics.
 *
 * @since 0.1.0
 */
export const streamTopic = (aggregate: string): string => `_${aggregate}Stream`
