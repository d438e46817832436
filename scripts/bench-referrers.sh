#!/bin/bash
# One measured run: hoist vs oras attaching a 1 MiB SBOM and listing, on distribution 2.8 (loopback).
set -e
B=$(mktemp -d); H=${H:-$(pwd)/target/release/hoist}; O=${O:-$(pwd)/.tools/bin/oras}
PORT=${PORT:-5731}; R=127.0.0.1:$PORT
rm -rf $B/storage; mkdir -p $B/storage
cat > $B/config.yml <<CFG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $B/storage}}
http: {addr: $R}
CFG
docker-registry serve $B/config.yml > $B/registry.log 2>&1 &
RPID=$!; trap "kill $RPID; rm -rf $B" EXIT
for i in $(seq 50); do curl -fs http://$R/v2/ >/dev/null && break; sleep 0.1; done
cd $B; head -c 1048576 /dev/urandom | base64 -w0 | head -c 1048576 > sbom.json
for n in 1 2 3; do echo "image $n" > img$n.txt; $O push --plain-http $R/app:$n img$n.txt >/dev/null; done
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(echo "$(date +%s.%N) - $s" | bc)"; }
echo "hoist attach 1 MiB:   $(t $H attach $R/app:1 --artifact-type application/spdx+json sbom.json:application/spdx+json -q) s"
echo "oras attach 1 MiB:    $(t $O attach --plain-http --artifact-type application/spdx+json $R/app:2 sbom.json:application/spdx+json) s"
echo "hoist referrers:      $(t $H referrers $R/app:1) s"
echo "oras discover:        $(t $O discover --plain-http $R/app:2) s"
s=$(date +%s.%N)
for i in $(seq 8); do echo "{\"n\":$i}" > doc$i.json; $H attach $R/app:3 --artifact-type application/vnd.example.doc$i doc$i.json -q >/dev/null 2>&1 & P="$P $!"; done
wait $P
echo "8 parallel hoist attach to one image: $(echo "$(date +%s.%N) - $s" | bc) s; listed: $($H referrers $R/app:3 --json | grep -c '"digest"')"
