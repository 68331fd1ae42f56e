#!/usr/bin/env bash
# One-shot setup of the Kafka cluster in deploy/compose.cluster.yaml (service kafka-setup,
# apache/kafka image): topics with replication 3, the SCRAM-SHA-512 users, and their ACLs.
# It talks to the brokers' REPLICATION listener on the internal network (the only place the
# PLAINTEXT principal is trusted). Idempotent: existing topics are left alone, passwords
# and ACLs are set again. The tables below are the compose twin of deploy/k8s/topics.yaml
# and deploy/k8s/users.yaml; tests/unit/deploy/test_k8s.py checks that they agree.
set -euo pipefail
BOOTSTRAP=${KAFKA_SETUP_BOOTSTRAP:-kafka-1:9091,kafka-2:9091,kafka-3:9091}
SECRETS=${KAFKA_SETUP_SECRETS:-/run/secrets}
BIN=${KAFKA_BIN:-/opt/kafka/bin}
PARTITIONS=12

# topic name                       cleanup   partitions  timestamps (LogAppendTime: the broker's receipt)
TOPICS="
ebi.telemetry                      delete    $PARTITIONS LogAppendTime
ebi.heartbeats                     delete    $PARTITIONS LogAppendTime
ebi.hazards                        delete    $PARTITIONS LogAppendTime
ebi.incidents                      delete    $PARTITIONS LogAppendTime
ebi.enterprises                    compact   $PARTITIONS LogAppendTime
ebi.sensors                        compact   $PARTITIONS LogAppendTime
ebi.keys                           compact   $PARTITIONS LogAppendTime
ebi.telemetry.clean                delete    $PARTITIONS CreateTime
ebi.incidents.clean                delete    $PARTITIONS CreateTime
ebi.hazards.clean                  delete    $PARTITIONS CreateTime
ebi.heartbeats.clean               delete    $PARTITIONS CreateTime
ebi.alarm.commands                 delete    $PARTITIONS LogAppendTime
ebi.alarm.events                   delete    $PARTITIONS CreateTime
ebi.gateway.status                 delete    $PARTITIONS CreateTime
ebi.sensors.registered             delete    $PARTITIONS CreateTime
ebi.alerts                         delete    $PARTITIONS CreateTime
ebi.deadletter                     delete    $PARTITIONS CreateTime
ebi-worker-gateways-changelog      compact   $PARTITIONS CreateTime
ebi-worker-incidents-changelog     compact   $PARTITIONS CreateTime
ebi-worker-hazards-changelog       compact   $PARTITIONS CreateTime
ebi-worker-alarms-changelog        compact   $PARTITIONS CreateTime
ebi-worker-__assignor-__leader     delete    1           CreateTime
"

