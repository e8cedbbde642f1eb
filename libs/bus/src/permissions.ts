// Per-role NATS permissions for one job (issue 13): one user per role — data-shard, trainer,
// aggregator, evaluator, monitor, launcher — each allowed to publish and subscribe only where its
// job needs. The subjects below were read off the code (every subscribe / serveLarge / publish /
// request of the apps and libs); docs/SECURITY.md has the table and what it does not guarantee.
//
// Everything is scoped to ONE job id: a trainer of job A has no subject of job B. Replies are
// scoped to ONE user: each user gets its own inbox prefix `_INBOX_<user>` (the nats.js
// `inboxPrefix` connection option, NATS_INBOX_PREFIX in an actor's environment) and may subscribe
// only to `_INBOX_<user>.>`, so no role can read another's replies. Nobody has a publish right on
// any inbox: replies go out under allow_responses, and the private upload subject of a large
// request (libs/bus/src/large.ts) is handed to the uploader as the reply subject of the server's
// handshake answer, which allow_responses then lets it publish to. The one exception is the
// monitor user, which anonymous clients also log in as: it keeps the shared `_INBOX.>` too, so
// `nats sub`, `nats micro ls` and the monitor app work without credentials; no job actor replies
// there, because every one of them uses its own prefix.
//
// Node agents (apps/node) are not a job's: each has a cluster-level user of its own, `node.<name>`
// (nodePermissions, below), confined to its own `cluster.node.<name>.*`.
import { randomBytes } from 'node:crypto';
import { CLUSTER_JOB, clusterSubjects, subjects, validateToken } from '@actorflow/protocol';
import { BusError } from './errors.ts';
import { ACTOR_SERVICE_NAME } from './service.ts';

export const ROLES = ['data-shard', 'trainer', 'aggregator', 'evaluator', 'monitor', 'launcher'] as const;
export type Role = (typeof ROLES)[number];

export interface SubjectPermission {
  readonly allow: readonly string[];
}

/**
 * nats-server's `allow_responses`: publishing to the reply subject of a message this user
 * received, at most `max` messages (chunked replies are several) within `expires`.
 */
export interface ResponsePermission {
  readonly max: number;
  /** A nats-server duration, e.g. "15m". */
  readonly expires: string;
}

export interface NatsPermissions {
  readonly publish: SubjectPermission;
  readonly subscribe: SubjectPermission;
  readonly allow_responses: ResponsePermission;
}

export interface RoleCredentials {
  readonly user: string;
  readonly pass: string;
}

/**
 * Every role's credentials, and optionally one trainer user per rank (`<job>-trainer-<r>`): the
 * launcher hands rank r's to trainer r, so ranks are told apart by the server — only rank 0's user
 * may write the mirrored replica (`J.ctl.checkpoint`), and each rank has its own inbox. The plain
 * trainer user (all ranks' rights) stays for actors started by hand.
 */
export type JobCredentials = Readonly<Record<Role, RoleCredentials>> & { readonly trainerRanks?: readonly RoleCredentials[]; readonly nodes?: readonly NodeCredentials[] };

/** The user of trainer rank `rank` of a job: `<job>-trainer-<rank>`. */
export function trainerRankUser(job: string, rank: number): string {
  if (!Number.isInteger(rank) || rank < 0) throw new PermissionsConfigError(`trainer rank ${rank} is not a non-negative integer`);
  return `${roleUser(job, 'trainer')}-${rank}`;
}

