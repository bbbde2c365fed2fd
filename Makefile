# gpbackup_s3_plugin (TypeScript): `make` builds dist/gpbackup_s3_plugin, `make test` runs every test.
.PHONY: all build test unit bench clean install demo

all: build

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

build: node_modules/.package-lock.json
	node scripts/build.mjs

# Unit tests, then the integration suite against the built executable and a local S3 server (s3rver, from npm).
test: build
	node scripts/test.mjs

unit: node_modules/.package-lock.json
	node scripts/test.mjs unit

# Start-up, transfer and client-side encryption benchmarks against the local S3 server (docs/performance.md).
bench: build
	node scripts/bench-startup.mjs
	node scripts/bench-transfer.mjs
	node scripts/bench-subset.mjs
	node scripts/bench-encryption.mjs

# Copies dist/gpbackup_s3_plugin into $GPHOME/bin and, with gpsync or gpscp, to every host of the cluster
# (HOSTFILE=<file>, else the hosts of gp_segment_configuration): scripts/install.sh.
install: build
	HOSTFILE="$(HOSTFILE)" bash scripts/install.sh

# A whole gpbackup/gprestore call sequence against a local S3 server, with a summary of every step.
demo: build
	node scripts/demo.mjs

clean:
	rm -rf dist build src/config/generated
