/**
 * The PostgreSQL schema of the storage ports, as ordered migrations. Applied at startup under a
 * transaction-scoped advisory lock with a stable key (minos used Python's per-process `hash()`,
 * which did not exclude other replicas), each migration once, recorded in `minos_migrations`.
 */
import { Effect } from "effect"
import { SqlClient, type SqlError } from "effect/sql"

const NIL = "'00000000-0000-0000-0000-000000000000'::uuid"

export interface Migration {
  readonly id: number
  readonly name: string
  readonly statements: ReadonlyArray<string>
}

export const migrations: ReadonlyArray<Migration> = [
  {
    id: 1,
    name: "event store, snapshots, transactions, outbox",
    statements: [
      `CREATE TABLE IF NOT EXISTS minos_events (
        position bigserial PRIMARY KEY,
        aggregate_id uuid NOT NULL,
        aggregate text NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        type text NOT NULL,
        data jsonb NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        transaction_id uuid NOT NULL DEFAULT ${NIL},
        tx_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
        created_at timestamptz NOT NULL,
        CONSTRAINT minos_events_stream_version UNIQUE (aggregate_id, transaction_id, version)
      )`,
      // the gap-safe global read walks (tx_xid, position) of committed main-store events
      `CREATE INDEX IF NOT EXISTS minos_events_global ON minos_events (tx_xid, position) WHERE transaction_id = ${NIL}`,
      `CREATE INDEX IF NOT EXISTS minos_events_transaction ON minos_events (transaction_id) WHERE transaction_id <> ${NIL}`,
      `CREATE TABLE IF NOT EXISTS minos_snapshots (
        aggregate_id uuid NOT NULL,
        transaction_id uuid NOT NULL DEFAULT ${NIL},
        aggregate text NOT NULL,
        version integer NOT NULL,
        document jsonb NOT NULL,
        deleted boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (aggregate_id, transaction_id)
      )`,
      `CREATE INDEX IF NOT EXISTS minos_snapshots_aggregate ON minos_snapshots (aggregate, transaction_id)`,
      `CREATE INDEX IF NOT EXISTS minos_snapshots_transaction ON minos_snapshots (transaction_id) WHERE transaction_id <> ${NIL}`,
      `CREATE TABLE IF NOT EXISTS minos_transactions (
        id uuid PRIMARY KEY,
        parent uuid NULL,
        status text NOT NULL DEFAULT 'pending'
          CHECK (status IN ('pending', 'reserving', 'reserved', 'committing', 'committed', 'rejected')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS minos_transactions_status ON minos_transactions (status, updated_at)`,
      // the legal moves, enforced by the database whoever writes
      `CREATE OR REPLACE FUNCTION minos_transactions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.id <> OLD.id OR NEW.parent IS DISTINCT FROM OLD.parent THEN
          RAISE EXCEPTION 'minos transaction % cannot change id or parent', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.status <> OLD.status AND NOT (
          (OLD.status = 'pending' AND NEW.status IN ('reserving', 'rejected')) OR
          (OLD.status = 'reserving' AND NEW.status IN ('reserved', 'rejected')) OR
          (OLD.status = 'reserved' AND NEW.status IN ('committing', 'rejected')) OR
          (OLD.status = 'committing' AND NEW.status = 'committed')
        ) THEN
          RAISE EXCEPTION 'illegal minos transaction move % -> %', OLD.status, NEW.status USING ERRCODE = 'check_violation';
        END IF;
        NEW.updated_at := now();
        RETURN NEW;
      END $$`,
      `DROP TRIGGER IF EXISTS minos_transactions_guard ON minos_transactions`,
      `CREATE TRIGGER minos_transactions_guard BEFORE UPDATE ON minos_transactions
        FOR EACH ROW EXECUTE FUNCTION minos_transactions_guard()`,
      `CREATE TABLE IF NOT EXISTS minos_outbox (
        id bigserial PRIMARY KEY,
        topic text NOT NULL,
        key text NULL,
        value text NOT NULL,
        headers jsonb NOT NULL DEFAULT '{}'::jsonb,
        transaction_id uuid NOT NULL DEFAULT ${NIL},
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS minos_outbox_ready ON minos_outbox (id) WHERE transaction_id = ${NIL}`,
      `CREATE INDEX IF NOT EXISTS minos_outbox_transaction ON minos_outbox (transaction_id) WHERE transaction_id <> ${NIL}`,
      // wake relays when rows become publishable; NOTIFY is delivered at commit, folded per transaction
      `CREATE OR REPLACE FUNCTION minos_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(TG_ARGV[0], '');
        RETURN NULL;
      END $$`
    ]
  },
  {
    id: 2,
    name: "inbox and dead letters",
    statements: [
      `CREATE TABLE IF NOT EXISTS minos_inbox (
        consumer_group text NOT NULL,
        topic text NOT NULL,
        identifier text NOT NULL,
        handled_at timestamptz NOT NULL,
        PRIMARY KEY (consumer_group, topic, identifier)
      )`,
      `CREATE INDEX IF NOT EXISTS minos_inbox_handled_at ON minos_inbox (handled_at)`,
      `CREATE TABLE IF NOT EXISTS minos_dead_letters (
        id bigserial PRIMARY KEY,
        consumer_group text NOT NULL,
        topic text NOT NULL,
        key text NULL,
        value text NOT NULL,
        headers jsonb NOT NULL DEFAULT '{}'::jsonb,
        identifier text NULL,
        error text NOT NULL,
        attempts integer NOT NULL,
        first_failed_at timestamptz NOT NULL,
        last_failed_at timestamptz NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS minos_dead_letters_topic ON minos_dead_letters (topic, id)`
    ]
  },
  {
    id: 3,
    name: "read-model documents",
    statements: [
      `CREATE TABLE IF NOT EXISTS minos_documents (
        collection text NOT NULL,
        id text NOT NULL,
        document jsonb NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (collection, id)
      )`
    ]
  },
  {
    id: 4,
    name: "projection marks, parked events and state",
    statements: [
      `CREATE TABLE IF NOT EXISTS minos_projection_marks (
        projection text NOT NULL,
        aggregate_id text NOT NULL,
        version integer NOT NULL DEFAULT 0,
        PRIMARY KEY (projection, aggregate_id)
      )`,
      `CREATE TABLE IF NOT EXISTS minos_projection_parked (
        projection text NOT NULL,
        aggregate_id text NOT NULL,
        version integer NOT NULL,
        event jsonb NOT NULL,
        parked_at timestamptz NOT NULL,
        PRIMARY KEY (projection, aggregate_id, version)
      )`,
      `CREATE TABLE IF NOT EXISTS minos_projection_state (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        revision bigint NOT NULL
      )`
    ]
  },
  {
    id: 5,
    name: "snapshot lookups by aggregate id",
    statements: [
      // Without table statistics (a fresh database, autovacuum off) the planner took
      // (aggregate, transaction_id) for a lookup by id and walked every snapshot of the type. With
      // aggregate_id in the index every plan for a lookup is a point lookup; scans of one type
      // (`find`) still have the index, now in id order.
      `CREATE INDEX IF NOT EXISTS minos_snapshots_lookup ON minos_snapshots (aggregate, transaction_id, aggregate_id)`,
      `DROP INDEX IF EXISTS minos_snapshots_aggregate`
    ]
  }
]

