/** A problem the user can fix (missing database, unknown experiment): printed as one paragraph, exit code 1. */
export class ReportError extends Error {
  override readonly name = 'ReportError';
}
