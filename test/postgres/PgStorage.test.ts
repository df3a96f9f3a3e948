import { suite as documentSuite } from "../readmodel/DocumentStoreSuite.ts"
import { suite as projectionStoreSuite } from "../readmodel/ProjectionStoreSuite.ts"
import { suite as eventStoreSuite } from "../eventstore/EventStoreSuite.ts"
import { suite as repositorySuite } from "../command/RepositorySuite.ts"
import { suite as transactionsSuite } from "../transaction/TransactionsSuite.ts"
import { suite as inboxSuite } from "../queue/InboxSuite.ts"
import { suite as outboxSuite } from "../queue/OutboxSuite.ts"
import { suite as snapshotSuite } from "../snapshot/SnapshotStoreSuite.ts"
import { describePostgres, pgStorage } from "../support/Services.ts"

describePostgres("PostgreSQL storage", () => {
  eventStoreSuite("postgres", pgStorage("es"))
  snapshotSuite("postgres", pgStorage("ss"))
  transactionsSuite("postgres", pgStorage("tx"))
  outboxSuite("postgres", pgStorage("ob"))
  repositorySuite("postgres", pgStorage("rp"))
  inboxSuite("postgres", pgStorage("ib"))
  documentSuite("postgres", pgStorage("dc"))
  projectionStoreSuite("postgres", pgStorage("ps"))
})
