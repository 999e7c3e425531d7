#!/bin/bash
# Makes the anxin role and database on the Patroni cluster, through haproxy-db (so on the
# primary). Run once by compose.yaml's db-init service after the database nodes start; safe
# to run again: it creates what is missing and sets the role's password from
# ANXIN_DB_PASSWORD, so changing the password in .env and running the service again
# (`docker compose -f deploy/cluster/compose.yaml run --rm db-init`) changes it.
# anxind creates and migrates its own tables at start.
#
# Environment: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (the superuser's connection)
# and ANXIN_DB_PASSWORD.
set -euo pipefail

: "${ANXIN_DB_PASSWORD:?ANXIN_DB_PASSWORD must be set}"

# Patroni bootstraps the first node, then HAProxy finds it: a minute or two on a slow host.
for attempt in $(seq 1 120); do
    if pg_isready -q; then
        break
    fi
    if [ "$attempt" -eq 120 ]; then
        echo "db-init: no PostgreSQL primary at $PGHOST:$PGPORT after 4 minutes" >&2
        exit 1
    fi
    sleep 2
done
# pg_isready answers before the superuser's password is set on a fresh cluster.
for attempt in $(seq 1 30); do
    if psql -XtAc 'SELECT 1' >/dev/null 2>&1; then
        break
    fi
    if [ "$attempt" -eq 30 ]; then
        psql -XtAc 'SELECT 1'   # say why
        exit 1
    fi
    sleep 2
done

# The password travels as a psql variable, quoted by psql (:'name'), never in the command
# line or in PostgreSQL's log: Spilo logs every DDL statement (log_statement = ddl), so this
# session turns that off first.
psql -X -v ON_ERROR_STOP=1 -v anxin_password="$ANXIN_DB_PASSWORD" <<'SQL'
SET log_statement = 'none';
SELECT 'CREATE ROLE anxin LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'anxin')
\gexec
ALTER ROLE anxin WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'anxin_password';
SELECT 'CREATE DATABASE anxin OWNER anxin ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'anxin')
\gexec
SQL
echo "db-init: role and database anxin are ready on $PGHOST:$PGPORT"
