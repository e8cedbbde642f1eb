#!/usr/bin/env python3
"""Biased MF in PyTorch, the reference row of bench:vs-torch (run with Debian's python3-torch).

The classic recipe: nn.Embedding tables, r̂ = μ + b_u + b_i + p_u·q_i, MSE, torch.optim.Adam with
weight_decay = l2 (dense: every row moves each step), shuffled minibatches. Reads train/test CSV
(user,item,rating; 0-based ids) and prints one JSON line: trainSeconds, cpuSeconds (process CPU time of training), testMse, ratings, threads.
"""
import argparse, json, sys, time
import torch
from bench_torch import load_ratings

p = argparse.ArgumentParser()
p.add_argument('--train'); p.add_argument('--test')
p.add_argument('--users', type=int); p.add_argument('--items', type=int)
p.add_argument('--dim', type=int, default=100); p.add_argument('--lr', type=float, default=0.01)
p.add_argument('--l2', type=float, default=0.00028); p.add_argument('--batch', type=int, default=5001)
p.add_argument('--epochs', type=int, default=100); p.add_argument('--threads', type=int, default=1)
p.add_argument('--seed', type=int, default=42)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

tu, ti, tr = load_ratings(a.train)
su, si, sr = load_ratings(a.test)

class MF(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.P = torch.nn.Embedding(a.users, a.dim); self.Q = torch.nn.Embedding(a.items, a.dim)
        self.bu = torch.nn.Embedding(a.users, 1); self.bi = torch.nn.Embedding(a.items, 1)
        for e in (self.P, self.Q): torch.nn.init.normal_(e.weight, std=0.1)
        for e in (self.bu, self.bi): torch.nn.init.zeros_(e.weight)
        self.mu = torch.nn.Parameter(torch.tensor(float(tr.mean())))
    def forward(self, u, i):
        return self.mu + self.bu(u).squeeze(1) + self.bi(i).squeeze(1) + (self.P(u) * self.Q(i)).sum(1)

m = MF()
opt = torch.optim.Adam(m.parameters(), lr=a.lr, weight_decay=a.l2)
n = len(tr)
t0 = time.perf_counter()
c0 = time.process_time()
for epoch in range(a.epochs):
    perm = torch.randperm(n)
    for s in range(0, n, a.batch):
        idx = perm[s:s + a.batch]
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(tu[idx], ti[idx]), tr[idx])
        loss.backward()
        opt.step()
secs = time.perf_counter() - t0
cpu = time.process_time() - c0
with torch.no_grad():
    mse = float(torch.nn.functional.mse_loss(m(su, si), sr))
print(json.dumps({'trainSeconds': secs, 'cpuSeconds': cpu, 'testMse': mse, 'ratings': n * a.epochs, 'threads': torch.get_num_threads(), 'torch': torch.__version__}))
