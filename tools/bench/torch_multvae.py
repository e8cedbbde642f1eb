#!/usr/bin/env python3
"""Mult-VAE of libs/models (multvae) in PyTorch, the reference row of bench:vs-torch-models.

Same network as the registered defaults (Liang et al. 2018): a user's row x (its ratings as the
values), x̃ = dropout(x / ‖x‖₂) with p 0.5 (inverted scaling, training only), h = tanh(x̃·V + b)
with 600 units, [μ, log σ²] = h·W + b (latent 200), z = μ + ε ⊙ σ, decoder tanh 600 → logits over
all items. Loss, averaged over the batch's users: −Σ_i x_i log softmax(logits)_i + β·KL(q ‖ N(0, I)),
β = min(0.2, step / 200000) (step = the global step, from 0). Weights Glorot-uniform, biases 0.
Adam lr 0.001, batch 100 user rows, shuffled; no weight decay (actorflow's recommended has none).

--impl sparse (default) is actorflow's algorithm: V is an nn.EmbeddingBag over items (sum, the
kept entries' x̃ as per-sample weights; dropped entries are left out) with sparse=True under
torch.optim.SparseAdam (lazy: only the rows of kept items move); every other layer is dense under
torch.optim.Adam. --impl dense: the paper's reference form — a dense n × items x̃, F.dropout,
nn.Linear(items, 600), one torch.optim.Adam over everything.

Reads --train user,item,rating CSV (0-based ids, header line); without --train it trains on random
clicks (--users × --items, --per-user each). An example is a user row (users with ratings), as in
bench:model-epochs. Times only the training epochs. Prints one JSON line: trainSeconds,
cpuSeconds, examples, threads, loss (mean over the last epoch's steps), impl, torch.
"""
import argparse, json, time
import torch
from torch import nn
import torch.nn.functional as F
from bench_torch import add_common_args, load_ratings, parse_and_setup

p = argparse.ArgumentParser()
p.add_argument('--train'); p.add_argument('--users', type=int); p.add_argument('--items', type=int)
p.add_argument('--per-user', type=int, default=20)
p.add_argument('--hidden', default='600'); p.add_argument('--latent', type=int, default=200)
p.add_argument('--dropout', type=float, default=0.5)
p.add_argument('--anneal-cap', type=float, default=0.2); p.add_argument('--total-anneal-steps', type=float, default=200000)
add_common_args(p, batch=100, lr=0.001)
a = parse_and_setup(p)


if a.train is not None:
    tu, ti, tr = load_ratings(a.train)
    I = a.items if a.items is not None else int(ti.max()) + 1
else:
    U = a.users if a.users is not None else 200
    I = a.items if a.items is not None else 300
    tu = torch.arange(U).repeat_interleave(a.per_user)
    ti = torch.stack([torch.randperm(I)[:a.per_user] for _ in range(U)]).reshape(-1)
    tr = torch.ones(len(tu))

# CSR user rows (rows sorted by user id, columns by item id; users without ratings get no row), as
# @actorflow/data's groupRows(ratings, 'user'). --limit keeps the first rows.
order = torch.argsort(tu * I + ti)
row_id, lens = torch.unique_consecutive(tu[order], return_counts=True)
cols_all, vals_all = ti[order], tr[order]
if a.limit is not None:
    row_id, lens = row_id[:a.limit], lens[:a.limit]
    cols_all, vals_all = cols_all[:int(lens.sum())], vals_all[:int(lens.sum())]
starts = torch.cumsum(lens, 0) - lens
n = len(row_id)
hidden = [int(s) for s in a.hidden.split(',') if s.strip() != '']
L = a.latent


def batch_entries(idx):
    """Entries of the rows at positions idx: the row (0…B−1) of each, its column and value."""
    ln = lens[idx]
    ends = torch.cumsum(ln, 0)
    row_of = torch.repeat_interleave(torch.arange(len(idx)), ln)
    pos = torch.arange(int(ends[-1])) - (ends - ln)[row_of] + starts[idx][row_of]
    return row_of, cols_all[pos], vals_all[pos]


