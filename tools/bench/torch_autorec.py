#!/usr/bin/env python3
"""AutoRec of libs/models (autorec) in PyTorch, the reference row of bench:vs-torch-models.

Same network as the registered defaults: item-based (I-AutoRec: a row is an item's ratings by
users), h = sigmoid(V·r + b) with 500 hidden units (`--stacked` adds dense layers, as actorflow's
`stacked`), r̂ = W·h + c (identity output), trained on the observed entries only. Loss of a batch
of B item rows, as actorflow's:
  (1/B) Σ_rows Σ_{j observed} [ (r̂_j − r_j)² + λ/2 (‖V_j‖² + ‖W_j‖²) ]  +  λ/2 Σ_k ‖W_k‖²
(L2 on the user columns' rows charged per observed entry, λ = 0.5; stacked weights once per batch;
biases not decayed). V, W Glorot-uniform, b = 0, c = the training mean. Adam lr 0.003, batch 32
item rows, shuffled. No input dropout (actorflow's `denoise` defaults to 0).

--impl sparse (default) is actorflow's algorithm: V is an nn.EmbeddingBag over user columns
(sum, the ratings as per-sample weights), W and c are tables read only at the observed columns,
all three sparse=True under torch.optim.SparseAdam (lazy: only touched rows move); the rest under
torch.optim.Adam. --impl dense: the textbook version — dense item rows × nn.Linear(users, 500),
a full users-wide output masked to the observed entries, one torch.optim.Adam over everything.

Reads --train user,item,rating CSV (0-based ids, header line); without --train it trains on random
ratings (--users × --items, --per-item each). An example is an item row (items with ratings), as
in bench:model-epochs. Times only the training epochs. Prints one JSON line: trainSeconds,
cpuSeconds, examples, threads, loss (mean over the last epoch's steps), impl, torch.
"""
import argparse, json, time
import torch
from torch import nn
import torch.nn.functional as F
from bench_torch import add_common_args, load_ratings, parse_and_setup

p = argparse.ArgumentParser()
p.add_argument('--train'); p.add_argument('--users', type=int); p.add_argument('--items', type=int)
p.add_argument('--per-item', type=int, default=20)
p.add_argument('--hidden', type=int, default=500); p.add_argument('--stacked', default='')
p.add_argument('--l2', type=float, default=0.5); p.add_argument('--global-mean', type=float)
add_common_args(p, batch=32, lr=0.003)
a = parse_and_setup(p)


if a.train is not None:
    tu, ti, tr = load_ratings(a.train)
    U = a.users if a.users is not None else int(tu.max()) + 1
    I = a.items if a.items is not None else int(ti.max()) + 1
else:
    U = a.users if a.users is not None else 300
    I = a.items if a.items is not None else 200
    ti = torch.arange(I).repeat_interleave(a.per_item)
    tu = torch.stack([torch.randperm(U)[:a.per_item] for _ in range(I)]).reshape(-1)
    tr = torch.randint(1, 6, (len(tu),)).float()
mean = a.global_mean if a.global_mean is not None else float(tr.mean())

# CSR item rows (rows sorted by item id, columns by user id; items without ratings get no row),
# as @actorflow/data's groupRows(ratings, 'item'). --limit keeps the first rows.
order = torch.argsort(ti * U + tu)
row_id, lens = torch.unique_consecutive(ti[order], return_counts=True)
cols_all, vals_all = tu[order], tr[order]
if a.limit is not None:
    row_id, lens = row_id[:a.limit], lens[:a.limit]
    cols_all, vals_all = cols_all[:int(lens.sum())], vals_all[:int(lens.sum())]
starts = torch.cumsum(lens, 0) - lens
n = len(row_id)
C, H = U, a.hidden  # columns are users
stacked = [int(s) for s in a.stacked.split(',') if s.strip() != '']
sizes = [H, *stacked]


def batch_entries(idx):
    """Entries of the rows at positions idx: the row (0…B−1) of each, its column and rating, and bag offsets."""
    ln = lens[idx]
    ends = torch.cumsum(ln, 0)
    row_of = torch.repeat_interleave(torch.arange(len(idx)), ln)
    pos = torch.arange(int(ends[-1])) - (ends - ln)[row_of] + starts[idx][row_of]
    return row_of, cols_all[pos], vals_all[pos], ends - ln


