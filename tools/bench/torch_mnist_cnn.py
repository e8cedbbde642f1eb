#!/usr/bin/env python3
"""The MNIST CNN of libs/models (mnist-cnn) in PyTorch, the reference row of bench:vs-torch-models.

Same network: conv 3×3×32 (valid, stride 1) ReLU → max-pool 2×2 → flatten → dense 64 ReLU →
dense 10, softmax cross-entropy, Adam 0.001, batch 32, shuffled. Speed does not depend on pixel
values, so it trains on N random 28×28 images with random labels (N = the actorflow row's training
examples per epoch). Prints one JSON line: trainSeconds, cpuSeconds, examples, threads.
"""
import argparse, json, time
import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument('--examples', type=int, default=7200); p.add_argument('--epochs', type=int, default=1)
p.add_argument('--batch', type=int, default=32); p.add_argument('--lr', type=float, default=0.001)
p.add_argument('--threads', type=int, default=1); p.add_argument('--seed', type=int, default=42)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
x = torch.rand(a.examples, 1, 28, 28)
y = torch.randint(0, 10, (a.examples,))
model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(13 * 13 * 32, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
loss_fn = nn.CrossEntropyLoss()
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(a.epochs):
    perm = torch.randperm(a.examples)
    for s in range(0, a.examples, a.batch):
        idx = perm[s:s + a.batch]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
print(json.dumps({'trainSeconds': time.perf_counter() - t0, 'cpuSeconds': time.process_time() - c0, 'examples': a.examples * a.epochs, 'threads': torch.get_num_threads()}))
