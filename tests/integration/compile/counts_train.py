"""torch.compile'd training with bf16 autocast on CPU, an eval pass (eval mode,
no_grad) after each step: prints the losses and dynamo's counters, for test_compile.py."""
import json
import sys
import torch, torch.nn as nn
import torch._dynamo
from torch._dynamo.utils import counters
torch.manual_seed(0)
torch.set_num_threads(1)

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 16)
    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(16, 1)
    def forward(self, x):
        return self.head(self.blocks(x))

model = Net()
cmodel = torch.compile(model, backend="aot_eager")
opt = torch.optim.AdamW(model.parameters(), 1e-3)
for step in range(int(sys.argv[1]) if len(sys.argv) > 1 else 6):
    x = torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = cmodel(x).float().pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    print(step, round(loss.item(), 5))
    model.eval()
    with torch.no_grad():
        cmodel(torch.randn(8, 16))
    model.train()
print("COUNTS", json.dumps({k: dict(v) for k, v in sorted(counters.items()) if k in ("stats", "graph_break", "recompiles", "frames")}, sort_keys=True))
