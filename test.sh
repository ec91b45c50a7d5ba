#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts what the tests need, builds,
# then runs every test of BabyPpo.Tests. Extra arguments go to `dotnet test`
# (e.g. ./test.sh --filter "FullyQualifiedName~Parity").
set -euo pipefail
cd "$(dirname "$0")"

# The tests read the reference fixtures and data from ../shared (or $BABYPPO_SHARED).
shared="${BABYPPO_SHARED:-$(cd .. && pwd)/shared}"
if [ ! -d "$shared/fixtures" ]; then
  echo "test.sh: no fixtures at $shared/fixtures; clone the repository beside ../shared or set BABYPPO_SHARED" >&2
  exit 1
fi
export BABYPPO_SHARED="$shared"

# Debian packages of the web tests: PostgreSQL (a throwaway cluster) and Chromium (Playwright).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} (apt-get)…" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A throwaway PostgreSQL cluster on 127.0.0.1 and a free port, stopped when the script exits.
for variable in $(compgen -e | grep '^PG' || true); do unset "$variable"; done
pgbin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
pgdir="$(mktemp -d /tmp/babyppo-pg.XXXXXX)"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$pgdir"
port=15432
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
as_postgres "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust >"$pgdir/initdb.log"
as_postgres "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w start \
  -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
trap 'as_postgres "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
export BABYPPO_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"

dotnet build BabyPpo.sln -c Release -nologo -v q -clp:ErrorsOnly
dotnet test BabyPpo.Tests/BabyPpo.Tests.csproj -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --results-directory TestResults "$@"
