#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1:9092 for local development and CI.
# No Docker: Apache's own jars come from Maven Central (the Maven coordinates of the Kafka server are
# org.apache.kafka:kafka_2.13) and run on the machine's Java.
#
#   scripts/kafka.sh up              resolve jars (cached), format storage (once), start, wait until ready
#   scripts/kafka.sh down [--purge]  stop (SIGTERM, then SIGKILL after 30 s); --purge also deletes the data
#   scripts/kafka.sh status          "running" (exit 0) or "not running" (exit 1)
#
# A 3-broker KRaft cluster on loopback (each node broker+controller, replication factor 3,
# min.insync.replicas 2), from the same jars, for the failover tests:
#   scripts/kafka.sh cluster up              format (once) and start the 3 nodes, wait until all serve
#   scripts/kafka.sh cluster down [--purge]  stop them (SIGTERM, then SIGKILL); --purge deletes the data
#   scripts/kafka.sh cluster status          one line per node; exit 0 when all 3 run
#   scripts/kafka.sh cluster kill N          SIGKILL node N (1-3), as a crash would
#   scripts/kafka.sh cluster start N         start node N again and wait until it serves
#   Brokers 127.0.0.1:19092,19093,19094; controllers 127.0.0.1:19192-19194; data under
#   .cache/kafka/cluster/node<N>/. KAFKA_CLUSTER_PORT_BASE=29091 puts a second cluster on 29092-29094
#   (controllers 29192-29194, data under .cache/kafka/cluster-29091/).
#
# Env: KAFKA_VERSION (default below), JAVA_HOME (Java >= 17; otherwise the newest JDK in /usr/lib/jvm).
# Needs: java >= 17, mvn. Everything goes under <repo>/.cache/kafka (git-ignored):
#   .cache/kafka/<version>/{pom.xml,libs/}   jars (libs/.complete marks a finished resolve)
#   .cache/kafka/run/{server.properties,log4j2.properties,kafka.pid,data/,logs/}
#
# Version: 4.4.0 is checked against @platformatic/kafka, the client this project uses: creating
# topics, idempotent producing with key + headers, consumer groups and the admin calls all work
# (the client negotiates API versions with the broker).
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J_FALLBACK_VERSION="2.25.5"        # only used if the resolved jars bring no log4j-api
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
HOST=127.0.0.1
PORT=9092
CONTROLLER_PORT=9093
READY_TIMEOUT_S=90
STOP_TIMEOUT_S=30

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/kafka"
VDIR="$CACHE/$KAFKA_VERSION"
LIBS="$VDIR/libs"
RUN="$CACHE/run"
DATA="$RUN/data"
LOGS="$RUN/logs"
PIDFILE="$RUN/kafka.pid"

log() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: error: $*" >&2; exit 1; }

