#!/bin/sh
# The three-region demo's secrets, made on the machine that runs it (none is in git): the
# tunnel key every region shares (tunnel.key) and the operators' admin token (admin.token),
# 32 random bytes each as hex, readable by their owner only. Existing files are kept.
#
#   conf/regions/make-secrets.sh [DIR]     (default: this script's directory)
set -eu
DIR=${1:-$(cd "$(dirname "$0")" && pwd)}
mkdir -p "$DIR"
umask 077
for name in tunnel.key admin.token; do
  if [ ! -s "$DIR/$name" ]; then
    openssl rand -hex 32 > "$DIR/$name.tmp"
    mv "$DIR/$name.tmp" "$DIR/$name"
  fi
done
