"""A fault inside a torch.compile'd model (aot_eager backend): exp of Net/enc overflows fp32 at step 3."""
import torch, torch.nn as nn
torch.manual_seed(0); torch.set_num_threads(1)
class Enc(nn.Module):
    def __init__(self):
        super().__init__(); self.fc = nn.Linear(8, 8)
    def forward(self, x):
        return torch.exp(self.fc(x))
class Net(nn.Module):
    def __init__(self):
        super().__init__(); self.enc = Enc(); self.head = nn.Linear(8, 1)
    def forward(self, x):
        return self.head(self.enc(x))
model = Net(); cm = torch.compile(model, backend="aot_eager")
opt = torch.optim.SGD(model.parameters(), 1e-3)
for step in range(1, 6):
    x = torch.randn(4, 8) * (200.0 if step == 3 else 1.0)
    loss = cm(x).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    print(step, loss.item())
