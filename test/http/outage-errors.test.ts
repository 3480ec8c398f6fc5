// Which errors say a part the server needs is away (answered 503/507 by the error handler), and
// which are only this request's failure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../src/infra/cache/store.ts';
import { diskFault } from '../../src/infra/disk.ts';
import { isOutage } from '../../src/infra/http/errors.ts';

const errno = (code: string, message = code) => Object.assign(new Error(message), { code });

test('disk faults: errno codes, PostgreSQL 53100 and PGlite’s C-library texts; nothing else', () => {
  assert.equal(diskFault(errno('ENOSPC')), 'full');
  assert.equal(diskFault(errno('EDQUOT')), 'full');
  assert.equal(diskFault(errno('53100', 'could not extend file')), 'full');
  assert.equal(diskFault(new Error('could not write block 7: No space left on device')), 'full');
  assert.equal(diskFault(errno('EROFS')), 'read_only');
  assert.equal(diskFault(errno('42501', 'could not open file "base/1/2": Read-only file system')), 'read_only');
  assert.equal(diskFault(new Error('Quota exceeded for quota metric "requests"')), undefined, 'an API’s rate quota is not a full disk');
  assert.equal(diskFault(errno('EACCES')), undefined);
  assert.equal(diskFault(undefined), undefined);
});

test('outages: the database out of reach, a store away, a disk fault; not a bug or a refusal', () => {
  assert.equal(isOutage(errno('ECONNREFUSED')), true);
  assert.equal(isOutage(new StoreUnavailableError('session', errno('ECONNREFUSED'))), true);
  assert.equal(isOutage(errno('ENOSPC')), true);
  assert.equal(isOutage(new TypeError('x is undefined')), false);
  assert.equal(isOutage(errno('23505', 'duplicate key')), false);
});