/**
 * The collective subjects trainer rank `rank` may publish and subscribe (libs/collectives star.ts:
 * `J.coll.<group>[.g<generation>].up.<from>|down|down.<r>|p2p.<to>.<from>|store`). Only rank 0,
 * the root, may publish on `down` and `down.<r>` (results, errors, progress: what every rank acts
 * on) and serve the rendezvous `store`; rank r sends its contributions on `up.<r>` alone and asks
 * the store. Ring chunks go to the next rank and acknowledgements to the previous one, so rank r
 * publishes only on `p2p.<r±1>.<r>` and `p2p.0.<r>` (rank 0 is the next rank of the last one,
 * whatever the world size after a group shrank); rank 0 on `p2p.*.0` (its previous rank is the
 * last). The sender's rank ends every such subject, so no rank can speak as another (the group
 * also checks it against the rank a message claims). Each rank subscribes only to its own
 * `down.<r>` and `p2p.<r>.*` (and rank 0 to `up.*`, `store` and `p2p.0.*`).
 */
export function collectivePermissions(job: string, rank: number): { publish: string[]; subscribe: string[] } {
  if (!Number.isInteger(rank) || rank < 0) throw new PermissionsConfigError(`trainer rank ${rank} is not a non-negative integer`);
  const j = validateToken(job, 'job id');
  // With and without the generation token: J.coll.<group>.<tail> and J.coll.<group>.g<N>.<tail>.
  const coll = (...tails: string[]): string[] => tails.flatMap((tail) => [`${j}.coll.*.${tail}`, `${j}.coll.*.*.${tail}`]);
  if (rank === 0) return { publish: coll('down', 'down.*', 'p2p.*.0'), subscribe: coll('up.*', 'store', 'p2p.0.*') };
  const p2p = [...new Set([rank - 1, rank + 1, 0])].map((k) => `p2p.${k}.${rank}`);
  return { publish: coll(`up.${rank}`, 'store', ...p2p), subscribe: coll('down', `down.${rank}`, `p2p.${rank}.*`) };
}

/**
 * Trainer rank r's permissions: the trainer's, with its own inbox, the replica (`J.ctl.checkpoint`)
 * for rank 0 only, pushes only on its own `J.ps.*.push.<r>` (the shard checks the rank a push
 * claims against it), and of the collectives only its rank's part (collectivePermissions).
 */
export function trainerRankPermissions(job: string, rank: number, user = trainerRankUser(job, rank)): NatsPermissions {
  const base = rolePermissions(job, { trainer: user }).trainer;
  const j = validateToken(job, 'job id');
  const checkpoint = `${j}.ctl.checkpoint`;
  const allColl = `${j}.coll.>`;
  const anyPush = `${j}.ps.*.push.*`;
  const coll = collectivePermissions(job, rank);
  return {
    ...base,
    publish: {
      allow: [...base.publish.allow.filter((s) => s !== allColl && s !== anyPush && (rank === 0 || s !== checkpoint)), `${j}.ps.*.push.${rank}`, ...coll.publish],
    },
    subscribe: { allow: [...base.subscribe.allow.filter((s) => s !== allColl), ...coll.subscribe] },
  };
}

/** Bad input to the permission helpers (a missing role, a user name nats-server cannot parse). */
export class PermissionsConfigError extends BusError {
  constructor(message: string) {
    super(message);
    this.name = 'PermissionsConfigError';
  }
}

/**
 * Replies may be chunked (one message per max_payload, libs/bus/src/large.ts): allow many per
 * request. The expiry must outlast the slowest handler (a final evaluation, a large snapshot).
 */
export const RESPONSE_PERMISSION: ResponsePermission = { max: 1_000_000, expires: '30m' };

/** The shared default inbox space (nats.js `_INBOX.<random>`): only the monitor (anonymous clients) keeps it. */
const SHARED_INBOX = '_INBOX.>';

/**
 * The inbox prefix of a user, `_INBOX_<user>` (characters a subject token cannot hold become
 * `_`): the user's replies and upload subjects live under `<prefix>.>` and only it may subscribe there.
 */
