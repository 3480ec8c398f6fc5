// Rows for the chaos suite's table (scripts/test.mjs prints it before its summary line).
// Each scenario appends one JSON line to CHAOS_REPORT (a file the runner names), so test files
// running in parallel processes all land in one table. Without CHAOS_REPORT nothing is written.
import { appendFileSync } from 'node:fs';

export interface ChaosRow {
  /** The group: faults, fuzzing, authorisation, tokens, cache safety, floods. */
  suite: string;
  /** What was done, e.g. "Redis stopped 10 s under the shopper mix". */
  scenario: string;
  /** Requests sent during the scenario. */
  requests: number;
  /** Responses with a 5xx status (most scenarios require 0; a 503 the scenario expects is not counted here). */
  serverErrors: number;
  /** Data checks made after the scenario (stock, orders, payments, jobs) and how many held. */
  checks: number;
  checksPassed: number;
}

export function reportRow(row: ChaosRow): void {
  const file = process.env.CHAOS_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(row)}\n`);
}