# user                        resource  pattern  name                 operations
ACLS="
ebi-worker                    topic     literal  ebi.telemetry        Read
ebi-worker                    topic     literal  ebi.heartbeats       Read
ebi-worker                    topic     literal  ebi.hazards          Read
ebi-worker                    topic     literal  ebi.incidents        Read
ebi-worker                    topic     literal  ebi.enterprises      Read
ebi-worker                    topic     literal  ebi.sensors          Read
ebi-worker                    topic     literal  ebi.alarm.commands   Read
ebi-worker                    topic     literal  ebi.keys             Read
ebi-worker                    topic     literal  ebi.telemetry.clean  Write
ebi-worker                    topic     literal  ebi.incidents.clean  Write
ebi-worker                    topic     literal  ebi.hazards.clean    Write
ebi-worker                    topic     literal  ebi.heartbeats.clean Write
ebi-worker                    topic     literal  ebi.gateway.status   Write
ebi-worker                    topic     literal  ebi.alarm.events     Write
ebi-worker                    topic     literal  ebi.sensors.registered Write
ebi-worker                    topic     literal  ebi.alerts           Write
ebi-worker                    topic     literal  ebi.deadletter       Write
ebi-worker                    topic     prefix   ebi-worker-          Read,Write,Create,Describe
ebi-worker                    group     literal  ebi-worker           Read
ebi-worker                    group     prefix   ebi-worker-          Read
ebi-worker                    cluster   literal  kafka-cluster        IdempotentWrite
ebi-sink                      topic     literal  ebi.telemetry.clean  Read
ebi-sink                      topic     literal  ebi.incidents.clean  Read
ebi-sink                      topic     literal  ebi.hazards.clean    Read
ebi-sink                      topic     literal  ebi.heartbeats.clean Read
ebi-sink                      topic     literal  ebi.gateway.status   Read
ebi-sink                      topic     literal  ebi.alarm.events     Read
ebi-sink                      topic     literal  ebi.sensors.registered Read
ebi-sink                      topic     literal  ebi.alerts           Read
ebi-sink                      topic     literal  ebi.deadletter       Read
ebi-sink                      group     literal  ebi-sink             Read
ebi-gateway                   topic     literal  ebi.telemetry        Write
ebi-gateway                   topic     literal  ebi.heartbeats       Write
ebi-gateway                   topic     literal  ebi.hazards          Write
ebi-gateway                   cluster   literal  kafka-cluster        IdempotentWrite
ebi-regional-system           topic     literal  ebi.incidents        Write
ebi-regional-system           cluster   literal  kafka-cluster        IdempotentWrite
ebi-registration-authority    topic     literal  ebi.enterprises      Write
ebi-registration-authority    topic     literal  ebi.sensors          Write
ebi-registration-authority    topic     literal  ebi.keys             Write
ebi-registration-authority    cluster   literal  kafka-cluster        IdempotentWrite
ebi-operator                  topic     literal  ebi.alarm.commands   Write
ebi-operator                  topic     prefix   ebi.                 Describe
ebi-operator                  topic     prefix   ebi-worker-          Describe
ebi-operator                  topic     literal  ebi.telemetry.clean  Read
ebi-operator                  topic     literal  ebi.incidents.clean  Read
ebi-operator                  topic     literal  ebi.hazards.clean    Read
ebi-operator                  topic     literal  ebi.heartbeats.clean Read
ebi-operator                  topic     literal  ebi.gateway.status   Read
ebi-operator                  topic     literal  ebi.alarm.events     Read
ebi-operator                  topic     literal  ebi.sensors.registered Read
ebi-operator                  topic     literal  ebi.alerts           Read
ebi-operator                  topic     literal  ebi.deadletter       Read
ebi-operator                  group     literal  *                    Describe
ebi-operator                  group     prefix   operator-            Read
ebi-operator                  cluster   literal  kafka-cluster        Describe,IdempotentWrite
"

log() { echo "kafka-setup: $*"; }

wait_for_cluster() {
  for _ in $(seq 60); do
    "$BIN/kafka-broker-api-versions.sh" --bootstrap-server "$BOOTSTRAP" >/dev/null 2>&1 && return
    sleep 2
  done
  log "the brokers at $BOOTSTRAP did not answer within 120 s" >&2
  exit 1
}

create_topics() {
  local name cleanup partitions timestamps
  while read -r name cleanup partitions timestamps; do
    [ -n "$name" ] || continue
    "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
      --topic "$name" --partitions "$partitions" --replication-factor 3 \
      --config "cleanup.policy=$cleanup" --config "message.timestamp.type=$timestamps" \
      --config min.insync.replicas=2 >/dev/null
    # an existing topic (created before) gets the timestamp type too
    "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter --entity-type topics \
      --entity-name "$name" --add-config "message.timestamp.type=$timestamps" >/dev/null
  done <<<"$TOPICS"
  log "$(grep -c . <<<"$TOPICS") topics present"
}

create_users() {
  local user file config
  for user in $(awk 'NF {print $1}' <<<"$ACLS" | sort -u); do
    file="$SECRETS/kafka-user-$user"
    if [ ! -s "$file" ]; then
      log "no password for $user: $file is missing (run deploy/cluster/make-secrets.sh)" >&2
      exit 1
    fi
    config=$(mktemp)
    printf 'SCRAM-SHA-512=[password=%s]\n' "$(cat "$file")" >"$config"
    "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter --entity-type users \
      --entity-name "$user" --add-config-file "$config" >/dev/null
    rm -f "$config"
  done
  log "SCRAM-SHA-512 credentials set"
}

create_acls() {
  local user kind pattern name operations args op
  while read -r user kind pattern name operations; do
    [ -n "$user" ] || continue
    args=(--bootstrap-server "$BOOTSTRAP" --add --allow-principal "User:$user"
          --resource-pattern-type "$pattern")
    case "$kind" in
      topic) args+=(--topic "$name") ;;
      group) args+=(--group "$name") ;;
      cluster) args+=(--cluster) ;;
    esac
    for op in ${operations//,/ }; do args+=(--operation "$op"); done
    "$BIN/kafka-acls.sh" "${args[@]}" >/dev/null
  done <<<"$ACLS"
  log "$(grep -c . <<<"$ACLS") ACL entries present"
}

wait_for_cluster
create_topics
create_users
create_acls
