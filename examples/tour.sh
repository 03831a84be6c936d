#!/usr/bin/env bash
# A guided tour on a throw-away database: every command is printed, then run, with its real output.
set -euo pipefail
cd "$(dirname "$0")/.."
export TOLLGATE_DB="${TOLLGATE_DB:-$(mktemp -d)/tour.db}"
export NO_COLOR=1

step() {
  printf '\n$ %s\n' "$*"
  "$@"
}

echo "database: $TOLLGATE_DB"
step tollgate customer import examples/customers.csv
step tollgate customer import examples/customers.csv
step tollgate customer add "Umbrella Corp" --email it@umbrella.example
step tollgate customer list --search ACME
step tollgate customer show acme-inc
step tollgate customer archive initech --yes
step tollgate customer list --all
step tollgate log --limit 5
step tollgate db info
