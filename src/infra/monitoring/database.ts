// The database part of monitoring: pool use, statement counts and times (all of them timed in the
// database layer, see statements.ts), the slow statements, table sizes, and the server's own
// pg_stat_statements when the extension is installed.
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';

const r2 = (n: number) => Math.round(n * 100) / 100;

async function tableSizes(app: FastifyInstance) {
  const { rows } = await sql<{ name: string; rows_estimate: number; total_bytes: number }>`
    select c.relname as name, greatest(c.reltuples, 0)::bigint as rows_estimate, pg_total_relation_size(c.oid) as total_bytes
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = ${app.database.schema} and c.relkind = 'r'
     order by pg_total_relation_size(c.oid) desc limit 40`.execute(app.database.db);
  return rows.map((t) => ({ name: t.name, rows_estimate: Number(t.rows_estimate), total_bytes: Number(t.total_bytes) }));
}

/** The top statements by total time from pg_stat_statements, or why there are none. */
async function statStatements(app: FastifyInstance): Promise<{ available: boolean; reason?: string; top?: unknown[] }> {
  if (app.database.kind !== 'postgres') return { available: false, reason: 'embedded database' };
  const installed = await sql<{ n: number }>`select count(*)::int as n from pg_extension where extname = 'pg_stat_statements'`.execute(app.database.db);
  if (!installed.rows[0]?.n) return { available: false, reason: 'the pg_stat_statements extension is not installed' };
  try {
    const { rows } = await sql<{ query: string; calls: number; total_ms: number; mean_ms: number; rows: number }>`
      select query, calls, total_exec_time as total_ms, mean_exec_time as mean_ms, rows
        from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
       order by total_exec_time desc limit 20`.execute(app.database.db);
    return { available: true, top: rows.map((s) => ({ query: s.query, calls: Number(s.calls), total_ms: r2(Number(s.total_ms)), mean_ms: r2(Number(s.mean_ms)), rows: Number(s.rows) })) };
  } catch (err) {
    // Installed but not preloaded (shared_preload_libraries), or not readable by this role.
    return { available: false, reason: (err as Error).message };
  }
}

export async function databaseReport(app: FastifyInstance) {
  const st = app.database.statements;
  const [tables, pgss] = await Promise.all([tableSizes(app).catch(() => []), statStatements(app).catch((err: Error) => ({ available: false, reason: err.message }))]);
  return {
    timestamp: new Date().toISOString(),
    kind: app.database.kind,
    schema: app.database.schema,
    pools: app.database.pools(),
    statements: {
      count: st.statements,
      total_ms: r2(st.totalMs),
      mean_ms: st.statements ? r2(st.totalMs / st.statements) : 0,
      by_target: Object.fromEntries(Object.entries(st.byTarget).map(([k, v]) => [k, { statements: v.statements, total_ms: r2(v.total_ms), max_ms: r2(v.max_ms) }])),
    },
    slow_query_ms: st.slowMs,
    slow_statements: st.slowest(),
    tables,
    pg_stat_statements: pgss,
  };
}