export function inboxPrefix(user: string): string {
  if (user === '') throw new PermissionsConfigError('an empty user name has no inbox prefix');
  return `_INBOX_${user.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** What registerActorService subscribes: `$SRV.PING|INFO|STATS`, by name, and by name and id. */
const SERVICE_SUBSCRIBE = ['$SRV.PING', '$SRV.INFO', '$SRV.STATS', `$SRV.*.${ACTOR_SERVICE_NAME}`, `$SRV.*.${ACTOR_SERVICE_NAME}.*`];
/** Discovery requests (listActorServices, actorServiceStats, `nats micro`). */
const SERVICE_REQUEST = ['$SRV.PING', '$SRV.INFO', '$SRV.STATS', `$SRV.*.${ACTOR_SERVICE_NAME}`, `$SRV.*.${ACTOR_SERVICE_NAME}.*`];

/**
 * What a launcher sends to the node agents (libs/cluster client.ts): info, start, stop and list
 * requests and lease renewals, to any node (the plan names them; a lost machine's actors move).
 */
const LAUNCHER_TO_NODES = (['info', 'start', 'stop', 'list', 'lease'] as const).map((k) => `cluster.node.*.${k}`);
/** What it follows from them: every node's actor output lines and exits (it keeps its job's). */
const LAUNCHER_FROM_NODES = [clusterSubjects.allLogs, clusterSubjects.allExits];

/** An actor's status endpoint `actorflow.status.<job>.<role>.<id>` (registerActorService). */
function statusEndpoint(job: string, role: Role): string {
  return `${ACTOR_SERVICE_NAME}.status.${job}.${role}.*`;
}

function perms(publish: readonly string[], subscribe: readonly string[]): NatsPermissions {
  return { publish: { allow: [...new Set(publish)] }, subscribe: { allow: [...new Set(subscribe)] }, allow_responses: RESPONSE_PERMISSION };
}

/**
 * The minimal publish / subscribe permissions of every role of job `job`. `users` names the user
 * of each role when it is not the default `<job>-<role>` (it decides the role's inbox prefix).
 */
export function rolePermissions(job: string, users: Readonly<Partial<Record<Role, string>>> = {}): Record<Role, NatsPermissions> {
  const j = validateToken(job, 'job id');
  const hb = `${j}.hb.*`;
  const inbox = (role: Role): string => `${inboxPrefix(users[role] ?? roleUser(j, role))}.>`;
  // Every actor heartbeats, is a NATS service (answers $SRV.* and its status endpoint) and gets replies in its own inbox.
  const actorPub = [hb];
  const actorSub = (role: Role): string[] => [...SERVICE_SUBSCRIBE, statusEndpoint(j, role), inbox(role)];
  return {
    // Serves batches, the data description, the test set and its cursor state; requests nothing.
    // Exits on a by-hand job's end (`J.ctl.stop`, announced by the config owner).
    'data-shard': perms(actorPub, [...actorSub('data-shard'), `${j}.data.info`, `${j}.data.test`, `${j}.data.*.next`, `${j}.data.*.state`, `${j}.ctl.stop`]),
    // Serves the parameter shards, the job config, the mirrored replica store and kNN collection;
    // asks the data shards for the data description (and, for kNN, the training history on data.test).
    // A by-hand job (libs/workloads job-end.ts) is ended by its config owner, aggregator shard 0: it
    // watches train.loss / train.eval, finds the evaluator ($SRV), asks it for the final score
    // (`J.eval.now`), reads the model and the shards' stats to save them, and announces the end on
    // `J.ctl.stop` — only aggregators may (the other shards, the data shards and the evaluator exit on it).
    aggregator: perms(
      [...actorPub, `${j}.data.info`, `${j}.data.test`, `${j}.eval.now`, `${j}.ctl.snapshot`, `${j}.ps.*.snapshot`, `${j}.ps.*.stats`, `${j}.knn.neighbours`, `${j}.ctl.stop`, ...SERVICE_REQUEST],
      [
        ...actorSub('aggregator'),
        `${j}.ps.*.pull`,
        `${j}.ps.*.push.*`,
        `${j}.ps.*.snapshot`,
        `${j}.ps.*.state`,
        `${j}.ps.*.stats`,
        `${j}.ctl.config`,
        `${j}.ctl.checkpoint`,
        `${j}.ctl.snapshot`,
        `${j}.ctl.state`,
        `${j}.knn.block`,
        `${j}.knn.neighbours`,
        'train.loss',
        'train.eval',
        `${j}.ctl.stop`,
      ],
    ),
    // Requests config, data and parameters, pushes gradients, sends (rank 0) and fetches
    // (restarted ranks) the mirrored replica, runs the collectives, reports train.loss. Large
    // requests (pushes, replicas, kNN blocks) upload their chunks to the aggregator's private
    // upload subject under allow_responses (it is the reply subject of the handshake answer).
    // A trainer started by hand also reads train.loss (public by contract) for the job's step/total and ETA.
    trainer: perms(
      [
        ...actorPub,
        'train.loss',
        `${j}.ctl.config`,
        `${j}.data.info`,
        `${j}.data.test`,
        `${j}.data.*.next`,
        `${j}.ps.*.pull`,
        `${j}.ps.*.push.*`,
        `${j}.ctl.checkpoint`,
        `${j}.ctl.state`,
        `${j}.knn.block`,
        `${j}.coll.>`,
      ],
      [...actorSub('trainer'), 'train.loss', `${j}.coll.>`],
    ),
    // Fetches config, test set and parameters (ps snapshots, the mirrored snapshot, kNN lists),
    // watches train.loss, reports train.eval, answers the launcher's final `<job>.eval.now`.
    evaluator: perms(
      [...actorPub, 'train.eval', `${j}.ctl.config`, `${j}.data.info`, `${j}.data.test`, `${j}.ctl.snapshot`, `${j}.ps.*.snapshot`, `${j}.knn.neighbours`],
      [...actorSub('evaluator'), 'train.loss', `${j}.eval.now`, `${j}.ctl.stop`],
    ),
    // Read-only: train.loss / train.eval of every job (public by contract) and service discovery.
    // Anonymous clients are the monitor user too and use the default inbox: it keeps `_INBOX.>`.
    monitor: perms([...actorPub, ...SERVICE_REQUEST, `${ACTOR_SERVICE_NAME}.status.${j}.>`], [...actorSub('monitor'), SHARED_INBOX, 'train.loss', 'train.eval']),
    // The job itself: reads states (data info, config, checkpoints, final evaluation, kNN lists),
    // watches heartbeats and reports, publishes nothing but these requests. On node agents (a
    // --plan / --blueprint job, apps/job/src/remote.ts) it also asks every node for its info, starts,
    // stops and lists actors, renews leases, follows the nodes' log and exit streams, and serves
    // the restore files a node fetches (`J.files.<actor>.<n>`).
    launcher: perms(
      [
        `${j}.data.info`,
        `${j}.ctl.config`,
        `${j}.eval.now`,
        `${j}.ctl.snapshot`,
        `${j}.ctl.state`,
        `${j}.ps.*.state`,
        `${j}.ps.*.snapshot`,
        `${j}.ps.*.stats`,
        `${j}.data.*.state`,
        `${j}.knn.neighbours`,
        ...SERVICE_REQUEST,
        `${ACTOR_SERVICE_NAME}.status.${j}.>`,
        ...LAUNCHER_TO_NODES,
      ],
      [hb, 'train.loss', 'train.eval', inbox('launcher'), ...LAUNCHER_FROM_NODES, `${j}.files.*.*`],
    ),
  };
}

/** The user name of a role in a job: `<job>-<role>`. */
export function roleUser(job: string, role: Role): string {
  return `${validateToken(job, 'job id')}-${role}`;
}

const secret = (): string => randomBytes(24).toString('base64url');

/**
 * Fresh random credentials for every role of a job (192-bit base64url passwords, node:crypto);
 * with `trainerRanks: n`, also one trainer user per rank 0..n-1; with `nodes: [names]`, also one
 * user per node agent (generateNodeCredentials: cluster-level, not the job's — print them once).
 */
export function generateRoleCredentials(
  job = 'job',
  o: { readonly trainerRanks?: number; readonly nodes?: readonly string[] } = {},
): Record<Role, RoleCredentials> & { readonly trainerRanks?: readonly RoleCredentials[]; readonly nodes?: readonly NodeCredentials[] } {
  const roles = Object.fromEntries(ROLES.map((role) => [role, { user: roleUser(job, role), pass: secret() }])) as Record<Role, RoleCredentials>;
  return {
    ...roles,
    ...(o.trainerRanks !== undefined ? { trainerRanks: Array.from({ length: o.trainerRanks }, (_, r) => ({ user: trainerRankUser(job, r), pass: secret() })) } : {}),
    ...(o.nodes !== undefined ? { nodes: generateNodeCredentials(o.nodes) } : {}),
  };
}

// ---- node agents (issue 16, libs/cluster agent.ts): machine-level users, one per node ----
//
// A node agent is not an actor of one job: it runs every job's actors on its machine, so its user
// cannot name a job. It is one user PER NODE, `node.<name>`, so the server confines it to its own
// `cluster.node.<name>.*`: node a can neither serve node b's start requests (which carry the
// actors' environment, their role passwords included) nor forge b's log lines and exits. The dot
// cannot occur in a job's users (`<job>-<role>`, the job id a subject token), and its inbox
// prefix `_INBOX_node.<name>` is two tokens where every job user's is one, so no job user's
// inbox can cover a node's nor the other way round.

/** One node agent's user: its name (`--name`), `node.<name>` and a password. */
export interface NodeCredentials {
  readonly name: string;
  readonly user: string;
  readonly pass: string;
}

/** The NATS user of node agent `name`: `node.<name>`. */
export function nodeUser(name: string): string {
  return `node.${validateToken(name, 'node name')}`;
}

/** The inbox prefix of node agent `name`: `_INBOX_node.<name>` (its replies, nobody else's). */
export function nodeInboxPrefix(name: string): string {
  return `_INBOX_node.${validateToken(name, 'node name')}`;
}

/**
 * The subjects a node agent fetches a job's restore files on: `<job>.files.<actor>.<n>` of any job
 * (apps/job remote.ts serves them, the agent requests them before it starts the actor). A node is
 * not a job's, so the job token is a wildcard; requests only — it cannot serve them.
 */
const NODE_FILES = '*.files.*.*';
/** A launcher's heartbeat, which renews its job's lease on the node (`<job>.hb.launcher`, any job). */
const NODE_LAUNCHER_HEARTBEATS = '*.hb.launcher';

/**
 * The permissions of node agent `name` (read off libs/cluster agent.ts and the services it
 * registers): it serves `cluster.node.<name>.info|start|stop|list|lease`, publishes its actors'
 * `cluster.node.<name>.log.*` / `exit.*`, echoes its calibration on `cluster.node.<name>.calibrate.*`
 * (measureLink / measureRequest with `node`), heartbeats on `cluster.hb.node-<name>`, is a NATS
 * service (`$SRV.*`, `actorflow.status.cluster.node.*`), hears launchers' heartbeats
 * (`*.hb.launcher`), requests restore files (`*.files.*.*`) and reads replies only in its own inbox.
 * Nothing of a job's actors: no push, pull, batch, collective, config, checkpoint, report or stop.
 */
export function nodePermissions(name: string): NatsPermissions {
  const n = validateToken(name, 'node name');
  const own = `cluster.node.${n}`;
  const calibrate = `${own}.calibrate.*`;
  return perms(
    [`${own}.log.*`, `${own}.exit.*`, calibrate, subjects.heartbeat(CLUSTER_JOB, `node-${n}`), NODE_FILES],
    [
      clusterSubjects.info(n),
      clusterSubjects.start(n),
      clusterSubjects.stop(n),
      clusterSubjects.list(n),
      clusterSubjects.lease(n),
      calibrate,
      ...SERVICE_SUBSCRIBE,
      `${ACTOR_SERVICE_NAME}.status.${CLUSTER_JOB}.node.*`,
      NODE_LAUNCHER_HEARTBEATS,
      `${nodeInboxPrefix(n)}.>`,
    ],
  );
}

/** Fresh random credentials for node agents `names` (one user each, `node.<name>`). */
export function generateNodeCredentials(names: readonly string[]): NodeCredentials[] {
  const seen = new Set<string>();
  return names.map((name) => {
    const user = nodeUser(name);
    if (seen.has(name)) throw new PermissionsConfigError(`node ${name} is named twice: every node agent needs its own --name`);
    seen.add(name);
    return { name, user, pass: secret() };
  });
}

/** What a node agent's environment needs to log in as its user (read by busOptionsFrom in apps/node). */
export function nodeCredentialsEnv(c: NodeCredentials): { NATS_USER: string; NATS_PASSWORD: string; NATS_INBOX_PREFIX: string } {
  return { NATS_USER: c.user, NATS_PASSWORD: c.pass, NATS_INBOX_PREFIX: nodeInboxPrefix(c.name) };
}

/** What connect() needs to log in as node agent `c.name`: its user, password and inbox prefix. */
export function nodeConnectOptions(c: NodeCredentials): { user: string; pass: string; inboxPrefix: string } {
  return { user: c.user, pass: c.pass, inboxPrefix: nodeInboxPrefix(c.name) };
}

/** The `users = [...]` entries of node agents (cluster-level: once per cluster, not per job). */
export function natsNodeUsers(nodes: readonly NodeCredentials[]): string {
  checkCredentials({ nodes });
  return nodes.map((c) => userEntry(`node agent ${c.name} (cluster-level)`, c, nodePermissions(c.name))).join('\n');
}

/** A string in nats-server config syntax (double-quoted, escaped). */
function q(s: string): string {
  return JSON.stringify(s);
}

function list(subjects: readonly string[]): string {
  return `[${subjects.map(q).join(', ')}]`;
}

const SAFE = /^[A-Za-z0-9_.@+=-]+$/;

function checkCredentials(creds: Partial<JobCredentials>, roles: readonly Role[] = []): void {
  const seen = new Set<string>();
  const prefixes = new Map<string, string>();
  const all: [string, RoleCredentials | undefined, string?][] = [
    ...roles.map((r) => [r, creds[r]] as [string, RoleCredentials | undefined]),
    ...(creds.trainerRanks ?? []).map((c, r) => [`trainer rank ${r}`, c] as [string, RoleCredentials]),
    ...(creds.nodes ?? []).map((c) => [`node ${c.name}`, c, c.name] as [string, RoleCredentials, string]),
  ];
  for (const [role, c, node] of all) {
    if (c === undefined) throw new PermissionsConfigError(`no credentials for role ${role}: pass one {user, pass} per role (generateRoleCredentials() makes them)`);
    if (!SAFE.test(c.user)) throw new PermissionsConfigError(`the ${role} user name '${c.user}' is not usable: use letters, digits and . _ - @ + =`);
    // A password starting with `$2` would be read as a bcrypt hash by nats-server.
    if (!SAFE.test(c.pass) || c.pass.startsWith('$2'))
      throw new PermissionsConfigError(`the ${role} password is not usable in a nats-server config: use letters, digits and . _ - @ + = (generateRoleCredentials() makes safe ones)`);
    if (seen.has(c.user)) throw new PermissionsConfigError(`user '${c.user}' is given to two roles: every role needs its own user`);
    seen.add(c.user);
    if (node !== undefined && c.user !== nodeUser(node)) throw new PermissionsConfigError(`node ${node}'s user must be ${nodeUser(node)}, got '${c.user}' (its permissions are its name's)`);
    const prefix = node !== undefined ? nodeInboxPrefix(node) : inboxPrefix(c.user);
    // `_INBOX_node.>` (a job user named 'node') would cover every node agent's inbox.
    if (prefix === '_INBOX_node') throw new PermissionsConfigError(`the ${role} user name '${c.user}' is reserved: node agents' inboxes are _INBOX_node.<name>`);
    const other = prefixes.get(prefix);
    if (other !== undefined) throw new PermissionsConfigError(`the ${role} user '${c.user}' and the ${other} user have the same inbox prefix ${prefix}: rename one (dots, @, + and = become _)`);
    prefixes.set(prefix, role);
  }
}

