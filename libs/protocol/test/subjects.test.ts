import t from 'tap';
import { ProtocolError, subjects, validateToken } from '../mod.ts';

t.equal(subjects.loss, 'train.loss');
t.equal(subjects.eval, 'train.eval');
t.equal(subjects.dataNext('job-1', 2), 'job-1.data.2.next');
t.equal(subjects.psPull('j', 0), 'j.ps.0.pull');
t.equal(subjects.psPush('j', 1, 2), 'j.ps.1.push.2');
t.equal(subjects.psPushAny('j', 1), 'j.ps.1.push.*');
t.equal(subjects.psStats('j', 1), 'j.ps.1.stats');
t.equal(subjects.psSnapshot('j', 1), 'j.ps.1.snapshot');
t.equal(subjects.ctl('j', 'stop'), 'j.ctl.stop');
t.equal(subjects.dataInfo('j'), 'j.data.info');
t.equal(subjects.dataTest('j'), 'j.data.test');
t.equal(subjects.evalNow('j'), 'j.eval.now');
t.equal(subjects.collective('j', 'world', 3, 'allreduce', 0), 'j.coll.world.3.allreduce.0');
for (const bad of ['a.b', 'a b', '*', '>', '', 'x>']) {
  t.throws(() => subjects.dataNext(bad, 0), ProtocolError, `rejects job id '${bad}'`);
}
t.throws(() => validateToken('a.b', 'group name'), /group name 'a.b'/);
