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

dotnet build BabyPpo.sln -c Release -nologo -v q -clp:ErrorsOnly
dotnet test BabyPpo.Tests/BabyPpo.Tests.csproj -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --results-directory TestResults "$@"
