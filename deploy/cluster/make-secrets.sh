#!/usr/bin/env bash
# Creates the files deploy/compose.cluster.yaml reads as compose secrets, in deploy/cluster/
# secrets/ (git-ignored; or the directory given as $1): random passwords for every Kafka user,
# ClickHouse and Grafana, a private CA and the brokers' TLS key and certificate (PEM, for
# kafka-1..3 and 127.0.0.1), the registration authority's signing key and the workers' trust
# file. Existing files are kept, so running it again changes nothing;
# delete the directory to rotate everything. Needs openssl. Prints no secret.
set -euo pipefail
out=${1:-"$(cd "$(dirname "$0")" && pwd)/secrets"}
mkdir -p "$out"
chmod 700 "$out"
umask 077
cd "$out"

password() {  # a file holding a random password, once
  [ -s "$1" ] || openssl rand -hex 24 | tr -d '\n' >"$1"
}

# Kafka users (SCRAM-SHA-512), one per role; deploy/kafka/cluster-setup.sh creates them.
for user in ebi-worker ebi-sink ebi-gateway ebi-regional-system ebi-registration-authority \
            ebi-operator; do
  password "kafka-user-$user"
done
password clickhouse-password
password grafana-admin-password

# TLS: a CA, and one broker certificate for the three brokers and the loopback listener.
if [ ! -s kafka-ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=ebi-kafka-ca" \
    -keyout kafka-ca.key -out kafka-ca.pem 2>/dev/null
fi
if [ ! -s kafka-broker.pem ]; then
  openssl req -newkey rsa:3072 -nodes -subj "/CN=ebi-kafka-broker" \
    -keyout broker.key -out broker.csr 2>/dev/null
  printf 'subjectAltName=DNS:kafka-1,DNS:kafka-2,DNS:kafka-3,DNS:localhost,IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in broker.csr -CA kafka-ca.pem -CAkey kafka-ca.key -CAcreateserial \
    -days 825 -extfile san.ext -out broker.crt 2>/dev/null
  # Kafka's PEM key store: the unencrypted PKCS#8 key, then the certificate chain.
  { openssl pkcs8 -topk8 -nocrypt -in broker.key; cat broker.crt kafka-ca.pem; } >kafka-broker.pem
  rm -f broker.key broker.csr broker.crt san.ext kafka-ca.srl
fi
# Record signing (docs/security.md): the registration authority's Ed25519 key, and the
# workers' trust file with its public key (the raw 32 bytes: the end of the DER form).
if [ ! -s registrar-signing.key ]; then
  openssl genpkey -algorithm ed25519 -out registrar-signing.key 2>/dev/null
fi
if [ ! -s signing-trust.toml ]; then
  public=$(openssl pkey -in registrar-signing.key -pubout -outform DER | tail -c 32 | base64)
  printf '# the registration authority'"'"'s public keys (made by make-secrets.sh)\n[[registrar]]\npublic_key = "%s"\n' \
    "$public" >signing-trust.toml
fi
chmod 644 ./*   # read by the containers' own users (ebi, clickhouse, appuser, grafana)
chmod 600 kafka-ca.key   # signs certificates; no container mounts it
chmod 600 registrar-signing.key   # signs registrations (`ebi keys register --authority-key`)
echo "make-secrets: $(ls | wc -l) files in $out"