def uniform_(w, fan_in, fan_out):
    bound = (6 / (fan_in + fan_out)) ** 0.5
    nn.init.uniform_(w, -bound, bound)


class AutoRec(nn.Module):
    def __init__(self):
        super().__init__()
        sparse = a.impl == 'sparse'
        last = sizes[-1]
        self.enc = nn.EmbeddingBag(C, H, mode='sum', sparse=True) if sparse else nn.Linear(C, H, bias=False)
        uniform_(self.enc.weight, C, H)  # glorot(cols, hidden), rows = columns (the Linear's weight is its transpose: same law)
        self.enc_b = nn.Parameter(torch.zeros(H))
        self.stack = nn.ModuleList()
        for k in range(1, len(sizes)):
            lin = nn.Linear(sizes[k - 1], sizes[k])
            uniform_(lin.weight, sizes[k - 1], sizes[k]); nn.init.zeros_(lin.bias)
            self.stack.append(lin)
        if sparse:
            self.dec_w = nn.Embedding(C, last, sparse=True)
            self.dec_b = nn.Embedding(C, 1, sparse=True)
            uniform_(self.dec_w.weight, last, C)
            nn.init.constant_(self.dec_b.weight, mean)
        else:
            self.dec = nn.Linear(last, C)
            uniform_(self.dec.weight, last, C)
            nn.init.constant_(self.dec.bias, mean)

    def hidden(self, x1):
        h = torch.sigmoid(x1 + self.enc_b)
        for lin in self.stack:
            h = torch.sigmoid(lin(h))
        return h

    def stack_reg(self):
        return sum((lin.weight ** 2).sum() for lin in self.stack) if len(self.stack) > 0 else torch.zeros(())

    def loss_sparse(self, B, row_of, cols, vals, offsets):
        h = self.hidden(self.enc(cols, offsets, per_sample_weights=vals))
        wr = self.dec_w(cols)
        yhat = self.dec_b(cols).squeeze(1) + (wr * h[row_of]).sum(1)
        vr = F.embedding(cols, self.enc.weight, sparse=True)  # V's rows once per observed entry, for the L2 term
        sq = ((yhat - vals) ** 2).sum()
        reg = (vr ** 2).sum() + (wr ** 2).sum()
        return (sq + a.l2 / 2 * reg) / B + a.l2 / 2 * self.stack_reg()

    def loss_dense(self, B, row_of, cols, vals):
        x = torch.zeros(B, C)
        x[row_of, cols] = vals
        yhat = self.dec(self.hidden(self.enc(x)))
        sq = ((yhat[row_of, cols] - vals) ** 2).sum()
        count = torch.bincount(cols, minlength=C).float()
        reg = (count * (self.enc.weight ** 2).sum(0)).sum() + (count * (self.dec.weight ** 2).sum(1)).sum()
        return (sq + a.l2 / 2 * reg) / B + a.l2 / 2 * self.stack_reg()


model = AutoRec()
if a.impl == 'sparse':
    tables = [model.enc.weight, model.dec_w.weight, model.dec_b.weight]
    dense = [q for q in model.parameters() if all(q is not t for t in tables)]
    opts = [torch.optim.SparseAdam(tables, lr=a.lr), torch.optim.Adam(dense, lr=a.lr)]
else:
    opts = [torch.optim.Adam(model.parameters(), lr=a.lr)]

total, steps = 0.0, 0
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(a.epochs):
    perm = torch.randperm(n)
    total, steps = 0.0, 0
    for s in range(0, n, a.batch):
        idx = perm[s:s + a.batch]
        row_of, cols, vals, offsets = batch_entries(idx)
        for o in opts:
            o.zero_grad()
        loss = model.loss_sparse(len(idx), row_of, cols, vals, offsets) if a.impl == 'sparse' else model.loss_dense(len(idx), row_of, cols, vals)
        loss.backward()
        for o in opts:
            o.step()
        total += float(loss); steps += 1
print(json.dumps({'trainSeconds': time.perf_counter() - t0, 'cpuSeconds': time.process_time() - c0, 'examples': n * a.epochs, 'threads': torch.get_num_threads(),
                  'loss': total / max(1, steps), 'impl': a.impl, 'torch': torch.__version__}))
