// npx nx serve node [-- --name NAME --label zone=a --energy-efficient --blueprint FILE …]
// The node agent, one per machine: advertises what the machine is (cores, memory, GPUs, TF.js
// backends, a calibration measured now), and starts, stops and reports a job's actors on request.
// The work is in @actorflow/cluster (NodeAgent); this file reads flags and wires it.
import { hostname, networkInterfaces } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, busOptionsFrom, connectActor, exitOnSignals, FlagError, intFlag, nodeInboxPrefix, nodeUser, runActor } from '@actorflow/bus';
import { calibrate, detectGpus, hostFacts, loadBlueprint, machineNameOf, measureLink, measureRequest, NodeAgent } from '@actorflow/cluster';
import { DEFAULT_LEASE_MS } from '@actorflow/protocol';

const usage = `Usage: npx nx serve node -- [options]
  --name NAME            this node's name, a subject token (default: the host name)
  --address ADDR         how others reach it (default: its first non-loopback IPv4 address)
  --label KEY=VALUE      a label (repeatable), e.g. --label zone=a
  --energy-efficient     advertise this machine as energy efficient
  --blueprint FILE       take the name's labels, GPUs count and energy flag from a blueprint
  --root DIR             actor entries are resolved inside it (default: this repository)
  --backend NAME         TF.js backend for the calibration (default: the best that loads)
  --cores N              cores this machine offers to jobs (default: all it has; less when it is shared)
  --lease-ms MS          stop a job's actors when its lease is silent this long (default ${DEFAULT_LEASE_MS})
${busFlagsHelp}
On a broker with per-role users (docs/SECURITY.md) the agent logs in as its own node user:
NATS_USER=node.NAME NATS_PASSWORD=… (from \`npx nx run job -- --print-nats-config --nodes NAME,…\`);
its inbox prefix _INBOX_node.NAME is then the default, and its actors do not inherit these.`;

/** A path the user typed, against the folder they ran the command in (nx runs us in apps/node; INIT_CWD is theirs). */
function userPath(p: string): string {
  return isAbsolute(p) ? p : resolve(process.env.INIT_CWD ?? process.cwd(), p);
}

function firstAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return hostname();
}

await runActor('node', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      name: { type: 'string' },
      address: { type: 'string' },
      label: { type: 'string', multiple: true },
      'energy-efficient': { type: 'boolean' },
      blueprint: { type: 'string' },
      root: { type: 'string' },
      backend: { type: 'string' },
      'lease-ms': { type: 'string' },
      cores: { type: 'string' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const { label: labelList, ...flags } = v;
  const name = v.name ?? machineNameOf(hostname());
  if (!/^[-\w]+$/.test(name)) throw new FlagError(`--name '${name}' must be letters, digits, '-' or '_' (a NATS subject token)`);
  const labels: Record<string, string> = {};
  let energyEfficient = v['energy-efficient'] === true;
  let address = v.address;
  if (v.blueprint !== undefined) {
    const m = loadBlueprint(userPath(v.blueprint)).machines.find((x) => x.name === name);
    if (m === undefined) throw new FlagError(`--blueprint ${v.blueprint} names no machine '${name}'; pass --name with one of its names`);
    Object.assign(labels, m.labels ?? {});
    energyEfficient ||= m.energyEfficient === true;
    address ??= m.address;
  }
  for (const l of labelList ?? []) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new FlagError(`--label takes KEY=VALUE, got '${l}'`);
    labels[l.slice(0, eq)] = l.slice(eq + 1);
  }
  // As its node user (`node.<name>`, docs/SECURITY.md) the agent may read replies only under
  // `_INBOX_node.<name>`: that prefix is the default then, and another node's user is refused.
  const bus = busOptionsFrom(flags, process.env);
  const asNode = bus.user === nodeUser(name);
  if (!asNode && bus.user?.startsWith('node.') === true) throw new FlagError(`NATS user '${bus.user}' is another node agent's; this agent is --name ${name}, whose user is ${nodeUser(name)}`);
  if (asNode && bus.inboxPrefix !== undefined && bus.inboxPrefix !== nodeInboxPrefix(name))
    throw new FlagError(`inbox prefix '${bus.inboxPrefix}': node ${name}'s user may read replies only under ${nodeInboxPrefix(name)} (leave NATS_INBOX_PREFIX unset, or set it to that)`);
  const leaseMs = intFlag('lease-ms', v['lease-ms'], DEFAULT_LEASE_MS, 1);
  const root = resolve(v.root !== undefined ? userPath(v.root) : resolve(dirname(fileURLToPath(import.meta.url)), '../..'));
  const log = actorLog(`node ${name}`);
  const [cal, gpus] = await Promise.all([calibrate({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log }), detectGpus()]);
  const conn = await connectActor(asNode ? { ...flags, 'nats-inbox-prefix': nodeInboxPrefix(name) } : flags, { name: `node-${name}`, log });
  // The node user's rights are the agent's, never an actor's: its actors do not inherit them (they
  // get their role's credentials in the start request's env, or none).
  if (asNode) for (const k of ['NATS_USER', 'NATS_PASSWORD', 'NATS_INBOX_PREFIX']) delete process.env[k];
  const linkMBps = await measureLink(conn.nc, { node: name });
  const requestMs = await measureRequest(conn.nc, { node: name });
  const facts = hostFacts();
  const cores = intFlag('cores', v.cores, facts.cores, 1);
  const servers = bus.servers;
  const agent = await NodeAgent.start(conn.nc, {
    name,
    address: address ?? firstAddress(),
    cores,
    cpuModel: facts.cpuModel,
    memoryBytes: facts.memoryBytes,
    freeMemory: () => hostFacts().freeMemoryBytes,
    gpus,
    backends: cal.backends,
    labels,
    energyEfficient,
    calibration: {
      sparseExamplesPerSec: cal.sparseExamplesPerSec,
      matmulGflops: cal.matmulGflops,
      ...(linkMBps !== undefined ? { linkMBps } : {}),
      ...(requestMs !== undefined ? { requestMs } : {}),
      ms: cal.ms,
    },
    root,
    childEnv: { NATS_URL: servers.join(',') },
    leaseMs,
    log,
  });
  log(
    `serving cluster.node.${name}.* on ${conn.nc.getServer()}: ${cores} cores, ${(facts.memoryBytes / 1024 ** 3).toFixed(1)} GiB, ${gpus.length} GPU(s), backends ${cal.backends.join('/')}, ` +
      `${cal.sparseExamplesPerSec} sparse ex/s, ${cal.matmulGflops} GFLOP/s, link ${linkMBps ?? '?'} MB/s, ${requestMs ?? '?'} ms a request (calibrated in ${cal.ms} ms)`,
  );
  exitOnSignals(conn, () => agent.close());
});
