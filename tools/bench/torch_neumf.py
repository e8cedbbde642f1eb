#!/usr/bin/env python3
"""NeuMF of libs/models (neumf) in PyTorch, the reference row of bench:vs-torch-models.

Same network as the registered defaults: GMF tower gU(u) ⊙ gI(i) (dim 16) ‖ MLP tower
[mU(u) ‖ mI(i)] (mlpDim 32 each) → ReLU 64 → ReLU 32 → ReLU 16, concatenated → one logit.
Embeddings N(0, 0.01²); MLP and output weights Glorot-uniform, biases 0. Every training rating is
a positive (label 1) and gets `--negatives` 4 items drawn uniformly from those the user has not
interacted with (the history file, else the training ratings), resampled until none is in the
history — drawn per batch inside the timed loop, as actorflow draws them per step. Loss: mean
binary cross-entropy on logits over the positives and negatives. Adam lr 0.002, batch 256
(ratings; each with its negatives), shuffled.

--impl sparse (default) is actorflow's algorithm: nn.Embedding(sparse=True) tables under
torch.optim.SparseAdam (only the rows a batch touches move: lazy Adam), the dense layers under
torch.optim.Adam. --impl dense: dense embeddings, one torch.optim.Adam over everything (the
textbook PyTorch NCF; untouched rows move with their momentum).

Reads --train user,item,rating CSV (0-based ids, header line; ratings only say which pairs are
positives) and optionally --history (same format); without --train it trains on random data
(--users × --items, --per-user positives each). An example is a rating with its negatives
counted once, as in bench:model-epochs. Times only the training epochs. Prints one JSON line:
trainSeconds, cpuSeconds, examples, threads, loss (mean over the last epoch's steps), impl, torch.
"""
import argparse, json, time
import torch
from torch import nn
import torch.nn.functional as F
from bench_torch import add_common_args, load_ratings, parse_and_setup

p = argparse.ArgumentParser()
p.add_argument('--train'); p.add_argument('--history')
p.add_argument('--users', type=int); p.add_argument('--items', type=int)
p.add_argument('--per-user', type=int, default=20)
p.add_argument('--dim', type=int, default=16); p.add_argument('--mlp-dim', type=int, default=32)
p.add_argument('--layers', default='64,32,16'); p.add_argument('--negatives', type=int, default=4)
p.add_argument('--init-std', type=float, default=0.01)
add_common_args(p, batch=256, lr=0.002)
a = parse_and_setup(p)


if a.train is not None:
    tu, ti = load_ratings(a.train, with_ratings=False)
    hu, hi = load_ratings(a.history, with_ratings=False) if a.history is not None else (tu, ti)
    U = a.users if a.users is not None else int(max(tu.max(), hu.max())) + 1
    I = a.items if a.items is not None else int(max(ti.max(), hi.max())) + 1
else:
    U = a.users if a.users is not None else 200
    I = a.items if a.items is not None else 300
    tu = torch.arange(U).repeat_interleave(a.per_user)
    ti = torch.stack([torch.randperm(I)[:a.per_user] for _ in range(U)]).reshape(-1)
    hu, hi = tu, ti
if a.limit is not None:
    tu, ti = tu[:a.limit], ti[:a.limit]
n = len(tu)

# The users' histories, for rejection: a bool matrix when it is small, else sorted (user, item) keys.
dense_history = U * I <= 1 << 28
if dense_history:
    seen = torch.zeros(U, I, dtype=torch.bool)
    seen[hu, hi] = True
    seen[tu, ti] = True
    counts = seen.sum(1)
else:
    keys = torch.unique(torch.cat([hu * I + hi, tu * I + ti]))
    counts = torch.bincount(keys // I, minlength=U)
can_sample = counts < I  # a user who has every item gets no negatives


def in_history(users, items):
    if dense_history:
        return seen[users, items]
    k = users * I + items
    at = torch.searchsorted(keys, k).clamp_(max=len(keys) - 1)
    return keys[at] == k


def negatives_for(users):
    """`negatives` items per user, uniform over the items not in the user's history."""
    neg = torch.randint(I, (len(users), a.negatives))
    rows = users.unsqueeze(1).expand_as(neg)
    bad = in_history(rows, neg)
    while bool(bad.any()):
        neg[bad] = torch.randint(I, (int(bad.sum()),))
        bad[bad.clone()] = in_history(rows[bad], neg[bad])
    return neg


def glorot_(linear):
    nn.init.xavier_uniform_(linear.weight)  # U(±√(6/(fanIn+fanOut))), as actorflow's Glorot specs
    nn.init.zeros_(linear.bias)
    return linear


class NeuMF(nn.Module):
    def __init__(self):
        super().__init__()
        sparse = a.impl == 'sparse'
        self.gU = nn.Embedding(U, a.dim, sparse=sparse); self.gI = nn.Embedding(I, a.dim, sparse=sparse)
        self.mU = nn.Embedding(U, a.mlp_dim, sparse=sparse); self.mI = nn.Embedding(I, a.mlp_dim, sparse=sparse)
        for e in (self.gU, self.gI, self.mU, self.mI):
            nn.init.normal_(e.weight, std=a.init_std)
        layers, fan = [], 2 * a.mlp_dim
        for size in (int(s) for s in a.layers.split(',')):
            layers += [glorot_(nn.Linear(fan, size)), nn.ReLU()]
            fan = size
        self.mlp = nn.Sequential(*layers)
        self.out = glorot_(nn.Linear(a.dim + fan, 1))

    def forward(self, u, i):
        gmf = self.gU(u) * self.gI(i)
        mlp = self.mlp(torch.cat([self.mU(u), self.mI(i)], 1))
        return self.out(torch.cat([gmf, mlp], 1)).squeeze(1)


model = NeuMF()
tables = [model.gU.weight, model.gI.weight, model.mU.weight, model.mI.weight]
dense = [q for q in model.parameters() if all(q is not t for t in tables)]
opts = [torch.optim.SparseAdam(tables, lr=a.lr), torch.optim.Adam(dense, lr=a.lr)] if a.impl == 'sparse' else [torch.optim.Adam(model.parameters(), lr=a.lr)]

total, steps = 0.0, 0
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(a.epochs):
    perm = torch.randperm(n)
    total, steps = 0.0, 0
    for s in range(0, n, a.batch):
        idx = perm[s:s + a.batch]
        bu, bi = tu[idx], ti[idx]
        su = bu[can_sample[bu]]
        neg = negatives_for(su)
        users = torch.cat([bu, su.repeat_interleave(a.negatives)])
        items = torch.cat([bi, neg.reshape(-1)])
        labels = torch.cat([torch.ones(len(bu)), torch.zeros(neg.numel())])
        for o in opts:
            o.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(users, items), labels)
        loss.backward()
        for o in opts:
            o.step()
        total += float(loss); steps += 1
print(json.dumps({'trainSeconds': time.perf_counter() - t0, 'cpuSeconds': time.process_time() - c0, 'examples': n * a.epochs, 'threads': torch.get_num_threads(),
                  'loss': total / max(1, steps), 'impl': a.impl, 'torch': torch.__version__}))