/** One user's entry of the `users = [...]` list. */
function userEntry(comment: string, c: RoleCredentials, p: NatsPermissions): string {
  return [
    `    # ${comment}`,
    `    { user: ${q(c.user)}, password: ${q(c.pass)}, permissions: {`,
    `        publish: { allow: ${list(p.publish.allow)} }`,
    `        subscribe: { allow: ${list(p.subscribe.allow)} }`,
    `        allow_responses: { max: ${p.allow_responses.max}, expires: ${q(p.allow_responses.expires)} }`,
    `    } }`,
  ].join('\n');
}

/**
 * The `users = [...]` entries of one job (to combine several jobs in one authorization block),
 * and of the node agents in `creds.nodes` when there are any.
 */
export function natsAuthUsers(job: string, creds: JobCredentials): string {
  checkCredentials(creds, ROLES);
  const all = rolePermissions(job, Object.fromEntries(ROLES.map((r) => [r, creds[r].user])));
  const entries: [string, RoleCredentials, NatsPermissions][] = [
    ...ROLES.map((role) => [`${role} of job ${job}`, creds[role], all[role]] as [string, RoleCredentials, NatsPermissions]),
    ...(creds.trainerRanks ?? []).map((c, r) => [`trainer rank ${r} of job ${job}`, c, trainerRankPermissions(job, r, c.user)] as [string, RoleCredentials, NatsPermissions]),
    ...(creds.nodes ?? []).map((c) => [`node agent ${c.name} (cluster-level)`, c, nodePermissions(c.name)] as [string, RoleCredentials, NatsPermissions]),
  ];
  return entries.map(([comment, c, p]) => userEntry(comment, c, p)).join('\n');
}

