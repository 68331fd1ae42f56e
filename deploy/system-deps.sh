#!/usr/bin/env bash
# Installs the Debian packages the integration tests and the benchmark use, when missing:
# clickhouse-server (a real server next to the embedded chdb), prometheus (promtool, and a
# real Prometheus for the alerting test), prometheus-alertmanager (amtool, and a real
# Alertmanager for the alarm delivery tests), zookeeper (the replicated ClickHouse),
# chromium (the briefing's browser test), a CJK
# font (Chinese in the briefing's charts and pages), Go (builds kubeconform) and
# docker-compose (config checks). Java 17+ and Maven are checked by `ebi stack`.
set -euo pipefail
need=()
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server clickhouse-client)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# a real Alertmanager for the alarm delivery tests; the package ships amtool
command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 \
  || need+=(prometheus-alertmanager)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
# ZooKeeper 3.8 coordinates the replicated ClickHouse of the cluster tests (18.16's client
# protocol; 3.9.0-3.9.2 do not speak it); the stack starts its own from the jar
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
# Go builds kubeconform for the deploy/k8s validation (make k8s-tools)
command -v go >/dev/null 2>&1 || need+=(golang-go)
# compose file validation in the unit tests (the Docker client here has no compose plugin)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
# The Debian package may start a system service on its default ports; ebi runs its own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now clickhouse-server prometheus prometheus-alertmanager zookeeper >/dev/null 2>&1 || true; fi
pkill -f '/usr/bin/prometheus --' >/dev/null 2>&1 || true
