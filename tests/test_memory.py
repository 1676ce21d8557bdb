"""genkit.training.memory: saved-for-backward bytes counted exactly, parameters and shared storages once."""

import torch

from genkit.training.memory import optimizer_bytes, saved_activation_bytes


def test_saved_activation_bytes_counts_distinct_non_parameter_storages():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(16, 8, requires_grad=True)  # so the weight is saved too (for the grad of x)

    def step():
        y = torch.relu(lin(x))  # linear saves x (and the weight, a parameter); relu saves its output
        (y * y).sum().backward()  # mul saves y twice: one storage

    n = saved_activation_bytes(step, lin.parameters())
    assert n == 16 * 8 * 4 + 16 * 4 * 4
    assert saved_activation_bytes(step) == n + 8 * 4 * 4  # the weight counts when not excluded


def test_optimizer_bytes_is_weights_grads_and_two_moments():
    lin = torch.nn.Linear(8, 4)
    lin.bias.requires_grad_(False)
    assert optimizer_bytes(lin.parameters()) == 4 * (8 * 4) * 4