export interface NatsAuthConfigOptions {
  /**
   * Connections without credentials log in as the monitor user (`no_auth_user`), so "anyone can
   * subscribe to train.loss" still holds on a permissioned server (default true). With false,
   * anonymous connections are refused.
   */
  readonly anonymousMonitor?: boolean;
}

/**
 * The nats-server configuration (2.9 syntax) of one job's users: an `authorization { users = [...] }`
 * block, plus `no_auth_user` for anonymous read-only watchers. Pass it as NatsServer.start({ config }).
 * It holds the passwords: never log it.
 */
export function natsAuthConfig(job: string, creds: JobCredentials, opts: NatsAuthConfigOptions = {}): string {
  const users = natsAuthUsers(job, creds);
  const lines = ['authorization {', '  users = [', users, '  ]', '}'];
  if (opts.anonymousMonitor !== false) lines.push(`no_auth_user: ${q(creds.monitor.user)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The environment that gives a child process a role's credentials and inbox prefix (read by
 * busOptionsFrom). With the actor's name `trainer-<r>` and per-rank trainer users, rank r's.
 */
export function credentialsEnv(role: Role, creds: JobCredentials, actor?: string): { NATS_USER: string; NATS_PASSWORD: string; NATS_INBOX_PREFIX: string } {
  const rank = role === 'trainer' && actor !== undefined ? /^trainer-(\d+)$/.exec(actor)?.[1] : undefined;
  const ranked = rank !== undefined ? creds.trainerRanks?.[Number(rank)] : undefined;
  if (rank !== undefined && creds.trainerRanks !== undefined && ranked === undefined)
    throw new PermissionsConfigError(`no trainer user for rank ${rank} (users were made for ${creds.trainerRanks.length} rank(s))`);
  const c = ranked !== undefined ? { user: ranked.user, pass: ranked.pass, inboxPrefix: inboxPrefix(ranked.user) } : roleConnectOptions(role, creds);
  return { NATS_USER: c.user, NATS_PASSWORD: c.pass, NATS_INBOX_PREFIX: c.inboxPrefix };
}

/** What connect() needs to log in as a role: its user, password and inbox prefix. */
export function roleConnectOptions(role: Role, creds: Readonly<Record<Role, RoleCredentials>>): { user: string; pass: string; inboxPrefix: string } {
  const c = creds[role] as RoleCredentials | undefined;
  if (c === undefined) throw new PermissionsConfigError(`no credentials for role ${role}`);
  return { user: c.user, pass: c.pass, inboxPrefix: inboxPrefix(c.user) };
}

/** The role that runs each app (`apps/<app>`; the launcher is apps/job). */
export function roleOfApp(app: string): Role {
  const role = app === 'job' ? 'launcher' : app;
  if (app === 'node') throw new PermissionsConfigError("the node agent is no job's role: each agent has its own cluster-level user, nodeUser(name) with nodePermissions(name)");
  if (!(ROLES as readonly string[]).includes(role)) throw new PermissionsConfigError(`app '${app}' has no NATS role: expected one of ${ROLES.join(', ')} or job`);
  return role as Role;
}

/**
 * What `npx nx run job -- --print-nats-config` prints: a nats-server config for the job's users
 * with fresh passwords, and, as comments, the environment each actor needs. It contains secrets:
 * write it where only the cluster's operator reads it.
 */
export function printNatsConfig(job: string, creds: JobCredentials = generateRoleCredentials(job)): string {
  const header = [
    `# actorflow: per-role NATS users of job ${job} (docs/SECURITY.md). Generated ${new Date().toISOString()}.`,
    '# Include this in the cluster\'s nats-server config (`include "actorflow-<job>.conf"`) and reload.',
    "# It holds passwords: keep it readable by the operator only. Give each actor its role's credentials:",
    ...ROLES.map((role) => `#   ${role.padEnd(10)} NATS_USER=${creds[role].user} NATS_PASSWORD=${creds[role].pass} NATS_INBOX_PREFIX=${inboxPrefix(creds[role].user)}`),
    ...(creds.trainerRanks ?? []).map((c, r) => `#   ${`trainer ${r}`.padEnd(10)} NATS_USER=${c.user} NATS_PASSWORD=${c.pass} NATS_INBOX_PREFIX=${inboxPrefix(c.user)}`),
    ...(creds.trainerRanks !== undefined ? ["# Start trainer rank r as 'trainer r' (e.g. `nx run trainer -- --rank r`): the plain trainer user may speak as any rank; keep it for nothing else."] : []),
    ...(creds.nodes ?? []).map((c) => {
      const env = nodeCredentialsEnv(c);
      return `#   ${`node ${c.name}`.padEnd(10)} NATS_USER=${env.NATS_USER} NATS_PASSWORD=${env.NATS_PASSWORD} NATS_INBOX_PREFIX=${env.NATS_INBOX_PREFIX}  (npx nx serve node -- --name ${c.name})`;
    }),
    ...(creds.nodes !== undefined && creds.nodes.length > 0
      ? ["# Node users belong to the cluster, not to this job: add them once (a later job's config without --nodes), and give each agent only its own."]
      : []),
    '# (or --nats-user / --nats-pass / --nats-inbox-prefix; each user may read replies only under its own prefix).',
    '# Anonymous clients log in as the monitor (read-only train.loss / train.eval).',
    '',
  ];
  return `${header.join('\n')}${natsAuthConfig(job, creds)}`;
}
