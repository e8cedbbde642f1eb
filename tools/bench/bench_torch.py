"""What the PyTorch reference scripts of tools/bench share: the ratings CSV reader and the common
options (--epochs, --lr, --batch, --limit, --impl, --threads, --seed) with the thread and seed set."""
import torch


def load_ratings(path, with_ratings=True):
    """user,item[,rating] CSV (0-based ids, a header line) as long id tensors (and float32 ratings)."""
    u, i, r = [], [], []
    with open(path) as f:
        next(f)
        for line in f:
            x = line.split(',')
            u.append(int(x[0])); i.append(int(x[1]))
            if with_ratings:
                r.append(float(x[2]))
    ids = (torch.tensor(u, dtype=torch.long), torch.tensor(i, dtype=torch.long))
    return (*ids, torch.tensor(r, dtype=torch.float32)) if with_ratings else ids


def add_common_args(p, batch, lr):
    """The options every model script takes, with the model's recommended batch and lr as defaults."""
    p.add_argument('--epochs', type=int, default=1); p.add_argument('--batch', type=int, default=batch)
    p.add_argument('--lr', type=float, default=lr); p.add_argument('--limit', type=int)
    p.add_argument('--impl', choices=['sparse', 'dense'], default='sparse')
    p.add_argument('--threads', type=int, default=1); p.add_argument('--seed', type=int, default=42)


def parse_and_setup(p):
    """Parses the options, then sets torch's thread count and seed from them."""
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    return a