# --- java ----------------------------------------------------------------------------------------
java_major() { "$1" -version 2>&1 | sed -n 's/.* version "\([0-9]*\)[."].*/\1/p' | head -n1; }
pick_java() {
  local c m best="" bestm=0
  for c in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    m="$(java_major "$c")"; [ "${m:-0}" -ge 17 ] && { echo "$c"; return; }
  done
  for c in /usr/lib/jvm/*/bin/java; do
    [ -x "$c" ] || continue
    m="$(java_major "$c")"; [ "${m:-0}" -gt "$bestm" ] && { best="$c"; bestm="$m"; }
  done
  [ "$bestm" -ge 17 ] || die "Java >= 17 is required (set JAVA_HOME)"
  echo "$best"
}

# --- process / port helpers ----------------------------------------------------------------------
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }
our_pid() {  # prints the pid if the pid file names a live Kafka started by us
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null || ps -o args= -p "$pid" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

# --- resolve jars -------------------------------------------------------------------------------
# Maven 3.8 prints ANSI resets even with -B -q, so its output goes to a log shown only on failure.
mvn_q() {
  if ! mvn -B -q -Dstyle.color=never "$@" </dev/null >"$VDIR/mvn.log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$VDIR/mvn.log" | tail -n 40 >&2
    return 1
  fi
}

resolve() {
  [ -f "$LIBS/.complete" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found"
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central into ${LIBS#"$ROOT"/}"
  mkdir -p "$VDIR"
  # kafka-tools provides TopicCommand (readiness probe); its connect-runtime dependency (Jetty, Jersey,
  # ~20 MB) is only needed by the Connect tools, so it is excluded.
  cat >"$VDIR/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.effect-minos</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
  </dependencies>
</project>
EOF
  local tmp="$VDIR/libs.partial"
  rm -rf "$tmp"
  mvn_q -f "$VDIR/pom.xml" "$DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$tmp" \
    || die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (try another KAFKA_VERSION)"
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing after resolve"
  # The Kafka poms bring slf4j-api + log4j-core but no binding between them (the binary tarball adds
  # one). Add the log4j binding matching slf4j's major version, at the resolved log4j version.
  local slf4j log4j binding
  slf4j="$(ls "$tmp" | sed -n 's/^slf4j-api-\([0-9]*\)\..*\.jar$/\1/p' | head -n1)"
  log4j="$(ls "$tmp" | sed -n 's/^log4j-api-\(.*\)\.jar$/\1/p' | head -n1)"
  [ -n "$log4j" ] || log4j="$LOG4J_FALLBACK_VERSION"
  if [ "$slf4j" = "1" ]; then binding=log4j-slf4j-impl; else binding=log4j-slf4j2-impl; fi
  for a in log4j-api log4j-core "$binding"; do
    ls "$tmp/$a-"[0-9]*.jar >/dev/null 2>&1 && continue
    mvn_q "$DEP_PLUGIN:copy" -Dartifact="org.apache.logging.log4j:$a:$log4j" -DoutputDirectory="$tmp" \
      || die "mvn could not fetch $a:$log4j"
  done
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  touch "$LIBS/.complete"
}

# --- config --------------------------------------------------------------------------------------
write_config() {
  mkdir -p "$RUN" "$LOGS"
  cat >"$RUN/server.properties" <<EOF
# Generated by scripts/kafka.sh (overwritten on every "up").
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF
  cat >"$RUN/log4j2.properties" <<'EOF'
# Broker logging: to .cache/kafka/run/logs/server.log (rolled at 10 MB, 3 files kept).
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  cat >"$RUN/tools-log4j2.properties" <<'EOF'
# CLI tools (StorageTool, TopicCommand): warnings only, to stderr.
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
  cat >"$RUN/client.properties" <<'EOF'
request.timeout.ms=3000
default.api.timeout.ms=5000
EOF
}

tool() {  # tool <main-class> args...  (CLI tools on the cached classpath)
  local main="$1"; shift
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Dlog4j2.configurationFile="$RUN/tools-log4j2.properties" \
    -cp "$LIBS/*" "$main" "$@" </dev/null
}

format_storage() {
  local stamp="$DATA/.formatted-by"
  if [ -f "$DATA/meta.properties" ] && [ -f "$stamp" ]; then
    [ "$(cat "$stamp")" = "$KAFKA_VERSION" ] && return 0
    # Formatted by another version. A newer broker can usually read older data, but not the other
    # way round; this is throw-away dev data, so start over.
    log "data dir was formatted by Kafka $(cat "$stamp"); re-formatting for $KAFKA_VERSION (data discarded)"
  fi
  rm -rf "$DATA"
  mkdir -p "$DATA"
  local cid
  cid="$(tool kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
  [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "could not generate a cluster id (got '$cid')"
  echo "$cid" >"$RUN/cluster.id"
  tool kafka.tools.StorageTool format --standalone -t "$cid" -c "$RUN/server.properties" \
    >"$LOGS/format.log" 2>&1 || { cat "$LOGS/format.log" >&2; die "storage format failed"; }
  echo "$KAFKA_VERSION" >"$stamp"
}

ready() {  # a real client can list topics
  port_open "$PORT" || return 1
  timeout 20 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$RUN/tools-log4j2.properties" -cp "$LIBS/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" \
    --command-config "$RUN/client.properties" --list </dev/null >/dev/null 2>&1
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kafka.sh: Kafka exited during start-up; last lines of ${LOGS#"$ROOT"/}:" >&2
      tail -n 30 "$LOGS/server.log" "$LOGS/kafka.out" 2>/dev/null >&2 || true
      rm -f "$PIDFILE"
      exit 1
    fi
    ready && return 0
    sleep 1
  done
  echo "kafka.sh: Kafka (pid $pid) not ready after ${READY_TIMEOUT_S}s; see ${LOGS#"$ROOT"/}/server.log" >&2
  exit 1
}

# --- commands ------------------------------------------------------------------------------------
cmd_up() {
  local pid
  if pid="$(our_pid)"; then
    if port_open "$PORT"; then log "already running (pid $pid) on $HOST:$PORT"; return 0; fi
    JAVA="$(pick_java)"; log "pid $pid is starting; waiting"; wait_ready "$pid"
    log "ready on $HOST:$PORT (pid $pid)"; return 0
  fi
  rm -f "$PIDFILE"
  if port_open "$PORT"; then
    log "$HOST:$PORT already answers, but not a Kafka started by this script; leaving it alone"
    return 0
  fi
  JAVA="$(pick_java)"
  resolve
  write_config
  format_storage
  : >"$LOGS/kafka.out"
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # The child writes its own pid (bash exec keeps it), so the pid is right even if setsid forks.
  nohup "${launcher[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    "$JAVA" -server -Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOGS" -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" \
    </dev/null >>"$LOGS/kafka.out" 2>&1 &
  local i
  for i in $(seq 1 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] || die "could not start Kafka"
  log "started Kafka $KAFKA_VERSION (pid $pid); waiting for $HOST:$PORT"
  wait_ready "$pid"
  log "ready on $HOST:$PORT (pid $pid)"
}

cmd_down() {
  local purge=0 pid i
  for a in "$@"; do
    case "$a" in --purge) purge=1 ;; *) die "unknown option for down: $a" ;; esac
  done
  if pid="$(our_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT_S * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still alive after ${STOP_TIMEOUT_S}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    log "stopped (pid $pid)"
  else
    if port_open "$PORT"; then
      log "not started by this script ($HOST:$PORT answers, but no pid of ours); leaving it alone"
    else
      log "not running"
    fi
  fi
  rm -f "$PIDFILE"
  if [ "$purge" = 1 ]; then
    rm -rf "$DATA" "$RUN/cluster.id"
    log "purged ${DATA#"$ROOT"/}"
  fi
}

cmd_status() {
  local pid
  if pid="$(our_pid)"; then
    if port_open "$PORT"; then echo "running (pid $pid, $HOST:$PORT)"; else echo "running (pid $pid, starting)"; fi
    return 0
  fi
  if port_open "$PORT"; then echo "running ($HOST:$PORT answers; not started by this script)"; return 0; fi
  echo "not running"
  return 1
}


# --- 3-node cluster ------------------------------------------------------------------------------
CLUSTER="$CACHE/cluster${KAFKA_CLUSTER_PORT_BASE:+-$KAFKA_CLUSTER_PORT_BASE}"
CLUSTER_NODES=(1 2 3)
# KAFKA_CLUSTER_PORT_BASE moves the whole cluster (brokers base+1..3, controllers base+101..103),
# for a second cluster beside the default one on a shared machine
CLUSTER_BASE="${KAFKA_CLUSTER_PORT_BASE:-19091}"
node_port() { echo $((CLUSTER_BASE + $1)); }
node_controller_port() { echo $((CLUSTER_BASE + 100 + $1)); }
node_dir() { echo "$CLUSTER/node$1"; }

node_pid() {  # prints the pid if node N runs and was started by us
  local pidfile pid
  pidfile="$(node_dir "$1")/kafka.pid"
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null || ps -o args= -p "$pid" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

cluster_write_config() {
  local n="$1" dir voters="" i
  dir="$(node_dir "$n")"
  mkdir -p "$dir/logs"
  for i in "${CLUSTER_NODES[@]}"; do voters="${voters:+$voters,}$i@$HOST:$(node_controller_port "$i")"; done
  cat >"$dir/server.properties" <<PROPS
# Generated by scripts/kafka.sh cluster (overwritten on every start).
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$(node_port "$n"),CONTROLLER://$HOST:$(node_controller_port "$n")
advertised.listeners=PLAINTEXT://$HOST:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
# a killed broker is noticed in seconds, not the default 9 s
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
replica.lag.time.max.ms=5000
PROPS
  cp "$RUN/log4j2.properties" "$dir/log4j2.properties"
}

cluster_format() {
  local n="$1" dir cid i
  dir="$(node_dir "$n")"
  if [ -f "$dir/data/meta.properties" ] && [ "$(cat "$dir/data/.formatted-by" 2>/dev/null)" = "$KAFKA_VERSION" ] \
    && [ "$(cat "$CLUSTER/.formatted-by" 2>/dev/null)" = "$KAFKA_VERSION" ]; then return 0; fi
  if [ ! -s "$CLUSTER/cluster.id" ] || [ "$(cat "$CLUSTER/.formatted-by" 2>/dev/null)" != "$KAFKA_VERSION" ]; then
    # a new cluster: every node is formatted again with the new id
    for i in "${CLUSTER_NODES[@]}"; do rm -rf "$(node_dir "$i")/data"; done
    cid="$(tool kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "could not generate a cluster id (got '$cid')"
    echo "$cid" >"$CLUSTER/cluster.id"
    echo "$KAFKA_VERSION" >"$CLUSTER/.formatted-by"
  fi
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  cid="$(cat "$CLUSTER/cluster.id")"
  tool kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" \
    >"$dir/logs/format.log" 2>&1 || { cat "$dir/logs/format.log" >&2; die "storage format of node $n failed"; }
  echo "$KAFKA_VERSION" >"$dir/data/.formatted-by"
}

node_ready() {  # node N answers a metadata request
  local port
  port="$(node_port "$1")"
  port_open "$port" || return 1
  timeout 20 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$RUN/tools-log4j2.properties" -cp "$LIBS/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$port" \
    --command-config "$RUN/client.properties" --list </dev/null >/dev/null 2>&1
}

node_launch() {  # starts node N in the background (config and data must exist)
  local n="$1" dir pid i
  dir="$(node_dir "$n")"
  rm -f "$dir/kafka.pid"
  : >>"$dir/logs/kafka.out"
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  nohup "${launcher[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/kafka.pid" \
    "$JAVA" -server -Xmx384m -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >>"$dir/logs/kafka.out" 2>&1 &
  for i in $(seq 1 50); do [ -s "$dir/kafka.pid" ] && break; sleep 0.1; done
  pid="$(cat "$dir/kafka.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || die "could not start node $n"
  log "cluster: started node $n (pid $pid) on $HOST:$(node_port "$n")"
}

node_wait_ready() {
  local n="$1" deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! node_pid "$n" >/dev/null; then
      echo "kafka.sh: cluster node $n exited during start-up; last lines of its log:" >&2
      tail -n 30 "$(node_dir "$n")/logs/server.log" "$(node_dir "$n")/logs/kafka.out" 2>/dev/null >&2 || true
      exit 1
    fi
    node_ready "$n" && return 0
    sleep 1
  done
  die "cluster node $n not ready after ${READY_TIMEOUT_S}s; see $(node_dir "$n")/logs/server.log"
}

node_start() {  # starts node N unless it runs
  local n="$1"
  if node_pid "$n" >/dev/null; then return 0; fi
  if port_open "$(node_port "$n")"; then die "$HOST:$(node_port "$n") answers, but not a node started by this script"; fi
  cluster_write_config "$n"
  cluster_format "$n"
  node_launch "$n"
}

node_stop() {  # node_stop N SIGNAL
  local n="$1" sig="$2" pid i
  pid="$(node_pid "$n")" || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT_S * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$(node_dir "$n")/kafka.pid"
  log "cluster: node $n stopped (SIG$sig, pid $pid)"
}

check_node() { [[ "${1:-}" =~ ^[1-3]$ ]] || die "cluster: node must be 1, 2 or 3 (got '${1:-}')"; }

cmd_cluster() {
  local sub="${1:-}" n
  shift || true
  case "$sub" in
    up)
      JAVA="$(pick_java)"; resolve; write_config
      mkdir -p "$CLUSTER"
      # the controllers need each other for a quorum: start all, then wait for each
      for n in "${CLUSTER_NODES[@]}"; do node_start "$n"; done
      for n in "${CLUSTER_NODES[@]}"; do node_wait_ready "$n"; done
      log "cluster: ready on $HOST:$(node_port 1),$HOST:$(node_port 2),$HOST:$(node_port 3)"
      ;;
    down)
      for n in "${CLUSTER_NODES[@]}"; do node_stop "$n" TERM; done
      if [ "${1:-}" = "--purge" ]; then rm -rf "$CLUSTER"; log "cluster: purged"; fi
      ;;
    status)
      local all=0 pid
      for n in "${CLUSTER_NODES[@]}"; do
        if pid="$(node_pid "$n")"; then echo "node $n: running (pid $pid, $HOST:$(node_port "$n"))"; else echo "node $n: not running"; all=1; fi
      done
      return "$all"
      ;;
    kill) check_node "${1:-}"; node_stop "$1" KILL ;;
    start)
      check_node "${1:-}"
      JAVA="$(pick_java)"; resolve; write_config
      node_start "$1"; node_wait_ready "$1"
      log "cluster: node $1 ready on $HOST:$(node_port "$1")"
      ;;
    *) die "usage: $0 cluster up | down [--purge] | status | kill N | start N" ;;
  esac
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  cluster) shift; cmd_cluster "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) echo "usage: $0 up | down [--purge] | status | cluster up|down|status|kill N|start N" >&2; exit 2 ;;
esac
