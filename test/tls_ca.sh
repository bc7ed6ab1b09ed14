#!/usr/bin/env bash
# test/tls_ca.sh DIR: a throwaway CA and a server certificate for localhost
# and 127.0.0.1, made with openssl for make run and the tests (never
# committed). DIR gets ca.pem (trust this: curl --cacert) and server.pem
# (certificate + key, as HAProxy wants them).
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj "/CN=marketdata test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile ext.cnf -out server.crt 2>/dev/null
cat server.crt server.key >server.pem
chmod 600 ca.key server.key server.pem
echo "$dir"