def glorot_(lin):
    nn.init.xavier_uniform_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin


class MultVAE(nn.Module):
    def __init__(self):
        super().__init__()
        sparse = a.impl == 'sparse'
        self.enc0 = nn.EmbeddingBag(I, hidden[0], mode='sum', sparse=True) if sparse else nn.Linear(I, hidden[0], bias=False)
        nn.init.xavier_uniform_(self.enc0.weight)
        self.enc0_b = nn.Parameter(torch.zeros(hidden[0]))
        self.enc = nn.ModuleList([glorot_(nn.Linear(hidden[k - 1], hidden[k])) for k in range(1, len(hidden))] + [glorot_(nn.Linear(hidden[-1], 2 * L))])
        dec = [L, *reversed(hidden), I]
        self.dec = nn.ModuleList([glorot_(nn.Linear(dec[k], dec[k + 1])) for k in range(len(dec) - 1)])

    def forward(self, x1, eps):
        h = torch.tanh(x1 + self.enc0_b)
        for lin in self.enc[:-1]:
            h = torch.tanh(lin(h))
        y = self.enc[-1](h)
        mu, logvar = y[:, :L], y[:, L:]
        kl = 0.5 * (torch.exp(logvar) + mu ** 2 - 1 - logvar).sum() / len(x1)
        h = mu + eps * torch.exp(0.5 * logvar)
        for k, lin in enumerate(self.dec):
            h = lin(h) if k == len(self.dec) - 1 else torch.tanh(lin(h))
        return h, kl


model = MultVAE()
if a.impl == 'sparse':
    dense = [q for q in model.parameters() if q is not model.enc0.weight]
    opts = [torch.optim.SparseAdam([model.enc0.weight], lr=a.lr), torch.optim.Adam(dense, lr=a.lr)]
else:
    opts = [torch.optim.Adam(model.parameters(), lr=a.lr)]
keep_scale = 1 / (1 - a.dropout) if a.dropout < 1 else 0.0

step = 0
total, steps = 0.0, 0
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(a.epochs):
    perm = torch.randperm(n)
    total, steps = 0.0, 0
    for s in range(0, n, a.batch):
        idx = perm[s:s + a.batch]
        B = len(idx)
        row_of, cols, vals = batch_entries(idx)
        x = torch.zeros(B, I)
        x.index_put_((row_of, cols), vals, accumulate=True)
        sq = torch.zeros(B).index_add_(0, row_of, vals * vals)
        inv_norm = torch.where(sq > 0, sq.rsqrt(), torch.zeros(B))  # 1/‖x‖₂, 0 for an all-zero row
        if a.impl == 'sparse':
            kept = torch.rand(len(cols)) >= a.dropout
            k_row = row_of[kept]
            offsets = torch.cumsum(torch.bincount(k_row, minlength=B), 0) - torch.bincount(k_row, minlength=B)
            x1 = model.enc0(cols[kept], offsets, per_sample_weights=vals[kept] * keep_scale * inv_norm[k_row])
        else:
            x1 = model.enc0(F.dropout(x * inv_norm.unsqueeze(1), a.dropout, training=True))
        logits, kl = model(x1, torch.randn(B, L))
        nll = -(x * F.log_softmax(logits, 1)).sum() / B
        beta = min(a.anneal_cap, step / a.total_anneal_steps)
        loss = nll + beta * kl
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        total += float(loss); steps += 1; step += 1
print(json.dumps({'trainSeconds': time.perf_counter() - t0, 'cpuSeconds': time.process_time() - c0, 'examples': n * a.epochs, 'threads': torch.get_num_threads(),
                  'loss': total / max(1, steps), 'impl': a.impl, 'torch': torch.__version__}))
