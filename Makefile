# gpbackup_s3_plugin (TypeScript): `make` builds dist/gpbackup_s3_plugin (Linux x86_64), `make dist-arm64`
# dist/arm64/gpbackup_s3_plugin (Linux aarch64), `make test` runs every test.
.PHONY: all build dist-arm64 test unit e2e system-packages bench clean install demo

all: build

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

build: node_modules/.package-lock.json
	node scripts/build.mjs

# The first run takes the pinned aarch64 Bun runtime from the npm registry (scripts/arm64-runtime.mjs).
dist-arm64: node_modules/.package-lock.json
	node scripts/build.mjs --arm64

# Unit tests, then the integration suite against the built executables and a local S3 server (s3rver, from npm);
# the aarch64 one runs under qemu-user (test/integration/portability.test.ts); then the RGW tier and the
# end-to-end tier (the real gpbackup and gprestore on a Greenplum cluster, test/e2e).
test: system-packages build dist-arm64
	node scripts/test.mjs

# The end-to-end tier alone (it needs ../shared/e2e and root).
e2e: system-packages build
	node scripts/test.mjs e2e

# The Debian packages the tests need, installed when run as root (scripts/system-packages.sh).
system-packages:
	bash scripts/system-packages.sh

unit: node_modules/.package-lock.json
	node scripts/test.mjs unit

# Ours beside the Go plugin and the raw ceiling of gofakes3 (both from ../shared/e2e/reference.tar.xz; without
# it, the fast-s3 stand-in and no Go plugin), in one run, with and without client-side encryption in turn;
# then restore_data_subset of a million ranges; then deduplication's stored bytes, requests and costs
# against fast-s3, which counts requests (docs/performance.md, docs/deduplication.md).
bench: build
	node scripts/bench.mjs --encryption
	node scripts/bench-subset.mjs
	node scripts/bench-dedup.mjs

# Copies dist/gpbackup_s3_plugin into $GPHOME/bin and, with gpsync or gpscp, to every host of the cluster
# (HOSTFILE=<file>, else the hosts of gp_segment_configuration): scripts/install.sh.
install: build
	HOSTFILE="$(HOSTFILE)" bash scripts/install.sh

# A whole gpbackup/gprestore call sequence against a local S3 server, with a summary of every step.
demo: build
	node scripts/demo.mjs

clean:
	rm -rf dist build src/config/generated
