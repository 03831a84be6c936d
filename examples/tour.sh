#!/usr/bin/env bash
# A guided tour on a throw-away database: every command is printed, then run, with its real output.
# Usage: bash examples/tour.sh            (TOLLGATE_DB may point elsewhere; it is never the default one)
set -uo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT  # the throw-away database, its data folder and the downloads
export TOLLGATE_DB="$WORK/tour.db"
export NO_COLOR=1 COLUMNS="${COLUMNS:-120}"

step() {
  printf '\n$ %s\n' "$*"
  "$@"
  local code=$?
  [ "$code" -eq 0 ] || printf '[exit %s]\n' "$code"
}

echo "A throw-away database: $TOLLGATE_DB"
# The catalog is code: products, features, plans, prices, usage charges, license policy, downloads, links.
step tollgate catalog import sample-catalog.toml --dry-run
step tollgate catalog import sample-catalog.toml
step tollgate catalog import sample-catalog.toml
step tollgate plan list
step tollgate plan show pro
# Customers, in bulk (safe to re-run) and one by one.
step tollgate customer import examples/customers.csv
step tollgate customer import examples/customers.csv
step tollgate customer add "Umbrella Corp" --email it@umbrella.example
step tollgate customer list --search ACME
# Subscriptions, entitlements and the access check.
step tollgate sub add acme-inc pro
step tollgate sub add acme-inc pro --interval month --currency USD --trial-days 0
step tollgate entitlements acme-inc
step tollgate check acme-inc sso
step tollgate check acme-inc priority-support
step tollgate check acme-inc api-calls --quantity 500 --consume
step tollgate override set acme-inc max-projects 250 --note "pilot: lots of projects"
step tollgate check acme-inc max-projects --json
# Metered usage: idempotent reports, charts, and the bill.
step tollgate sub add globex ai-scale --interval month --start 2026-10-15
step tollgate usage report globex ai-tokens 62500000 --at 2026-10-20T09:00:00Z --id evt-1
step tollgate usage report globex ai-tokens 62500000 --at 2026-10-20T09:00:00Z --id evt-1
step tollgate usage report globex ai-tokens 9000000 --at 2026-11-02T09:00:00Z --id evt-2
step tollgate usage report globex image-generations 5230 --at 2026-10-21T09:00:00Z --id evt-3
step tollgate usage show globex --by month --from 2026-06-01 --to 2026-11-30
step tollgate usage show globex --feature ai-tokens --by month --from 2026-08-01 --to 2026-11-30
step tollgate invoice preview globex --period 2026-10
# A one-time purchase delivers a license key, a download and links.
step tollgate sub add zoe markdown-studio-2 --currency USD
step tollgate license list --customer zoe
KEY="$(tollgate license list --customer zoe --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["key"])')"
step tollgate license activate "$KEY" --name zoe-laptop
step tollgate license validate "$KEY"
step tollgate download list --customer zoe
step tollgate link list --customer zoe
step tollgate download get zoe "$(tollgate download list --customer zoe --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" --to "$WORK/zoe"
step tollgate download get initech "$(tollgate download list --customer zoe --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" --to "$WORK/initech"
# The whole profile on one screen, the journal, and the database.
step tollgate customer show acme-inc
step tollgate customer archive acme-inc --yes
step tollgate log --limit 6
step tollgate db info
step tollgate db check
