/**
 * effect-minos: event-sourced, CQRS microservices on Effect. Every module is also importable on its
 * own path (`effect-minos/eventstore/Repository`, …); this index re-exports them as namespaces.
 *
 * @since 0.1.0
 */
export * as Aggregate from "./domain/Aggregate.ts"
export * as DomainError from "./domain/DomainError.ts"
export * as Entity from "./domain/Entity.ts"

export * as MinosConfig from "./config/MinosConfig.ts"

export * as EventStore from "./eventstore/EventStore.ts"
export * as Repository from "./command/Repository.ts"
export * as Transactions from "./transaction/Transactions.ts"

export * as Condition from "./query/Condition.ts"
export * as SnapshotStore from "./snapshot/SnapshotStore.ts"

export * as DocumentStore from "./readmodel/DocumentStore.ts"
export * as Projection from "./projection/Projection.ts"
export * as ProjectionRunner from "./projection/ProjectionRunner.ts"

export * as Broker from "./broker/Broker.ts"
export * as KafkaBroker from "./kafka/KafkaBroker.ts"
export * as MemoryBroker from "./memory/MemoryBroker.ts"
export * as Message from "./broker/Message.ts"
export * as Naming from "./broker/Naming.ts"
export * as Replies from "./messaging/Replies.ts"
export * as RequestClient from "./messaging/RequestClient.ts"

export * as Consumer from "./messaging/Consumer.ts"
export * as DeadLetters from "./messaging/DeadLetters.ts"
export * as Inbox from "./queue/Inbox.ts"
export * as Outbox from "./queue/Outbox.ts"
export * as OutboxRelay from "./messaging/OutboxRelay.ts"

export * as Contract from "./router/Contract.ts"
export * as Request from "./router/Request.ts"
export * as Router from "./router/Router.ts"
export * as Scheduler from "./router/Scheduler.ts"

export * as Api from "./http/Api.ts"
export * as GraphQL from "./http/GraphQL.ts"
export * as Health from "./http/Health.ts"
export * as HttpServer from "./http/HttpServer.ts"
export * as RestClient from "./http/RestClient.ts"

export * as Saga from "./saga/Saga.ts"
export * as SagaManager from "./saga/SagaManager.ts"
export * as SagaStore from "./saga/SagaStore.ts"
export * as Transactional from "./saga/Transactional.ts"

export * as Lmdb from "./lmdb/Lmdb.ts"
export * as Postgres from "./postgres/Postgres.ts"
export * as Storage from "./storage/Storage.ts"
export * as UnitOfWork from "./storage/UnitOfWork.ts"

export * as Cli from "./runtime/Cli.ts"
export * as Microservice from "./runtime/Microservice.ts"

export * as AggregateSpec from "./testing/AggregateSpec.ts"
