#!/bin/sh
# Demo certificates for conf/tls-edge.yaml, made with the openssl command line (ECDSA P-256,
# valid 30 days): a CA, a server certificate for localhost and 127.0.0.1, a second one for
# *.example.test (SNI picks it), a client certificate for mutual TLS, and a stapled OCSP
# response for the server certificate. Never use these outside a test: the CA key is here.
#
#   conf/tls/make-certs.sh [DIR]     (default: this script's directory)
set -eu
DIR=${1:-$(cd "$(dirname "$0")" && pwd)}
mkdir -p "$DIR"
cd "$DIR"
quiet() { "$@" > /dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; }
key() { quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key ca.key
quiet openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=sluice demo CA"
: > ca.index
sign() {  # name, subject, extensions
  key "$1.key"
  printf '%b\n' "$3" > "$1.ext"
  quiet openssl req -new -key "$1.key" -out "$1.csr" -subj "$2"
  quiet openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
    -days 30 -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
sign server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
sign other "/CN=example.test" "subjectAltName=DNS:*.example.test\nextendedKeyUsage=serverAuth"
sign client "/O=sluice demo client" "extendedKeyUsage=clientAuth"
quiet openssl ocsp -issuer ca.pem -cert server.pem -reqout server.oreq -no_nonce
quiet openssl ocsp -index ca.index -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin server.oreq \
  -respout server.ocsp -ndays 7
rm -f server.oreq
# A session ticket key (80 random bytes, as nginx's): shared by every process given the file.
(umask 077 && openssl rand 80 > ticket.key)
echo "certificates in $DIR"