/** The NOTIFY channel of the outbox in `schema`. */
export const outboxChannel = (schema: string): string => (schema === "public" ? "minos_outbox" : `minos_outbox_${schema}`).slice(0, 63)

const triggers = (schema: string): ReadonlyArray<string> => [
  `DROP TRIGGER IF EXISTS minos_outbox_notify ON minos_outbox`,
  `CREATE TRIGGER minos_outbox_notify AFTER INSERT OR UPDATE OF transaction_id ON minos_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION minos_outbox_notify('${outboxChannel(schema).replace(/'/g, "''")}')`
]

/** Applies the migrations that are missing, once, whoever else starts at the same time. */
export const migrate = (schema: string): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext('effect-minos:migrations'))`
      yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema.replace(/"/g, "\"\"")}"`)
      yield* sql`CREATE TABLE IF NOT EXISTS minos_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
      const done = new Set((yield* sql<{ id: number }>`SELECT id FROM minos_migrations`).map((r) => r.id))
      for (const m of migrations) {
        if (done.has(m.id)) continue
        for (const statement of m.statements) yield* sql.unsafe(statement)
        for (const statement of triggers(schema)) yield* sql.unsafe(statement)
        yield* sql`INSERT INTO minos_migrations (id, name) VALUES (${m.id}, ${m.name})`
      }
    }))
  })
